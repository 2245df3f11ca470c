//! A room's users a page at a time under the Redis log (`{"type":"users","after":…}` and
//! the cursor of a big room's first `list` page, which `scripts/join.lua` reads the same
//! way), read from the keys the presence scripts keep: `:order`, a sorted set of user ids
//! by arrival, and `:info`, each user's JSON.
//!
//! A cursor is the arrival of the last user listed plus one, as in `hub::big`, so a page
//! costs O(log n + page) in Redis whoever left or came meanwhile.

use redis::aio::ConnectionLike;

use super::RedisLog;
use crate::{
    auth::User,
    chat::{EngineError, Membership, log::Accepted, room::RoomName},
};

fn order_key(room: &RoomName) -> String {
    super::keys::room_key(room, "order")
}

fn info_key(room: &RoomName) -> String {
    super::keys::room_key(room, "info")
}

/// The users whose arrival is `after` or later, at most `limit`, the room's count, and the
/// cursor after them if more follow.
async fn read_page(
    conn: &mut (impl ConnectionLike + Send),
    room: &RoomName,
    after: u64,
    limit: usize,
) -> redis::RedisResult<(Vec<User>, usize, Option<u64>)> {
    let (ranked, count): (Vec<(u64, f64)>, usize) = redis::pipe()
        .cmd("ZRANGEBYSCORE")
        .arg(order_key(room))
        .arg(after)
        .arg("+inf")
        .arg("WITHSCORES")
        .arg("LIMIT")
        .arg(0)
        // One more, to learn whether another page follows.
        .arg(limit.saturating_add(1))
        .cmd("ZCARD")
        .arg(order_key(room))
        .query_async(conn)
        .await?;
    let more = ranked.len() > limit;
    let ranked = &ranked[..ranked.len().min(limit)];
    if ranked.is_empty() {
        return Ok((Vec::new(), count, None));
    }
    let infos: Vec<Option<String>> = redis::cmd("HMGET")
        .arg(info_key(room))
        .arg(ranked.iter().map(|(id, _)| *id).collect::<Vec<_>>())
        .query_async(conn)
        .await?;
    let users = infos
        .iter()
        .flatten()
        .filter_map(|json| serde_json::from_str::<User>(json).ok())
        .collect();
    let next = more.then(|| ranked.last().map_or(0, |(_, a)| *a as u64 + 1));
    Ok((users, count, next))
}

impl RedisLog {
    /// Read on a task of its own, under the same bound as pages of history
    /// (`--history-reads`): `Busy` past it.
    pub(super) fn users_page(&self, member: &Membership, after: u64) -> Accepted {
        let permit = self
            .pages
            .clone()
            .try_acquire_owned()
            .map_err(|_| EngineError::Busy)?;
        let mut conn = self.conn.clone();
        let hub = self.hub.clone();
        let member = member.clone();
        let limit = hub.big_rooms().page.max(1);
        tokio::spawn(async move {
            let _permit = permit;
            match read_page(&mut conn, member.room(), after, limit).await {
                Ok((users, count, next)) => {
                    let users: Vec<&User> = users.iter().collect();
                    hub.reply_users_page(&member, &users, count, after, next);
                }
                Err(e) => {
                    tracing::error!(error = %e, room = %member.room(), "reading a page of users failed");
                    hub.reply_error(
                        &member,
                        crate::chat::protocol::code::USERS_UNAVAILABLE,
                        "users not read: the server could not read them",
                    );
                }
            }
        });
        Ok(())
    }
}
