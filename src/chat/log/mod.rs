//! `EventLog`: where a room's events get their ids, are kept, and set out for every hub.
//!
//! Three implementations: `local` keeps ids and presence in this process, and either hands
//! each event straight to the hub (memory) or stores it first (SQLite); `redis` lets Redis
//! assign, keep and publish them, so many instances act as one chat.

pub mod deletion;
pub mod local;
pub mod redis;

use std::{fmt, sync::Arc};

use futures_util::future::BoxFuture;

use super::{
    EngineError, Membership, Whisper,
    hub::Departure,
    outbox::Outbox,
    protocol::{Cid, EventKind, Frame, Reply},
    room::RoomName,
    text::ChatText,
};
use crate::auth::{SessionId, User};
pub use deletion::{DeleteError, Deleted, Deletion};

/// Who may see an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Visibility {
    Room,
    /// Only these two users (sender and recipient of a private message).
    Pair(u64, u64),
}

impl Visibility {
    pub fn allows(self, user: u64) -> bool {
        match self {
            Visibility::Room => true,
            Visibility::Pair(a, b) => user == a || user == b,
        }
    }
}

/// A room event as the hub delivers it: serialized and framed once for every recipient.
#[derive(Debug, Clone)]
pub struct Event {
    pub id: u64,
    pub visible: Visibility,
    pub frame: Frame,
}

/// What a joining socket is owed before any live event: its `join` if it brought the user
/// in, `list` and `history`, and the id they cover. Live events reach it only above `floor`,
/// so the two never overlap and leave no gap.
#[derive(Debug)]
pub struct Entry {
    pub frames: Vec<Frame>,
    pub floor: u64,
    /// This socket brought its user into the room (it sent `join`).
    pub joined: bool,
    /// The room's users, as its `list` counts them: whether the room is big (`hub::big`).
    pub count: usize,
}

/// One message a member sends: its text, and the client's own id for it if it gave one. A
/// message with a `cid` the log already stored for that user in that room (within the
/// window it remembers) is not stored again: the sender gets the same `ack`.
#[derive(Debug, Clone, Copy)]
pub struct Said<'a> {
    pub text: &'a str,
    pub cid: Option<&'a Cid>,
}

impl<'a> From<&'a str> for Said<'a> {
    fn from(text: &'a str) -> Self {
        Said { text, cid: None }
    }
}

/// Whether the log took what it was given; it answers without waiting on delivery.
pub type Accepted<T = ()> = Result<T, EngineError>;

/// A socket asking into a room: `since` is the last id its client saw, if it said.
#[derive(Debug)]
pub struct Joiner {
    pub room: RoomName,
    pub user: Arc<User>,
    /// The sign-in the socket came with, so signing out can close it.
    pub session: SessionId,
    pub outbox: Outbox,
    pub since: Option<u64>,
}

/// One log behind the engine. Every method returns without waiting on the sockets; what the
/// log accepts reaches them through the hub, in id order.
pub trait EventLog: Send + Sync + fmt::Debug {
    /// Attaches a socket to the hub and enters it into the room.
    fn join(&self, joiner: Joiner) -> BoxFuture<'_, Result<(Membership, Entry), EngineError>>;

    /// Appends a member's messages of one kind (`chat` or `image`) to its room, in order.
    /// Each one with a `cid` is answered with an `ack` once stored.
    fn publish(&self, member: &Membership, kind: EventKind, data: &[Said<'_>]) -> Accepted;

    /// A whisper to user `to`, seen by the two of them only; acknowledged like `publish`.
    fn private(
        &self,
        member: &Membership,
        to: u64,
        text: &ChatText,
        cid: Option<&Cid>,
    ) -> Accepted<Whisper>;

    /// An `error` or `ack` for this socket only, queued behind what the log still holds for it.
    fn reply(&self, member: &Membership, reply: Reply);

    /// A page of the events before `before` that the member may see, newest ones first to
    /// fill it, sent to its socket only as a `history` with `before`. `Err` if it cannot be
    /// read now (busy).
    fn page(&self, member: &Membership, before: u64) -> Accepted;

    /// A page of the room's users after the cursor `after`, sent to the member's socket only
    /// as a `users` (see `hub::big`). `Err` if it cannot be read now (busy).
    fn users(&self, member: &Membership, after: u64) -> Accepted;

    /// Detaches the socket; the user's last one in the room sends `left`. True if this
    /// instance announced it.
    fn leave(&self, member: Membership) -> bool;

    /// Detaches the socket for the presence grace (see `chat::departures`): the user's last
    /// socket here leaves them in the room (`Departure::Lingers`) and nothing is announced
    /// yet; `depart` ends that later. `None` if the socket was not here.
    fn linger(&self, member: Membership) -> Option<Departure>;

    /// Ends lingering departures from `room` whose grace is over, together: each user that
    /// nothing holds in the room any more gets a `left`, all of them in one batch (one
    /// store call, one shared chunk per socket). How many `left` this instance announced.
    fn depart(&self, room: &RoomName, users: &[Arc<User>]) -> usize;

    /// Deletes messages (see `deletion`): they leave the kept history, and each room they
    /// leave gets a `delete` event, kept and delivered like any other.
    fn delete(&self, what: Deletion) -> BoxFuture<'_, Result<Deleted, DeleteError>>;

    /// Resolves once everything accepted so far is kept and delivered.
    fn flush(&self) -> BoxFuture<'_, ()>;

    /// `Err` with a short reason while events cannot be kept.
    fn health(&self) -> Result<(), String> {
        Ok(())
    }

    /// The engine's clock: lets go of what has been idle long enough (rooms).
    fn tick(&self) {}
}
