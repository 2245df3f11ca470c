//! Slow readers that never overflow the outbox, noticed once per ping interval: writes that
//! make no progress, and bytes that wait longer than `--write-timeout` to be written.

use std::time::{Duration, Instant};

/// Why a socket is too slow to keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Slow {
    /// Two ticks in a row without a byte written: the client stopped reading.
    Stalled,
    /// Bytes queued at a tick were still not all written `--write-timeout` later: the client
    /// reads, but slower than we queue (a trickle that would otherwise hold its backlog, and a
    /// catch-up frame, forever).
    FellBehind,
}

/// What this socket's writes did at the ticks so far.
#[derive(Debug, Default)]
pub(super) struct Watch {
    /// Ticks in a row at which queued bytes made no progress.
    stalled_ticks: u32,
    written_at_tick: u64,
    backlog: Option<Backlog>,
}

/// Bytes that were waiting at a tick: they are written once `written` reaches `through`, as
/// the queue is first in, first out.
#[derive(Debug, Clone, Copy)]
struct Backlog {
    through: u64,
    since: Instant,
}

impl Watch {
    /// `written`: bytes the socket has written so far; `queued`: bytes waiting for it, in its
    /// own queue and its outbox.
    pub(super) fn tick(
        &mut self,
        now: Instant,
        written: u64,
        queued: u64,
        timeout: Duration,
    ) -> Option<Slow> {
        if queued > 0 && written == self.written_at_tick {
            self.stalled_ticks += 1;
            if self.stalled_ticks >= 2 {
                return Some(Slow::Stalled);
            }
        } else {
            self.stalled_ticks = 0;
        }
        self.written_at_tick = written;
        if let Some(backlog) = self.backlog {
            if written >= backlog.through {
                self.backlog = None;
            } else if now.duration_since(backlog.since) >= timeout {
                return Some(Slow::FellBehind);
            }
        }
        if self.backlog.is_none() && queued > 0 {
            self.backlog = Some(Backlog {
                through: written.saturating_add(queued),
                since: now,
            });
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMEOUT: Duration = Duration::from_secs(10);
    const TICK: Duration = Duration::from_secs(4);

    /// Ticks every `TICK`: each step is (bytes written since the last tick, bytes queued now).
    fn run(steps: &[(u64, u64)]) -> Option<(usize, Slow)> {
        let mut watch = Watch::default();
        let start = Instant::now();
        let mut written = 0;
        for (n, &(wrote, queued)) in steps.iter().enumerate() {
            written += wrote;
            let now = start + TICK * n as u32;
            if let Some(slow) = watch.tick(now, written, queued, TIMEOUT) {
                return Some((n, slow));
            }
        }
        None
    }

    #[test]
    fn a_reader_that_drains_its_backlog_in_time_stays_however_long_it_lasts() {
        // 100 KB queued at every tick, each written by the next: always behind, never late.
        assert_eq!(run(&[(100_000, 100_000); 50]), None);
    }

    #[test]
    fn a_reader_that_trickles_behind_a_growing_backlog_is_closed_after_the_timeout() {
        // Writes progress at every tick, so it never stalls, but the first 1 MB takes too long.
        let steps: Vec<_> = (0..10).map(|n| (50_000, 1_000_000 + n * 10_000)).collect();
        assert_eq!(run(&steps), Some((3, Slow::FellBehind)));
    }

    #[test]
    fn a_reader_that_writes_nothing_is_closed_at_its_second_stalled_tick() {
        assert_eq!(run(&[(10, 10), (0, 10), (0, 10)]), Some((2, Slow::Stalled)));
    }

    #[test]
    fn an_idle_socket_is_never_slow() {
        assert_eq!(run(&[(0, 0); 20]), None);
    }
}
