//! The names of a room's keys in Redis, all under the room's hash tag (`passerby:{<room>}:…`),
//! so one room's keys hash to one slot and its scripts can run on Redis Cluster, and the
//! upgrade of a data set kept under the layout before it (`passerby:room:<room>:…`).

use redis::{ErrorKind, ServerErrorKind, aio::ConnectionLike};

use crate::chat::room::RoomName;

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
const SCAN_COUNT: usize = 1000;

/// Renames every key of the old layout to the new one, once, at start: rooms keep their
/// ids, history, epoch and presence. A key already under the new name (another instance
/// renamed it first, or wrote the room since) is kept, and the old one dropped.
pub(super) async fn upgrade(conn: &mut (impl ConnectionLike + Send)) -> redis::RedisResult<()> {
    let mut renamed = 0;
    let mut cursor = 0u64;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{OLD_PREFIX}*"))
            .arg("COUNT")
            .arg(SCAN_COUNT)
            .query_async(conn)
            .await?;
        for old in keys {
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
        if next == 0 {
            if renamed > 0 {
                tracing::info!(renamed, "room keys moved under their hash tags");
            }
            return Ok(());
        }
        cursor = next;
    }
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
