//! Short-lived copies of the two rows every channel handshake reads (the token's user and the
//! city), so a thundering herd of reconnecting clients after a deploy costs a hash-map look-up
//! per handshake instead of two database round trips.
//!
//! Why it is safe, and how stale it can be:
//! - **Cities** change through no path of this service (the six are seeded; no API or command
//!   renames or deletes one). Only someone editing the database by hand can, and then this
//!   instance sees it after [`LookupTtl::cities`] at most (60 s by default).
//! - **Users** are removed through the API (`DELETE /api/v1/users/{name}`) or `wfs user
//!   remove`, on any instance sharing the database. A removal made through this process's
//!   [`Store`] forgets the user here at once; one made by another process (the command line,
//!   another instance) cannot reach this memory, so a removed user can still *open channels*
//!   on this instance for [`LookupTtl::users`] at most (5 s by default, `wfs serve
//!   --user-cache-ttl`; 0 turns the cache off for users). The REST API does not
//!   use this cache: it always asks the database, so an administrator who was removed loses
//!   administrator rights at once. Open connections are not closed by a removal, cached or not.
//! - Only rows that exist are kept: an unknown city or user is asked again every time, so
//!   random UUIDs cannot fill the memory, and a row created a moment ago is found at once.
//! - Each map holds at most [`MAX_ENTRIES`]; past that, expired entries are swept and, if it is
//!   still full, new rows are not kept (the database answers, as without a cache).

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use uuid::Uuid;

use super::{City, User};

/// How long a row read for a handshake is trusted before it is read again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LookupTtl {
    /// Cities: edited by hand in the database only, so a minute of staleness costs nothing.
    pub cities: Duration,
    /// Users: how long a user removed by another process may still open channels here.
    pub users: Duration,
}

impl Default for LookupTtl {
    fn default() -> LookupTtl {
        LookupTtl {
            cities: Duration::from_secs(60),
            users: Duration::from_secs(5),
        }
    }
}

/// Rows kept per map at most (a user entry is about 100 bytes: 100,000 are ~10 MB).
pub const MAX_ENTRIES: usize = 100_000;

/// The cities and users the handshakes read, each for its own time.
#[derive(Debug)]
pub(super) struct Lookups {
    pub(super) cities: Expiring<Uuid, City>,
    pub(super) users: Expiring<i64, User>,
}

impl Lookups {
    pub(super) fn new(ttl: LookupTtl) -> Lookups {
        Lookups {
            cities: Expiring::new(ttl.cities),
            users: Expiring::new(ttl.users),
        }
    }
}

/// A map whose entries expire `ttl` after they were read from the database.
pub(super) struct Expiring<K, V> {
    ttl: Duration,
    inner: Mutex<Entries<K, V>>,
}

struct Entries<K, V> {
    map: HashMap<K, (Instant, Arc<V>)>,
    /// Bumped by every invalidation: a row read before it is not kept after it (a removal
    /// racing a look-up must not leave the removed row cached for a whole TTL).
    generation: u64,
}

impl<K, V> std::fmt::Debug for Expiring<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The rows themselves stay out of logs.
        f.debug_struct("Expiring")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

/// Where a look-up started, to keep its answer only if nothing was invalidated meanwhile.
#[derive(Debug, Clone, Copy)]
struct Ticket(u64);

impl<K: Eq + Hash + Clone, V> Expiring<K, V> {
    fn new(ttl: Duration) -> Expiring<K, V> {
        Expiring {
            ttl,
            inner: Mutex::new(Entries {
                map: HashMap::new(),
                generation: 0,
            }),
        }
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, Entries<K, V>> {
        // Nothing here can be left half-updated by a panic: the map stays usable.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The fresh row for `key`, or a ticket to [`Expiring::keep`] the one read instead.
    fn get(&self, key: &K) -> Result<Arc<V>, Ticket> {
        let entries = self.entries();
        match entries.map.get(key) {
            Some((read_at, value)) if read_at.elapsed() < self.ttl => Ok(value.clone()),
            _ => Err(Ticket(entries.generation)),
        }
    }

    /// Keeps `value`, read from the database after `ticket` was drawn, unless `key` was
    /// invalidated since.
    fn keep(&self, ticket: Ticket, key: K, value: Arc<V>) {
        if self.ttl.is_zero() {
            return;
        }
        let mut entries = self.entries();
        if entries.generation != ticket.0 {
            return;
        }
        if entries.map.len() >= MAX_ENTRIES && !entries.map.contains_key(&key) {
            let ttl = self.ttl;
            entries
                .map
                .retain(|_, (read_at, _)| read_at.elapsed() < ttl);
            if entries.map.len() >= MAX_ENTRIES {
                return;
            }
        }
        entries.map.insert(key, (Instant::now(), value));
    }

    /// The fresh row for `key`, or the one `load` reads, kept unless `key` was invalidated
    /// while it was read. No row is not kept: a row created later is found at once.
    pub(super) async fn get_or_load<E>(
        &self,
        key: K,
        load: impl std::future::Future<Output = Result<Option<V>, E>>,
    ) -> Result<Option<Arc<V>>, E> {
        let ticket = match self.get(&key) {
            Ok(value) => return Ok(Some(value)),
            Err(ticket) => ticket,
        };
        let Some(value) = load.await? else {
            return Ok(None);
        };
        let value = Arc::new(value);
        self.keep(ticket, key, value.clone());
        Ok(Some(value))
    }

    /// Forgets `key`: the next look-up reads the database.
    pub(super) fn forget(&self, key: &K) {
        let mut entries = self.entries();
        entries.generation += 1;
        entries.map.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire_and_invalidation_beats_a_racing_read() {
        let map: Expiring<i64, &str> = Expiring::new(Duration::from_millis(50));
        let ticket = map.get(&1).expect_err("empty");
        map.keep(ticket, 1, Arc::new("one"));
        assert_eq!(map.get(&1).ok().as_deref(), Some(&"one"));
        std::thread::sleep(Duration::from_millis(60));
        assert!(map.get(&1).is_err(), "expired");

        // Read before a removal, kept after it: dropped.
        let ticket = map.get(&2).expect_err("empty");
        map.forget(&2);
        map.keep(ticket, 2, Arc::new("two"));
        assert!(
            map.get(&2).is_err(),
            "a row read before its removal was kept"
        );
    }

    #[test]
    fn a_zero_ttl_keeps_nothing() {
        let map: Expiring<i64, &str> = Expiring::new(Duration::ZERO);
        let ticket = map.get(&1).expect_err("empty");
        map.keep(ticket, 1, Arc::new("one"));
        assert!(map.get(&1).is_err());
    }
}
