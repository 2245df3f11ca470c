//! The names of a room's keys in Redis, all under the room's hash tag (`passerby:{<room>}:…`),
//! so one room's keys hash to one slot and its scripts can run on Redis Cluster, and the
//! upgrade of a data set kept under the layout before it (`passerby:room:<room>:…`).

use redis::{AsyncCommands, ErrorKind, ServerErrorKind};

use crate::{chat::room::RoomName, redis_conn::RedisConn};

/// The prefix of a room's keys (`scripts/prelude.lua`'s `room_base`).
pub(super) fn room_base(room: &RoomName) -> String {
    format!("passerby:{{{room}}}")
}

/// One of a room's keys: `suffix` is `seq`, `stream`, `applied:<instance>`…
pub(super) fn room_key(room: &RoomName, suffix: &str) -> String {
    format!("{}:{suffix}", room_base(room))
}

/// The layout before the hash tags: every room key was `passerby:room:<room>:<suffix>`
/// (and the room's channel still is, but a channel is no key).
const OLD_PREFIX: &str = "passerby:room:";

/// Renames every key of the old layout to the new one, once, at start: rooms keep their
/// ids, history, epoch and presence. A key already under the new name (another instance
/// renamed it first, or wrote the room since) is kept, and the old one dropped.
pub(super) async fn upgrade(conn: &mut RedisConn) -> redis::RedisResult<()> {
    let mut renamed = 0;
    for old in conn.scan(&format!("{OLD_PREFIX}*")).await? {
        let Some((room, suffix)) = old
            .strip_prefix(OLD_PREFIX)
            .and_then(|rest| rest.split_once(':'))
        else {
            continue;
        };
        let Ok(room) = RoomName::parse(room) else {
            continue;
        };
        let new = room_key(&room, suffix);
        // RENAMENX keeps the key's TTL; an error is another instance having moved it.
        match redis::cmd("RENAMENX")
            .arg(&old)
            .arg(&new)
            .query_async::<u8>(conn)
            .await
        {
            Ok(1) => renamed += 1,
            Ok(_) => {
                redis::cmd("DEL").arg(&old).query_async::<()>(conn).await?;
            }
            Err(e) if e.kind() == ErrorKind::Server(ServerErrorKind::ResponseError) => {}
            Err(e) => return Err(e),
        }
    }
    if renamed > 0 {
        tracing::info!(renamed, "room keys moved under their hash tags");
    }
    move_entries(conn).await
}

/// The sockets' entries were kept across rooms before (`passerby:presence:sockets`, socket
/// -> "<room> <user>", and `:expiry`); each goes into its room, with its expiry, and the
/// room is listed for reaping, so the entries of the instances that ran before are reaped
/// as any dead instance's are. The marks that only mattered to those instances go.
async fn move_entries(conn: &mut RedisConn) -> redis::RedisResult<()> {
    const SOCKETS: &str = "passerby:presence:sockets";
    const EXPIRY: &str = "passerby:presence:expiry";
    let entries: Vec<(String, String)> = conn.hgetall(SOCKETS).await?;
    for (sid, place) in &entries {
        let Some((room, user)) = place.split_once(' ') else {
            continue;
        };
        let Ok(room) = RoomName::parse(room) else {
            continue;
        };
        let expires: Option<u64> = conn.zscore(EXPIRY, sid).await?;
        let expires = expires.unwrap_or(0);
        redis::pipe()
            .hset(room_key(&room, "sockets"), sid, user)
            .zadd(room_key(&room, "expiry"), sid, expires)
            .query_async::<()>(conn)
            .await?;
        conn.zadd::<_, _, _, ()>(super::global::PULSE_KEYS[0], room.as_str(), expires)
            .await?;
    }
    let mut old = conn.scan("passerby:instance:*:gone").await?;
    old.extend(
        [
            SOCKETS,
            EXPIRY,
            "passerby:presence:reaped",
            "passerby:presence:beat",
        ]
        .map(str::to_owned),
    );
    old.push("passerby:presence:resumed".to_owned());
    for key in old {
        conn.del::<_, ()>(key).await?;
    }
    if !entries.is_empty() {
        tracing::info!(
            entries = entries.len(),
            "presence entries moved into their rooms"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_room_key_carries_the_room_as_its_hash_tag() {
        let room = RoomName::parse("lobby").unwrap();
        assert_eq!(room_key(&room, "seq"), "passerby:{lobby}:seq");
        assert_eq!(room_key(&room, "cid:7:abc"), "passerby:{lobby}:cid:7:abc");
    }
}
