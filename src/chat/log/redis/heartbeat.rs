//! This instance's liveness in Redis: the beat, telling a Redis that forgot us who is here
//! again, and reaping the instances that stopped beating.

use std::{sync::Arc, time::Duration};

use redis::aio::ConnectionManager;
use tokio_util::sync::CancellationToken;

use super::{
    state::{Epoch, Seen},
    wire::{Scripts, presence_texts, user_json},
};
use crate::chat::hub::Hub;

/// Keeps this instance alive in Redis and reaps the instances that stopped doing so.
pub(super) struct Heartbeat {
    pub conn: ConnectionManager,
    pub scripts: Arc<Scripts>,
    pub hub: Arc<Hub>,
    pub seen: Arc<Seen>,
    pub epoch: Arc<Epoch>,
    /// Redis forgot this instance and has not been fully told again yet.
    pub retell: bool,
    pub instance: String,
    pub ttl: Duration,
    /// The presence stream's bound: reaping and retelling send only `join` and `left`.
    pub max_presence: u64,
}

impl Heartbeat {
    pub async fn run(mut self, stop: CancellationToken) {
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

    pub async fn beat(&mut self) -> redis::RedisResult<()> {
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
                .arg(self.max_presence)
                .invoke_async(&mut conn)
                .await?;
            if reaped == 1 {
                tracing::warn!(instance = other, "reaped a dead instance's users");
            }
        }
        Ok(())
    }

    /// Redis forgot this instance (it restarted empty, or took the instance for dead): tells
    /// it again who is here.
    /// `forgotten`: Redis just turned out to have forgotten us (not a retry after a failure),
    /// so leaves counted until now are void.
    async fn rejoin(
        &self,
        conn: &mut ConnectionManager,
        forgotten: bool,
    ) -> redis::RedisResult<()> {
        let here = self.epoch.snapshot(&self.hub, forgotten);
        let mut rejoined = 0;
        for (room, user, sockets) in here {
            let (joined, left) = presence_texts(&user);
            let done: u64 = self
                .scripts
                .rejoin
                .arg(room.as_str())
                .arg(&self.instance)
                .arg(user.id)
                .arg(sockets)
                .arg(user_json(&user))
                .arg(joined)
                .arg(left)
                .arg(self.max_presence)
                .arg(self.seen.get(&room))
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
}
