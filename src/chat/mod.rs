//! The chat core: rooms, presence, fan-out and the id sequence, behind one `Engine`.
//!
//! Everything outside this module talks to `Engine`; which engine runs is its own business.

pub mod connection;
pub mod limit;
mod local;
pub mod outbox;
pub mod protocol;
pub mod recovery;
mod redis;
pub mod refusal;
pub mod room;
pub mod text;

use std::sync::Arc;

use crate::{auth::User, metrics::EventCounters, store::HistoryStore, upload::UploadName};
use local::LocalEngine;
use outbox::{Outbox, Signal};
use recovery::HistoryPolicy;
use redis::RedisEngine;
pub use redis::RedisSettings;
use room::RoomName;
use text::ChatText;

/// One socket's place in a room: what `join` returns and `leave` takes back.
#[derive(Debug)]
pub struct Membership {
    room: RoomName,
    user: Arc<User>,
    socket: u64,
}

impl Membership {
    pub fn room(&self) -> &RoomName {
        &self.room
    }

    pub fn user(&self) -> &Arc<User> {
        &self.user
    }
}

/// What became of a private message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Whisper {
    Delivered,
    /// Nobody with that id is online; the sender got an `error`.
    RecipientOffline,
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("the chat engine is unavailable: {0}")]
    Unavailable(String),
}

/// The chat engine: the embedded, single-process one, or Redis shared by many instances.
#[derive(Debug)]
pub enum Engine {
    Local(LocalEngine),
    Redis(RedisEngine),
}

impl Engine {
    pub fn local() -> Self {
        Engine::Local(LocalEngine::default())
    }

    /// The embedded engine, counting what it broadcasts into `events`.
    pub fn local_counting(events: EventCounters) -> Self {
        Engine::Local(LocalEngine::counting(events))
    }

    /// The embedded engine with history: every room event is stored in `store` before it is
    /// delivered, and ids continue from it.
    pub fn local_with_history(
        events: EventCounters,
        store: HistoryStore,
        policy: HistoryPolicy,
    ) -> anyhow::Result<Self> {
        Ok(Engine::Local(LocalEngine::with_history(
            events, store, policy,
        )?))
    }

    /// The Redis engine; fails if Redis cannot be reached.
    pub async fn redis(settings: RedisSettings, events: EventCounters) -> anyhow::Result<Self> {
        Ok(Engine::Redis(RedisEngine::connect(settings, events).await?))
    }

    /// Adds a socket to a room. The user's first socket there broadcasts `join`; then the
    /// socket's outbox receives `list`, the users online, and `history`: the recent events,
    /// or with `since` (the last id the client saw) every event after it. Live events follow
    /// with no gap and no overlap.
    pub async fn join(
        &self,
        room: RoomName,
        user: Arc<User>,
        outbox: Outbox,
        since: Option<u64>,
    ) -> Result<Membership, EngineError> {
        match self {
            Engine::Local(engine) => engine.join(room, user, outbox, since),
            Engine::Redis(engine) => engine.join(room, user, outbox, since).await,
        }
    }

    /// Broadcasts chat messages from one sender to the room, in order, each with the room's
    /// next id. Sockets never wait on the engine: what follows arrives in their outboxes.
    pub fn chat(&self, member: &Membership, texts: &[ChatText]) -> Result<(), EngineError> {
        match self {
            Engine::Local(engine) => engine.chat(member, texts).map(drop),
            Engine::Redis(engine) => engine.chat(member, texts),
        }
    }

    /// Broadcasts an uploaded image to the room, with the room's next id.
    pub fn image(&self, member: &Membership, image: &UploadName) -> Result<(), EngineError> {
        match self {
            Engine::Local(engine) => engine.image(member, image).map(drop),
            Engine::Redis(engine) => engine.image(member, image),
        }
    }

    /// Sends a `private` event to every socket of the sender and of user `to`, in any room on
    /// this server. If `to` is not online, the sender's socket gets an `error` instead.
    pub fn private(
        &self,
        member: &Membership,
        to: u64,
        text: &ChatText,
    ) -> Result<Whisper, EngineError> {
        match self {
            Engine::Local(engine) => engine.private(member, to, text),
            Engine::Redis(engine) => engine.private(member, to, text),
        }
    }

    /// Sends an `error` event to this socket only.
    pub fn reply_error(&self, member: &Membership, message: &str) {
        match self {
            Engine::Local(engine) => engine.reply_error(member, message),
            Engine::Redis(engine) => engine.reply_error(member, message),
        }
    }

    /// Tells every socket on this instance that the ping interval elapsed.
    pub fn tick_all(&self) {
        match self {
            Engine::Local(engine) => engine.for_each_outbox(Outbox::tick),
            Engine::Redis(engine) => engine.for_each_outbox(Outbox::tick),
        }
    }

    /// Closes every socket on this instance (shutdown).
    pub fn close_all(&self, code: u16, reason: &'static str) {
        match self {
            Engine::Local(engine) => {
                engine.for_each_outbox(|outbox| outbox.signal(Signal::Close(code, reason)));
            }
            Engine::Redis(engine) => {
                engine.for_each_outbox(|outbox| outbox.signal(Signal::Close(code, reason)));
            }
        }
    }

    /// Removes a socket. The user's last socket in the room broadcasts `left`.
    pub async fn leave(&self, member: Membership) {
        match self {
            Engine::Local(engine) => engine.leave(member),
            Engine::Redis(engine) => engine.leave(member),
        }
    }

    /// Resolves once every event so far is stored and delivered (shutdown).
    pub async fn flush(&self) {
        match self {
            Engine::Local(engine) => engine.flush().await,
            Engine::Redis(engine) => engine.flush().await,
        }
    }

    /// Users online in a room (with Redis: on this instance).
    pub fn online(&self, room: &RoomName) -> usize {
        match self {
            Engine::Local(engine) => engine.online(room),
            Engine::Redis(engine) => engine.online(room),
        }
    }

    /// Distinct users online in any room (with Redis: on this instance).
    pub fn users_online(&self) -> usize {
        match self {
            Engine::Local(engine) => engine.users_online(),
            Engine::Redis(engine) => engine.users_online(),
        }
    }
}
