//! `SampledLog`: one log line per interval for something that repeats, with the count since
//! the last line, so a flood of the same failure cannot flood the logs.

use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct SampledLog {
    interval: Duration,
    last_line: Option<Instant>,
    /// Occurrences since the last line, this one included once it is due.
    unlogged: u64,
}

impl SampledLog {
    pub fn new(interval: Duration) -> Self {
        SampledLog {
            interval,
            last_line: None,
            unlogged: 0,
        }
    }

    /// Records one occurrence at `now`. `Some(count)` means a line is due now, reporting
    /// `count` occurrences since the last one; `None` means stay quiet.
    pub fn record(&mut self, now: Instant) -> Option<u64> {
        self.unlogged += 1;
        let due = self
            .last_line
            .is_none_or(|last| now.saturating_duration_since(last) >= self.interval);
        if !due {
            return None;
        }
        self.last_line = Some(now);
        Some(std::mem::take(&mut self.unlogged))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_occurrence_is_logged_then_one_line_per_interval_with_the_count() {
        let start = Instant::now();
        let at = |ms| start + Duration::from_millis(ms);
        let mut log = SampledLog::new(Duration::from_secs(1));
        assert_eq!(log.record(at(0)), Some(1));
        for ms in (50..1000).step_by(50) {
            assert_eq!(log.record(at(ms)), None, "at {ms} ms");
        }
        // 19 quiet ones, then this one.
        assert_eq!(log.record(at(1000)), Some(20));
        assert_eq!(log.record(at(1200)), None);
        assert_eq!(log.record(at(5000)), Some(2));
    }
}
