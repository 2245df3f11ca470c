//! `UploadLimits`: what one user, and everyone together, may upload. Uploads in progress are
//! counted by `Slot`s that give their place back when dropped, however the request ends; the
//! upload rate and the byte quota are token buckets per user.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::{
    chat::limit::{RateLimiter, RatePolicy},
    server::tally::{self, Tally},
};

/// A busy user's own uploads finish within seconds; this is only a hint to come back.
const USER_BUSY_RETRY: Duration = Duration::from_secs(1);
/// When the whole server is busy, spread the retries a little further out.
const SERVER_BUSY_RETRY: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy)]
pub struct UploadPolicy {
    /// Uploads in progress at once, from everyone.
    pub max_total: usize,
    /// Uploads in progress at once for one user.
    pub max_per_user: usize,
    /// Uploads one user may start per minute, which is also the burst.
    pub per_minute: f64,
    /// Bytes one user may upload per hour, refilled continuously.
    pub quota_bytes: u64,
}

/// Why an upload was refused before or while it was read. Each says when to try again.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Refused {
    #[error("you already have {max} uploads in progress: wait for one to finish")]
    UserBusy { max: usize },
    #[error("the server is busy with other uploads: try again in a few seconds")]
    ServerBusy,
    #[error("too many uploads (at most {per_minute} a minute): try again in {} s", secs(*.retry_after))]
    RateLimited {
        per_minute: f64,
        retry_after: Duration,
    },
    #[error("upload quota reached ({} an hour): try again in {} s", size(*.quota), secs(*.retry_after))]
    Quota { quota: u64, retry_after: Duration },
}

impl Refused {
    pub fn retry_after(&self) -> Duration {
        match self {
            Refused::UserBusy { .. } => USER_BUSY_RETRY,
            Refused::ServerBusy => SERVER_BUSY_RETRY,
            Refused::RateLimited { retry_after, .. } | Refused::Quota { retry_after, .. } => {
                *retry_after
            }
        }
    }
}

/// Whole seconds, rounded up: a client that waits this long will find what it needs.
pub fn secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// A byte count as a person would write it: `100 MiB`, `64 KiB`, `1000 bytes`.
fn size(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 20 && b % (1 << 20) == 0 => format!("{} MiB", b >> 20),
        b if b >= 1 << 10 && b % (1 << 10) == 0 => format!("{} KiB", b >> 10),
        b => format!("{b} bytes"),
    }
}

#[derive(Debug)]
pub struct UploadLimits {
    policy: UploadPolicy,
    in_progress: InProgress,
    rate: RateLimiter,
    quota: RateLimiter,
}

impl UploadLimits {
    pub fn new(policy: UploadPolicy) -> Self {
        UploadLimits {
            policy,
            in_progress: InProgress::new(policy.max_total, policy.max_per_user),
            rate: RateLimiter::new(RatePolicy {
                per_second: policy.per_minute / 60.0,
                burst: policy.per_minute.max(1.0),
            }),
            quota: RateLimiter::new(RatePolicy {
                per_second: policy.quota_bytes as f64 / 3600.0,
                burst: policy.quota_bytes as f64,
            }),
        }
    }

    /// Lets `user` start an upload of `declared` bytes (the Content-Length, if sent), or
    /// says why not. Nothing is spent on a refusal: the rate token is taken last.
    pub fn admit(&self, user: u64, declared: Option<u64>, now: Instant) -> Result<Slot, Refused> {
        let slot = self.in_progress.enter(user)?;
        if let Some(bytes) = declared {
            self.quota
                .check(user, bytes as f64, now)
                .map_err(|retry_after| self.over_quota(retry_after))?;
        }
        self.rate
            .try_take(user, 1.0, now)
            .map_err(|retry_after| Refused::RateLimited {
                per_minute: self.policy.per_minute,
                retry_after,
            })?;
        Ok(slot)
    }

    /// Charges bytes as they arrive, so an upload without a Content-Length (or with a false
    /// one) is held to the quota too.
    pub fn charge(&self, user: u64, bytes: usize, now: Instant) -> Result<(), Refused> {
        self.quota
            .try_take(user, bytes as f64, now)
            .map_err(|retry_after| self.over_quota(retry_after))
    }

    fn over_quota(&self, retry_after: Duration) -> Refused {
        Refused::Quota {
            quota: self.policy.quota_bytes,
            retry_after,
        }
    }
}

/// Uploads in progress, counted as the accept loop counts connections: a semaphore for
/// everyone's, a `Tally` for each user's.
#[derive(Debug)]
struct InProgress {
    max_per_user: usize,
    total: Arc<Semaphore>,
    by_user: Tally<u64>,
}

impl InProgress {
    fn new(max_total: usize, max_per_user: usize) -> Self {
        InProgress {
            max_per_user,
            total: Arc::new(Semaphore::new(max_total)),
            by_user: Tally::new(max_per_user),
        }
    }

    fn enter(&self, user: u64) -> Result<Slot, Refused> {
        // The user's own cap first: one user filling the server is told it is their doing.
        let mine = self.by_user.take(user).ok_or(Refused::UserBusy {
            max: self.max_per_user,
        })?;
        let total = self
            .total
            .clone()
            .try_acquire_owned()
            .map_err(|_| Refused::ServerBusy)?;
        Ok(Slot {
            _mine: mine,
            _total: total,
        })
    }
}

/// One upload in progress; dropping it (answered, refused, failed or cancelled) frees its place.
#[derive(Debug)]
pub struct Slot {
    _mine: tally::Slot<u64>,
    _total: OwnedSemaphorePermit,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(max_total: usize, max_per_user: usize) -> UploadLimits {
        UploadLimits::new(UploadPolicy {
            max_total,
            max_per_user,
            per_minute: 100.0,
            quota_bytes: 1 << 30,
        })
    }

    #[test]
    fn a_user_gets_their_own_cap_and_everyone_shares_the_total() {
        let limits = limits(3, 2);
        let now = Instant::now();
        let a1 = limits.admit(1, None, now).unwrap();
        let _a2 = limits.admit(1, None, now).unwrap();
        assert_eq!(
            limits.admit(1, None, now).unwrap_err(),
            Refused::UserBusy { max: 2 }
        );
        let _b1 = limits.admit(2, None, now).unwrap();
        assert_eq!(limits.admit(3, None, now).unwrap_err(), Refused::ServerBusy);
        drop(a1);
        assert!(limits.admit(3, None, now).is_ok(), "a dropped slot is free");
    }

    #[test]
    fn slots_are_given_back_however_many_there_were() {
        let limits = limits(4, 4);
        let now = Instant::now();
        let slots: Vec<_> = (0..4)
            .map(|_| limits.admit(1, None, now).unwrap())
            .collect();
        drop(slots);
        assert_eq!(limits.in_progress.total.available_permits(), 4);
        assert_eq!(
            limits.in_progress.by_user.held(1),
            0,
            "nobody is remembered"
        );
    }

    #[test]
    fn the_rate_is_per_minute_and_says_when_a_token_comes() {
        let limits = UploadLimits::new(UploadPolicy {
            max_total: 10,
            max_per_user: 10,
            per_minute: 2.0,
            quota_bytes: 1 << 30,
        });
        let now = Instant::now();
        let _slots = [
            limits.admit(1, None, now).unwrap(),
            limits.admit(1, None, now).unwrap(),
        ];
        let refused = limits.admit(1, None, now).unwrap_err();
        assert_eq!(secs(refused.retry_after()), 30);
        assert!(refused.to_string().contains("30 s"), "{refused}");
        assert!(limits.admit(2, None, now).is_ok(), "another user's rate");
    }

    #[test]
    fn the_quota_refuses_a_declared_size_up_front_and_charges_what_arrives() {
        let limits = UploadLimits::new(UploadPolicy {
            max_total: 10,
            max_per_user: 10,
            per_minute: 100.0,
            quota_bytes: 3600,
        });
        let now = Instant::now();
        assert!(limits.admit(1, Some(3600), now).is_ok());
        limits.charge(1, 3000, now).unwrap();
        let refused = limits.admit(1, Some(1000), now).unwrap_err();
        assert!(matches!(refused, Refused::Quota { .. }), "{refused:?}");
        assert_eq!(refused.retry_after(), Duration::from_secs(400));
        assert!(limits.charge(1, 601, now).is_err());
        assert!(limits.charge(1, 600, now).is_ok());
        assert!(
            limits.admit(2, Some(3600), now).is_ok(),
            "another user's quota"
        );
    }

    #[test]
    fn the_quota_is_told_in_units_a_person_reads() {
        let refused = Refused::Quota {
            quota: 100 << 20,
            retry_after: Duration::from_millis(1500),
        };
        assert_eq!(
            refused.to_string(),
            "upload quota reached (100 MiB an hour): try again in 2 s"
        );
        assert_eq!(size(8192), "8 KiB");
        assert_eq!(size(1000), "1000 bytes");
    }

    #[test]
    fn retry_seconds_round_up() {
        assert_eq!(secs(Duration::from_millis(1)), 1);
        assert_eq!(secs(Duration::from_secs(30)), 30);
        assert_eq!(secs(Duration::from_millis(30_001)), 31);
    }
}
