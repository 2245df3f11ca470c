//! Per-user rate limits: a token bucket each, shared by all of the user's sockets.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

#[derive(Debug, Clone, Copy)]
pub struct RatePolicy {
    /// Tokens added per second: the sustained rate.
    pub per_second: f64,
    /// Bucket size: the burst allowed after a quiet spell.
    pub burst: f64,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn refill(&mut self, policy: RatePolicy, now: Instant) {
        if now <= self.at {
            return;
        }
        let elapsed = (now - self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * policy.per_second).min(policy.burst);
        self.at = now;
    }
}

/// Buckets by user id. A full bucket is the same as a fresh one, so full buckets are pruned
/// and the map only holds users who sent something recently.
#[derive(Debug)]
pub struct RateLimiter {
    policy: RatePolicy,
    buckets: Mutex<Buckets>,
}

#[derive(Debug, Default)]
struct Buckets {
    by_user: HashMap<u64, Bucket>,
    prune_at: usize,
}

impl RateLimiter {
    pub fn new(policy: RatePolicy) -> Self {
        RateLimiter {
            policy,
            buckets: Mutex::new(Buckets {
                by_user: HashMap::new(),
                prune_at: 1024,
            }),
        }
    }

    /// Takes a token for `user`. `false` means over the limit: drop the message.
    pub fn try_acquire(&self, user: u64, now: Instant) -> bool {
        let policy = self.policy;
        let mut guard = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let buckets = &mut *guard;
        if buckets.by_user.len() >= buckets.prune_at {
            buckets.by_user.retain(|_, b| {
                b.refill(policy, now);
                b.tokens < policy.burst
            });
            buckets.prune_at = (buckets.by_user.len() * 2).max(1024);
        }
        let bucket = buckets.by_user.entry(user).or_insert(Bucket {
            tokens: policy.burst,
            at: now,
        });
        bucket.refill(policy, now);
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// How long until `user` may send again; used in the error text.
    pub fn retry_after(&self) -> Duration {
        Duration::from_secs_f64(1.0 / self.policy.per_second.max(f64::MIN_POSITIVE))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: RatePolicy = RatePolicy {
        per_second: 10.0,
        burst: 10.0,
    };

    #[test]
    fn a_burst_passes_then_the_excess_is_refused() {
        let limiter = RateLimiter::new(POLICY);
        let now = Instant::now();
        let passed = (0..25).filter(|_| limiter.try_acquire(1, now)).count();
        assert_eq!(passed, 10);
    }

    #[test]
    fn tokens_come_back_at_the_sustained_rate() {
        let limiter = RateLimiter::new(POLICY);
        let start = Instant::now();
        (0..10).for_each(|_| assert!(limiter.try_acquire(1, start)));
        assert!(!limiter.try_acquire(1, start));
        let later = start + Duration::from_millis(300);
        let passed = (0..10).filter(|_| limiter.try_acquire(1, later)).count();
        assert_eq!(passed, 3);
    }

    #[test]
    fn users_have_their_own_buckets() {
        let limiter = RateLimiter::new(POLICY);
        let now = Instant::now();
        (0..10).for_each(|_| assert!(limiter.try_acquire(1, now)));
        assert!(!limiter.try_acquire(1, now));
        assert!(limiter.try_acquire(2, now));
    }

    #[test]
    fn idle_users_are_pruned_without_forgetting_busy_ones() {
        let limiter = RateLimiter::new(POLICY);
        let now = Instant::now();
        for user in 1..1024 {
            assert!(limiter.try_acquire(user, now - Duration::from_secs(5)));
        }
        (0..10).for_each(|_| assert!(limiter.try_acquire(0, now)));
        assert!(limiter.try_acquire(1024, now), "this call prunes");
        assert!(limiter.buckets.lock().unwrap().by_user.len() <= 2);
        assert!(
            !limiter.try_acquire(0, now),
            "the busy user kept an empty bucket"
        );
    }
}
