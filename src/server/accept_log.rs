//! The accept loop's sampled log lines: failures to accept, keyed by error, and connections
//! refused at a cap, keyed by address, each at most one line per key per interval.

use std::{
    fmt, io,
    net::IpAddr,
    time::{Duration, Instant},
};

use crate::log_sample::{Sample, SampledLog};

/// The accept loop's sampled logs, flushed by the loop itself on the same period as the
/// application's: a flood of failures or refusals is one line per key per interval.
pub(super) struct AcceptLogs {
    pub(super) failures: SampledLog<AcceptFailure>,
    /// Keyed by address (an IPv6 /64), so one line per address per interval.
    pub(super) refusals: SampledLog<IpAddr>,
}

impl AcceptLogs {
    pub(super) fn new(interval: Duration) -> Self {
        AcceptLogs {
            failures: SampledLog::new(interval, log_accept_failures),
            refusals: SampledLog::new(interval, log_refused_connections),
        }
    }

    /// Ticks when quiet keys should write their last count.
    pub(super) fn clock(&self) -> tokio::time::Interval {
        // An interval of 0 logs every occurrence at once and leaves nothing to flush.
        let period = self.failures.interval().max(Duration::from_secs(1));
        let mut ticks = tokio::time::interval_at((Instant::now() + period).into(), period);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticks
    }

    pub(super) fn flush_expired(&self, now: Instant) {
        self.failures.flush_expired(now);
        self.refusals.flush_expired(now);
    }

    /// At shutdown: what is still counted is written.
    pub(super) fn flush_all(&self) {
        self.failures.flush_all();
        self.refusals.flush_all();
    }
}

/// What an accept failure is keyed by: the OS error when there is one, as "too many open
/// files" and "out of memory" are both `Uncategorized` kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum AcceptFailure {
    Os(i32),
    Kind(io::ErrorKind),
}

impl AcceptFailure {
    pub(super) fn of(e: &io::Error) -> Self {
        e.raw_os_error()
            .map_or(AcceptFailure::Kind(e.kind()), AcceptFailure::Os)
    }
}

impl fmt::Display for AcceptFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            AcceptFailure::Os(code) => io::Error::from_raw_os_error(code).fmt(f),
            AcceptFailure::Kind(kind) => kind.fmt(f),
        }
    }
}

fn log_accept_failures(error: &AcceptFailure, sample: &Sample) {
    tracing::error!(
        %error,
        failures = sample.count,
        "cannot accept connections; open ones are still served"
    );
}

fn log_refused_connections(client: &IpAddr, sample: &Sample) {
    tracing::warn!(
        %client,
        count = sample.count,
        reasons = %sample,
        "refused connections at a cap"
    );
}
