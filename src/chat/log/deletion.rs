//! What a moderator may delete, and what came of it: the part of `EventLog::delete` every
//! log shares.
//!
//! A deletion removes messages (chat, images, whispers) from the room's kept history and
//! sends the room a `delete` event (`protocol::DeleteEvent`) with an id of its own, kept like
//! any event, so a client resuming with `since` learns of it too. A purge goes in batches of
//! at most `batch` messages, each one short step of the log with one `delete` event, so
//! however many messages a user left, no room waits long behind it.

use std::collections::BTreeMap;

use super::super::{EngineError, room::RoomName};

/// What to delete.
#[derive(Debug, Clone)]
pub enum Deletion {
    /// One message of a room, by id.
    Message { room: RoomName, id: u64 },
    /// A user's messages, in one room or every room, said at `since_ms` or later if given.
    Purge {
        user: u64,
        room: Option<RoomName>,
        since_ms: Option<u64>,
        /// Messages deleted per step (and listed per `delete` event) at most.
        batch: usize,
    },
}

/// One step's selection in one room, below the `delete` event's own id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Doomed {
    Message(u64),
    /// The oldest `limit` messages of `user` said at `since_ms` or later.
    User {
        user: u64,
        since_ms: u64,
        limit: usize,
    },
}

/// Messages deleted, per room, oldest first.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Deleted(pub BTreeMap<RoomName, Vec<u64>>);

impl Deleted {
    pub fn add(&mut self, room: &RoomName, ids: Vec<u64>) {
        if !ids.is_empty() {
            self.0.entry(room.clone()).or_default().extend(ids);
        }
    }

    pub fn total(&self) -> usize {
        self.0.values().map(Vec::len).sum()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DeleteError {
    /// Nothing by that id is a message of that room (404).
    #[error("no message {id} in room {room}: {why}")]
    NotAMessage {
        room: RoomName,
        id: u64,
        why: &'static str,
    },
    /// This server keeps no history (`--history-max-events 0`): nothing can be deleted.
    #[error("this server keeps no history (--history-max-events 0): there is nothing to delete")]
    NoHistory,
    #[error(transparent)]
    Engine(#[from] EngineError),
}

/// Why an id is not a message, as a 404 says it.
pub const MISSING: &str = "there is none (never, deleted, or past the history kept)";
pub const NOT_A_MESSAGE: &str = "that event is not a message (a join, a left, a delete)";
pub const NOT_YET: &str = "the room has not reached that id";

impl Doomed {
    /// The step for one room: what it selects, given the purge's scope.
    pub fn of(deletion: &Deletion) -> Doomed {
        match deletion {
            Deletion::Message { id, .. } => Doomed::Message(*id),
            Deletion::Purge {
                user,
                since_ms,
                batch,
                ..
            } => Doomed::User {
                user: *user,
                since_ms: since_ms.unwrap_or(0),
                limit: (*batch).max(1),
            },
        }
    }

    /// Whether a step that deleted `n` may have left more behind.
    pub fn more_after(self, n: usize) -> bool {
        matches!(self, Doomed::User { limit, .. } if n >= limit)
    }
}
