//! `RedisLog`: many instances behind one load balancer act as one chat.
//!
//! Room events go through Lua scripts (`scripts/*.lua`): one call INCRs the room's sequence
//! for each event, appends it to the room's stream (the history, capped at the retention)
//! and publishes them (a batch of one room's messages in one message), so ids, history and
//! fan-out agree across the cluster. Every instance pattern-subscribes to all rooms and
//! hands what it hears to its hub (`subscriber`).
//!
//! A whisper is one such event of the sender's room (in `scripts/emit.lua`, visible to the
//! pair): every instance hears it on that room's channel, and its hub hands it to the pair's
//! sockets in other rooms through its per-user index, so no script walks their rooms.
//!
//! Presence is counted per user in Redis, and per instance in a hash whose owner keeps a
//! liveness key alive; when that key expires, a survivor reaps the hash and sends `left`
//! for the users who were only there (`heartbeat`).
//!
//! Sockets never wait on Redis: their events go to worker lanes, each room's in order
//! (`worker`), through a queue bounded by `--history-queue` (`queue`); a lane sends a room's
//! queued messages in one script call and its rooms' calls in one round trip (`send`). If the
//! queue is full, the sender gets an `error` (`busy`) and a joiner is closed with 1013. A
//! call whose answer is lost is sent again until Redis answers, and runs once, so `not sent`
//! means not stored; a message with a `cid` gets an `ack` with its id.

mod delete;
mod entry;
mod heartbeat;
mod queue;
mod send;
mod state;
mod subscriber;
mod wire;
mod worker;

use std::{fmt, sync::Arc, time::Duration};

use anyhow::Context;
use futures_util::{FutureExt, future::BoxFuture};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio_util::sync::{CancellationToken, DropGuard};

use self::{
    heartbeat::Heartbeat,
    queue::Jobs,
    state::{Epoch, Seen},
    subscriber::FanOut,
    wire::{Pieces, Scripts},
    worker::{Job, Worker},
};
use super::{Accepted, DeleteError, Deleted, Deletion, Entry, EventLog, Joiner, Said};
use crate::{
    auth::User,
    chat::{
        EngineError, Membership, Whisper,
        hub::{Departure, Hub},
        protocol::{Cid, EventKind, Reply},
        recovery::HistoryPolicy,
        room::RoomName,
        text::ChatText,
    },
    pubsub,
};

/// How the engine reaches Redis and how long a dead instance may look alive.
#[derive(Debug, Clone)]
pub struct RedisSettings {
    pub url: String,
    pub presence_ttl: Duration,
    pub policy: HistoryPolicy,
    /// Messages kept per room stream; 0 keeps none (and no presence either).
    pub max_events: u64,
    /// Events waiting for the worker at most (`--history-queue`).
    pub queue: usize,
    /// `join` and `left` kept per room, in a stream of their own.
    pub max_presence: u64,
    /// Lanes that call Redis side by side, each for its share of the rooms (`--redis-lanes`).
    pub lanes: usize,
    /// Messages of one room sent in one call at most (`--redis-batch`).
    pub batch: usize,
    /// How long a `cid` (and a call's answer) is kept (`--cid-window-secs`).
    pub cid_window: Duration,
}

impl RedisSettings {
    /// The presence stream's bound: none kept when history is off.
    fn presence_kept(&self) -> u64 {
        if self.max_events == 0 {
            0
        } else {
            self.max_presence.max(1)
        }
    }
}

pub struct RedisLog {
    instance: String,
    conn: ConnectionManager,
    scripts: Arc<Scripts>,
    hub: Arc<Hub>,
    seen: Arc<Seen>,
    epoch: Arc<Epoch>,
    settings: RedisSettings,
    jobs: Jobs,
    /// Pages of history being read now (`--history-reads` at most).
    pages: Arc<tokio::sync::Semaphore>,
    /// Stops the subscriber and the heartbeat when the log goes.
    _tasks: DropGuard,
}

impl fmt::Debug for RedisLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisLog")
            .field("instance", &self.instance)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl RedisLog {
    /// Connects, or fails with a clear error if Redis cannot be reached.
    pub async fn connect(settings: RedisSettings, hub: Arc<Hub>) -> anyhow::Result<Self> {
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
        let seen = Arc::new(Seen::new(hub.clone()));
        let epoch = Arc::new(Epoch::default());
        let scripts = Arc::new(Scripts::load());
        let stop = CancellationToken::new();
        // Subscribed before any socket joins, so no event of theirs is missed.
        let subscribed = pubsub::subscribe(&client, subscriber::TOPIC)
            .await
            .with_context(|| format!("cannot subscribe at {}", settings.url))?;
        let fan_out = FanOut {
            conn: conn.clone(),
            hub: hub.clone(),
            seen: seen.clone(),
        };
        let what = "chat events";
        tokio::spawn(pubsub::keep_subscribed(
            client,
            subscriber::TOPIC,
            what,
            subscribed,
            fan_out,
            stop.clone(),
        ));
        let mut heartbeat = Heartbeat {
            conn: conn.clone(),
            scripts: scripts.clone(),
            hub: hub.clone(),
            seen: seen.clone(),
            epoch: epoch.clone(),
            retell: false,
            instance: instance.clone(),
            ttl: settings.presence_ttl,
            max_presence: settings.presence_kept(),
        };
        heartbeat.beat().await.context("registering with Redis")?;
        tokio::spawn(heartbeat.run(stop.clone()));
        let (jobs, lanes) = Jobs::new(settings.queue, settings.lanes);
        for lane in lanes {
            tokio::spawn(
                Worker {
                    conn: conn.clone(),
                    scripts: scripts.clone(),
                    hub: hub.clone(),
                    seen: seen.clone(),
                    epoch: epoch.clone(),
                    instance: instance.clone(),
                    max_events: settings.max_events,
                    max_presence: settings.presence_kept(),
                    batch: settings.batch.max(1),
                    window: settings.cid_window.as_secs().max(1),
                    calls: 0,
                    unsent_leaves: Vec::new(),
                }
                .run(lane),
            );
        }
        tracing::info!(instance, url = settings.url, "chat engine: Redis");
        let pages = Arc::new(tokio::sync::Semaphore::new(settings.policy.reads));
        Ok(RedisLog {
            instance,
            conn,
            scripts,
            hub,
            seen,
            epoch,
            settings,
            jobs,
            pages,
            _tasks: stop.drop_guard(),
        })
    }

    /// Takes the socket out of the hub and, if it was there, tells Redis: only Redis knows
    /// whether it was the user's last socket in the room across the cluster.
    fn depart(&self, member: Membership) {
        if let Some((_, epoch)) = self.epoch.detach(&self.hub, &member) {
            let _ = self.jobs.always(Job::Leave {
                room: member.room,
                user: member.user.id,
                epoch,
            });
        }
    }
}

impl EventLog for RedisLog {
    fn join(&self, joiner: Joiner) -> BoxFuture<'_, Result<(Membership, Entry), EngineError>> {
        self.enter(joiner).boxed()
    }

    fn publish(&self, member: &Membership, kind: EventKind, data: &[Said<'_>]) -> Accepted {
        self.jobs.push(
            data.iter()
                .map(|said| Job::Message {
                    member: member.clone(),
                    to: None,
                    event: Pieces::new(kind, &member.user, said.text),
                    cid: said.cid.cloned(),
                })
                .collect(),
        )
    }

    /// Whether the recipient is online is for Redis to say; if not, the worker answers the
    /// sender with an `error`.
    fn private(
        &self,
        member: &Membership,
        to: u64,
        text: &ChatText,
        cid: Option<&Cid>,
    ) -> Accepted<Whisper> {
        self.jobs.push(vec![Job::Message {
            member: member.clone(),
            to: Some(to),
            event: Pieces::new(EventKind::Private, &member.user, text.as_str()),
            cid: cid.cloned(),
        }])?;
        Ok(Whisper::Delivered)
    }

    /// Through the worker, so it comes after the socket's events still on their way; with
    /// the queue full, at once: out of order beats not told.
    fn reply(&self, member: &Membership, reply: Reply) {
        let job = Job::Reply {
            member: member.clone(),
            reply: reply.clone(),
        };
        if let Err(e) = self.jobs.push(vec![job]) {
            if matches!(e, EngineError::WorkerGone) {
                tracing::error!(
                    user = member.user.id,
                    "reply sent at once: the Redis worker stopped"
                );
            }
            self.hub.reply(member, &reply);
        }
    }

    fn page(&self, member: &Membership, before: u64) -> Accepted {
        RedisLog::page(self, member, before)
    }

    /// Always false: whether `left` goes out is for Redis to decide, later, and whichever
    /// instance's script sends it, none counts it.
    fn leave(&self, member: Membership) -> bool {
        self.depart(member);
        false
    }

    /// A socket that is not the user's last here leaves Redis's counts at once; the last
    /// one stays counted until `depart`, so Redis sees no `left` and, when the user comes
    /// back through any instance meanwhile, no `join`.
    fn linger(&self, member: Membership) -> Option<Departure> {
        let (departure, epoch) = self.epoch.detach_lingering(&self.hub, &member)?;
        if departure != Departure::Lingers {
            let _ = self.jobs.always(Job::Leave {
                room: member.room,
                user: member.user.id,
                epoch,
            });
        }
        Some(departure)
    }

    /// Each lingering socket leaves Redis's counts now, whether or not its user came back
    /// meanwhile: a socket that came back was counted on its own. Redis sends `left` when
    /// a user's count across the cluster reaches 0, once, whichever instance brings it there.
    fn depart(&self, room: &RoomName, users: &[Arc<User>]) -> usize {
        for user in users {
            if let Some(epoch) = self.epoch.depart(&self.hub, room, user.id) {
                let _ = self.jobs.always(Job::Leave {
                    room: room.clone(),
                    user: user.id,
                    epoch,
                });
            }
        }
        0
    }

    fn delete(&self, what: Deletion) -> BoxFuture<'_, Result<Deleted, DeleteError>> {
        self.delete_messages(what).boxed()
    }

    fn flush(&self) -> BoxFuture<'_, ()> {
        async move {
            for lane in self.jobs.flush() {
                let _ = lane.await;
            }
        }
        .boxed()
    }
}
