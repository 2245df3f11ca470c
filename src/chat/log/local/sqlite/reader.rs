//! The history reader: pages of history (`{"type":"history","before":…}`) read on a thread
//! and connection of their own, so a long read never holds up the writer, and no other room's
//! messages wait for it. SQLite's WAL lets it read beside the writer's commits.
//!
//! Bounded: at most `PAGE_QUEUE` requests wait; past that the client is told the server is
//! busy. Each user's requests also take tokens from its message rate limit.

use std::sync::{
    Arc,
    mpsc::{self, SyncSender, TrySendError},
};

use serde_json::value::RawValue;

use crate::{
    chat::{
        EngineError, Membership,
        hub::Hub,
        log::Accepted,
        recovery::{self, HistoryPolicy},
    },
    store::HistoryStore,
};

/// Page requests waiting for the reader at most. A page is read in a few milliseconds, and
/// the rate limit holds each user to a few a second.
pub const PAGE_QUEUE: usize = 64;

/// The ids SQLite can hold; a `before` above them asks for everything.
const MAX_SQL_ID: u64 = i64::MAX as u64;

struct Request {
    member: Membership,
    before: u64,
}

#[derive(Debug)]
pub struct Reader {
    requests: SyncSender<Request>,
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Request")
            .field("before", &self.before)
            .finish_non_exhaustive()
    }
}

impl Reader {
    /// Starts the reader thread on `store` (a connection of its own: `HistoryStore::reader`).
    /// It stops when the `Reader` is dropped.
    pub fn spawn(
        hub: Arc<Hub>,
        store: HistoryStore,
        policy: HistoryPolicy,
    ) -> anyhow::Result<Self> {
        let (requests, queue) = mpsc::sync_channel::<Request>(PAGE_QUEUE);
        std::thread::Builder::new()
            .name("history-reader".into())
            .spawn(move || {
                for Request { member, before } in queue {
                    let page = read_page(&store, &member, before, policy);
                    match page {
                        Ok(page) => recovery::send_page(&hub, &member, before, &page),
                        Err(e) => {
                            tracing::error!(error = %e, room = %member.room(), "reading a page of history failed");
                            hub.reply_error(&member, "history not read: the server could not read it");
                        }
                    }
                }
            })?;
        Ok(Reader { requests })
    }

    /// Queues a page for `member`; `Busy` if too many wait already.
    pub fn page(&self, member: &Membership, before: u64) -> Accepted {
        let request = Request {
            member: member.clone(),
            before,
        };
        match self.requests.try_send(request) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => Err(EngineError::Busy),
            Err(TrySendError::Disconnected(_)) => Err(EngineError::WriterGone),
        }
    }
}

/// The newest events before `before` the member may see: one more than a page is read, to
/// learn whether older ones remain.
fn read_page(
    store: &HistoryStore,
    member: &Membership,
    before: u64,
    policy: HistoryPolicy,
) -> rusqlite::Result<recovery::Bounded> {
    let through = before.saturating_sub(1).min(MAX_SQL_ID);
    let bodies = store.read(
        member.room().as_str(),
        0,
        through,
        member.user().id,
        policy.page.saturating_add(1),
    )?;
    let events: Vec<Box<RawValue>> = bodies
        .into_iter()
        .filter_map(|body| RawValue::from_string(body).ok())
        .collect();
    Ok(recovery::bound(events, policy.page, policy.max_bytes))
}
