//! `RedisLog`: many instances behind one load balancer act as one chat.
//!
//! Each room event is one Lua script call (`scripts/*.lua`): it INCRs the room's sequence,
//! appends the event to the room's stream (the history, capped at the retention) and
//! publishes it, so ids, history and fan-out agree across the cluster. Every instance
//! pattern-subscribes to all rooms and hands what it hears to its hub (`subscriber`).
//!
//! A whisper is one such event of the sender's room (`scripts/private.lua`, visible to the
//! pair): every instance hears it on that room's channel, and its hub hands it to the pair's
//! sockets in other rooms through its per-user index, so no script walks their rooms.
//!
//! Presence is counted per user in Redis, and per instance in a hash whose owner keeps a
//! liveness key alive; when that key expires, a survivor reaps the hash and sends `left`
//! for the users who were only there (`heartbeat`).
//!
//! Sockets never wait on Redis: their events go to one worker task, in order (`worker`).
//! If Redis refuses or is gone, the sender gets an `error`.

mod delete;
mod entry;
mod heartbeat;
mod state;
mod subscriber;
mod wire;
mod worker;

use std::{fmt, sync::Arc, time::Duration};

use anyhow::Context;
use futures_util::{FutureExt, future::BoxFuture};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::{CancellationToken, DropGuard};

use self::{
    heartbeat::Heartbeat,
    state::{Epoch, Seen},
    subscriber::{keep_subscribed, subscribe},
    wire::{Pieces, Scripts},
    worker::{Job, Worker},
};
use super::{Accepted, DeleteError, Deleted, Deletion, Entry, EventLog, Joiner};
use crate::chat::{
    EngineError, Membership, Whisper, hub::Hub, protocol::EventKind, recovery::HistoryPolicy,
    text::ChatText,
};

/// How the engine reaches Redis and how long a dead instance may look alive.
#[derive(Debug, Clone)]
pub struct RedisSettings {
    pub url: String,
    pub presence_ttl: Duration,
    pub policy: HistoryPolicy,
    /// Events kept per room stream; 0 keeps none.
    pub max_events: u64,
}

pub struct RedisLog {
    instance: String,
    conn: ConnectionManager,
    scripts: Arc<Scripts>,
    hub: Arc<Hub>,
    seen: Arc<Seen>,
    epoch: Arc<Epoch>,
    settings: RedisSettings,
    jobs: mpsc::UnboundedSender<Job>,
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
        let subscribed = subscribe(&client)
            .await
            .with_context(|| format!("cannot subscribe at {}", settings.url))?;
        tokio::spawn(keep_subscribed(
            client,
            conn.clone(),
            hub.clone(),
            seen.clone(),
            subscribed,
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
            max_events: settings.max_events,
        };
        heartbeat.beat().await.context("registering with Redis")?;
        tokio::spawn(heartbeat.run(stop.clone()));
        let (jobs, queue) = mpsc::unbounded_channel();
        tokio::spawn(
            Worker {
                conn: conn.clone(),
                scripts: scripts.clone(),
                hub: hub.clone(),
                seen: seen.clone(),
                epoch: epoch.clone(),
                instance: instance.clone(),
                max_events: settings.max_events,
                unsent_leaves: Vec::new(),
            }
            .run(queue),
        );
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
            let _ = self.jobs.send(Job::Leave {
                room: member.room,
                user: member.user.id,
                epoch,
            });
        }
    }

    fn send(&self, job: Job) -> Accepted {
        self.jobs.send(job).map_err(|_| EngineError::WorkerGone)
    }
}

impl EventLog for RedisLog {
    fn join(&self, joiner: Joiner) -> BoxFuture<'_, Result<(Membership, Entry), EngineError>> {
        self.enter(joiner).boxed()
    }

    fn publish(&self, member: &Membership, kind: EventKind, data: &[&str]) -> Accepted {
        for text in data {
            self.send(Job::Emit {
                member: member.clone(),
                event: Pieces::new(kind, &member.user, text),
            })?;
        }
        Ok(())
    }

    /// Whether the recipient is online is for Redis to say; if not, the worker answers the
    /// sender with an `error`.
    fn private(&self, member: &Membership, to: u64, text: &ChatText) -> Accepted<Whisper> {
        self.send(Job::Private {
            member: member.clone(),
            to,
            event: Pieces::new(EventKind::Private, &member.user, text.as_str()),
        })?;
        Ok(Whisper::Delivered)
    }

    /// Through the worker, so it comes after the socket's events still on their way.
    fn reply_error(&self, member: &Membership, message: String) {
        let job = Job::Error {
            member: member.clone(),
            message,
        };
        if let Err(mpsc::error::SendError(job)) = self.jobs.send(job) {
            tracing::error!(?job, "error reply lost: the Redis worker stopped");
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

    fn delete(&self, what: Deletion) -> BoxFuture<'_, Result<Deleted, DeleteError>> {
        self.delete_messages(what).boxed()
    }

    fn flush(&self) -> BoxFuture<'_, ()> {
        async move {
            let (tx, rx) = oneshot::channel();
            if self.jobs.send(Job::Flush(tx)).is_ok() {
                let _ = rx.await;
            }
        }
        .boxed()
    }
}
