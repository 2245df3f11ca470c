//! The SQLite keeper: events are stored on the writer thread before anyone sees them.
//!
//! The log hands items over without waiting, in each room's id order (it sends while holding
//! its lock). The writer (`writer`) stores what queued up in one transaction and only then
//! delivers it, in order, so whatever a client saw is on disk, and every reply to a socket
//! goes the same way, so it never overtakes what that socket is owed.

mod writer;

use std::sync::{Arc, mpsc::Sender};

use futures_util::{FutureExt, future::BoxFuture};
use tokio::sync::oneshot;

use super::{super::Accepted, HistoryFuture, Keeper, Kept, Recall};
use crate::{
    auth::User,
    chat::{
        EngineError, Membership, hub::Hub, protocol::Frame, recovery::HistoryPolicy, room::RoomName,
    },
    store::HistoryStore,
};

#[derive(Debug)]
enum Item {
    /// Room events: stored, then delivered.
    Events {
        room: RoomName,
        events: Vec<Kept>,
        /// The socket that sent them, told if they cannot be stored.
        sender: Option<Membership>,
    },
    /// An `error` for one socket.
    Reply { member: Membership, message: String },
    /// A joiner's `history`, read once every event it covers is committed. Its own id is
    /// reserved with the batch.
    Catchup {
        room: RoomName,
        user: Arc<User>,
        recall: Recall,
        done: oneshot::Sender<Frame>,
    },
    /// Answered once everything before it is stored and delivered.
    Flush(oneshot::Sender<()>),
}

#[derive(Debug)]
pub struct Sqlite {
    items: Sender<Item>,
}

impl Sqlite {
    pub fn spawn(
        hub: Arc<Hub>,
        store: HistoryStore,
        policy: HistoryPolicy,
    ) -> anyhow::Result<Self> {
        Ok(Sqlite {
            items: writer::spawn(hub, store, policy)?,
        })
    }

    fn send(&self, item: Item) -> Accepted {
        self.items.send(item).map_err(|_| EngineError::WriterGone)
    }
}

impl Keeper for Sqlite {
    fn keep(&self, room: &RoomName, events: Vec<Kept>, sender: Option<&Membership>) -> Accepted {
        self.send(Item::Events {
            room: room.clone(),
            events,
            sender: sender.cloned(),
        })
    }

    fn history(&self, member: &Membership, recall: Recall) -> HistoryFuture {
        let (done, frame) = oneshot::channel();
        let sent = self.send(Item::Catchup {
            room: member.room.clone(),
            user: member.user.clone(),
            recall,
            done,
        });
        async move {
            sent?;
            frame.await.map_err(|_| EngineError::WriterGone)
        }
        .boxed()
    }

    fn reply_error(&self, member: &Membership, message: String) {
        let item = Item::Reply {
            member: member.clone(),
            message,
        };
        if let Err(e) = self.send(item) {
            tracing::error!(user = member.user.id, error = %e, "error reply lost");
        }
    }

    fn flush(&self) -> BoxFuture<'_, ()> {
        let (tx, rx) = oneshot::channel();
        let sent = self.send(Item::Flush(tx)).is_ok();
        async move {
            if sent {
                let _ = rx.await;
            }
        }
        .boxed()
    }
}
