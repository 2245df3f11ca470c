//! This instance's beat: one call (`scripts/pulse.lua`) records it and says whether entries
//! may be reaped now, then one call per room with sockets here (`scripts/beat.lua`, all in
//! one round trip) moves their entries' expiry on and reaps that room's entries nobody
//! refreshed. Rooms whose entries all expired, that no live instance beats, are reaped the
//! same way by whichever instance sees them first. The entries Redis turned out not to have
//! (it restarted empty, or took this instance for dead) are put back.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use tokio_util::sync::CancellationToken;

use super::{
    global,
    keys::room_key,
    presence::millis,
    sockets::{Here, Sockets},
    state::Seen,
    wire::{Scripts, presence_texts, user_json},
};
use crate::{chat::room::RoomName, redis_conn::RedisConn, redis_retry::retry_dropped};

/// Entries one room's beat reaps at most, so a beat never holds Redis for long; the rest
/// wait for the next beat (three per TTL, from every instance).
const REAP_AT_ONCE: usize = 1000;
/// Rooms nobody beats that one beat reaps at most.
const ROOMS_AT_ONCE: usize = 100;

/// What `beat.lua` answers for a room: entries reaped, sockets Redis lacks, users who left
/// (user, arrival, …) and when the room's last entry expires (0: none is left).
type Beaten = (u64, Vec<u64>, Vec<u64>, String);

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
        let rooms = by_room(self.sockets.snapshot());
        if rooms.is_empty() {
            return;
        }
        let mut pipe = redis::pipe();
        for (room, here) in &rooms {
            let expire = pipe.cmd("ZADD").arg(room_key(room, "expiry")).arg("XX");
            for socket in here {
                expire
                    .arg(0)
                    .arg(format!("{}:{}", self.instance, socket.socket));
            }
            expire.ignore();
        }
        let mut leave = global::pulse(&self.scripts, "leave");
        for room in rooms.keys() {
            leave.arg(room.as_str());
        }
        let _: redis::RedisResult<()> = pipe.query_async(&mut self.conn).await;
        let _: redis::RedisResult<()> = leave.invoke_async(&mut self.conn).await;
    }

    pub async fn beat(&mut self) -> redis::RedisResult<()> {
        // A beat missed for a pause this long means Redis was away (stopped, unreachable,
        // restarted): no entry is judged until every instance had a TTL to refresh its
        // own. Twice the beat: one late beat is no pause.
        let pause = self.ttl * 2 / 3;
        let rooms = by_room(self.sockets.snapshot());
        let mut pulse = global::pulse(&self.scripts, "beat");
        pulse
            .arg(millis(self.ttl))
            .arg(millis(pause))
            .arg(ROOMS_AT_ONCE);
        for room in rooms.keys() {
            pulse.arg(room.as_str());
        }
        // Run twice, a beat only refreshes twice.
        let (may_reap, due): (u8, Vec<(String, String)>) = retry_dropped(|| {
            let mut conn = self.conn.clone();
            let pulse = &pulse;
            async move { pulse.invoke_async(&mut conn).await }
        })
        .await?;
        let orphans: Vec<(RoomName, String)> = due
            .into_iter()
            .filter_map(|(room, until)| Some((RoomName::parse(&room).ok()?, until)))
            .filter(|(room, _)| !rooms.contains_key(room))
            .collect();
        let asked: Vec<(&RoomName, &[Here])> = rooms
            .iter()
            .map(|(room, here)| (room, here.as_slice()))
            .chain(orphans.iter().map(|(room, _)| (room, &[][..])))
            .collect();
        let calls: Vec<_> = asked
            .iter()
            .map(|(room, here)| {
                let mut call = self.scripts.room_call(&self.scripts.beat, room);
                call.arg(room.as_str())
                    .arg(&self.instance)
                    .arg(millis(self.ttl))
                    .arg(may_reap)
                    .arg(self.max_presence)
                    .arg(REAP_AT_ONCE);
                for socket in *here {
                    call.arg(socket.socket);
                }
                self.scripts.tail(&mut call);
                call
            })
            .collect();
        let answers: Vec<Beaten> = retry_dropped(|| {
            let mut conn = self.conn.clone();
            let (script, calls) = (&self.scripts.beat, &calls);
            async move { global::invoke_all(&mut conn, script, calls).await }
        })
        .await?;
        let mut reaped = 0;
        let scripts = self.scripts.clone();
        let mut settle = global::pulse(&scripts, "settle");
        for ((room, here), (gone, missing, departed, until)) in asked.iter().zip(answers) {
            reaped += gone;
            for pair in departed.chunks_exact(2) {
                let (user, arrival) = (pair[0], pair[1]);
                let moved =
                    global::user_moved(&mut self.conn, &self.scripts, user, room, arrival, false);
                if let Err(e) = moved.await {
                    tracing::debug!(user, error = %e, "where the user is not updated");
                }
            }
            if let Some((_, was)) = orphans.iter().find(|(r, _)| r == *room) {
                settle.arg(room.as_str()).arg(was).arg(until);
            }
            if !missing.is_empty() {
                let lost: Vec<&Here> = here
                    .iter()
                    .filter(|h| missing.contains(&h.socket))
                    .collect();
                self.restore(room, &lost).await?;
            }
        }
        if !orphans.is_empty() {
            settle.invoke_async::<()>(&mut self.conn).await?;
        }
        if reaped > 0 {
            tracing::warn!(
                reaped,
                "reaped sockets whose instance stopped refreshing them"
            );
        }
        Ok(())
    }

    /// Puts back the entries of live sockets in `room` that Redis does not have.
    async fn restore(&mut self, room: &RoomName, here: &[&Here]) -> redis::RedisResult<()> {
        if here.is_empty() {
            return Ok(());
        }
        let mut restore = self.scripts.room_call(&self.scripts.restore, room);
        restore
            .arg(room.as_str())
            .arg(&self.instance)
            .arg(millis(self.ttl))
            .arg(self.max_presence)
            .arg(self.seen.get(room));
        for socket in here {
            let (joined, left) = presence_texts(&socket.user);
            restore
                .arg(socket.socket)
                .arg(socket.user.id)
                .arg(user_json(&socket.user))
                .arg(joined)
                .arg(left);
        }
        self.scripts.tail(&mut restore);
        let (restored, entered): (u64, Vec<u64>) = restore.invoke_async(&mut self.conn).await?;
        for pair in entered.chunks_exact(2) {
            let (user, arrival) = (pair[0], pair[1]);
            global::user_moved(&mut self.conn, &self.scripts, user, room, arrival, true).await?;
        }
        if restored > 0 {
            tracing::warn!(
                restored,
                %room,
                "Redis had lost sockets of this instance; told it again"
            );
        }
        Ok(())
    }
}

/// The sockets by room.
fn by_room(sockets: Vec<Here>) -> BTreeMap<RoomName, Vec<Here>> {
    let mut rooms: BTreeMap<RoomName, Vec<Here>> = BTreeMap::new();
    for here in sockets {
        rooms.entry(here.room.clone()).or_default().push(here);
    }
    rooms
}
