//! What a socket is owed from history, and how much one `history` frame carries: one rule,
//! whichever engine keeps it.
//!
//! A frame holds at most `page` events (`--history-page`) and `max_bytes` of them. What did
//! not fit is older than what was sent, so the frame says `more` and the client may page
//! back (`{"type":"history","before":<id>}`). A recovery (`since`) that did not fit is
//! `truncated` as well: the client rebuilds its view from the newest page, so what it shows
//! has no gap, and pages back for the rest.

use serde_json::value::RawValue;

use super::{
    Membership,
    hub::{Hub, Unstamped},
    protocol::{EventKind, Frame, HistoryEvent, now_ms},
};
use crate::auth::User;

/// Which stored events go into a socket's `history` event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Catchup {
    /// Events with a greater id...
    pub after: u64,
    /// ...the newest this many of them (read one more, to learn whether older ones remain)...
    pub limit: usize,
    /// ...and whether the client asked for more than that: it must rebuild its view.
    pub truncated: bool,
    /// The client asked for everything after its `since`: events left out for the bounds
    /// make the frame truncated too.
    pub recovery: bool,
}

/// How much history a socket gets.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct HistoryPolicy {
    /// Events a newcomer (no `since`) gets, and what a truncated recovery falls back to.
    pub on_join: usize,
    /// The most events one `history` carries: a recovery or a page back (`--history-page`).
    pub page: usize,
    /// The most bytes of events one `history` carries, so that it fits its socket's outbox
    /// (see `outbox::history_budget`).
    pub max_bytes: usize,
    /// Reads of history that may wait or run at once on this instance, pages and (SQLite)
    /// joiners' histories (`--history-reads`); past it a page is refused as busy.
    pub reads: usize,
}

/// What one `history` frame carries, once bounded.
#[derive(Debug, Default)]
pub struct Bounded {
    /// Oldest first.
    pub events: Vec<Box<RawValue>>,
    /// Events the client asked for were left out: it rebuilds from these.
    pub truncated: bool,
    /// Older events remain that the client may page back to.
    pub more: bool,
}

/// Keeps the newest events, oldest first, whose JSON fits in `max_bytes`; true if older
/// ones had to go.
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

/// Bounds what was read (oldest first, up to `limit + 1` events so that one more than fits
/// says older ones remain) to the newest `limit` events within `max_bytes`.
pub fn bound(mut events: Vec<Box<RawValue>>, limit: usize, max_bytes: usize) -> Bounded {
    let over = events.len().saturating_sub(limit);
    events.drain(..over);
    let trimmed = keep_newest(&mut events, max_bytes);
    Bounded {
        events,
        truncated: false,
        more: over > 0 || trimmed,
    }
}

impl Bounded {
    /// The `history` event carrying these events, with id `id`, for `user`; `before` when it
    /// is a page asked for with `{"type":"history","before":…}`.
    pub fn frame(&self, id: u64, user: &User, before: Option<u64>) -> Frame {
        self.with_event(id, user, before, |e| e.to_frame())
    }

    /// `frame` with the id left for the hub to stamp (a page: see `Hub::reply_with`).
    pub fn unstamped(&self, user: &User, before: Option<u64>) -> Unstamped {
        self.with_event(0, user, before, |e| Unstamped::new(e))
    }

    fn with_event<R>(
        &self,
        id: u64,
        user: &User,
        before: Option<u64>,
        f: impl FnOnce(&HistoryEvent<'_>) -> R,
    ) -> R {
        let data: Vec<&RawValue> = self.events.iter().map(AsRef::as_ref).collect();
        f(&HistoryEvent {
            id,
            kind: EventKind::History,
            user,
            data: &data,
            time: now_ms(),
            truncated: self.truncated,
            more: self.more,
            before,
        })
    }
}

impl Catchup {
    /// What a joiner's `history` carries of what was read for it.
    pub fn bound(self, events: Vec<Box<RawValue>>, max_bytes: usize) -> Bounded {
        let mut bounded = bound(events, self.limit, max_bytes);
        bounded.truncated = self.truncated || (self.recovery && bounded.more);
        bounded
    }
}

/// Sends a page of history (the events before `before`) to the member's socket only. It is
/// not a room event: its id is the last one the socket was sent, as an `error`'s.
pub fn send_page(hub: &Hub, member: &Membership, before: u64, page: &Bounded) {
    // Serialized here, before the hub's lock: a page is up to the bytes budget.
    hub.reply_with(member, page.unstamped(member.user(), Some(before)));
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
        recovery: false,
    };
    match since {
        None => newest(false),
        Some(since) if since > last_id || since < pruned_through => newest(true),
        Some(since) => Catchup {
            after: since,
            limit: policy.page,
            truncated: false,
            recovery: true,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: HistoryPolicy = HistoryPolicy {
        on_join: 50,
        page: 300,
        max_bytes: 1 << 20,
        reads: 64,
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
                truncated: false,
                recovery: false,
            }
        );
    }

    #[test]
    fn a_recovery_gets_a_page_after_since() {
        for since in [0, 7, 100] {
            assert_eq!(
                plan(Some(since), 100, 0, POLICY),
                Catchup {
                    after: since,
                    limit: 300,
                    truncated: false,
                    recovery: true,
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

    fn lens(bounded: &Bounded) -> Vec<usize> {
        bounded.events.iter().map(|e| e.get().len()).collect()
    }

    #[test]
    fn a_frame_keeps_the_newest_page_and_says_more_when_older_ones_remain() {
        let b = bound(events(&[3, 4, 5, 6]), 3, 1 << 20);
        assert_eq!(lens(&b), [4, 5, 6]);
        assert!(b.more && !b.truncated);
        let b = bound(events(&[3, 4, 5]), 3, 1 << 20);
        assert_eq!(lens(&b), [3, 4, 5]);
        assert!(!b.more, "all of it fit");
        let b = bound(events(&[30, 10, 10]), 3, 22);
        assert_eq!(lens(&b), [10, 10]);
        assert!(b.more, "the bytes bound left one out");
    }

    #[test]
    fn a_newcomer_with_more_is_not_truncated() {
        let c = plan(None, 100, 0, POLICY);
        let b = c.bound(events(&[3; 51]), 1 << 20);
        assert_eq!(b.events.len(), 50);
        assert!(b.more && !b.truncated);
    }

    #[test]
    fn a_recovery_longer_than_a_page_is_truncated_with_more() {
        let c = plan(Some(10), 1000, 0, POLICY);
        let b = c.bound(events(&[3; 301]), 1 << 20);
        assert_eq!(b.events.len(), 300);
        assert!(
            b.more && b.truncated,
            "the client rebuilds and may page back"
        );
        let b = c.bound(events(&[3; 300]), 1 << 20);
        assert!(!b.more && !b.truncated, "one page covers it");
        let b = c.bound(events(&[30, 10, 10]), 22);
        assert!(b.more && b.truncated, "the bytes bound left one out");
    }

    #[test]
    fn a_truncated_recovery_says_more_only_if_older_events_remain() {
        let c = plan(Some(39), 100, 40, POLICY);
        let b = c.bound(events(&[3; 50]), 1 << 20);
        assert!(b.truncated && !b.more);
        let b = c.bound(events(&[3; 51]), 1 << 20);
        assert!(b.truncated && b.more);
    }
}
