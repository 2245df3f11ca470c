//! What the local log hands its keeper (`memory` or `sqlite`), and the `Keeper` trait they
//! implement: the seam between sequencing an event and keeping it.

use std::fmt;

use futures_util::{FutureExt, future::BoxFuture};

use super::{
    super::{Accepted, DeleteError, Event, deletion::Doomed},
    delete,
};
use crate::chat::{
    EngineError, Membership,
    protocol::{Cid, EventKind, Frame, Reply},
    room::RoomName,
    rooms::Reserved,
};

/// An event on its way to the keeper, with what storing it needs besides the hub's part.
#[derive(Debug)]
pub struct Kept {
    pub event: Event,
    pub time: u64,
    pub kind: EventKind,
    /// The sender's id for it: the keeper acknowledges it once kept and delivered.
    pub cid: Option<Cid>,
}

/// What a joiner's `history` covers.
#[derive(Debug, Clone, Copy)]
pub struct Recall {
    /// The `history` event's own id.
    pub id: u64,
    /// The last id the client saw, if it said.
    pub since: Option<u64>,
    /// The room's last id before the joiner came.
    pub through: u64,
}

pub type HistoryFuture = BoxFuture<'static, Result<Frame, EngineError>>;

/// Where the local log sends what it sequenced. Called with the log's lock held, so events
/// arrive in each room's id order.
pub trait Keeper: Send + Sync + fmt::Debug {
    /// Keeps a room's new events, then delivers them. `sender` is told if they cannot be
    /// kept later; `Err` if they were not even accepted (nothing of them goes out).
    fn keep(&self, room: &RoomName, events: Vec<Kept>, sender: Option<&Membership>) -> Accepted;

    /// A joiner's `history` event, ready once every event it covers is kept. `join`, the
    /// room's `join` for this joiner if it brought its user in, is kept with it: if the one
    /// is not kept, the other fails too, so the joiner never shows an id nobody stored.
    fn history(&self, member: &Membership, recall: Recall, join: Option<Kept>) -> HistoryFuture;

    /// An `error` or `ack` for one socket, behind the events it is still owed.
    fn reply(&self, member: &Membership, reply: Reply);

    /// A page of history for one socket (see `EventLog::page`).
    fn page(&self, member: &Membership, before: u64) -> Accepted;

    fn flush(&self) -> BoxFuture<'_, ()>;

    /// `Err` with a short reason while events cannot be kept.
    fn health(&self) -> Result<(), String> {
        Ok(())
    }

    /// Whether it keeps history, so there is anything to delete.
    fn keeps_history(&self) -> bool {
        false
    }

    /// One step of a deletion in `room`: removes what `doomed` selects below `id` and keeps
    /// a `delete` event with id `id` listing it (none if nothing was found; the id is then
    /// skipped, as a failed batch's are). Resolves to the ids deleted.
    fn delete(&self, _room: &RoomName, _id: u64, _doomed: Doomed) -> delete::StepFuture {
        futures_util::future::ready(Err(DeleteError::NoHistory)).boxed()
    }

    /// The rooms holding messages of `user` said at `since_ms` or later.
    fn rooms_with(
        &self,
        _user: u64,
        _since_ms: u64,
    ) -> BoxFuture<'static, Result<Vec<RoomName>, DeleteError>> {
        futures_util::future::ready(Err(DeleteError::NoHistory)).boxed()
    }

    /// What is reserved for a room coming back into memory. Nothing, unless it is kept.
    fn reserved(&self, _room: &RoomName) -> Result<Reserved, EngineError> {
        Ok(Reserved::default())
    }
}
