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

/// One token bucket. `RateLimiter` keeps one per user; a socket may keep one of its own.
#[derive(Debug, Clone, Copy)]
pub struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    /// A full bucket: the whole burst is allowed at once.
    pub fn full(policy: RatePolicy, now: Instant) -> Self {
        Bucket {
            tokens: policy.burst,
            at: now,
        }
    }

    /// Takes `cost` tokens, or none and says how long until there will be enough.
    pub fn try_take(
        &mut self,
        policy: RatePolicy,
        cost: f64,
        now: Instant,
    ) -> Result<(), Duration> {
        self.refill(policy, now);
        if self.tokens >= cost {
            self.tokens -= cost;
            Ok(())
        } else {
            Err(self.wait_for(policy, cost))
        }
    }

    fn refill(&mut self, policy: RatePolicy, now: Instant) {
        if now <= self.at {
            return;
        }
        let elapsed = (now - self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * policy.per_second).min(policy.burst);
        self.at = now;
    }

    /// How long until the bucket holds `cost` tokens (a full bucket if `cost` is above it).
    fn wait_for(&self, policy: RatePolicy, cost: f64) -> Duration {
        let missing = (cost.min(policy.burst) - self.tokens).max(0.0);
        Duration::try_from_secs_f64(missing / policy.per_second.max(f64::MIN_POSITIVE))
            .unwrap_or(Duration::MAX)
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
        self.try_take(user, 1.0, now).is_ok()
    }

    /// Takes `cost` tokens for `user`, or none and says how long until there will be enough.
    /// A cost above the burst can never pass; its wait is the time to a full bucket.
    pub fn try_take(&self, user: u64, cost: f64, now: Instant) -> Result<(), Duration> {
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
        buckets
            .by_user
            .entry(user)
            .or_insert(Bucket::full(policy, now))
            .try_take(policy, cost, now)
    }

    /// Whether `user` has `cost` tokens now, without taking them; if not, how long until.
    pub fn check(&self, user: u64, cost: f64, now: Instant) -> Result<(), Duration> {
        let policy = self.policy;
        let guard = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        // A copy: taking from it leaves the user's bucket as it was.
        let mut bucket = guard
            .by_user
            .get(&user)
            .copied()
            .unwrap_or(Bucket::full(policy, now));
        bucket.try_take(policy, cost, now)
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
    fn a_cost_takes_that_many_tokens_or_says_how_long_to_wait() {
        let limiter = RateLimiter::new(POLICY);
        let now = Instant::now();
        assert_eq!(limiter.try_take(1, 7.0, now), Ok(()));
        assert_eq!(limiter.check(1, 3.0, now), Ok(()));
        assert_eq!(
            limiter.try_take(1, 5.0, now),
            Err(Duration::from_millis(200)),
            "3 tokens left, 2 more come in 200 ms"
        );
        assert_eq!(
            limiter.try_take(1, 3.0, now),
            Ok(()),
            "a refusal takes nothing"
        );
        assert_eq!(limiter.check(1, 50.0, now), Err(Duration::from_secs(1)));
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
