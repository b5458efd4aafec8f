//! The per-connection chat rate limit: a token bucket (GCRA, the same algorithm as the
//! `governor` crate) kept inside the connection's own state.
//!
//! Written by hand rather than with `governor`: a connection's frames are handled one at a
//! time by its own task, so the bucket needs no keyed store, no shared clock and no lock, just
//! one "theoretical arrival time" per connection (two atomics, because the channel state must
//! be `Sync`; only the connection's own task ever writes them). That is a dozen lines against
//! a new dependency tree. The login limits (per IP and per user, shared by every connection)
//! are another matter and use `governor`; once it is in the tree, this bucket can become its
//! `RateLimiter::direct` (the same GCRA, also one atomic) with the drop counter kept here.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How fast one chat connection may send, and when it counts as abuse.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChatLimit {
    /// Messages per second, sustained.
    pub per_second: f64,
    /// Messages that may be sent at once after a pause.
    pub burst: u32,
    /// Messages dropped with none delivered in between before the connection is closed with
    /// 1008; 0 never closes.
    pub abuse_after: u32,
}

impl Default for ChatLimit {
    fn default() -> ChatLimit {
        ChatLimit {
            per_second: 10.0,
            burst: 20,
            abuse_after: 50,
        }
    }
}

/// What the limit says about one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Deliver it.
    Allowed,
    /// Drop it; `first` when it is the first one dropped since the last delivered message
    /// (the client is told once per run, so a flood is not answered frame for frame).
    Dropped { first: bool },
    /// Drop it and close the connection: the client keeps sending while limited.
    Abuse,
}

/// One connection's bucket.
#[derive(Debug)]
pub struct Bucket {
    limit: ChatLimit,
    start: Instant,
    /// GCRA's theoretical arrival time, in nanoseconds after `start`.
    tat: AtomicU64,
    /// Messages dropped since the last delivered one.
    dropped: AtomicU32,
}

impl Bucket {
    pub fn new(limit: ChatLimit) -> Bucket {
        Bucket {
            limit,
            start: Instant::now(),
            tat: AtomicU64::new(0),
            dropped: AtomicU32::new(0),
        }
    }

    /// The verdict on a message arriving now.
    pub fn check(&self) -> Verdict {
        self.check_at(Instant::now())
    }

    fn check_at(&self, now: Instant) -> Verdict {
        // A rate of 0 or less (or not a number) turns the limit off.
        if self.limit.per_second.is_nan() || self.limit.per_second <= 0.0 {
            return Verdict::Allowed;
        }
        let nanos = |duration: Duration| u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX);
        // A rate so small that its interval overflows a Duration: one message, then none.
        let interval = nanos(
            Duration::try_from_secs_f64(1.0 / self.limit.per_second).unwrap_or(Duration::MAX),
        );
        let tolerance = interval.saturating_mul(u64::from(self.limit.burst.max(1) - 1));
        let now = nanos(now.saturating_duration_since(self.start));
        let tat = self.tat.load(Ordering::Relaxed).max(now);
        if tat - now <= tolerance {
            self.tat
                .store(tat.saturating_add(interval), Ordering::Relaxed);
            self.dropped.store(0, Ordering::Relaxed);
            return Verdict::Allowed;
        }
        let dropped = self.dropped.load(Ordering::Relaxed).saturating_add(1);
        self.dropped.store(dropped, Ordering::Relaxed);
        if self.limit.abuse_after > 0 && dropped >= self.limit.abuse_after {
            Verdict::Abuse
        } else {
            Verdict::Dropped {
                first: dropped == 1,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bucket(per_second: f64, burst: u32, abuse_after: u32) -> Bucket {
        Bucket::new(ChatLimit {
            per_second,
            burst,
            abuse_after,
        })
    }

    #[test]
    fn a_burst_passes_then_the_rate_holds() {
        let bucket = bucket(10.0, 3, 0);
        let t = bucket.start;
        for _ in 0..3 {
            assert_eq!(bucket.check_at(t), Verdict::Allowed);
        }
        assert_eq!(bucket.check_at(t), Verdict::Dropped { first: true });
        assert_eq!(bucket.check_at(t), Verdict::Dropped { first: false });
        // One message per 100 ms comes back.
        assert_eq!(
            bucket.check_at(t + Duration::from_millis(100)),
            Verdict::Allowed
        );
        assert_eq!(
            bucket.check_at(t + Duration::from_millis(110)),
            Verdict::Dropped { first: true }
        );
        // After a pause the whole burst is back, no more.
        let later = t + Duration::from_secs(10);
        for _ in 0..3 {
            assert_eq!(bucket.check_at(later), Verdict::Allowed);
        }
        assert_eq!(bucket.check_at(later), Verdict::Dropped { first: true });
    }

    #[test]
    fn sending_on_while_limited_is_abuse() {
        let bucket = bucket(1.0, 1, 3);
        let t = bucket.start;
        assert_eq!(bucket.check_at(t), Verdict::Allowed);
        assert_eq!(bucket.check_at(t), Verdict::Dropped { first: true });
        assert_eq!(bucket.check_at(t), Verdict::Dropped { first: false });
        assert_eq!(bucket.check_at(t), Verdict::Abuse);
    }

    #[test]
    fn a_delivered_message_resets_the_abuse_count() {
        let bucket = bucket(1.0, 1, 3);
        let t = bucket.start;
        assert_eq!(bucket.check_at(t), Verdict::Allowed);
        assert_eq!(bucket.check_at(t), Verdict::Dropped { first: true });
        assert_eq!(bucket.check_at(t), Verdict::Dropped { first: false });
        assert_eq!(
            bucket.check_at(t + Duration::from_secs(1)),
            Verdict::Allowed
        );
        assert_eq!(
            bucket.check_at(t + Duration::from_secs(1)),
            Verdict::Dropped { first: true }
        );
    }

    #[test]
    fn a_rate_of_zero_turns_the_limit_off() {
        let bucket = bucket(0.0, 1, 1);
        for _ in 0..100 {
            assert_eq!(bucket.check(), Verdict::Allowed);
        }
    }
}
