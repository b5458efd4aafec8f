//! Who may hold a connection open: a cap per client IP address, and a cap on connections that
//! have not yet sent a complete request head (slowloris), which evicts the oldest of them.
//!
//! Evicting rather than refusing is what keeps the server answering during an attack: a client
//! that sends its request at once is pending for a millisecond, an attacker's connections for
//! as long as they can stall, so when the cap is full the oldest pending one is the attacker's.
//! The client IP is the TCP peer's: a proxy's `X-Forwarded-For` is not known yet when a
//! connection is accepted, and counting by it would let a client pick its own bucket. An IPv6
//! client is counted by its /64, the block one host or home network is given, so that one
//! machine cannot multiply its share by changing addresses inside it.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;

/// The two caps and the connections counted against them.
#[derive(Debug)]
pub struct Admission {
    max_per_ip: usize,
    max_pending: usize,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    per_ip: HashMap<IpAddr, usize>,
    /// Pending connections by admission order (ids grow), each with its eviction signal.
    pending: BTreeMap<u64, Arc<Notify>>,
    next_id: u64,
    evicted: u64,
}

/// Why a connection was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("{ip} already has {open} connections open (the limit per address)")]
    TooManyFromAddress { ip: IpAddr, open: usize },
}

/// Counts and caps, read for logs and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdmissionStats {
    /// Connections that have not yet sent a complete request head.
    pub pending: usize,
    /// Client addresses with at least one connection open.
    pub addresses: usize,
    /// Pending connections closed so far to make room for new ones.
    pub evicted: u64,
}

/// An admitted connection. It counts against its IP address until dropped (the connection
/// object holds it, so an upgraded WebSocket keeps counting), and against the pending cap
/// until [`Lease::answered`] or drop.
#[derive(Debug)]
pub struct Lease {
    admission: Arc<Admission>,
    ip: Option<IpAddr>,
    /// The id in the pending map; 0 once answered.
    pending: AtomicU64,
    /// Notified when the connection is evicted to make room (while still pending).
    evicted: Arc<Notify>,
}

impl Admission {
    /// `max_pending` is at least 1 (0 would evict every connection as it arrives).
    pub fn new(max_per_ip: usize, max_pending: usize) -> Arc<Admission> {
        Arc::new(Admission {
            max_per_ip,
            max_pending: max_pending.max(1),
            state: Mutex::new(State {
                next_id: 1,
                ..State::default()
            }),
        })
    }

    /// The pending cap.
    pub fn max_pending(&self) -> usize {
        self.max_pending
    }

    /// Admits a connection from `ip` (`None`: not an IP peer, not counted per address),
    /// evicting the oldest pending connection when the pending cap is full.
    pub fn admit(self: &Arc<Self>, ip: Option<IpAddr>) -> Result<Lease, Refusal> {
        let ip = ip.map(bucket);
        let mut state = self.lock();
        if let Some(ip) = ip {
            let open = state.per_ip.get(&ip).copied().unwrap_or(0);
            if open >= self.max_per_ip {
                return Err(Refusal::TooManyFromAddress { ip, open });
            }
            state.per_ip.insert(ip, open + 1);
        }
        while state.pending.len() >= self.max_pending {
            let Some((_, oldest)) = state.pending.pop_first() else {
                break;
            };
            // A permit is stored if the connection is not waiting yet: it still goes.
            oldest.notify_one();
            state.evicted += 1;
            if state.evicted % 10_000 == 1 {
                tracing::warn!(
                    evicted = state.evicted,
                    max_pending = self.max_pending,
                    "too many connections without a complete request: closing the oldest \
                     (a slowloris attack, or --max-pending-connections too low)"
                );
            }
        }
        let id = state.next_id;
        state.next_id += 1;
        let evicted = Arc::new(Notify::new());
        state.pending.insert(id, evicted.clone());
        Ok(Lease {
            admission: self.clone(),
            ip,
            pending: AtomicU64::new(id),
            evicted,
        })
    }

    pub fn stats(&self) -> AdmissionStats {
        let state = self.lock();
        AdmissionStats {
            pending: state.pending.len(),
            addresses: state.per_ip.len(),
            evicted: state.evicted,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state stays consistent at every await-free step, so a panic elsewhere while the
        // lock was held leaves nothing half-done: keep going with it.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The address a connection is counted under: IPv4 as is (also when mapped into IPv6), IPv6
/// by its /64.
fn bucket(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(std::net::Ipv6Addr::from(
                v6.to_bits() & !((1u128 << 64) - 1),
            )),
        },
    }
}

impl Lease {
    /// The connection sent a complete request head: it no longer counts as pending, and can
    /// no longer be evicted. Called for every request; only the first one matters.
    pub fn answered(&self) {
        let id = self.pending.swap(0, Ordering::Relaxed);
        if id != 0 {
            self.admission.lock().pending.remove(&id);
        }
    }

    /// Resolves when the connection is evicted to make room for a newer one.
    pub async fn evicted(&self) {
        self.evicted.notified().await;
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let id = *self.pending.get_mut();
        let mut state = self.admission.lock();
        if id != 0 {
            state.pending.remove(&id);
        }
        if let Some(ip) = self.ip
            && let Some(open) = state.per_ip.get_mut(&ip)
        {
            *open -= 1;
            if *open == 0 {
                state.per_ip.remove(&ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 2));

    #[test]
    fn each_address_gets_its_own_cap_and_closing_frees_a_place() {
        let admission = Admission::new(2, 100);
        let first = admission.admit(Some(A)).unwrap();
        let _second = admission.admit(Some(A)).unwrap();
        assert_eq!(
            admission.admit(Some(A)).unwrap_err(),
            Refusal::TooManyFromAddress { ip: A, open: 2 }
        );
        let _other = admission.admit(Some(B)).unwrap();
        drop(first);
        let _third = admission.admit(Some(A)).unwrap();
        assert_eq!(admission.stats().addresses, 2);
    }

    #[test]
    fn ipv6_clients_count_by_their_64_and_mapped_ipv4_as_ipv4() {
        let admission = Admission::new(1, 100);
        let one: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let same_64: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let other_64: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        let _first = admission.admit(Some(one)).unwrap();
        assert!(admission.admit(Some(same_64)).is_err());
        let _other = admission.admit(Some(other_64)).unwrap();
        let _v4 = admission.admit(Some(A)).unwrap();
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        assert!(
            admission.admit(Some(mapped)).is_err(),
            "the same client as A"
        );
    }

    #[tokio::test]
    async fn a_full_pending_cap_evicts_the_oldest_pending_connection() {
        let admission = Admission::new(100, 2);
        let oldest = admission.admit(Some(A)).unwrap();
        let answered = admission.admit(Some(A)).unwrap();
        answered.answered();
        let younger = admission.admit(Some(A)).unwrap();
        assert_eq!(admission.stats().evicted, 0, "the answered one left room");
        let _newest = admission.admit(Some(A)).unwrap();
        tokio::time::timeout(std::time::Duration::from_secs(1), oldest.evicted())
            .await
            .expect("the oldest pending connection is evicted");
        assert_eq!(admission.stats().evicted, 1);
        assert_eq!(admission.stats().pending, 2);
        drop(younger);
        assert_eq!(admission.stats().pending, 1);
    }
}
