//! `Refusals`: what refused messages cost one socket, and which `error`s it was already sent.
//!
//! A refused message is cheap to send and not free to answer, so each socket has a budget of
//! `--max-refused` per minute, a token bucket refilled at that rate; past it the socket is
//! closed with 1008. Within the budget a flood of one refused message gets its `error` once per
//! `ERROR_WINDOW`: the client learns why, and is not sent one error per frame. A different
//! message is answered at once, so a client that tries one thing after another hears each.

use std::{
    hash::{DefaultHasher, Hash, Hasher},
    net::IpAddr,
    time::{Duration, Instant},
};

use super::limit::{Bucket, RatePolicy};
use crate::{
    log_sample::{Sample, SampledLog},
    metrics::{Metrics, Reject},
};

/// The reason of the 1008 close.
pub const TOO_MANY_REFUSED: &str = "too many refused messages";

/// A person resending a refused message gets the error again; a burst of them gets it once.
pub const ERROR_WINDOW: Duration = Duration::from_secs(1);

/// What to do with one more refused message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Tell the client why.
    Answer,
    /// It was told why moments ago, or is told elsewhere.
    Quiet,
    /// Over the budget: close the socket.
    Close,
}

#[derive(Debug)]
pub struct Refusals {
    policy: RatePolicy,
    budget: Bucket,
    /// The last refused input answered, as a hash, and when.
    told: Option<(u64, Instant)>,
}

impl Refusals {
    pub fn new(max_per_minute: u32, now: Instant) -> Self {
        let per_minute = f64::from(max_per_minute);
        let policy = RatePolicy {
            per_second: per_minute / 60.0,
            burst: per_minute,
        };
        Refusals {
            policy,
            budget: Bucket::full(policy, now),
            told: None,
        }
    }

    /// Counts a refused message everywhere: its metric, the sampled line of `who` (the user
    /// and their address) in `log`, and this socket's budget, whose end is counted too.
    /// `input` is what was refused, `None` if the client is told elsewhere.
    pub fn count(
        &mut self,
        metrics: &Metrics,
        log: &SampledLog<(u64, IpAddr)>,
        who: (u64, IpAddr),
        reason: Reject,
        input: Option<&str>,
        now: Instant,
    ) -> Verdict {
        metrics.reject(reason);
        log.record(who, reason.label(), now);
        let verdict = self.refuse(input, now);
        if verdict == Verdict::Close {
            metrics.reject(Reject::TooManyRefused);
        }
        verdict
    }

    /// Charges one refused message to the budget, and says whether to send its `error`.
    fn refuse(&mut self, input: Option<&str>, now: Instant) -> Verdict {
        if self.budget.try_take(self.policy, 1.0, now).is_err() {
            return Verdict::Close;
        }
        let Some(input) = input else {
            return Verdict::Quiet;
        };
        let mut hasher = DefaultHasher::new();
        input.hash(&mut hasher);
        let hash = hasher.finish();
        if let Some((told, at)) = self.told
            && told == hash
            && now.saturating_duration_since(at) < ERROR_WINDOW
        {
            return Verdict::Quiet;
        }
        self.told = Some((hash, now));
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
    const BAD: Option<&str> = Some(r#"{"type":"nope"}"#);

    #[test]
    fn the_budget_is_spent_then_the_socket_is_closed() {
        let now = Instant::now();
        let mut r = Refusals::new(5, now);
        for _ in 0..5 {
            assert_ne!(r.refuse(BAD, now), Verdict::Close);
        }
        assert_eq!(r.refuse(BAD, now), Verdict::Close);
        assert_eq!(r.refuse(Some("something else"), now), Verdict::Close);
        assert_eq!(r.refuse(None, now), Verdict::Close);
    }

    #[test]
    fn the_budget_refills_per_minute() {
        let start = Instant::now();
        let mut r = Refusals::new(6, start);
        (0..6).for_each(|_| assert_ne!(r.refuse(None, start), Verdict::Close));
        // One token every ten seconds.
        let later = start + 10 * SECOND;
        assert_ne!(r.refuse(None, later), Verdict::Close);
        assert_eq!(r.refuse(None, later), Verdict::Close);
    }

    #[test]
    fn zero_closes_at_the_first_refusal() {
        let now = Instant::now();
        assert_eq!(Refusals::new(0, now).refuse(BAD, now), Verdict::Close);
    }

    #[test]
    fn the_same_input_is_answered_once_per_window_and_another_at_once() {
        let start = Instant::now();
        let mut r = Refusals::new(100, start);
        assert_eq!(r.refuse(BAD, start), Verdict::Answer);
        assert_eq!(r.refuse(BAD, start), Verdict::Quiet);
        assert_eq!(r.refuse(BAD, start + SECOND / 2), Verdict::Quiet);
        assert_eq!(r.refuse(BAD, start + SECOND), Verdict::Answer);
        assert_eq!(r.refuse(Some("too long"), start + SECOND), Verdict::Answer);
        assert_eq!(r.refuse(BAD, start + SECOND), Verdict::Answer);
        assert_eq!(
            r.refuse(None, start + SECOND),
            Verdict::Quiet,
            "answered elsewhere"
        );
    }
}
