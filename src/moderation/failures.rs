//! Failed moderator sign-ins per client address: past `--moderator-auth-failures` a minute,
//! every attempt from that address gets 429 before its token is even looked at, so tokens
//! cannot be guessed at network speed.

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::Mutex,
    time::{Duration, Instant},
};

use crate::{
    chat::limit::{Bucket, RatePolicy},
    routes::client_addr::address_key,
};

/// Addresses remembered at most; past it the ones quiet for a minute (whose buckets are full
/// again) are forgotten.
const MAX_ADDRESSES: usize = 65_536;

#[derive(Debug)]
pub struct AuthFailures {
    policy: RatePolicy,
    buckets: Mutex<HashMap<IpAddr, (Bucket, Instant)>>,
}

impl AuthFailures {
    /// `per_minute` failures, sustained and in a burst.
    pub fn new(per_minute: f64) -> Self {
        AuthFailures {
            policy: RatePolicy {
                per_second: per_minute / 60.0,
                burst: per_minute.max(1.0),
            },
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// `Err(wait)` while this address may not try again.
    pub fn check(&self, client: IpAddr, now: Instant) -> Result<(), Duration> {
        let buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        match buckets.get(&address_key(client)) {
            // A copy: looking must not take a token.
            Some((bucket, _)) => {
                let mut copy = *bucket;
                copy.try_take(self.policy, 1.0, now)
            }
            None => Ok(()),
        }
    }

    /// Counts a failed attempt.
    pub fn fail(&self, client: IpAddr, now: Instant) {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() >= MAX_ADDRESSES {
            buckets.retain(|_, (_, at)| now.duration_since(*at) < Duration::from_secs(60));
        }
        let policy = self.policy;
        let (bucket, at) = buckets
            .entry(address_key(client))
            .or_insert_with(|| (Bucket::full(policy, now), now));
        *at = now;
        let _ = bucket.try_take(policy, 1.0, now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_refused_after_its_failures_and_others_are_not() {
        let failures = AuthFailures::new(3.0);
        let now = Instant::now();
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        for _ in 0..3 {
            assert!(failures.check(a, now).is_ok());
            failures.fail(a, now);
        }
        let wait = failures.check(a, now).unwrap_err();
        assert!(wait > Duration::from_secs(10) && wait <= Duration::from_secs(20));
        assert!(failures.check(b, now).is_ok());
        assert!(failures.check(a, now + Duration::from_secs(20)).is_ok());
    }
}
