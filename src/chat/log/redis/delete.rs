//! Deleting messages under the Redis log: what to delete is read from the room's stream
//! here, then one script call (`scripts/delete.lua`) removes what is still there and sends
//! the room its `delete` event, so every instance's sockets hear it like any event. A purge
//! reads each stream backwards a slice of `batch` entries at a time and makes one script
//! call per slice, so Redis is never held for more than one slice.

use crate::redis_conn::RedisConn;
use redis::streams::StreamRangeReply;

use super::{
    RedisLog,
    wire::{stream_key, user_json},
};
use crate::chat::{
    log::deletion::{DeleteError, Deleted, Deletion, MISSING, NOT_A_MESSAGE, NOT_YET},
    protocol::StoredHead,
    room::RoomName,
};

/// An entry's id in the stream (`<id>-0`) as the event's id.
fn entry_id(id: &str) -> Option<u64> {
    id.split('-').next()?.parse().ok()
}

impl RedisLog {
    pub(super) async fn delete_messages(&self, what: Deletion) -> Result<Deleted, DeleteError> {
        if self.settings.max_events == 0 {
            return Err(DeleteError::NoHistory);
        }
        let mut conn = self.conn.clone();
        let mut deleted = Deleted::default();
        match what {
            Deletion::Message { room, id } => {
                let ids = self.delete_one(&mut conn, &room, id).await?;
                deleted.add(&room, ids);
            }
            Deletion::Purge {
                user,
                room,
                since_ms,
                batch,
            } => {
                let rooms = match room {
                    Some(room) => vec![room],
                    None => stream_rooms(&mut conn).await?,
                };
                let since = since_ms.unwrap_or(0);
                for room in rooms {
                    let mut ids = self
                        .purge_room(&mut conn, &room, user, since, batch.max(1))
                        .await?;
                    ids.sort_unstable();
                    deleted.add(&room, ids);
                }
            }
        }
        Ok(deleted)
    }

    async fn delete_one(
        &self,
        conn: &mut RedisConn,
        room: &RoomName,
        id: u64,
    ) -> Result<Vec<u64>, DeleteError> {
        let not = |why| DeleteError::NotAMessage {
            room: room.clone(),
            id,
            why,
        };
        let reply: StreamRangeReply = redis::cmd("XRANGE")
            .arg(stream_key(room))
            .arg(format!("{id}-0"))
            .arg(format!("{id}-0"))
            .query_async(conn)
            .await
            .map_err(crate::chat::EngineError::from)?;
        let Some(body) = reply.ids.first().and_then(|e| e.get::<String>("b")) else {
            let last: Option<u64> = redis::cmd("GET")
                .arg(super::keys::room_key(room, "seq"))
                .query_async(conn)
                .await
                .map_err(crate::chat::EngineError::from)?;
            return Err(not(if id > last.unwrap_or(0) {
                NOT_YET
            } else {
                MISSING
            }));
        };
        let head = StoredHead::read(&body).filter(|head| head.kind.is_message());
        let Some(head) = head else {
            return Err(not(NOT_A_MESSAGE));
        };
        let gone = self
            .remove(conn, room, &user_json(&head.user), &[id])
            .await?;
        if gone.is_empty() {
            // Another moderator's deletion got there first.
            return Err(not(MISSING));
        }
        Ok(gone)
    }

    /// `user`'s messages in `room` said at `since` or later, newest slice first.
    async fn purge_room(
        &self,
        conn: &mut RedisConn,
        room: &RoomName,
        user: u64,
        since: u64,
        batch: usize,
    ) -> Result<Vec<u64>, DeleteError> {
        let mut all = Vec::new();
        let mut upper = "+".to_owned();
        loop {
            let reply: StreamRangeReply = redis::cmd("XREVRANGE")
                .arg(stream_key(room))
                .arg(&upper)
                .arg("-")
                .arg("COUNT")
                .arg(batch)
                .query_async(conn)
                .await
                .map_err(crate::chat::EngineError::from)?;
            let mut doomed = Vec::new();
            let mut author = None;
            let mut oldest = 0;
            let mut older = false;
            for entry in &reply.ids {
                let Some(id) = entry_id(&entry.id) else {
                    continue;
                };
                oldest = id;
                let Some(head) = entry.get::<String>("b").and_then(|b| StoredHead::read(&b)) else {
                    continue;
                };
                if head.time < since {
                    // Older still below: this slice is the last.
                    older = true;
                } else if head.kind.is_message() && head.user.id == user {
                    doomed.push(id);
                    author.get_or_insert(head.user);
                }
            }
            if let Some(author) = author {
                doomed.reverse();
                let gone = self
                    .remove(conn, room, &user_json(&author), &doomed)
                    .await?;
                all.extend(gone);
            }
            if reply.ids.len() < batch || older || oldest <= 1 {
                return Ok(all);
            }
            upper = format!("{}-0", oldest - 1);
        }
    }

    /// Removes `ids` from the stream and sends the room its `delete`: one script call.
    async fn remove(
        &self,
        conn: &mut RedisConn,
        room: &RoomName,
        author: &str,
        ids: &[u64],
    ) -> Result<Vec<u64>, DeleteError> {
        let mut call = self.scripts.room_call(&self.scripts.delete, room);
        call.key(super::keys::room_key(room, "stream"))
            .key(super::keys::room_key(room, "deleted"))
            .arg(room.as_str())
            .arg(author)
            .arg(self.settings.max_events)
            .arg(self.seen.get(room))
            .arg(ids);
        self.scripts.tail(&mut call);
        let gone: Vec<u64> = call
            .invoke_async(conn)
            .await
            .map_err(crate::chat::EngineError::from)?;
        Ok(gone)
    }
}

/// Every room with a stream, a bounded SCAN at a time.
async fn stream_rooms(conn: &mut RedisConn) -> Result<Vec<RoomName>, DeleteError> {
    let keys = conn
        .scan("passerby:{*}:stream")
        .await
        .map_err(crate::chat::EngineError::from)?;
    let rooms: std::collections::BTreeSet<RoomName> = keys
        .iter()
        .filter_map(|key| {
            let name = key.strip_prefix("passerby:{")?.strip_suffix("}:stream")?;
            RoomName::parse(name).ok()
        })
        .collect();
    Ok(rooms.into_iter().collect())
}
