//! The SQLite keeper: events are stored on the writer thread before anyone sees them.
//!
//! The log hands items over without waiting, in each room's id order (it sends while holding
//! its lock). The writer (`writer`) stores what queued up in one transaction and only then
//! delivers it, in order, so whatever a client saw is on disk, and every reply to a socket
//! goes the same way, so it never overtakes what that socket is owed.
//!
//! **Bounded, never silent.** The queue (`queue`) holds at most `--history-queue` events.
//! Past it a message is refused at once: its sender gets `not sent: the server is busy`, a
//! joiner is closed with 1013 and the page retries with its backoff. A `left` is always
//! taken (its socket is gone, nobody could be told; each member leaves once and got in only
//! while there was room, so this stays bounded). An `error` that finds the queue full goes
//! to its socket directly: out of order with what the socket is still owed, but not lost.
//!
//! **Storage failures stop delivery, not consistency.** A batch whose commit fails delivers
//! none of its events, presence included: `join` and `left` would otherwise reach clients and
//! be gone after a restart, and their ids, never stored, could be handed out again. The
//! senders get `not sent`; a `left` that was not stored is logged (the online lists stay
//! stale until the next `list`). Ids reach clients only in frames delivered after a commit
//! that raised the room's reservation on disk above them: a joiner's `join` travels with its
//! `history` (`Item::Catchup`), and if their batch fails the join fails with 1013, so its
//! `list` and `history` ids are never shown either. Ids taken by a failed batch are skipped,
//! never reused: the log's counter moved on, and the next commit reserves above it.
//!
//! **Pages off the writer.** A page of history (`{"type":"history","before":…}`) is read by
//! `reader` on its own connection and thread; the writer never waits for one. A joiner's
//! `history` is read there too, handed over by the writer right after the commit that covers
//! it, so it holds every event up to the joiner's floor (reads after a commit see it), and it
//! reads the pruning mark and the events in one snapshot, so a prune in between cannot leave
//! an unmarked gap. If the reader's queue is full, the writer reads it itself. Either way it is
//! bounded to one page.
//!
//! **Supervised.** The writer runs under `catch_unwind`: a panic fails the rest of its batch
//! (senders told, joiners closed with 1013), marks the store unhealthy and starts the loop
//! again on the same connection (SQLite rolled the open transaction back). `/healthz` says
//! 503 with the reason from a failed commit or a panic until a commit succeeds again.

mod queue;
mod reader;
mod writer;

#[cfg(test)]
pub(in crate::chat::log::local) use writer::PANIC_ROOM;

use std::{
    path::Path,
    sync::{Arc, Mutex},
};

use futures_util::{FutureExt, future::BoxFuture};
use tokio::sync::oneshot;

use super::{
    super::{
        Accepted,
        deletion::{DeleteError, Doomed},
    },
    HistoryFuture, Keeper, Kept, Recall,
    delete::StepFuture,
};
use crate::{
    auth::User,
    chat::{
        EngineError, Membership,
        hub::Hub,
        protocol::{EventKind, Frame, Reply},
        recovery::HistoryPolicy,
        room::RoomName,
        rooms::Reserved,
    },
    store::{HistoryStore, Reservations, history::Retention},
};
use queue::{Admit, Health, Queue};
use reader::Reader;

#[derive(Debug)]
enum Item {
    /// Room events: stored, then delivered.
    Events {
        room: RoomName,
        events: Vec<Kept>,
        /// The socket that sent them, told if they cannot be stored.
        sender: Option<Membership>,
    },
    /// An `error` or `ack` for one socket.
    Reply { member: Membership, reply: Reply },
    /// A joiner's `history`, read once every event it covers is committed. Its own id is
    /// reserved with the batch.
    Catchup {
        room: RoomName,
        user: Arc<User>,
        recall: Recall,
        /// The joiner's `join`, stored and delivered with it or not at all.
        join: Option<Kept>,
        done: oneshot::Sender<Result<Frame, EngineError>>,
    },
    /// One step of a deletion (see `log::deletion`), done once everything before it is
    /// stored: its `delete` event takes `id`, reserved with the batch.
    Delete {
        room: RoomName,
        id: u64,
        doomed: Doomed,
        done: oneshot::Sender<Result<Vec<u64>, DeleteError>>,
    },
    /// Answered once everything before it is stored and delivered.
    Flush(oneshot::Sender<()>),
}

impl Item {
    /// What the item counts for against the queue's bound: its events, at least one.
    fn weight(&self) -> usize {
        match self {
            Item::Events { events, .. } => events.len().max(1),
            Item::Catchup { join, .. } => 1 + usize::from(join.is_some()),
            Item::Reply { .. } | Item::Delete { .. } | Item::Flush(_) => 1,
        }
    }
}

#[derive(Debug)]
pub struct Sqlite {
    hub: Arc<Hub>,
    queue: Arc<Queue>,
    health: Arc<Health>,
    /// Rooms' reservations, read as they come back into memory.
    reservations: Reservations,
    /// Pages of history, read beside the writer.
    reader: Reader,
    /// A read connection of its own for finding a purged user's rooms, which may scan.
    purges: Arc<Mutex<HistoryStore>>,
}

/// What the SQLite keeper works with: the store, the rooms' id reservations, how much history
/// a socket gets, and how many events may wait for the writer.
#[derive(Debug)]
pub struct Storage {
    pub store: HistoryStore,
    pub reservations: Reservations,
    pub policy: HistoryPolicy,
    pub queue: usize,
}

impl Storage {
    pub fn open(
        data_dir: &Path,
        retention: Retention,
        policy: HistoryPolicy,
        queue: usize,
    ) -> anyhow::Result<Self> {
        Ok(Storage {
            store: HistoryStore::open(data_dir, retention)?,
            reservations: Reservations::open(data_dir)?,
            policy,
            queue,
        })
    }
}

impl Sqlite {
    /// Starts the writer thread; at most `storage.queue` events wait for it.
    pub fn spawn(hub: Arc<Hub>, storage: Storage) -> anyhow::Result<Self> {
        let Storage {
            store,
            reservations,
            policy,
            queue: capacity,
        } = storage;
        let queue = Arc::new(Queue::new(capacity));
        let health = Arc::new(Health::default());
        let reader = Reader::spawn(hub.clone(), store.reader()?, policy)?;
        let purges = Arc::new(Mutex::new(store.reader()?));
        writer::spawn(
            hub.clone(),
            store,
            policy,
            queue.clone(),
            health.clone(),
            reader.clone(),
        )?;
        Ok(Sqlite {
            hub,
            queue,
            health,
            reservations,
            reader,
            purges,
        })
    }

    fn send(&self, item: Item) -> Accepted {
        self.queue.push(item, Admit::Bounded)
    }
}

impl Drop for Sqlite {
    fn drop(&mut self) {
        // The writer stores and delivers what is queued, then stops.
        self.queue.close();
    }
}

impl Keeper for Sqlite {
    fn keep(&self, room: &RoomName, events: Vec<Kept>, sender: Option<&Membership>) -> Accepted {
        let leaving = events.iter().all(|k| k.kind == EventKind::Left);
        let admit = if leaving {
            Admit::Always
        } else {
            Admit::Bounded
        };
        let item = Item::Events {
            room: room.clone(),
            events,
            sender: sender.cloned(),
        };
        self.queue.push(item, admit)
    }

    fn history(&self, member: &Membership, recall: Recall, join: Option<Kept>) -> HistoryFuture {
        let (done, frame) = oneshot::channel();
        let sent = self.send(Item::Catchup {
            room: member.room.clone(),
            user: member.user.clone(),
            recall,
            join,
            done,
        });
        async move {
            sent?;
            // Dropped unanswered: the writer panicked with it in hand, or stopped.
            frame.await.map_err(|_| EngineError::NotStored)?
        }
        .boxed()
    }

    fn reply(&self, member: &Membership, reply: Reply) {
        let item = Item::Reply {
            member: member.clone(),
            reply,
        };
        if let Err(refused) = self.queue.offer(item, Admit::Bounded)
            && let (e, Item::Reply { member, reply }) = *refused
        {
            // Straight to the socket: ahead of events it is still owed, but not lost.
            tracing::warn!(user = member.user.id, error = %e, "reply sent out of order");
            self.hub.reply(&member, &reply);
        }
    }

    fn page(&self, member: &Membership, before: u64) -> Accepted {
        self.reader.page(member, before)
    }

    fn flush(&self) -> BoxFuture<'_, ()> {
        let (tx, rx) = oneshot::channel();
        let sent = self.queue.push(Item::Flush(tx), Admit::Always).is_ok();
        async move {
            if sent {
                let _ = rx.await;
            }
        }
        .boxed()
    }

    fn keeps_history(&self) -> bool {
        true
    }

    fn delete(&self, room: &RoomName, id: u64, doomed: Doomed) -> StepFuture {
        let (done, answer) = oneshot::channel();
        let sent = self.send(Item::Delete {
            room: room.clone(),
            id,
            doomed,
            done,
        });
        async move {
            sent?;
            // Dropped unanswered: the writer panicked with it in hand, or stopped.
            answer.await.map_err(|_| EngineError::NotStored)?
        }
        .boxed()
    }

    fn rooms_with(
        &self,
        user: u64,
        since_ms: u64,
    ) -> BoxFuture<'static, Result<Vec<RoomName>, DeleteError>> {
        let purges = self.purges.clone();
        async move {
            let read = tokio::task::spawn_blocking(move || {
                let store = purges.lock().unwrap_or_else(|p| p.into_inner());
                store.rooms_with(user, since_ms)
            })
            .await;
            match read {
                Ok(Ok(rooms)) => Ok(rooms
                    .iter()
                    .filter_map(|room| RoomName::parse(room).ok())
                    .collect()),
                Ok(Err(e)) => {
                    tracing::error!(user, error = %e, "reading a user's rooms failed");
                    Err(EngineError::NotStored.into())
                }
                Err(e) => {
                    tracing::error!(user, error = %e, "reading a user's rooms failed");
                    Err(EngineError::NotStored.into())
                }
            }
        }
        .boxed()
    }

    fn reserved(&self, room: &RoomName) -> Result<Reserved, EngineError> {
        self.reservations.get(room.as_str()).map_err(|e| {
            tracing::error!(room = %room, error = %e, "reading a room's reservation failed");
            EngineError::NotStored
        })
    }

    fn health(&self) -> Result<(), String> {
        if self.queue.stopped() {
            return Err(EngineError::WriterGone.to_string());
        }
        self.health.get()
    }
}
