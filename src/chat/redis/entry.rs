//! A socket's way in under the Redis engine: the join script, the history it missed read
//! from the room's stream, and its first frames (`join`, `list`, `history`) before anything
//! published meanwhile.

use redis::streams::StreamRangeReply;
use serde_json::value::RawValue;

use super::{
    Membership, RedisEngine,
    rooms::{lock, see, seen},
    wire::{parse_visibility, presence_texts, stream_key, text_frame, user_json},
};
use crate::{
    auth::User,
    chat::{
        outbox::Outbox,
        protocol::{EventData, EventKind, HistoryEvent, ServerEvent, now_ms},
        recovery,
    },
};

impl RedisEngine {
    /// The Redis side of `join`, then the socket's first frames and what it heard meanwhile.
    pub(super) async fn enter(
        &self,
        member: &Membership,
        outbox: &Outbox,
        since: Option<u64>,
    ) -> redis::RedisResult<()> {
        let user = &member.user;
        let (joined_data, left_data) = presence_texts(user);
        let mut conn = self.conn.clone();
        let (before, joined, list_id, history_id, users, first): (
            u64,
            String,
            u64,
            u64,
            String,
            u64,
        ) = self
            .scripts
            .join
            .arg(member.room.as_str())
            .arg(&self.instance)
            .arg(user.id)
            .arg(user_json(user))
            .arg(joined_data)
            .arg(left_data)
            .arg(self.settings.max_events)
            .arg(seen(&self.seen, &member.room))
            .invoke_async(&mut conn)
            .await?;
        see(&self.seen, &member.room, history_id);
        if !joined.is_empty() {
            self.events.join.inc();
        }
        let pruned_through = if first == 0 { before } else { first - 1 };
        let plan = recovery::plan(since, before, pruned_through, self.settings.policy);
        let stored = if plan.limit == 0 || before <= plan.after {
            Vec::new()
        } else {
            let reply: StreamRangeReply = redis::cmd("XREVRANGE")
                .arg(stream_key(&member.room))
                .arg(format!("{before}-0"))
                .arg(format!("{}-0", plan.after + 1))
                .arg("COUNT")
                .arg(plan.limit)
                .query_async(&mut conn)
                .await?;
            let mut bodies: Vec<Box<RawValue>> = reply
                .ids
                .iter()
                .filter(|entry| {
                    entry
                        .get::<String>("v")
                        .and_then(|v| parse_visibility(&v))
                        .is_some_and(|v| v.allows(user.id))
                })
                .filter_map(|entry| entry.get::<String>("b"))
                .filter_map(|body| RawValue::from_string(body).ok())
                .collect();
            bodies.reverse();
            bodies
        };
        let users: Vec<User> = serde_json::from_str(&users).unwrap_or_default();
        let users: Vec<&User> = users.iter().collect();
        let list = ServerEvent {
            id: list_id,
            kind: EventKind::List,
            user,
            data: EventData::Users(&users),
            time: now_ms(),
            count: Some(users.len()),
        }
        .to_frame();
        let data: Vec<&RawValue> = stored.iter().map(|b| &**b).collect();
        let history = HistoryEvent {
            id: history_id,
            kind: EventKind::History,
            user,
            data: &data,
            time: now_ms(),
            truncated: plan.truncated,
        }
        .to_frame();
        let mut rooms = lock(&self.rooms);
        let Some(socket) = rooms
            .get_mut(&member.room)
            .and_then(|room| room.sockets.get_mut(&member.socket))
        else {
            return Ok(());
        };
        if !joined.is_empty() {
            let _ = outbox.push(text_frame(joined.as_bytes()));
        }
        let _ = outbox.push(list);
        let _ = outbox.push(history);
        socket.floor = history_id;
        socket.last = history_id;
        for event in socket.pending.take().unwrap_or_default() {
            socket.deliver(&event);
        }
        Ok(())
    }
}
