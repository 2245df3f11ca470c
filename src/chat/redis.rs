//! The Redis engine: many instances behind one load balancer act as one chat.
//!
//! Each room event is one Lua script call (`redis/*.lua`): it INCRs the room's sequence,
//! appends the event to the room's stream (the history, capped at the retention) and
//! publishes it, so ids, history and fan-out agree across the cluster. Every instance
//! pattern-subscribes to all rooms and fans what it hears out to its own sockets through
//! the same outboxes as the embedded engine.
//!
//! Presence is counted per user in Redis, and per instance in a hash whose owner keeps a
//! liveness key alive; when that key expires, a survivor reaps the hash and sends `left`
//! for the users who were only there.
//!
//! Sockets never wait on Redis: their events go to one worker task, in order. If Redis
//! refuses or is gone, the sender gets an `error`.

use std::{
    collections::HashMap,
    fmt,
    sync::{
        Arc, Mutex, MutexGuard,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use futures_util::StreamExt;
use redis::{
    Script,
    aio::{ConnectionManager, ConnectionManagerConfig},
    streams::StreamRangeReply,
};
use serde::Serialize;
use serde_json::value::RawValue;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::{CancellationToken, DropGuard};

use super::{
    EngineError, Membership, Whisper,
    outbox::Outbox,
    protocol::{EventData, EventKind, Frame, HistoryEvent, ServerEvent, now_ms},
    recovery::{self, HistoryPolicy},
    room::RoomName,
    text::ChatText,
};
use crate::{auth::User, metrics::EventCounters, store::history::Visibility, ws::frame};

const PRELUDE: &str = include_str!("redis/prelude.lua");
const CHANNELS: &str = "passerby:room:*";
const CHANNEL_PREFIX: &str = "passerby:room:";

/// How the engine reaches Redis and how long a dead instance may look alive.
#[derive(Debug, Clone)]
pub struct RedisSettings {
    pub url: String,
    pub presence_ttl: Duration,
    pub policy: HistoryPolicy,
    /// Events kept per room stream; 0 keeps none.
    pub max_events: u64,
}

struct Scripts {
    join: Script,
    leave: Script,
    reap: Script,
    rejoin: Script,
    emit: Script,
    private: Script,
}

impl Scripts {
    fn load() -> Scripts {
        let with_prelude = |body: &str| Script::new(&format!("{PRELUDE}\n{body}"));
        Scripts {
            join: with_prelude(include_str!("redis/join.lua")),
            leave: with_prelude(include_str!("redis/leave.lua")),
            reap: with_prelude(include_str!("redis/reap.lua")),
            rejoin: with_prelude(include_str!("redis/rejoin.lua")),
            emit: with_prelude(include_str!("redis/emit.lua")),
            private: with_prelude(include_str!("redis/private.lua")),
        }
    }
}

type Rooms = Mutex<HashMap<RoomName, LocalRoom>>;

/// This instance's sockets in one room.
#[derive(Debug, Default)]
struct LocalRoom {
    sockets: HashMap<u64, Socket>,
    /// Sockets per user here: for `online`, and to tell Redis again if it forgot them.
    users: HashMap<u64, (u32, Arc<User>)>,
}

/// Bumped each time this instance tells Redis again who is here. A leave counted before
/// that must not be sent after it: the retelling already left that socket out.
type Epoch = AtomicU64;

/// The highest id this instance saw in each room; it outlives the room's sockets.
type Seen = Mutex<HashMap<RoomName, u64>>;

#[derive(Debug)]
struct Socket {
    user_id: u64,
    outbox: Outbox,
    /// Events up to this id reach the socket through `history`, not live.
    floor: u64,
    /// The last id the socket was sent; an `error` reply reuses it.
    last: u64,
    /// While joining: what was published before the socket knew its floor.
    pending: Option<Vec<Published>>,
}

#[derive(Debug, Clone)]
struct Published {
    id: u64,
    visible: Visibility,
    frame: Frame,
}

/// Work for the worker task, done in the order the sockets asked.
#[derive(Debug)]
enum Job {
    Emit {
        member: Key,
        body: String,
    },
    Private {
        member: Key,
        to: u64,
        head: String,
        tail: String,
    },
    Error {
        member: Key,
        message: String,
    },
    Leave {
        room: RoomName,
        user: u64,
        epoch: u64,
    },
    Flush(oneshot::Sender<()>),
}

/// A socket, as jobs name it.
#[derive(Debug, Clone)]
struct Key {
    room: RoomName,
    socket: u64,
    user: Arc<User>,
}

impl From<&Membership> for Key {
    fn from(m: &Membership) -> Key {
        Key {
            room: m.room.clone(),
            socket: m.socket,
            user: m.user.clone(),
        }
    }
}

pub struct RedisEngine {
    instance: String,
    conn: ConnectionManager,
    scripts: Arc<Scripts>,
    rooms: Arc<Rooms>,
    seen: Arc<Seen>,
    epoch: Arc<Epoch>,
    next_socket: AtomicU64,
    events: EventCounters,
    settings: RedisSettings,
    jobs: mpsc::UnboundedSender<Job>,
    /// Stops the subscriber and the heartbeat when the engine goes.
    _tasks: DropGuard,
}

impl fmt::Debug for RedisEngine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisEngine")
            .field("instance", &self.instance)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl RedisEngine {
    /// Connects, or fails with a clear error if Redis cannot be reached.
    pub async fn connect(settings: RedisSettings, events: EventCounters) -> anyhow::Result<Self> {
        use anyhow::Context;
        let client = redis::Client::open(settings.url.as_str())
            .with_context(|| format!("bad Redis URL {}", settings.url))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(2)))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_secs(1));
        let mut conn = ConnectionManager::new_with_config(client.clone(), config)
            .await
            .with_context(|| format!("cannot reach Redis at {}", settings.url))?;
        redis::cmd("PING")
            .query_async::<()>(&mut conn)
            .await
            .with_context(|| format!("cannot use Redis at {}", settings.url))?;
        // Not a counter in Redis: a Redis that restarted empty would hand out a live
        // instance's id again.
        let instance = format!(
            "{}-{:x}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        );
        let rooms = Arc::new(Rooms::default());
        let seen = Arc::new(Seen::default());
        let epoch = Arc::new(Epoch::default());
        let scripts = Arc::new(Scripts::load());
        let stop = CancellationToken::new();
        // Subscribed before any socket joins, so no event of theirs is missed.
        let subscribed = subscribe(&client)
            .await
            .with_context(|| format!("cannot subscribe at {}", settings.url))?;
        tokio::spawn(keep_subscribed(
            client,
            conn.clone(),
            rooms.clone(),
            seen.clone(),
            subscribed,
            stop.clone(),
        ));
        let heartbeat = Heartbeat {
            conn: conn.clone(),
            scripts: scripts.clone(),
            rooms: rooms.clone(),
            seen: seen.clone(),
            epoch: epoch.clone(),
            retell: false,
            instance: instance.clone(),
            ttl: settings.presence_ttl,
            max_events: settings.max_events,
        };
        let mut heartbeat = heartbeat;
        heartbeat.beat().await.context("registering with Redis")?;
        tokio::spawn(heartbeat.run(stop.clone()));
        let (jobs, queue) = mpsc::unbounded_channel();
        tokio::spawn(
            Worker {
                conn: conn.clone(),
                scripts: scripts.clone(),
                rooms: rooms.clone(),
                seen: seen.clone(),
                epoch: epoch.clone(),
                instance: instance.clone(),
                max_events: settings.max_events,
                unsent_leaves: Vec::new(),
            }
            .run(queue),
        );
        tracing::info!(instance, url = settings.url, "chat engine: Redis");
        Ok(RedisEngine {
            instance,
            conn,
            scripts,
            rooms,
            seen,
            epoch,
            next_socket: AtomicU64::new(0),
            events,
            settings,
            jobs,
            _tasks: stop.drop_guard(),
        })
    }

    pub async fn join(
        &self,
        room_name: RoomName,
        user: Arc<User>,
        outbox: Outbox,
        since: Option<u64>,
    ) -> Result<Membership, EngineError> {
        let socket = self.next_socket.fetch_add(1, Ordering::Relaxed);
        {
            let mut rooms = lock(&self.rooms);
            let room = rooms.entry(room_name.clone()).or_default();
            room.sockets.insert(
                socket,
                Socket {
                    user_id: user.id,
                    outbox: outbox.clone(),
                    floor: u64::MAX,
                    last: 0,
                    pending: Some(Vec::new()),
                },
            );
            room.users.entry(user.id).or_insert((0, user.clone())).0 += 1;
        }
        let membership = Membership {
            room: room_name,
            user,
            socket,
        };
        match self.enter(&membership, &outbox, since).await {
            Ok(()) => Ok(membership),
            Err(e) => {
                remove(&self.rooms, &membership, &self.epoch);
                Err(unavailable(&e))
            }
        }
    }

    /// The Redis side of `join`, then the socket's first frames and what it heard meanwhile.
    async fn enter(
        &self,
        member: &Membership,
        outbox: &Outbox,
        since: Option<u64>,
    ) -> redis::RedisResult<()> {
        let user = &member.user;
        let (joined_body, left_body) = presence_templates(user);
        let mut conn = self.conn.clone();
        let (before, joined, list_id, history_id, users, first): (
            u64,
            String,
            u64,
            u64,
            String,
            u64,
        ) = self
            .scripts
            .join
            .arg(member.room.as_str())
            .arg(&self.instance)
            .arg(user.id)
            .arg(serde_json::to_string(&**user).expect("users serialize"))
            .arg(joined_body)
            .arg(left_body)
            .arg(self.settings.max_events)
            .arg(seen(&self.seen, &member.room))
            .invoke_async(&mut conn)
            .await?;
        see(&self.seen, &member.room, history_id);
        if !joined.is_empty() {
            self.events.join.inc();
        }
        let pruned_through = if first == 0 { before } else { first - 1 };
        let plan = recovery::plan(since, before, pruned_through, self.settings.policy);
        let stored = if plan.limit == 0 || before <= plan.after {
            Vec::new()
        } else {
            let reply: StreamRangeReply = redis::cmd("XREVRANGE")
                .arg(stream_key(&member.room))
                .arg(format!("{before}-0"))
                .arg(format!("{}-0", plan.after + 1))
                .arg("COUNT")
                .arg(plan.limit)
                .query_async(&mut conn)
                .await?;
            let mut bodies: Vec<Box<RawValue>> = reply
                .ids
                .iter()
                .filter(|entry| {
                    entry
                        .get::<String>("v")
                        .and_then(|v| parse_visibility(&v))
                        .is_some_and(|v| v.allows(user.id))
                })
                .filter_map(|entry| entry.get::<String>("b"))
                .filter_map(|body| RawValue::from_string(body).ok())
                .collect();
            bodies.reverse();
            bodies
        };
        let users: Vec<User> = serde_json::from_str(&users).unwrap_or_default();
        let users: Vec<&User> = users.iter().collect();
        let list = ServerEvent {
            id: list_id,
            kind: EventKind::List,
            user,
            data: EventData::Users(&users),
            time: now_ms(),
            count: Some(users.len()),
        }
        .to_frame();
        let data: Vec<&RawValue> = stored.iter().map(|b| &**b).collect();
        let history = HistoryEvent {
            id: history_id,
            kind: EventKind::History,
            user,
            data: &data,
            time: now_ms(),
            truncated: plan.truncated,
        }
        .to_frame();
        let mut rooms = lock(&self.rooms);
        let Some(socket) = rooms
            .get_mut(&member.room)
            .and_then(|room| room.sockets.get_mut(&member.socket))
        else {
            return Ok(());
        };
        if !joined.is_empty() {
            let _ = outbox.push(text_frame(joined.as_bytes()));
        }
        let _ = outbox.push(list);
        let _ = outbox.push(history);
        socket.floor = history_id;
        socket.last = history_id;
        for event in socket.pending.take().unwrap_or_default() {
            socket.deliver(&event);
        }
        Ok(())
    }

    pub fn chat(&self, member: &Membership, texts: &[ChatText]) -> Result<(), EngineError> {
        for text in texts {
            let body = template(EventKind::Chat, &member.user, text.as_str());
            self.send(Job::Emit {
                member: member.into(),
                body,
            })?;
        }
        self.events.chat.inc_by(texts.len() as u64);
        Ok(())
    }

    pub fn image(
        &self,
        member: &Membership,
        image: &crate::upload::UploadName,
    ) -> Result<(), EngineError> {
        let body = template(EventKind::Image, &member.user, &image.url());
        self.send(Job::Emit {
            member: member.into(),
            body,
        })?;
        self.events.image.inc();
        Ok(())
    }

    /// Whether the recipient is online is for Redis to say; if not, the worker answers the
    /// sender with an `error`.
    pub fn private(
        &self,
        member: &Membership,
        to: u64,
        text: &ChatText,
    ) -> Result<Whisper, EngineError> {
        let body = serde_json::to_string(&PrivateTemplate {
            id: 0,
            kind: EventKind::Private,
            user: &member.user,
            to: 0,
            data: text.as_str(),
            time: 0,
        })
        .expect("events serialize");
        let (head, tail) = body
            .split_once(TO_MARK)
            .expect("the template has its recipient mark");
        self.send(Job::Private {
            member: member.into(),
            to,
            head: format!("{head}\"to\":"),
            tail: format!(",{tail}"),
        })?;
        Ok(Whisper::Delivered)
    }

    pub fn reply_error(&self, member: &Membership, message: &str) {
        let job = Job::Error {
            member: member.into(),
            message: message.to_owned(),
        };
        if let Err(mpsc::error::SendError(job)) = self.jobs.send(job) {
            tracing::error!(?job, "error reply lost: the Redis worker stopped");
        }
    }

    pub fn leave(&self, member: Membership) {
        if let Some(epoch) = remove(&self.rooms, &member, &self.epoch) {
            let _ = self.jobs.send(Job::Leave {
                room: member.room,
                user: member.user.id,
                epoch,
            });
        }
    }

    pub async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        if self.jobs.send(Job::Flush(tx)).is_ok() {
            let _ = rx.await;
        }
    }

    pub fn for_each_outbox(&self, f: impl Fn(&Outbox)) {
        for room in lock(&self.rooms).values() {
            room.sockets.values().for_each(|socket| f(&socket.outbox));
        }
    }

    /// Users on this instance in the room.
    pub fn online(&self, room: &RoomName) -> usize {
        lock(&self.rooms).get(room).map_or(0, |r| r.users.len())
    }

    /// Distinct users on this instance.
    pub fn users_online(&self) -> usize {
        let rooms = lock(&self.rooms);
        let mut users = std::collections::HashSet::new();
        for room in rooms.values() {
            users.extend(room.users.keys().copied());
        }
        users.len()
    }

    fn send(&self, job: Job) -> Result<(), EngineError> {
        self.jobs
            .send(job)
            .map_err(|_| EngineError::Unavailable("the Redis worker stopped".into()))
    }
}

const TO_MARK: &str = "\"to\":0,";

#[derive(Serialize)]
struct PrivateTemplate<'a> {
    id: u64,
    #[serde(rename = "type")]
    kind: EventKind,
    user: &'a User,
    /// Redis fills in the recipient, whose details only it knows.
    to: u8,
    data: &'a str,
    time: u64,
}

/// An event serialized with id 0 and time 0, for a script to complete (see `prelude.lua`).
fn template(kind: EventKind, user: &User, text: &str) -> String {
    let body = serde_json::to_string(&ServerEvent {
        id: 0,
        kind,
        user,
        data: EventData::Text(text),
        time: 0,
        count: None,
    })
    .expect("events serialize");
    debug_assert!(body.starts_with("{\"id\":0,") && body.ends_with(",\"time\":0}"));
    body
}

/// A user's `join` and `left`, for the scripts to complete.
fn presence_templates(user: &User) -> (String, String) {
    (
        template(EventKind::Join, user, &format!("{} joined.", user.name)),
        template(EventKind::Left, user, &format!("{} is left.", user.name)),
    )
}

fn text_frame(json: &[u8]) -> Frame {
    frame::text(|buf| buf.extend_from_slice(json))
}

fn stream_key(room: &RoomName) -> String {
    format!("passerby:room:{room}:stream")
}

fn parse_visibility(v: &str) -> Option<Visibility> {
    let (a, b) = v.split_once(' ')?;
    let (a, b) = (a.parse().ok()?, b.parse().ok()?);
    Some(if (a, b) == (0, 0) {
        Visibility::Room
    } else {
        Visibility::Pair(a, b)
    })
}

/// A published message: `<id> <a> <b> <json>`, where `a b` is `0 0` or the pair who may see it.
fn parse_published(payload: &[u8]) -> Option<Published> {
    let mut parts = payload.splitn(4, |&b| b == b' ');
    let id = std::str::from_utf8(parts.next()?).ok()?.parse().ok()?;
    let a = std::str::from_utf8(parts.next()?).ok()?;
    let b = std::str::from_utf8(parts.next()?).ok()?;
    let visible = parse_visibility(&format!("{a} {b}"))?;
    Some(Published {
        id,
        visible,
        frame: text_frame(parts.next()?),
    })
}

fn unavailable(e: &redis::RedisError) -> EngineError {
    EngineError::Unavailable(format!("Redis: {e}"))
}

impl Socket {
    fn deliver(&mut self, event: &Published) {
        if let Some(pending) = &mut self.pending {
            pending.push(event.clone());
        } else if event.id > self.floor.max(self.last) && event.visible.allows(self.user_id) {
            // `last` also drops what a catch-up after a lost subscription already gave.
            self.last = event.id;
            // A full outbox marks its socket for closing; its task does the rest.
            let _ = self.outbox.push(event.frame.clone());
        }
    }
}

fn seen(seen: &Seen, room: &RoomName) -> u64 {
    seen.lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(room)
        .copied()
        .unwrap_or(0)
}

fn see(seen: &Seen, room: &RoomName, id: u64) {
    let mut seen = seen.lock().unwrap_or_else(|p| p.into_inner());
    let last = seen.entry(room.clone()).or_default();
    *last = (*last).max(id);
}

fn lock(rooms: &Rooms) -> MutexGuard<'_, HashMap<RoomName, LocalRoom>> {
    rooms.lock().unwrap_or_else(|p| p.into_inner())
}

/// Takes the socket off this instance; if it was there, the epoch it left in (read under
/// the same lock the retelling reads the sockets under).
fn remove(rooms: &Rooms, member: &Membership, epoch: &Epoch) -> Option<u64> {
    let mut rooms = lock(rooms);
    let room = rooms.get_mut(&member.room)?;
    room.sockets.remove(&member.socket)?;
    let epoch = epoch.load(Ordering::SeqCst);
    if let Some((n, _)) = room.users.get_mut(&member.user.id) {
        *n -= 1;
        if *n == 0 {
            room.users.remove(&member.user.id);
        }
    }
    if room.sockets.is_empty() {
        rooms.remove(&member.room);
    }
    Some(epoch)
}

fn fan_out(rooms: &Rooms, seen: &Seen, channel: &str, payload: &[u8]) {
    let Some(room) = channel
        .strip_prefix(CHANNEL_PREFIX)
        .and_then(|r| RoomName::parse(r).ok())
    else {
        return;
    };
    let Some(event) = parse_published(payload) else {
        tracing::warn!(channel, "unreadable message from Redis");
        return;
    };
    deliver(rooms, seen, &room, &event);
}

fn deliver(rooms: &Rooms, seen: &Seen, room: &RoomName, event: &Published) {
    see(seen, room, event.id);
    if let Some(room) = lock(rooms).get_mut(room) {
        room.sockets.values_mut().for_each(|s| s.deliver(event));
    }
}

/// After a lost subscription: what was published meanwhile, from the streams, so live
/// sockets see no gap.
async fn catch_up(
    conn: &mut ConnectionManager,
    rooms: &Rooms,
    seen: &Seen,
) -> redis::RedisResult<()> {
    let names: Vec<RoomName> = lock(rooms).keys().cloned().collect();
    for room in names {
        let after = self::seen(seen, &room);
        let reply: StreamRangeReply = redis::cmd("XRANGE")
            .arg(stream_key(&room))
            .arg(format!("{}-0", after + 1))
            .arg("+")
            .query_async(conn)
            .await?;
        for entry in &reply.ids {
            let id = entry.id.split('-').next().and_then(|id| id.parse().ok());
            let visible = entry.get::<String>("v").and_then(|v| parse_visibility(&v));
            let body = entry.get::<String>("b");
            if let (Some(id), Some(visible), Some(body)) = (id, visible, body) {
                let event = Published {
                    id,
                    visible,
                    frame: text_frame(body.as_bytes()),
                };
                deliver(rooms, seen, &room, &event);
            }
        }
    }
    Ok(())
}

async fn subscribe(client: &redis::Client) -> redis::RedisResult<redis::aio::PubSubStream> {
    let mut pubsub = client.get_async_pubsub().await?;
    pubsub.psubscribe(CHANNELS).await?;
    Ok(pubsub.into_on_message())
}

/// Fans out what Redis publishes; when the subscription drops, subscribes again.
async fn keep_subscribed(
    client: redis::Client,
    mut conn: ConnectionManager,
    rooms: Arc<Rooms>,
    seen: Arc<Seen>,
    mut messages: redis::aio::PubSubStream,
    stop: CancellationToken,
) {
    loop {
        loop {
            let message = tokio::select! {
                () = stop.cancelled() => return,
                message = messages.next() => message,
            };
            let Some(message) = message else { break };
            fan_out(
                &rooms,
                &seen,
                message.get_channel_name(),
                message.get_payload_bytes(),
            );
        }
        tracing::error!("lost the Redis subscription; subscribing again");
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(Duration::from_millis(250)) => {}
            }
            match subscribe(&client).await {
                Ok(stream) => {
                    tracing::info!("subscribed to Redis again");
                    messages = stream;
                    if let Err(e) = catch_up(&mut conn, &rooms, &seen).await {
                        tracing::warn!(error = %e, "could not catch up from Redis");
                    }
                    break;
                }
                Err(e) => tracing::warn!(error = %e, "cannot subscribe to Redis yet"),
            }
        }
    }
}

/// Keeps this instance alive in Redis and reaps the instances that stopped doing so.
struct Heartbeat {
    conn: ConnectionManager,
    scripts: Arc<Scripts>,
    rooms: Arc<Rooms>,
    seen: Arc<Seen>,
    epoch: Arc<Epoch>,
    /// Redis forgot this instance and has not been fully told again yet.
    retell: bool,
    instance: String,
    ttl: Duration,
    max_events: u64,
}

impl Heartbeat {
    /// Redis forgot this instance (it restarted empty, or took the instance for dead): tells
    /// it again who is here.
    /// `forgotten`: Redis just turned out to have forgotten us (not a retry after a failure),
    /// so leaves counted until now are void.
    async fn rejoin(
        &self,
        conn: &mut ConnectionManager,
        forgotten: bool,
    ) -> redis::RedisResult<()> {
        let here: Vec<(RoomName, u32, Arc<User>)> = {
            let rooms = lock(&self.rooms);
            if forgotten {
                self.epoch.fetch_add(1, Ordering::SeqCst);
            }
            rooms
                .iter()
                .flat_map(|(room, local)| {
                    local
                        .users
                        .values()
                        .map(move |(n, user)| (room.clone(), *n, user.clone()))
                })
                .collect()
        };
        let mut rejoined = 0;
        for (room, sockets, user) in here {
            let (joined_body, left_body) = presence_templates(&user);
            let done: u64 = self
                .scripts
                .rejoin
                .arg(room.as_str())
                .arg(&self.instance)
                .arg(user.id)
                .arg(sockets)
                .arg(serde_json::to_string(&*user).expect("users serialize"))
                .arg(joined_body)
                .arg(left_body)
                .arg(self.max_events)
                .arg(seen(&self.seen, &room))
                .invoke_async(conn)
                .await?;
            rejoined += done;
        }
        if rejoined > 0 {
            tracing::warn!(
                rejoined,
                "Redis had lost this instance's users; told it again"
            );
        }
        Ok(())
    }

    async fn run(mut self, stop: CancellationToken) {
        // Three beats per TTL: one lost beat does not make a live instance look dead.
        let mut ticks = tokio::time::interval(self.ttl / 3);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = stop.cancelled() => break,
                _ = ticks.tick() => {}
            }
            if let Err(e) = self.beat().await {
                tracing::warn!(error = %e, "Redis heartbeat failed");
            }
        }
        // Shutting down: leave no liveness behind, so survivors reap at once.
        let mut conn = self.conn.clone();
        let _: redis::RedisResult<()> = redis::cmd("DEL")
            .arg(format!("passerby:instance:{}", self.instance))
            .query_async(&mut conn)
            .await;
    }

    async fn beat(&mut self) -> redis::RedisResult<()> {
        let mut conn = self.conn.clone();
        let ttl_ms = u64::try_from(self.ttl.as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        let (was_alive,): (Option<String>,) = redis::pipe()
            .cmd("SET")
            .arg(format!("passerby:instance:{}", self.instance))
            .arg(1)
            .arg("PX")
            .arg(ttl_ms)
            .arg("GET")
            .cmd("SADD")
            .arg("passerby:instances")
            .arg(&self.instance)
            .ignore()
            .query_async(&mut conn)
            .await?;
        let forgotten = was_alive.is_none();
        if forgotten || self.retell {
            self.retell = true;
            self.rejoin(&mut conn, forgotten).await?;
            self.retell = false;
        }
        let instances: Vec<String> = redis::cmd("SMEMBERS")
            .arg("passerby:instances")
            .query_async(&mut conn)
            .await?;
        for other in instances.iter().filter(|i| **i != self.instance) {
            let reaped: u64 = self
                .scripts
                .reap
                .arg(other)
                .arg(self.max_events)
                .invoke_async(&mut conn)
                .await?;
            if reaped == 1 {
                tracing::warn!(instance = other, "reaped a dead instance's users");
            }
        }
        Ok(())
    }
}

struct Worker {
    conn: ConnectionManager,
    scripts: Arc<Scripts>,
    rooms: Arc<Rooms>,
    seen: Arc<Seen>,
    epoch: Arc<Epoch>,
    instance: String,
    max_events: u64,
    /// Sockets that closed while Redis was away: their users are still online there.
    unsent_leaves: Vec<(RoomName, u64, u64)>,
}

impl Worker {
    async fn run(mut self, mut queue: mpsc::UnboundedReceiver<Job>) {
        let mut retry = tokio::time::interval(Duration::from_secs(1));
        loop {
            let job = tokio::select! {
                job = queue.recv() => match job {
                    Some(job) => job,
                    None => return,
                },
                _ = retry.tick() => {
                    self.retry_leaves().await;
                    continue;
                }
            };
            self.run_job(job).await;
        }
    }

    async fn run_job(&mut self, job: Job) {
        match job {
            Job::Emit { member, body } => {
                let sent: redis::RedisResult<String> = self
                    .scripts
                    .emit
                    .arg(member.room.as_str())
                    .arg(body)
                    .arg(self.max_events)
                    .arg(0)
                    .arg(seen(&self.seen, &member.room))
                    .arg(member.user.id)
                    .invoke_async(&mut self.conn)
                    .await;
                if let Err(e) = sent {
                    self.not_sent(&member, &e);
                }
            }
            Job::Private {
                member,
                to,
                head,
                tail,
            } => {
                let sent: redis::RedisResult<u64> = self
                    .scripts
                    .private
                    .arg(member.user.id)
                    .arg(to)
                    .arg(head)
                    .arg(tail)
                    .arg(self.max_events)
                    .invoke_async(&mut self.conn)
                    .await;
                match sent {
                    Ok(0) => self.reply(&member, &format!("user {to} is not online")),
                    Ok(_) => {}
                    Err(e) => self.not_sent(&member, &e),
                }
            }
            Job::Error { member, message } => self.reply(&member, &message),
            Job::Leave { room, user, epoch } => {
                if let Err(e) = self.leave(&room, user, epoch).await {
                    tracing::error!(user, error = %e, "left not sent yet: Redis");
                    self.unsent_leaves.push((room, user, epoch));
                }
            }
            Job::Flush(done) => {
                let _ = done.send(());
            }
        }
    }

    async fn leave(&mut self, room: &RoomName, user: u64, epoch: u64) -> redis::RedisResult<()> {
        if epoch != self.epoch.load(Ordering::SeqCst) {
            return Ok(());
        }
        self.scripts
            .leave
            .arg(room.as_str())
            .arg(&self.instance)
            .arg(user)
            .arg(self.max_events)
            .arg(seen(&self.seen, room))
            .invoke_async::<u64>(&mut self.conn)
            .await
            .map(drop)
    }

    async fn retry_leaves(&mut self) {
        while let Some((room, user, epoch)) = self.unsent_leaves.pop() {
            if self.leave(&room, user, epoch).await.is_err() {
                self.unsent_leaves.push((room, user, epoch));
                return;
            }
        }
    }

    fn not_sent(&self, member: &Key, e: &redis::RedisError) {
        tracing::warn!(user = member.user.id, error = %e, "message not sent");
        self.reply(member, &format!("not sent: {}", unavailable(e)));
    }

    /// An `error` to one socket, carrying the last id it was sent: it makes no id of its own.
    fn reply(&self, member: &Key, message: &str) {
        let rooms = lock(&self.rooms);
        let Some(socket) = rooms
            .get(&member.room)
            .and_then(|room| room.sockets.get(&member.socket))
        else {
            tracing::debug!(
                user = member.user.id,
                message,
                "no socket for the error reply"
            );
            return;
        };
        let pushed = socket.outbox.push(
            ServerEvent {
                id: socket.last,
                kind: EventKind::Error,
                user: &member.user,
                data: EventData::Text(message),
                time: now_ms(),
                count: None,
            }
            .to_frame(),
        );
        tracing::debug!(?pushed, message, "error reply");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::UserName;

    #[test]
    fn templates_leave_room_for_the_id_and_time_only_at_their_ends() {
        let user = User::guest(7, UserName::parse("a").unwrap());
        let body = template(EventKind::Chat, &user, "say \"time\":0}");
        assert!(body.starts_with("{\"id\":0,"));
        assert!(body.ends_with(",\"time\":0}"));
    }

    #[test]
    fn a_whisper_template_splits_at_its_recipient_whatever_the_names_and_text() {
        let name = UserName::parse("a\"to\":0,").unwrap_or_else(|_| UserName::parse("a").unwrap());
        let user = User::guest(7, name);
        let body = serde_json::to_string(&PrivateTemplate {
            id: 0,
            kind: EventKind::Private,
            user: &user,
            to: 0,
            data: "\"to\":0,",
            time: 0,
        })
        .unwrap();
        let (head, tail) = body.split_once(TO_MARK).unwrap();
        let whole = format!("{head}\"to\":{{\"id\":9}},{tail}");
        let event: serde_json::Value = serde_json::from_str(&whole).unwrap();
        assert_eq!(event["to"]["id"], 9);
        assert_eq!(event["user"]["name"], user.name);
        assert_eq!(event["data"], "\"to\":0,");
    }

    #[test]
    fn published_messages_carry_id_visibility_and_the_event() {
        let event = parse_published(b"12 3 4 {\"id\":12}").unwrap();
        assert_eq!(event.id, 12);
        assert_eq!(event.visible, Visibility::Pair(3, 4));
        assert_eq!(frame::payload(&event.frame), b"{\"id\":12}");
        assert_eq!(
            parse_published(b"5 0 0 {}").unwrap().visible,
            Visibility::Room
        );
        assert!(parse_published(b"x 0 0 {}").is_none());
    }
}
