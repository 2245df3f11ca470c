//! The chat core: `Engine`, one hub of this instance's sockets and one event log.
//!
//! A message goes socket → `connection` → `Engine` → `log` (id, storage, other instances)
//! → `hub` → each member's `outbox` → its socket. Everything outside this module talks to
//! `Engine`; which log runs is its own business.

pub mod connection;
pub mod departures;
pub mod hub;
pub mod limit;
pub mod log;
pub mod outbox;
pub mod protocol;
pub mod recovery;
pub mod refusal;
pub mod room;
pub mod rooms;
pub mod text;

use std::{sync::Arc, time::Duration};

use crate::{
    auth::{SessionId, User},
    metrics::EventCounters,
    upload::UploadName,
};
use departures::Departures;
pub use hub::BigRooms;
use hub::{Departure, Hub};
pub use log::local::Storage;
pub use log::{DeleteError, Deleted, Deletion, Visibility, redis::RedisSettings};
use log::{EventLog, local::LocalLog};
use outbox::{Outbox, Signal};
use protocol::{Cid, EventKind, Reply};
use room::RoomName;
use rooms::RoomPolicy;
use text::ChatText;

/// One socket's place in a room: what `join` returns and `leave` takes back.
#[derive(Debug, Clone)]
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
    #[error("the chat engine is unavailable: the history writer stopped")]
    WriterGone,
    #[error("the chat engine is unavailable: the Redis worker stopped")]
    WorkerGone,
    #[error("the chat engine is unavailable: Redis: {0}")]
    Redis(#[from] ::redis::RedisError),
    /// The history writer's queue (or the Redis worker's) is full: nothing was queued, the
    /// client may retry.
    #[error("the server is busy: try again in a moment")]
    Busy,
    /// What this needed was not stored (the store cannot write, or the writer restarted).
    #[error("the server could not store it")]
    NotStored,
    /// A room's ids ran out; handing out more would repeat them.
    #[error("this room has used up its ids")]
    IdsExhausted,
    /// This instance holds `--max-rooms` rooms with people in them (close code 4005).
    #[error("too many rooms: this server holds as many as it may")]
    TooManyRooms,
    /// The user opened `--room-rate` new rooms within the last minute (close code 4005).
    #[error("too many new rooms: wait a minute")]
    RoomRate,
}

impl EngineError {
    /// A failure that may pass: the client should try again later (close code 1013).
    pub fn retry_later(&self) -> bool {
        matches!(self, EngineError::Busy | EngineError::NotStored)
    }

    /// The `code` of the `error` a sender gets when its message was refused for this:
    /// `busy` (retry in a moment) or `not_sent`; either way it was not stored.
    pub fn code(&self) -> &'static str {
        match self {
            EngineError::Busy => protocol::code::BUSY,
            _ => protocol::code::NOT_SENT,
        }
    }

    /// Refused for the room limits: close code 4005, the page says so and stops.
    pub fn too_many_rooms(&self) -> bool {
        matches!(self, EngineError::TooManyRooms | EngineError::RoomRate)
    }
}

/// The chat engine: this instance's sockets, and the log their rooms' events go through.
#[derive(Debug)]
pub struct Engine {
    hub: Arc<Hub>,
    log: Arc<dyn EventLog>,
    events: EventCounters,
    /// The presence grace; `None` sends `left` as the last socket closes.
    departures: Option<Departures>,
}

impl Engine {
    /// Rooms in memory only: no history, ids start again after a restart.
    pub fn memory(events: EventCounters, rooms: RoomPolicy) -> Self {
        let hub = Arc::new(Hub::default());
        let log = Arc::new(LocalLog::memory(hub.clone(), rooms));
        Engine::with(hub, log, events)
    }

    /// Every room event is stored before it is delivered, and ids continue from the store.
    /// At most `storage.queue` events wait for it; past that, senders and joiners are refused.
    pub fn sqlite(
        events: EventCounters,
        storage: Storage,
        rooms: RoomPolicy,
    ) -> anyhow::Result<Self> {
        let hub = Arc::new(Hub::default());
        let log = Arc::new(LocalLog::sqlite(hub.clone(), storage, rooms)?);
        Ok(Engine::with(hub, log, events))
    }

    /// Redis shared by many instances; fails if Redis cannot be reached.
    pub async fn redis(settings: RedisSettings, events: EventCounters) -> anyhow::Result<Self> {
        let hub = Arc::new(Hub::default());
        let log = Arc::new(log::redis::RedisLog::connect(settings, hub.clone()).await?);
        Ok(Engine::with(hub, log, events))
    }

    fn with(hub: Arc<Hub>, log: Arc<dyn EventLog>, events: EventCounters) -> Self {
        Engine {
            hub,
            log,
            events,
            departures: None,
        }
    }

    /// A user whose last socket in a room closes stays there for `grace` before `left`
    /// (see `departures`); 0 sends it at once. Starts a task: call within the runtime.
    pub fn presence_grace(mut self, grace: Duration) -> Self {
        self.departures = (!grace.is_zero())
            .then(|| Departures::spawn(grace, self.log.clone(), self.events.clone()));
        self
    }

    /// Above `big.threshold` users a room's `join`s and `left`s go out as one `presence` per
    /// `big.interval`, and its `list` is a first page (see `hub::big`). Starts the task that
    /// sends them, which ends with the hub: call within the runtime.
    pub fn big_rooms(self, big: BigRooms) -> Self {
        self.hub.set_big_rooms(big);
        if big.threshold > 0 {
            let hub = Arc::downgrade(&self.hub);
            tokio::spawn(async move {
                let mut clock = tokio::time::interval(big.interval);
                clock.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    clock.tick().await;
                    let Some(hub) = hub.upgrade() else { return };
                    hub.flush_presence();
                }
            });
        }
        self
    }

    /// Adds a socket to a room. The user's first socket there broadcasts `join`; then the
    /// socket's outbox receives `list`, the users online, and `history`: the recent events,
    /// or with `since` (the last id the client saw) every event after it. Live events follow
    /// with no gap and no overlap.
    pub async fn join(
        &self,
        room: RoomName,
        user: Arc<User>,
        session: SessionId,
        outbox: Outbox,
        since: Option<u64>,
    ) -> Result<Membership, EngineError> {
        let joiner = log::Joiner {
            room,
            user,
            session,
            outbox,
            since,
        };
        let (member, entry) = self.log.join(joiner).await?;
        if entry.joined {
            self.events.join.inc();
        }
        self.hub.settle(&member, entry);
        Ok(member)
    }

    /// Broadcasts chat messages from one sender to the room, in order, each with the room's
    /// next id. Sockets never wait on the engine: what follows arrives in their outboxes.
    /// A message with a `cid` is stored once however often it is sent, and its sender gets an
    /// `ack` with the id it got.
    pub fn chat(
        &self,
        member: &Membership,
        texts: &[(ChatText, Option<Cid>)],
    ) -> Result<(), EngineError> {
        let data: Vec<log::Said<'_>> = texts
            .iter()
            .map(|(text, cid)| log::Said {
                text: text.as_str(),
                cid: cid.as_ref(),
            })
            .collect();
        self.log.publish(member, EventKind::Chat, &data)?;
        self.events.chat.inc_by(texts.len() as u64);
        Ok(())
    }

    /// Broadcasts an uploaded image to the room, with the room's next id.
    pub fn image(
        &self,
        member: &Membership,
        image: &UploadName,
        cid: Option<&Cid>,
    ) -> Result<(), EngineError> {
        let url = image.url();
        self.log
            .publish(member, EventKind::Image, &[log::Said { text: &url, cid }])?;
        self.events.image.inc();
        Ok(())
    }

    /// Sends a `private` event to every socket of the sender and of user `to`. If `to` is
    /// not online, the sender's socket gets an `error` instead.
    pub fn private(
        &self,
        member: &Membership,
        to: u64,
        text: &ChatText,
        cid: Option<&Cid>,
    ) -> Result<Whisper, EngineError> {
        let whisper = self.log.private(member, to, text, cid)?;
        if whisper == Whisper::Delivered {
            self.events.private.inc();
        }
        Ok(whisper)
    }

    /// Sends this socket a page of the history before `before` (a `history` with `before`).
    pub fn history_page(&self, member: &Membership, before: u64) -> Result<(), EngineError> {
        self.log.page(member, before)
    }

    /// Sends this socket a page of its room's users after the cursor `after` (a `users`).
    pub fn users(&self, member: &Membership, after: u64) -> Result<(), EngineError> {
        self.log.users(member, after)
    }

    /// An `error` or `ack` for this socket, after what the log still holds for it.
    pub fn reply(&self, member: &Membership, reply: Reply) {
        self.log.reply(member, reply);
    }

    /// Tells this socket its message was not stored, and why (`not sent: …`, with the
    /// error's `code` and the message's `cid`), after what the log still holds for it.
    pub fn refuse(&self, member: &Membership, e: &EngineError, cid: Option<&Cid>) {
        let text = format!("not sent: {e}");
        self.log.reply(member, Reply::coded(e.code(), text, cid));
    }

    /// Tells every socket on this instance that the ping interval elapsed.
    pub fn tick_all(&self) {
        self.hub.for_each_outbox(Outbox::tick);
        self.log.tick();
    }

    /// Closes every socket on this instance (shutdown).
    pub fn close_all(&self, code: u16, reason: &'static str) {
        self.hub
            .for_each_outbox(|outbox| outbox.signal(Signal::Close(code, reason.into())));
    }

    /// Closes every socket of a user on this instance with `code` and `reason` (a kick or a
    /// ban); returns how many were asked to close.
    pub fn close_user(&self, user: u64, code: u16, reason: &str) -> usize {
        self.hub.close_user(user, code, reason)
    }

    /// The rooms with sockets on this instance, by name after `after`, a bounded page of
    /// them and of each one's users, and whether more rooms follow.
    pub fn rooms_here(
        &self,
        after: Option<&str>,
        limit: usize,
        max_users: usize,
    ) -> (Vec<hub::RoomListing>, bool) {
        self.hub.rooms_page(after, limit, max_users)
    }

    /// The busiest rooms with sockets on this instance, at most `limit`, with their users.
    pub fn busiest_rooms(&self, limit: usize) -> Vec<(RoomName, usize)> {
        self.hub.busiest(limit)
    }

    /// Closes every socket of one sign-in on this instance (signed out); returns how many.
    pub fn close_session(&self, session: &SessionId, code: u16, reason: &'static str) -> usize {
        self.hub.close_session(session, code, reason)
    }

    /// The sign-ins with a socket on this instance.
    pub fn sessions(&self) -> Vec<SessionId> {
        self.hub.sessions()
    }

    /// Removes a socket. The user's last socket in the room broadcasts `left`, after the
    /// presence grace if there is one, and only if no socket of theirs came back meanwhile.
    pub async fn leave(&self, member: Membership) {
        let Some(departures) = &self.departures else {
            if self.log.leave(member) {
                self.events.left.inc();
            }
            return;
        };
        let (room, user) = (member.room.clone(), member.user.clone());
        if self.log.linger(member) == Some(Departure::Lingers) {
            departures.add(room, user);
        }
    }

    /// Deletes messages for a moderator: they leave the history, and each room they leave
    /// gets a `delete` event, so every page drops their lines (see `log::deletion`).
    pub async fn delete(&self, what: Deletion) -> Result<Deleted, DeleteError> {
        self.log.delete(what).await
    }

    /// Resolves once every event so far is stored and delivered, the `left` of every
    /// departure still in its grace included (shutdown).
    pub async fn flush(&self) {
        if let Some(departures) = &self.departures {
            departures.end_all().await;
        }
        self.log.flush().await;
    }

    /// `Err` with a short reason while the engine cannot keep events (`/healthz` says 503).
    pub fn health(&self) -> Result<(), String> {
        self.log.health()
    }

    /// Users online in a room (with Redis: on this instance).
    pub fn online(&self, room: &RoomName) -> usize {
        self.hub.online(room)
    }

    /// Distinct users online in any room (with Redis: on this instance).
    pub fn users_online(&self) -> usize {
        self.hub.users_online()
    }
}
