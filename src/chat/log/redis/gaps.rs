//! Gaps are closed or flagged, never silent. What this instance's sockets may have missed of
//! what Redis published (a lost or silent subscription) is read back from the room streams
//! and sent; what cannot be (Redis no longer keeps it, or it lost the room, or there is too
//! much to send at once) is told to the sockets concerned as `truncated`.
//!
//! It runs on the subscriber's task, between the messages it hears, so nothing it sends
//! races a live event: after a lost subscription (`catch_up`, from the lowest id any socket
//! of the room actually had), and every `--redis-position-check` (`check`, Centrifugo's
//! positioning: from what the room was last known to have had, up to the id Redis had at
//! the previous check, so an event still on its way is not counted missing). Both also
//! raise Redis to this instance's floor (`store::Floor`) and keep that floor on disk.
//!
//! Each room's epoch (`raise` in `prelude.lua`) is remembered; when it changes, Redis lost
//! the room, and every socket in it is told `truncated`.

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
};

use crate::redis_conn::RedisConn;
use redis::streams::StreamRangeReply;

use super::{
    global,
    state::Seen,
    wire::{Scripts, entry_id, parse_visibility, presence_key, stream_key, text_frame},
};
use crate::{
    chat::{hub::Hub, log::Event, room::RoomName},
    store::Floor,
};

/// Rooms per script call: one call never holds Redis long.
const ROOMS_PER_CALL: usize = 256;

pub(super) const LOST: &str = "Redis lost this room's events: join again to rebuild";
pub(super) const PRUNED: &str = "events you missed are no longer kept: join again to rebuild";
pub(super) const TOO_MANY: &str =
    "more events were missed than can be sent at once: join again to rebuild";

/// The most a catch-up sends a socket at once; past it, the socket is told `truncated`: a
/// healthy reader must not overflow its outbox (`--history-page` and the bytes a `history`
/// may carry, the same bounds as a recovery).
#[derive(Debug, Clone, Copy)]
pub(super) struct Bound {
    pub events: usize,
    pub bytes: usize,
}

pub(super) struct Gaps {
    pub conn: RedisConn,
    pub scripts: Arc<Scripts>,
    pub hub: Arc<Hub>,
    pub seen: Arc<Seen>,
    pub floor: Arc<Floor>,
    pub bound: Bound,
    /// Rooms with sockets here, as of the last look.
    pub rooms: HashMap<RoomName, Position>,
}

#[derive(Debug, Default)]
pub(super) struct Position {
    /// Every event up to this id was sent to the room's sockets here (or they were told).
    through: u64,
    /// Redis's last id at the previous check: what is missing up to it is overdue.
    previous: u64,
    epoch: Option<String>,
}

/// A room's state in Redis, as `position.lua` answers.
type Answer = (u64, Option<String>, u64);

impl Gaps {
    /// An event heard live in `room`.
    pub fn heard(&mut self, room: &RoomName, id: u64) {
        if let Some(position) = self.rooms.get_mut(room) {
            position.through = position.through.max(id);
        }
    }

    /// After a lost subscription: everything past what each room's sockets had.
    pub async fn catch_up(&mut self) -> redis::RedisResult<()> {
        self.sync(true).await
    }

    /// The periodic look: what is overdue.
    pub async fn check(&mut self) -> redis::RedisResult<()> {
        self.sync(false).await
    }

    /// Raises Redis's counters to the floor (before anything is issued at start, and at each
    /// check), and learns the user counter: the floor follows what the others issued.
    pub async fn raise_floor(&mut self) -> redis::RedisResult<()> {
        let floor = self.floor_values();
        let (mut a, mut b) = (self.conn.clone(), self.conn.clone());
        let rooms = global::raise(&mut a, &self.scripts, global::ROOMS_FLOOR, floor.rooms);
        let users = global::raise(&mut b, &self.scripts, global::USER_IDS, floor.users);
        let (rooms, users) = tokio::try_join!(rooms, users)?;
        self.floor.see_room(rooms);
        self.floor.see_users(users);
        Ok(())
    }

    async fn sync(&mut self, lost: bool) -> redis::RedisResult<()> {
        let here = self.hub.positions();
        let names: HashSet<&RoomName> = here.iter().map(|(room, _)| room).collect();
        self.rooms.retain(|room, _| names.contains(room));
        for chunk in here.chunks(ROOMS_PER_CALL) {
            let asked: Vec<(RoomName, u64, u64)> = chunk
                .iter()
                .map(|(room, lowest)| {
                    let position = self.rooms.get(room);
                    // Every socket there had everything up to the lowest id among them.
                    let from = match position {
                        Some(p) if !lost => p.through.max(*lowest),
                        _ => *lowest,
                    };
                    // Trimming is only worth asking about where something may be sent.
                    let due = lost || position.is_none_or(|p| p.previous > p.through);
                    (room.clone(), from, if due { from } else { u64::MAX })
                })
                .collect();
            let answers = self.call(&asked).await?;
            for ((room, from, _), (seq, epoch, pruned)) in asked.into_iter().zip(answers) {
                self.settle(&room, from, lost, seq, epoch, pruned).await?;
            }
        }
        // After the rooms: a floor raised past an id means the rooms were looked at too.
        self.raise_floor().await?;
        self.save_floor().await;
        Ok(())
    }

    /// Brings one room's sockets up to date with what Redis answered.
    async fn settle(
        &mut self,
        room: &RoomName,
        from: u64,
        lost: bool,
        seq: u64,
        epoch: Option<String>,
        pruned: u64,
    ) -> redis::RedisResult<()> {
        // A room new here: nothing is overdue yet, whatever is on its way.
        let position = self.rooms.entry(room.clone()).or_insert(Position {
            through: from,
            previous: 0,
            epoch: None,
        });
        if position.epoch.is_some() && epoch != position.epoch {
            let told = self.hub.truncate(room, u64::MAX, seq, LOST);
            tracing::warn!(%room, told, "Redis lost a room: its sockets were told");
            position.epoch = epoch;
            position.through = position.through.max(seq);
            position.previous = seq;
            return Ok(());
        }
        position.epoch = epoch;
        let until = if lost {
            seq
        } else {
            seq.min(position.previous)
        };
        position.previous = seq;
        if until <= from {
            return Ok(());
        }
        let (missed, complete_after) =
            read_missed(&mut self.conn, room, from, until, self.bound).await?;
        let position = self.rooms.entry(room.clone()).or_default();
        position.through = position.through.max(until);
        let behind = complete_after.max(pruned);
        if behind > from {
            let reason = if pruned > complete_after {
                PRUNED
            } else {
                TOO_MANY
            };
            let told = self.hub.truncate(room, behind, until, reason);
            if told > 0 {
                tracing::warn!(%room, told, reason, "sockets missed events that cannot be sent");
            }
        }
        if !missed.is_empty() {
            tracing::info!(%room, events = missed.len(), "sent events the subscription missed");
            if let Some(last) = missed.last() {
                self.seen.see(room, last.id);
            }
            self.hub.deliver(room, &missed);
        }
        Ok(())
    }

    /// A `position.lua` call for each of `rooms` (room, from, the id trimming matters
    /// above), in one round trip.
    async fn call(&mut self, rooms: &[(RoomName, u64, u64)]) -> redis::RedisResult<Vec<Answer>> {
        let scripts = self.scripts.clone();
        let calls: Vec<_> = rooms
            .iter()
            .map(|(room, _, had)| {
                let mut call = scripts.room_call(&scripts.position, room);
                call.arg(room.as_str()).arg(self.seen.get(room)).arg(*had);
                scripts.tail(&mut call);
                call
            })
            .collect();
        global::invoke_all(&mut self.conn, &scripts.position, &calls).await
    }

    fn floor_values(&self) -> crate::store::FloorValues {
        self.floor.see_room(self.seen.highest());
        self.floor.values()
    }

    async fn save_floor(&self) {
        let floor = self.floor.clone();
        let saved = tokio::task::spawn_blocking(move || floor.save()).await;
        if !matches!(saved, Ok(Ok(()))) {
            tracing::error!(?saved, "could not write the Redis floor in the data dir");
        }
    }
}

/// The events of `room` with `from < id <= until`, oldest first, at most `bound` of them:
/// the newest that fit. Also the id below which something was left out (`from` if nothing
/// was): sockets that had less than that cannot be brought up to date.
async fn read_missed(
    conn: &mut RedisConn,
    room: &RoomName,
    from: u64,
    until: u64,
    bound: Bound,
) -> redis::RedisResult<(Vec<Event>, u64)> {
    let want = bound.events.saturating_add(1);
    let mut found = Vec::new();
    for key in [stream_key(room), presence_key(room)] {
        let reply: StreamRangeReply = redis::cmd("XREVRANGE")
            .arg(key)
            .arg(format!("{until}-0"))
            .arg(format!("{}-0", from + 1))
            .arg("COUNT")
            .arg(want)
            .query_async(conn)
            .await?;
        found.extend(reply.ids.iter().filter_map(|entry| {
            let visible = entry
                .get::<String>("v")
                .and_then(|v| parse_visibility(&v))?;
            let body = entry.get::<String>("b")?;
            Some((entry_id(&entry.id)?, visible, body))
        }));
    }
    // Newest first, then keep what fits.
    found.sort_by_key(|entry| std::cmp::Reverse(entry.0));
    let (mut bytes, mut kept) = (0usize, 0usize);
    for (_, _, body) in &found {
        if kept == bound.events || bytes.saturating_add(body.len()) > bound.bytes {
            break;
        }
        bytes += body.len();
        kept += 1;
    }
    let complete_after = found.get(kept).map_or(from, |(id, _, _)| *id);
    found.truncate(kept);
    let events = found
        .into_iter()
        .rev()
        .map(|(id, visible, body)| Event {
            id,
            visible,
            frame: text_frame(body.as_bytes()),
        })
        .collect();
    Ok((events, complete_after))
}
