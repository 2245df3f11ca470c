//! `Refusals`: what refused messages cost one socket, and which `error`s it was already sent.
//!
//! A refused message is cheap to send and not free to answer, so each socket has a budget of
//! `--max-refused` per minute, a token bucket refilled at that rate; past it the socket is
//! closed with 1008. Within the budget a flood of the same mistake gets its `error` once per
//! `ERROR_WINDOW`: the client learns why, and is not sent one error per frame.

use std::{
    net::IpAddr,
    time::{Duration, Instant},
};

use super::connection::Shared;
use crate::{log_sample::Sample, metrics::Reject};

/// The reason of the 1008 close.
pub const TOO_MANY_REFUSED: &str = "too many refused messages";

/// A person retyping a refused message gets the error again; a burst of them gets it once.
pub const ERROR_WINDOW: Duration = Duration::from_secs(1);

/// What to do with one more refused message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Tell the client why.
    Answer,
    /// It was told why moments ago.
    Quiet,
    /// Over the budget: close the socket.
    Close,
}

#[derive(Debug)]
pub struct Refusals {
    capacity: f64,
    tokens: f64,
    refilled_at: Instant,
    /// Reasons already answered in the current error window, one bit per `Reject`.
    told: u32,
    told_since: Instant,
}

impl Refusals {
    pub fn new(max_per_minute: u32, now: Instant) -> Self {
        let capacity = f64::from(max_per_minute);
        Refusals {
            capacity,
            tokens: capacity,
            refilled_at: now,
            told: 0,
            told_since: now,
        }
    }

    /// Counts a refused message everywhere: its metric, the sampled log line of `who` (the
    /// user and their address), and this socket's budget, whose end is counted too.
    pub fn count(
        &mut self,
        shared: &Shared,
        who: (u64, IpAddr),
        reason: Reject,
        now: Instant,
    ) -> Verdict {
        shared.metrics.reject(reason);
        shared.refusal_log.record(who, reason.label(), now);
        let verdict = self.refuse(reason, now);
        if verdict == Verdict::Close {
            shared.metrics.reject(Reject::TooManyRefused);
        }
        verdict
    }

    /// Charges one refused message for `reason` to the budget.
    fn refuse(&mut self, reason: Reject, now: Instant) -> Verdict {
        let elapsed = now
            .saturating_duration_since(self.refilled_at)
            .as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.capacity / 60.0).min(self.capacity);
        self.refilled_at = now;
        if self.tokens < 1.0 {
            return Verdict::Close;
        }
        self.tokens -= 1.0;
        if now.saturating_duration_since(self.told_since) >= ERROR_WINDOW {
            self.told = 0;
            self.told_since = now;
        }
        let bit = 1 << reason as u32;
        if self.told & bit != 0 {
            return Verdict::Quiet;
        }
        self.told |= bit;
        Verdict::Answer
    }
}

/// The sampled line for one user's refused messages: how many, and why.
pub fn log_refusals(&(user, client): &(u64, IpAddr), sample: &Sample) {
    tracing::info!(
        user,
        %client,
        count = sample.count,
        reasons = %sample,
        "rejected"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn the_budget_is_spent_then_the_socket_is_closed() {
        let now = Instant::now();
        let mut r = Refusals::new(5, now);
        for _ in 0..5 {
            assert_ne!(r.refuse(Reject::BadCommand, now), Verdict::Close);
        }
        assert_eq!(r.refuse(Reject::BadCommand, now), Verdict::Close);
        assert_eq!(r.refuse(Reject::TooLong, now), Verdict::Close);
    }

    #[test]
    fn the_budget_refills_per_minute() {
        let start = Instant::now();
        let mut r = Refusals::new(6, start);
        (0..6).for_each(|_| assert_ne!(r.refuse(Reject::TooLong, start), Verdict::Close));
        // One token every ten seconds.
        let later = start + 10 * SECOND;
        assert_ne!(r.refuse(Reject::TooLong, later), Verdict::Close);
        assert_eq!(r.refuse(Reject::TooLong, later), Verdict::Close);
    }

    #[test]
    fn zero_closes_at_the_first_refusal() {
        let now = Instant::now();
        assert_eq!(
            Refusals::new(0, now).refuse(Reject::BadImage, now),
            Verdict::Close
        );
    }

    #[test]
    fn each_reason_is_answered_once_per_window() {
        let start = Instant::now();
        let mut r = Refusals::new(100, start);
        assert_eq!(r.refuse(Reject::BadCommand, start), Verdict::Answer);
        assert_eq!(r.refuse(Reject::BadCommand, start), Verdict::Quiet);
        assert_eq!(r.refuse(Reject::TooLong, start), Verdict::Answer);
        assert_eq!(
            r.refuse(Reject::BadCommand, start + SECOND / 2),
            Verdict::Quiet
        );
        assert_eq!(
            r.refuse(Reject::BadCommand, start + SECOND),
            Verdict::Answer
        );
        assert_eq!(r.refuse(Reject::TooLong, start + SECOND), Verdict::Answer);
    }
}
