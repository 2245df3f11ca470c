//! `SocketOpens`: how often one user and one client address may open a WebSocket.
//!
//! Each open costs a task, a hub attach and, for a user's first socket, a `join` and later a
//! `left`: a loop of opens and closes would cost everyone. Checked before the upgrade, so
//! a refusal is a plain 429 with `Retry-After` and costs us nothing more.

use std::{
    hash::{Hash, Hasher},
    net::IpAddr,
    time::{Duration, Instant},
};

use super::client_addr;
use crate::chat::limit::{RateLimiter, RatePolicy};

#[derive(Debug)]
pub struct SocketOpens {
    by_user: RateLimiter,
    by_address: RateLimiter,
}

impl SocketOpens {
    pub fn new(per_user: RatePolicy, per_address: RatePolicy) -> Self {
        SocketOpens {
            by_user: RateLimiter::new(per_user),
            by_address: RateLimiter::new(per_address),
        }
    }

    /// Counts one open by `user` (if signed in) from `client`, or none if either is over its
    /// rate, and then says how long until both have room.
    pub fn try_open(
        &self,
        user: Option<u64>,
        client: IpAddr,
        now: Instant,
    ) -> Result<(), Duration> {
        let address = address_key(client);
        let user_wait = user.map_or(Ok(()), |id| self.by_user.check(id, 1.0, now));
        let address_wait = self.by_address.check(address, 1.0, now);
        match (user_wait, address_wait) {
            (Ok(()), Ok(())) => {
                // Checked first so a refusal by one bucket takes nothing from the other.
                if let Some(id) = user {
                    self.by_user.try_take(id, 1.0, now)?;
                }
                self.by_address.try_take(address, 1.0, now)
            }
            (Err(a), Err(b)) => Err(a.max(b)),
            (Err(wait), _) | (_, Err(wait)) => Err(wait),
        }
    }
}

/// The address bucket's key: an IPv4 address or an IPv6 /64, hashed to the limiter's key.
fn address_key(client: IpAddr) -> u64 {
    let mut hasher = std::hash::DefaultHasher::new();
    client_addr::address_key(client).hash(&mut hasher);
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: RatePolicy = RatePolicy {
        per_second: 1.0,
        burst: 2.0,
    };

    #[test]
    fn a_user_and_an_address_each_have_a_burst() {
        let opens = SocketOpens::new(POLICY, POLICY);
        let now = Instant::now();
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        assert!(opens.try_open(Some(1), a, now).is_ok());
        assert!(opens.try_open(Some(1), a, now).is_ok());
        assert!(opens.try_open(Some(1), b, now).is_err(), "the user is out");
        assert!(
            opens.try_open(Some(2), a, now).is_err(),
            "the address is out"
        );
        assert!(opens.try_open(Some(2), b, now).is_ok(), "others are not");
        assert!(opens.try_open(None, b, now).is_ok());
        let wait = opens.try_open(None, b, now).unwrap_err();
        assert!(wait <= Duration::from_secs(1), "{wait:?}");
    }
}
