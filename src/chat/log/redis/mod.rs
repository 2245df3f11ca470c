//! `RedisLog`: many instances behind one load balancer act as one chat.
//!
//! Room events go through Lua scripts (`scripts/*.lua`): one call INCRs the room's sequence
//! for each event, appends it to the room's stream (the history, capped at the retention)
//! and publishes them (a batch of one room's messages in one message), so ids, history and
//! fan-out agree across the cluster. Every instance pattern-subscribes to all rooms and
//! hands what it hears to its hub (`subscriber`); what its sockets missed (a lost or
//! silent subscription, a Redis that lost data) is sent from the streams or told to them as
//! `truncated` (`gaps`), and ids never go back below the instance's floor in its data dir
//! (`store::Floor`).
//!
//! A whisper is one such event of the sender's room (in `scripts/emit.lua`, visible to the
//! pair), once the sender's instance found the recipient in some room (`global`): every
//! instance hears it on that room's channel, and its hub hands it to the pair's sockets in
//! other rooms through its per-user index, so no script walks their rooms.
//!
//! Presence is one entry per socket in its room, with its own expiry
//! (`scripts/presence.lua`): a user is in a room while any of their entries is, `join` goes
//! out when the first comes and `left` when the last goes or expires, once. Adding an entry
//! that is there, or taking out one that is gone, changes nothing, so a script retried or
//! run late by a stalled Redis counts nothing twice (`presence`); a join that timed out is
//! taken out again. Each beat refreshes this instance's entries, a call per room in one
//! round trip, and reaps the entries nobody refreshed, in those rooms and in rooms no live
//! instance beats; after a pause in everyone's beats (Redis stopped or restarted) nothing is
//! reaped until every instance has had a TTL to refresh, and entries Redis forgot are put
//! back without a `join` (`heartbeat`).
//!
//! A room's keys share its hash tag and every script keeps to its room's slot, so rooms can
//! spread over a Redis Cluster (`keys`); what crosses rooms is written apart (`global`).
//! Idle rooms expire and streams are trimmed by age too (`scripts/prelude.lua`).
//!
//! Sockets never wait on Redis: their events go to worker lanes, each room's in order
//! (`worker`), through a queue bounded by `--history-queue` (`queue`); a lane sends a room's
//! queued messages in one script call and its rooms' calls in one round trip (`send`). If the
//! queue is full, the sender gets an `error` (`busy`) and a joiner is closed with 1013. A
//! call whose answer is lost is sent again until Redis answers, and runs once, so `not sent`
//! means not stored; a message with a `cid` gets an `ack` with its id.

mod delete;
mod entry;
mod gaps;
mod global;
mod heartbeat;
mod keys;
mod presence;
mod queue;
mod send;
mod sockets;
mod state;
mod subscriber;
mod users;
mod wire;
mod worker;

use std::{fmt, sync::Arc, time::Duration};

use anyhow::Context;
use futures_util::{FutureExt, future::BoxFuture};
use tokio_util::sync::{CancellationToken, DropGuard};

use self::{
    gaps::{Bound, Gaps},
    heartbeat::Heartbeat,
    presence::Leaves,
    queue::Jobs,
    sockets::Sockets,
    state::Seen,
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
    redis_conn::{RedisConn, RedisTarget},
    store::Floor,
};

/// How the engine reaches Redis and how long a dead instance may look alive.
#[derive(Debug, Clone)]
pub struct RedisSettings {
    pub target: RedisTarget,
    pub presence_ttl: Duration,
    pub policy: HistoryPolicy,
    /// Messages kept per room stream; 0 keeps none (and no presence either).
    pub max_events: u64,
    /// Events waiting for the worker at most (`--history-queue`).
    pub queue: usize,
    /// `join` and `left` kept per room, in a stream of their own.
    pub max_presence: u64,
    /// What Redis is raised to, kept in the data dir.
    pub floor: Arc<Floor>,
    /// `--redis-position-check`.
    pub position_check: Duration,
    /// `--redis-subscriber-timeout`.
    pub subscriber_timeout: Duration,
    /// Lanes that call Redis side by side, each for its share of the rooms (`--redis-lanes`).
    pub lanes: usize,
    /// Messages of one room sent in one call at most (`--redis-batch`).
    pub batch: usize,
    /// How long a `cid` (and a call's answer) is kept (`--cid-window-secs`).
    pub cid_window: Duration,
    /// How long the keys of a room nobody is in or writes to live (`--redis-room-ttl`).
    pub room_ttl: Duration,
    /// Messages older than this leave the room's stream (`--history-max-age-days`).
    pub max_age: Option<Duration>,
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
    conn: RedisConn,
    scripts: Arc<Scripts>,
    hub: Arc<Hub>,
    seen: Arc<Seen>,
    sockets: Arc<Sockets>,
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
        let client = settings.target.clients()?;
        let mut conn = settings.target.connect().await?;
        let url = settings.target.url.clone();
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
        let sockets = Arc::new(Sockets::default());
        let scripts = Arc::new(Scripts::load(
            settings.floor.clone(),
            settings.max_age,
            settings.room_ttl,
        ));
        // Before any script runs: rooms kept under the old layout are moved under their
        // hash tags, with their ids, history and epoch.
        keys::upgrade(&mut conn)
            .await
            .with_context(|| format!("moving keys to the hash-tagged layout at {}", url))?;
        let stop = CancellationToken::new();
        // Subscribed before any socket joins, so no event of theirs is missed.
        let subscribed = pubsub::subscribe(&client, subscriber::TOPIC)
            .await
            .with_context(|| format!("cannot subscribe at {}", url))?;
        let mut gaps = Gaps {
            conn: conn.clone(),
            scripts: scripts.clone(),
            hub: hub.clone(),
            seen: seen.clone(),
            floor: settings.floor.clone(),
            bound: Bound {
                events: settings.policy.page,
                bytes: settings.policy.max_bytes,
            },
            rooms: Default::default(),
        };
        // Before anything is issued: a Redis that lost its data starts above this instance's
        // floor.
        gaps.raise_floor()
            .await
            .with_context(|| format!("raising Redis to the floor at {}", url))?;
        let fan_out = FanOut {
            hub: hub.clone(),
            seen: seen.clone(),
            gaps,
            check_every: settings.position_check,
        };
        tokio::spawn(pubsub::keep_subscribed_with(
            client,
            subscriber::TOPIC,
            "chat events",
            subscribed,
            fan_out,
            stop.clone(),
            pubsub::Liveness {
                silent: settings.subscriber_timeout,
            },
        ));
        let mut heartbeat = Heartbeat {
            conn: conn.clone(),
            scripts: scripts.clone(),
            sockets: sockets.clone(),
            seen: seen.clone(),
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
                    instance: instance.clone(),
                    max_events: settings.max_events,
                    batch: settings.batch.max(1),
                    window: settings.cid_window.as_secs().max(1),
                    calls: 0,
                    leaves: Leaves::new(
                        conn.clone(),
                        scripts.clone(),
                        seen.clone(),
                        instance.clone(),
                        settings.presence_kept(),
                    ),
                }
                .run(lane),
            );
        }
        tracing::info!(instance, url = url, "chat engine: Redis");
        let pages = Arc::new(tokio::sync::Semaphore::new(settings.policy.reads));
        Ok(RedisLog {
            instance,
            conn,
            scripts,
            hub,
            seen,
            sockets,
            settings,
            jobs,
            pages,
            _tasks: stop.drop_guard(),
        })
    }

    /// Takes the socket out of the hub and, if it was there, tells Redis: only Redis knows
    /// whether it was the user's last socket in the room across the cluster.
    fn depart(&self, member: Membership) {
        if self.hub.detach(&member).is_some() {
            self.leave_redis(&member);
        }
    }

    /// Queues the socket's entry to leave Redis; only Redis knows whether it was the user's
    /// last in the room across the cluster.
    fn leave_redis(&self, member: &Membership) {
        let _ = self.jobs.always(Job::Leave(self.sockets.leave(member)));
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

    fn users(&self, member: &Membership, after: u64) -> Accepted {
        self.users_page(member, after)
    }

    /// Always false: whether `left` goes out is for Redis to decide, later, and whichever
    /// instance's script sends it, none counts it.
    fn leave(&self, member: Membership) -> bool {
        self.depart(member);
        false
    }

    /// A socket that is not the user's last here takes its entry out of Redis at once; the
    /// last one keeps its entry (refreshed by the beat) until `depart`, so Redis sees no
    /// `left` and, when the user comes back through any instance meanwhile, no `join`.
    fn linger(&self, member: Membership) -> Option<Departure> {
        let departure = self.hub.detach_lingering(&member)?;
        if departure == Departure::Lingers {
            self.sockets.linger(&member);
        } else {
            self.leave_redis(&member);
        }
        Some(departure)
    }

    /// Each lingering socket's entry leaves Redis now, whether or not its user came back
    /// meanwhile: a socket that came back has an entry of its own. Redis sends `left` when a
    /// user's last entry in the room goes, once, whichever instance takes it out.
    fn depart(&self, room: &RoomName, users: &[Arc<User>]) -> usize {
        for user in users {
            if self.hub.depart(room, user.id).is_some()
                && let Some(leave) = self.sockets.depart(room, user.id)
            {
                let _ = self.jobs.always(Job::Leave(leave));
            }
        }
        0
    }

    fn delete(&self, what: Deletion) -> BoxFuture<'_, Result<Deleted, DeleteError>> {
        self.delete_messages(what).boxed()
    }

    /// At shutdown: the worker's queue is done, and the floor written exactly, so a restart
    /// moves no id.
    fn flush(&self) -> BoxFuture<'_, ()> {
        async move {
            for lane in self.jobs.flush() {
                let _ = lane.await;
            }
            self.settings.floor.see_room(self.seen.highest());
            if let Err(e) = self.settings.floor.close() {
                tracing::error!(error = %e, "could not write the Redis floor in the data dir");
            }
        }
        .boxed()
    }
}
