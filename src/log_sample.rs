//! `SampledLog`: at most one log line per key per interval, carrying the count since the last.
//!
//! Anything a client can make happen a million times (a refused message, a failed accept) must
//! not write a million lines. The first occurrence for a key is written at once, so the log
//! still shows when something starts; later ones are counted, with their reasons, and written
//! as one line when the interval has passed. `flush_expired`, called on a clock, writes what
//! a quiet key still holds and forgets it, so the map only holds keys active lately.

use std::{
    collections::HashMap,
    fmt,
    hash::Hash,
    sync::Mutex,
    time::{Duration, Instant},
};

/// What one line reports: how many occurrences, and of which reasons, since the last line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sample {
    pub count: u64,
    /// Each reason with its count, in the order first seen.
    pub reasons: Vec<(&'static str, u64)>,
}

impl Sample {
    fn add(&mut self, reason: &'static str) {
        self.count += 1;
        match self.reasons.iter_mut().find(|(r, _)| *r == reason) {
            Some((_, n)) => *n += 1,
            None => self.reasons.push((reason, 1)),
        }
    }
}

/// `too_long=3,bad_command=1`, for a `reasons` field.
impl fmt::Display for Sample {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (reason, n)) in self.reasons.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{reason}={n}")?;
        }
        Ok(())
    }
}

/// Writes a line: the caller's own `tracing` call, so the line keeps its target and fields.
pub type Emit<K> = fn(&K, &Sample);

#[derive(Debug)]
pub struct SampledLog<K> {
    interval: Duration,
    emit: Emit<K>,
    keys: Mutex<Keys<K>>,
}

#[derive(Debug)]
struct Keys<K> {
    by_key: HashMap<K, Entry>,
    /// `record` sweeps expired keys when the map reaches this size, so a flood of new keys
    /// between two clock ticks cannot grow it without bound.
    sweep_at: usize,
}

#[derive(Debug)]
struct Entry {
    last_line: Instant,
    /// The latest occurrence: a key is quiet, and forgotten, an interval after it.
    last_seen: Instant,
    /// Counted since `last_line`, not yet written.
    pending: Sample,
}

const MIN_SWEEP_AT: usize = 1024;

impl<K: Hash + Eq + Clone> SampledLog<K> {
    pub fn new(interval: Duration, emit: Emit<K>) -> Self {
        SampledLog {
            interval,
            emit,
            keys: Mutex::new(Keys {
                by_key: HashMap::new(),
                sweep_at: MIN_SWEEP_AT,
            }),
        }
    }

    /// Counts one occurrence of `reason` for `key`, and writes a line if it is the key's first
    /// or the interval has passed since its last. Returns whether a line was written.
    pub fn record(&self, key: K, reason: &'static str, now: Instant) -> bool {
        let mut lines = Vec::new();
        {
            let mut keys = self.lock();
            if keys.by_key.len() >= keys.sweep_at {
                self.sweep(&mut keys, Some(now), &mut lines);
                keys.sweep_at = (keys.by_key.len() * 2).max(MIN_SWEEP_AT);
            }
            match keys.by_key.get_mut(&key) {
                None => {
                    let mut first = Sample::default();
                    first.add(reason);
                    lines.push((key.clone(), first));
                    let entry = Entry {
                        last_line: now,
                        last_seen: now,
                        pending: Sample::default(),
                    };
                    keys.by_key.insert(key, entry);
                }
                Some(entry) => {
                    entry.last_seen = now;
                    entry.pending.add(reason);
                    if now.saturating_duration_since(entry.last_line) >= self.interval {
                        entry.last_line = now;
                        lines.push((key, std::mem::take(&mut entry.pending)));
                    }
                }
            }
        }
        let wrote = lines.iter().any(|(_, s)| s.count > 0);
        self.write(lines);
        wrote
    }

    /// Writes what keys quiet for a whole interval still hold, and forgets them. Call it on a
    /// clock, so a flood's last count is written even if nothing follows it.
    pub fn flush_expired(&self, now: Instant) {
        let mut lines = Vec::new();
        {
            let mut keys = self.lock();
            self.sweep(&mut keys, Some(now), &mut lines);
        }
        self.write(lines);
    }

    /// Writes everything still pending and forgets every key: at shutdown.
    pub fn flush_all(&self) {
        let mut lines = Vec::new();
        {
            let mut keys = self.lock();
            self.sweep(&mut keys, None, &mut lines);
        }
        self.write(lines);
    }

    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// Keys being counted now.
    pub fn len(&self) -> usize {
        self.lock().by_key.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Writes what a key has counted once its interval is up, and forgets the keys quiet for
    /// an interval by `now` (every key if `None`). A key that is still busy keeps its place,
    /// so its next occurrence is counted, not written again as a first.
    fn sweep(&self, keys: &mut Keys<K>, now: Option<Instant>, lines: &mut Vec<(K, Sample)>) {
        keys.by_key.retain(|key, entry| {
            let (due, quiet) = match now {
                Some(now) => (
                    now.saturating_duration_since(entry.last_line) >= self.interval,
                    now.saturating_duration_since(entry.last_seen) >= self.interval,
                ),
                None => (true, true),
            };
            if (due || quiet) && entry.pending.count > 0 {
                lines.push((key.clone(), std::mem::take(&mut entry.pending)));
                if let Some(now) = now {
                    entry.last_line = now;
                }
            }
            !quiet
        });
    }

    /// Outside the lock: a slow log writer must not hold up other keys' counting.
    fn write(&self, lines: Vec<(K, Sample)>) {
        for (key, sample) in lines.iter().filter(|(_, s)| s.count > 0) {
            (self.emit)(key, sample);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Keys<K>> {
        self.keys.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::cell::RefCell;

    thread_local! {
        static LINES: RefCell<Vec<(u64, Sample)>> = const { RefCell::new(Vec::new()) };
    }

    fn capture(key: &u64, sample: &Sample) {
        LINES.with(|l| l.borrow_mut().push((*key, sample.clone())));
    }

    fn lines() -> Vec<(u64, Sample)> {
        LINES.with(|l| std::mem::take(&mut *l.borrow_mut()))
    }

    const SECOND: Duration = Duration::from_secs(1);

    fn log() -> SampledLog<u64> {
        SampledLog::new(10 * SECOND, capture)
    }

    #[test]
    fn the_first_occurrence_is_written_at_once_then_one_line_per_interval() {
        let log = log();
        let start = Instant::now();
        assert!(log.record(7, "too_long", start));
        assert_eq!(
            lines(),
            [(
                7,
                Sample {
                    count: 1,
                    reasons: vec![("too_long", 1)]
                }
            )]
        );
        for n in 0..1000 {
            assert!(!log.record(
                7,
                if n % 4 == 0 {
                    "too_long"
                } else {
                    "bad_command"
                },
                start + SECOND
            ));
        }
        assert!(
            lines().is_empty(),
            "a flood within the interval writes nothing"
        );
        assert!(log.record(7, "bad_command", start + 10 * SECOND));
        let written = lines();
        assert_eq!(written.len(), 1);
        assert_eq!(written[0].1.count, 1001);
        assert_eq!(written[0].1.to_string(), "too_long=250,bad_command=751");
    }

    #[test]
    fn a_busy_key_flushed_on_a_clock_writes_one_line_per_interval_and_no_new_first() {
        let log = log();
        let start = Instant::now();
        // An occurrence every 100 ms for 35 s, and the clock's flush every second.
        for tenth in 0..350u32 {
            let now = start + SECOND * tenth / 10;
            log.record(3, "x", now);
            if tenth % 10 == 0 {
                log.flush_expired(now);
            }
        }
        let written = lines();
        assert_eq!(written.len(), 4, "at 0, 10, 20 and 30 s: {written:?}");
        assert_eq!(written.iter().map(|(_, s)| s.count).sum::<u64>(), 301);
    }

    #[test]
    fn keys_are_sampled_apart() {
        let log = log();
        let now = Instant::now();
        assert!(log.record(1, "x", now));
        assert!(log.record(2, "x", now));
        assert!(!log.record(1, "x", now));
        assert_eq!(lines().len(), 2);
    }

    #[test]
    fn a_quiet_key_writes_its_last_count_and_is_forgotten() {
        let log = log();
        let start = Instant::now();
        log.record(1, "x", start);
        log.record(1, "x", start);
        log.record(1, "x", start + SECOND);
        log.record(2, "y", start + 5 * SECOND);
        lines();
        log.flush_expired(start + 9 * SECOND);
        assert!(
            lines().is_empty(),
            "nothing has been quiet for an interval yet"
        );
        log.flush_expired(start + 10 * SECOND);
        assert_eq!(
            lines(),
            [(
                1,
                Sample {
                    count: 2,
                    reasons: vec![("x", 2)]
                }
            )]
        );
        assert_eq!(
            log.len(),
            2,
            "key 1 wrote its count when its interval was up, but was seen 9 s ago"
        );
        log.flush_expired(start + 15 * SECOND);
        assert!(lines().is_empty(), "key 2 had nothing pending");
        assert!(log.is_empty());
    }

    #[test]
    fn at_shutdown_everything_pending_is_written() {
        let log = log();
        let now = Instant::now();
        log.record(1, "x", now);
        log.record(1, "x", now);
        log.record(2, "y", now);
        lines();
        log.flush_all();
        assert_eq!(
            lines(),
            [(
                1,
                Sample {
                    count: 1,
                    reasons: vec![("x", 1)]
                }
            )]
        );
        assert!(log.is_empty());
    }

    #[test]
    fn a_flood_of_new_keys_sweeps_the_expired_ones() {
        let log = log();
        let start = Instant::now();
        for key in 0..MIN_SWEEP_AT as u64 {
            log.record(key, "x", start);
        }
        let later = start + 10 * SECOND;
        for key in 0..5000u64 {
            log.record(1_000_000 + key, "x", later);
        }
        assert_eq!(log.len(), 5000, "the old keys were swept");
        lines();
    }
}
