//! The keys that cross rooms, each in a slot of its own and written in calls of their own, so
//! no room script leaves its room's slot (see README, "Keys and Redis Cluster"): which
//! rooms hold presence entries (`scripts/pulse.lua`), where each user is (for whispers,
//! `scripts/user_rooms.lua`) and the counters raised to the floor (`scripts/raise.lua`).

use std::time::Duration;

use redis::{AsyncCommands, RedisResult};

use super::{keys::room_key, presence::millis, wire::Scripts};
use crate::{chat::room::RoomName, redis_conn::RedisConn};

/// The presence keys that cross rooms, under one hash tag (`pulse.lua`).
pub(super) const PULSE_KEYS: [&str; 3] = [
    "passerby:{presence}:rooms",
    "passerby:{presence}:beat",
    "passerby:{presence}:resumed",
];

/// The highest id of any room, and the user counter (`store::Floor`).
pub(super) const ROOMS_FLOOR: &str = "passerby:floor";
pub(super) const USER_IDS: &str = "passerby:user_ids";

fn user_rooms_key(user: u64) -> String {
    format!("passerby:user:{user}:rooms")
}

/// `pulse.lua` with its keys and `op`; the caller adds the rest.
pub(super) fn pulse<'a>(scripts: &'a Scripts, op: &str) -> redis::ScriptInvocation<'a> {
    let mut call = scripts.pulse.prepare_invoke();
    for key in PULSE_KEYS {
        call.key(key);
    }
    call.arg(op);
    call
}

/// A socket is about to join `room`: the room is listed as holding entries first, so an
/// entry whose instance dies before its next beat is still reaped.
pub(super) async fn entering(
    conn: &mut RedisConn,
    scripts: &Scripts,
    ttl: Duration,
    room: &RoomName,
) -> RedisResult<()> {
    let mut call = pulse(scripts, "enter");
    call.arg(millis(ttl)).arg(room.as_str());
    call.invoke_async(conn).await
}

/// The user came into `room` (their `arrival` there), or left it: recorded where whispers
/// look for them.
pub(super) async fn user_moved(
    conn: &mut RedisConn,
    scripts: &Scripts,
    user: u64,
    room: &RoomName,
    arrival: u64,
    came: bool,
) -> RedisResult<()> {
    let mut call = scripts.user_rooms.prepare_invoke();
    call.key(user_rooms_key(user))
        .arg(if came { "in" } else { "out" })
        .arg(room.as_str())
        .arg(arrival)
        .arg(scripts.room_ttl);
    call.invoke_async(conn).await
}

/// The recipient of a whisper as one of their rooms has them (their user JSON), or `None`
/// if no room has them: offline everywhere. A room they were recorded in but left (their
/// instance died before it said so) is dropped from the record.
pub(super) async fn recipient(
    conn: &mut RedisConn,
    scripts: &Scripts,
    user: u64,
) -> RedisResult<Option<String>> {
    let rooms: Vec<(String, u64)> = conn.hgetall(user_rooms_key(user)).await?;
    for (room, arrival) in rooms {
        let Ok(name) = RoomName::parse(&room) else {
            continue;
        };
        let info: Option<String> = conn.hget(room_key(&name, "info"), user).await?;
        if info.is_some() {
            return Ok(info);
        }
        user_moved(conn, scripts, user, &name, arrival, false).await?;
    }
    Ok(None)
}

/// Raises a counter in Redis to the instance's floor for it; returns the counter.
pub(super) async fn raise(
    conn: &mut RedisConn,
    scripts: &Scripts,
    key: &str,
    floor: u64,
) -> RedisResult<u64> {
    let mut call = scripts.raise.prepare_invoke();
    call.key(key).arg(floor);
    call.invoke_async(conn).await
}

/// Runs several calls of one script in one round trip (on a cluster, side by side, each to
/// its slot's node), loading the script first where a node does not have it yet.
pub(super) async fn invoke_all<T: redis::FromRedisValue>(
    conn: &mut RedisConn,
    script: &redis::Script,
    calls: &[redis::ScriptInvocation<'_>],
) -> RedisResult<Vec<T>> {
    if calls.is_empty() {
        return Ok(Vec::new());
    }
    let mut pipe = redis::pipe();
    for call in calls {
        pipe.invoke_script(call);
    }
    match pipe.query_async(conn).await {
        Err(e) if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) => {
            script.load_async(conn).await?;
            pipe.query_async(conn).await
        }
        done => done,
    }
}
