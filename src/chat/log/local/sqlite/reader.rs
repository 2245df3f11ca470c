//! The history reader: joiners' histories and pages of history (`{"type":"history",
//! "before":…}`), read on a thread and connection of their own, so a read never holds up the
//! writer, and no other room's messages wait for it. SQLite's WAL lets it read beside the
//! writer's commits, and a read after a commit sees it.
//!
//! Bounded: at most `--history-reads` requests wait (64: one is a few milliseconds' work, and
//! the rate limit holds each user to a few pages a second). Past that a page is refused (the client is
//! told the server is busy; each page also takes a token from its user's rate limit), and a
//! joiner's history is read by the writer itself, as before there was a reader.

use std::sync::{
    Arc,
    mpsc::{self, SyncSender, TrySendError},
};

use serde_json::value::RawValue;
use tokio::sync::oneshot;

use super::super::Recall;
use crate::{
    auth::User,
    chat::{
        EngineError, Membership,
        hub::Hub,
        log::Accepted,
        protocol::Frame,
        recovery::{self, HistoryPolicy},
        room::RoomName,
    },
    store::HistoryStore,
};

/// The ids SQLite can hold; a `before` above them asks for everything.
const MAX_SQL_ID: u64 = i64::MAX as u64;

/// A joiner's `history`, whose events are all committed.
#[derive(Debug)]
pub struct Catchup {
    pub room: RoomName,
    pub user: Arc<User>,
    pub recall: Recall,
    pub done: oneshot::Sender<Result<Frame, EngineError>>,
}

enum Request {
    Catchup(Catchup),
    Page { member: Membership, before: u64 },
}

#[derive(Debug, Clone)]
pub struct Reader {
    requests: SyncSender<Request>,
}

impl Reader {
    /// Starts the reader thread on `store` (a connection of its own: `HistoryStore::reader`).
    /// It stops when the last `Reader` is dropped.
    pub fn spawn(
        hub: Arc<Hub>,
        store: HistoryStore,
        policy: HistoryPolicy,
    ) -> anyhow::Result<Self> {
        let (requests, queue) = mpsc::sync_channel::<Request>(policy.reads);
        std::thread::Builder::new()
            .name("history-reader".into())
            .spawn(move || {
                for request in queue {
                    match request {
                        Request::Catchup(catchup) => {
                            let frame = catchup_frame(&store, policy, &catchup);
                            let _ = catchup.done.send(Ok(frame));
                        }
                        Request::Page { member, before } => {
                            page(&hub, &store, policy, &member, before);
                        }
                    }
                }
            })?;
        Ok(Reader { requests })
    }

    /// Queues a page for `member`; `Busy` if too many reads wait already.
    pub fn page(&self, member: &Membership, before: u64) -> Accepted {
        let request = Request::Page {
            member: member.clone(),
            before,
        };
        match self.requests.try_send(request) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => Err(EngineError::Busy),
            Err(TrySendError::Disconnected(_)) => Err(EngineError::WriterGone),
        }
    }

    /// Queues a joiner's history, or hands it back if the reader cannot take it now.
    pub fn catchup(&self, catchup: Catchup) -> Result<(), Catchup> {
        match self.requests.try_send(Request::Catchup(catchup)) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(Request::Catchup(c)))
            | Err(TrySendError::Disconnected(Request::Catchup(c))) => Err(c),
            Err(_) => unreachable!("a catchup comes back as it went"),
        }
    }
}

fn raw(bodies: Vec<String>) -> Vec<Box<RawValue>> {
    bodies
        .into_iter()
        .filter_map(|body| RawValue::from_string(body).ok())
        .collect()
}

/// The `history` event for a socket that joined when the room's last id was `through`. The
/// pruning mark and the events are read in one snapshot: a prune between the two would
/// otherwise remove events after `since` without the history saying truncated.
pub fn catchup_frame(store: &HistoryStore, policy: HistoryPolicy, catchup: &Catchup) -> Frame {
    let Catchup {
        room, user, recall, ..
    } = catchup;
    let Recall { id, since, through } = *recall;
    let read = store.snapshot(|store| {
        let pruned = store.pruned_through(room.as_str())?;
        let plan = recovery::plan(since, through, pruned, policy);
        // One more than the page, to learn whether older events remain. A newcomer's
        // history is messages; a recovery replays the presence still kept as well.
        let read = if plan.recovery {
            HistoryStore::read
        } else {
            HistoryStore::read_messages
        };
        let bodies = read(
            store,
            room.as_str(),
            plan.after,
            through,
            user.id,
            plan.limit.saturating_add(1),
        )?;
        Ok((bodies, plan))
    });
    let bounded = match read {
        Ok((bodies, plan)) => plan.bound(raw(bodies), policy.max_bytes),
        Err(e) => {
            tracing::error!(error = %e, room = %room, user = user.id, "reading history failed");
            recovery::Bounded {
                truncated: true,
                ..Default::default()
            }
        }
    };
    bounded.frame(id, user, None)
}

/// Reads and sends a page: the newest events before `before` the member may see, one more
/// than a page read to learn whether older ones remain.
fn page(hub: &Hub, store: &HistoryStore, policy: HistoryPolicy, member: &Membership, before: u64) {
    let through = before.saturating_sub(1).min(MAX_SQL_ID);
    // Scrolling back shows the conversation: messages only, like a newcomer's history.
    let read = store.read_messages(
        member.room().as_str(),
        0,
        through,
        member.user().id,
        policy.page.saturating_add(1),
    );
    match read {
        Ok(bodies) => {
            let page = recovery::bound(raw(bodies), policy.page, policy.max_bytes);
            recovery::send_page(hub, member, before, &page);
        }
        Err(e) => {
            tracing::error!(error = %e, room = %member.room(), "reading a page of history failed");
            hub.reply_error(
                member,
                crate::chat::protocol::code::HISTORY_UNAVAILABLE,
                "history not read: the server could not read it",
            );
        }
    }
}
