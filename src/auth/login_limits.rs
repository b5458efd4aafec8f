//! Failed logins, limited per client IP and per user name: [`FAILURES_PER_MINUTE`] of each,
//! then `/api/jwt/obtain` answers 429 with `Retry-After` until the limit allows another try,
//! without checking the password (which is what costs a hash).
//!
//! The counting is the `governor` crate's (GCRA: a burst of 10, then one more every 6 s), fed
//! with failures only, so successful logins cost nothing. governor can only take a cell, not
//! look whether one is there; so when a failure takes its key's last cell, the moment the next
//! one frees is kept here ([`Blocked`]), and attempts before it are refused. An attacker on
//! another address can block a user name for as long as they keep failing, but once they stop
//! the right password works again within the minute (as soon as a cell frees: 6 s).

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};

/// Failed logins allowed per minute, per client IP and per user name.
pub const FAILURES_PER_MINUTE: u32 = 10;

/// Keys kept by a limiter before the ones back to a full burst are dropped.
const PRUNE_ABOVE: usize = 10_000;

/// The limits of one server (each instance counts its own).
#[derive(Debug)]
pub struct LoginLimits {
    by_ip: Limit<IpAddr>,
    by_user: Limit<String>,
}

impl Default for LoginLimits {
    fn default() -> LoginLimits {
        LoginLimits::new(FAILURES_PER_MINUTE)
    }
}

impl LoginLimits {
    /// `per_minute` failures per IP and per user name (at least 1).
    pub fn new(per_minute: u32) -> LoginLimits {
        let per_minute = NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN);
        LoginLimits {
            by_ip: Limit::new(Quota::per_minute(per_minute)),
            by_user: Limit::new(Quota::per_minute(per_minute)),
        }
    }

    /// `Err(wait)` when `client` or `username` may not try now; `wait` is when they may.
    pub fn check(&self, client: Option<IpAddr>, username: &str) -> Result<(), Duration> {
        let by_ip = client.and_then(|ip| self.by_ip.blocked_for(&ip));
        let by_user = self.by_user.blocked_for(&user_key(username));
        match by_ip.max(by_user) {
            Some(wait) => Err(wait),
            None => Ok(()),
        }
    }

    /// Counts a failed login of `username` from `client`.
    pub fn failed(&self, client: Option<IpAddr>, username: &str) {
        if let Some(ip) = client {
            self.by_ip.failed(ip);
        }
        self.by_user.failed(user_key(username));
    }
}

/// User names are counted case-insensitively and cut to a bounded length, so neither case
/// games nor huge names make new keys.
fn user_key(username: &str) -> String {
    username
        .chars()
        .take(150)
        .collect::<String>()
        .to_lowercase()
}

type Limiter<K> =
    RateLimiter<K, DefaultKeyedStateStore<K>, DefaultClock, StateInformationMiddleware>;

/// One dimension (IP or user name): governor's counts and the keys blocked for now.
struct Limit<K: Hash + Eq + Clone> {
    limiter: Limiter<K>,
    blocked: Mutex<Blocked<K>>,
}

impl<K: Hash + Eq + Clone> std::fmt::Debug for Limit<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limit")
            .field("keys", &self.limiter.len())
            .finish()
    }
}

/// Keys whose failures used up their cells, and when the next cell frees.
struct Blocked<K> {
    until: HashMap<K, Instant>,
}

impl<K: Hash + Eq + Clone> Limit<K> {
    fn new(quota: Quota) -> Limit<K> {
        Limit {
            limiter: RateLimiter::keyed(quota).with_middleware::<StateInformationMiddleware>(),
            blocked: Mutex::new(Blocked {
                until: HashMap::new(),
            }),
        }
    }

    fn blocked_for(&self, key: &K) -> Option<Duration> {
        let blocked = self
            .blocked
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        let until = *blocked.until.get(key)?;
        let now = Instant::now();
        (until > now).then(|| until - now)
    }

    fn failed(&self, key: K) {
        let wait = match self.limiter.check_key(&key) {
            // The last cell: blocked until the next one frees.
            Ok(state) if state.remaining_burst_capacity() == 0 => {
                Some(state.quota().replenish_interval())
            }
            Ok(_) => None,
            // Two failures raced past the check: the later one extends nothing further.
            Err(not_until) => Some(not_until.wait_time_from(DefaultClock::default().now())),
        };
        if let Some(wait) = wait {
            let mut blocked = self
                .blocked
                .lock()
                .unwrap_or_else(|poison| poison.into_inner());
            let now = Instant::now();
            blocked.until.retain(|_, until| *until > now);
            blocked.until.insert(key, now + wait);
        }
        if self.limiter.len() > PRUNE_ABOVE {
            self.limiter.retain_recent();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> Option<IpAddr> {
        Some(text.parse().expect("an address"))
    }

    #[test]
    fn the_tenth_failure_blocks_that_ip_and_that_name_only() {
        let limits = LoginLimits::default();
        for _ in 0..FAILURES_PER_MINUTE {
            assert_eq!(limits.check(ip("192.0.2.1"), "alice"), Ok(()));
            limits.failed(ip("192.0.2.1"), "alice");
        }
        let wait = limits
            .check(ip("192.0.2.1"), "bob")
            .expect_err("the IP is blocked");
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_secs(6),
            "{wait:?}"
        );
        assert!(
            limits.check(ip("192.0.2.2"), "ALICE").is_err(),
            "the name is blocked"
        );
        assert_eq!(limits.check(ip("192.0.2.2"), "bob"), Ok(()));
    }

    #[test]
    fn successes_cost_nothing() {
        let limits = LoginLimits::new(1);
        for _ in 0..100 {
            assert_eq!(limits.check(ip("192.0.2.1"), "alice"), Ok(()));
        }
    }
}
