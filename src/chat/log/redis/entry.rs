//! A socket's way in under the Redis log: attached to the hub, the join script, the history
//! it missed read from the room's stream, and its first frames (`join`, `list`, `history`)
//! for the hub to settle it with.

use redis::streams::StreamRangeReply;
use serde_json::value::RawValue;

use super::{
    RedisLog,
    wire::{parse_visibility, presence_texts, stream_key, text_frame, user_json},
};
use crate::{
    auth::User,
    chat::{
        EngineError, Membership,
        log::{Entry, Joiner},
        protocol::{EventData, EventKind, HistoryEvent, ServerEvent, now_ms},
        recovery,
    },
};

/// What the join script answers.
struct Joined {
    /// The room's last id before the joiner came.
    before: u64,
    /// The `join` event, or empty if the user was already in the room somewhere.
    joined: String,
    list_id: u64,
    history_id: u64,
    /// The room's users across the cluster, a JSON array.
    users: String,
    /// The oldest id still in the stream, 0 if none.
    first: u64,
}

impl RedisLog {
    /// Attaches the socket, then enters it into the room in Redis; if Redis fails, the
    /// socket is taken back out (and Redis told, if it had counted it).
    pub(super) async fn enter(&self, joiner: Joiner) -> Result<(Membership, Entry), EngineError> {
        let (member, _) = self.hub.attach(joiner.room, joiner.user, joiner.outbox);
        let joined = match self.join_script(&member).await {
            Ok(joined) => joined,
            Err(e) => {
                self.epoch.detach(&self.hub, &member);
                return Err(e.into());
            }
        };
        match self.entry(&member, joined, joiner.since).await {
            Ok(entry) => Ok((member, entry)),
            Err(e) => {
                self.depart(member);
                Err(e.into())
            }
        }
    }

    async fn join_script(&self, member: &Membership) -> redis::RedisResult<Joined> {
        let user = &member.user;
        let (joined_data, left_data) = presence_texts(user);
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
            .arg(self.seen.get(&member.room))
            .invoke_async(&mut self.conn.clone())
            .await?;
        self.seen.see(&member.room, history_id);
        Ok(Joined {
            before,
            joined,
            list_id,
            history_id,
            users,
            first,
        })
    }

    /// The joiner's first frames; live events reach it above the `history` event's id.
    async fn entry(
        &self,
        member: &Membership,
        joined: Joined,
        since: Option<u64>,
    ) -> redis::RedisResult<Entry> {
        let user = &member.user;
        let Joined {
            before,
            list_id,
            history_id,
            first,
            ..
        } = joined;
        let pruned_through = if first == 0 { before } else { first - 1 };
        let plan = recovery::plan(since, before, pruned_through, self.settings.policy);
        let mut stored = if plan.limit == 0 || before <= plan.after {
            Vec::new()
        } else {
            let reply: StreamRangeReply = redis::cmd("XREVRANGE")
                .arg(stream_key(&member.room))
                .arg(format!("{before}-0"))
                .arg(format!("{}-0", plan.after + 1))
                .arg("COUNT")
                .arg(plan.limit)
                .query_async(&mut self.conn.clone())
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
        let trimmed = recovery::keep_newest(&mut stored, self.settings.policy.max_bytes);
        let users: Vec<User> = serde_json::from_str(&joined.users).unwrap_or_default();
        let users: Vec<&User> = users.iter().collect();
        let mut frames = Vec::with_capacity(3);
        if !joined.joined.is_empty() {
            frames.push(text_frame(joined.joined.as_bytes()));
        }
        frames.push(
            ServerEvent {
                id: list_id,
                kind: EventKind::List,
                user,
                data: EventData::Users(&users),
                time: now_ms(),
                count: Some(users.len()),
            }
            .to_frame(),
        );
        let data: Vec<&RawValue> = stored.iter().map(|b| &**b).collect();
        frames.push(
            HistoryEvent {
                id: history_id,
                kind: EventKind::History,
                user,
                data: &data,
                time: now_ms(),
                truncated: plan.truncated || trimmed,
            }
            .to_frame(),
        );
        Ok(Entry {
            frames,
            floor: history_id,
            joined: !joined.joined.is_empty(),
        })
    }
}
