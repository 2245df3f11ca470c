//! The Redis engine: many instances behind one load balancer act as one chat.
//!
//! Each room event is one Lua script call (`scripts/*.lua`): it INCRs the room's sequence,
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

mod entry;
mod heartbeat;
mod rooms;
mod subscriber;
mod wire;
mod worker;

use std::{
    fmt,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::{CancellationToken, DropGuard};

use self::{
    heartbeat::Heartbeat,
    rooms::{Epoch, Rooms, Seen, Socket, lock, remove},
    subscriber::{keep_subscribed, subscribe},
    wire::{Pieces, Scripts},
    worker::{Job, Worker},
};
use super::{
    EngineError, Membership, Whisper, outbox::Outbox, protocol::EventKind, recovery::HistoryPolicy,
    room::RoomName, text::ChatText,
};
use crate::{auth::User, metrics::EventCounters};

/// How the engine reaches Redis and how long a dead instance may look alive.
#[derive(Debug, Clone)]
pub struct RedisSettings {
    pub url: String,
    pub presence_ttl: Duration,
    pub policy: HistoryPolicy,
    /// Events kept per room stream; 0 keeps none.
    pub max_events: u64,
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

    pub fn chat(&self, member: &Membership, texts: &[ChatText]) -> Result<(), EngineError> {
        for text in texts {
            self.send(Job::Emit {
                member: member.into(),
                event: Pieces::new(EventKind::Chat, &member.user, text.as_str()),
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
        self.send(Job::Emit {
            member: member.into(),
            event: Pieces::new(EventKind::Image, &member.user, &image.url()),
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
        self.send(Job::Private {
            member: member.into(),
            to,
            event: Pieces::new(EventKind::Private, &member.user, text.as_str()),
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

fn unavailable(e: &redis::RedisError) -> EngineError {
    EngineError::Unavailable(format!("Redis: {e}"))
}
