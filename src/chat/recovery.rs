//! What a connecting socket is owed from history: one rule, whichever engine keeps it.

use serde_json::value::RawValue;

/// Which stored events go into a socket's `history` event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Catchup {
    /// Events with a greater id...
    pub after: u64,
    /// ...the newest this many of them...
    pub limit: usize,
    /// ...and whether the client asked for more than that: it must rebuild its view.
    pub truncated: bool,
}

/// How much history a socket gets.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct HistoryPolicy {
    /// Events a newcomer (no `since`) gets, and what a truncated recovery falls back to.
    pub on_join: usize,
    /// The most a recovery sends: the retention, since more than that is never kept.
    pub max: usize,
    /// The most bytes of events one `history` carries, so that it fits its socket's outbox
    /// (see `outbox::history_budget`).
    pub max_bytes: usize,
}

/// Keeps the newest events, oldest first, whose JSON fits in `max_bytes`; true if older
/// ones had to go, which makes the `history` truncated: the client rebuilds from what fits.
pub fn keep_newest(events: &mut Vec<Box<RawValue>>, max_bytes: usize) -> bool {
    let mut total = 0usize;
    let mut first_kept = events.len();
    for (i, event) in events.iter().enumerate().rev() {
        // The comma between events.
        total = total.saturating_add(event.get().len() + 1);
        if total > max_bytes {
            break;
        }
        first_kept = i;
    }
    events.drain(..first_kept);
    first_kept > 0
}

/// `since` is the last id the client saw, if it said; `last_id` the room's last id before
/// this socket joined; `pruned_through` the newest id retention deleted.
///
/// A `since` ahead of the room means the client saw events this store never had (its data
/// was lost, or it talked to a server with another data dir): that is truncated too, and the
/// client rebuilds from what is here.
pub fn plan(
    since: Option<u64>,
    last_id: u64,
    pruned_through: u64,
    policy: HistoryPolicy,
) -> Catchup {
    let newest = |truncated| Catchup {
        after: 0,
        limit: policy.on_join,
        truncated,
    };
    match since {
        None => newest(false),
        Some(since) if since > last_id || since < pruned_through => newest(true),
        Some(since) => Catchup {
            after: since,
            limit: policy.max,
            truncated: false,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: HistoryPolicy = HistoryPolicy {
        on_join: 50,
        max: 10_000,
        max_bytes: 1 << 20,
    };

    fn events(sizes: &[usize]) -> Vec<Box<RawValue>> {
        sizes
            .iter()
            .map(|n| RawValue::from_string(format!("\"{}\"", "x".repeat(n - 2))).unwrap())
            .collect()
    }

    #[test]
    fn a_history_keeps_the_newest_events_that_fit_its_bytes() {
        let mut all = events(&[10, 10, 10]);
        assert!(!keep_newest(&mut all, 33), "three and their commas fit");
        assert_eq!(all.len(), 3);
        let mut two = events(&[30, 10, 10]);
        assert!(keep_newest(&mut two, 33));
        assert_eq!(
            two.iter().map(|e| e.get().len()).collect::<Vec<_>>(),
            [10, 10]
        );
        let mut none = events(&[100]);
        assert!(keep_newest(&mut none, 33));
        assert!(none.is_empty());
    }

    #[test]
    fn a_newcomer_gets_the_newest_few() {
        assert_eq!(
            plan(None, 100, 40, POLICY),
            Catchup {
                after: 0,
                limit: 50,
                truncated: false
            }
        );
    }

    #[test]
    fn a_recovery_gets_everything_after_since() {
        for since in [0, 7, 100] {
            assert_eq!(
                plan(Some(since), 100, 0, POLICY),
                Catchup {
                    after: since,
                    limit: 10_000,
                    truncated: false
                }
            );
        }
    }

    #[test]
    fn a_recovery_that_reaches_into_pruned_events_is_truncated() {
        let p = plan(Some(39), 100, 40, POLICY);
        assert!(p.truncated);
        assert_eq!((p.after, p.limit), (0, 50));
        assert!(!plan(Some(40), 100, 40, POLICY).truncated, "it saw 40");
    }

    #[test]
    fn a_since_ahead_of_the_room_is_truncated() {
        assert!(plan(Some(101), 100, 0, POLICY).truncated);
    }
}
