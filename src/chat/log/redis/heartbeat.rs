//! This instance's beat: one script call (`scripts/beat.lua`) moves the expiry of every
//! entry of its sockets on and reaps the entries nobody refreshed; the entries Redis turned
//! out not to have (it restarted empty, or took this instance for dead) are put back.

use std::{sync::Arc, time::Duration};

use crate::redis_conn::RedisConn;
use tokio_util::sync::CancellationToken;

use super::{
    presence::millis,
    sockets::Sockets,
    state::Seen,
    wire::{Scripts, presence_texts, user_json},
};
use crate::redis_retry::retry_dropped;

/// Entries one beat reaps at most, so a beat never holds Redis for long; the rest wait for
/// the next beat (three per TTL, from every instance).
const REAP_AT_ONCE: usize = 1000;

/// Keeps this instance's entries alive in Redis and reaps the entries nobody keeps alive.
pub(super) struct Heartbeat {
    pub conn: RedisConn,
    pub scripts: Arc<Scripts>,
    pub sockets: Arc<Sockets>,
    pub seen: Arc<Seen>,
    pub instance: String,
    pub ttl: Duration,
    /// The presence stream's bound: reaping and restoring send only `join` and `left`.
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
        // Shutting down: this instance's entries expire now, so survivors reap them at once.
        let mut expire = redis::cmd("ZADD");
        expire.arg("passerby:presence:expiry").arg("XX");
        let here = self.sockets.snapshot();
        if here.is_empty() {
            return;
        }
        for socket in here {
            expire
                .arg(0)
                .arg(format!("{}:{}", self.instance, socket.socket));
        }
        let _: redis::RedisResult<()> = expire.query_async(&mut self.conn).await;
    }

    pub async fn beat(&mut self) -> redis::RedisResult<()> {
        // A beat missed for a pause this long means Redis was away (stopped, unreachable,
        // restarted): beat.lua then judges no entry until every instance had a TTL to
        // refresh its own. Twice the beat: one late beat is no pause.
        let pause = self.ttl * 2 / 3;
        let mut beat = self.scripts.beat.prepare_invoke();
        beat.arg(&self.instance)
            .arg(millis(self.ttl))
            .arg(millis(pause))
            .arg(self.max_presence)
            .arg(REAP_AT_ONCE);
        for here in self.sockets.snapshot() {
            beat.arg(here.socket);
        }
        beat.arg(self.scripts.max_age).arg(self.scripts.room_ttl);
        // Run twice, a beat only refreshes twice.
        let (reaped, missing): (u64, Vec<u64>) = retry_dropped(|| {
            let mut conn = self.conn.clone();
            let beat = &beat;
            async move { beat.invoke_async(&mut conn).await }
        })
        .await?;
        if reaped > 0 {
            tracing::warn!(
                reaped,
                "reaped sockets whose instance stopped refreshing them"
            );
        }
        if !missing.is_empty() {
            self.restore(&missing).await?;
        }
        Ok(())
    }

    /// Puts back the entries of live sockets that Redis does not have.
    async fn restore(&mut self, missing: &[u64]) -> redis::RedisResult<()> {
        let here = self.sockets.find(missing);
        if here.is_empty() {
            return Ok(());
        }
        let mut restore = self.scripts.restore.prepare_invoke();
        restore
            .arg(&self.instance)
            .arg(millis(self.ttl))
            .arg(self.max_presence);
        for socket in &here {
            let (joined, left) = presence_texts(&socket.user);
            restore
                .arg(socket.socket)
                .arg(socket.room.as_str())
                .arg(socket.user.id)
                .arg(user_json(&socket.user))
                .arg(joined)
                .arg(left)
                .arg(self.seen.get(&socket.room));
        }
        restore.arg(self.scripts.max_age).arg(self.scripts.room_ttl);
        let restored: u64 = restore.invoke_async(&mut self.conn).await?;
        if restored > 0 {
            tracing::warn!(
                restored,
                "Redis had lost sockets of this instance; told it again"
            );
        }
        Ok(())
    }
}
