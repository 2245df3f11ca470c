//! A socket's way in under the Redis log: attached to the hub, the join script, the history
//! it missed read from the room's stream, and its first frames (`join`, `list`, `history`)
//! for the hub to settle it with. A newcomer's history is messages; a recovery (`since`)
//! also replays the presence still in the room's presence stream, in id order.

use redis::{aio::ConnectionLike, streams::StreamRangeReply};
use serde_json::value::RawValue;

use super::{
    RedisLog, global,
    presence::millis,
    wire::{
        entry_id, parse_visibility, presence_key, presence_texts, stream_key, text_frame, user_json,
    },
};
use crate::{
    auth::User,
    chat::{
        EngineError, Membership,
        log::{Accepted, Entry, Joiner},
        protocol::{EventKind, now_ms, presence::ListEvent},
        recovery,
    },
    redis_retry::retry_dropped,
};

/// What the join script answers.
#[derive(Clone)]
struct Joined {
    /// The room's last id before the joiner came.
    before: u64,
    /// The `join` event, or empty if the user was already in the room somewhere.
    joined: String,
    list_id: u64,
    history_id: u64,
    /// The room's users across the cluster, a JSON array: all of a small room, the first
    /// page of a big one.
    users: String,
    /// The newest id trimmed from the messages' stream: a recovery from below it missed
    /// something (see `scripts/join.lua`).
    pruned: u64,
    /// The room's count across the cluster.
    count: usize,
    /// Where the next page of users begins, if any follow.
    next: Option<u64>,
}

impl RedisLog {
    /// Refused as busy while the worker's queue is full. Attaches the socket, then enters it
    /// into the room in Redis; if Redis fails, the socket is taken back out, and so is its
    /// entry: a join script that timed out may still run once Redis goes on, and the leave
    /// queued behind it takes the entry out again (or marks the socket as gone first, so the
    /// late join adds nothing), never leaving a ghost.
    pub(super) async fn enter(&self, joiner: Joiner) -> Result<(Membership, Entry), EngineError> {
        // Its `join` does not go through the queue, but all it would say after would.
        if self.jobs.full() {
            return Err(EngineError::Busy);
        }
        let (member, _) = self
            .hub
            .attach(joiner.room, joiner.user, joiner.session, joiner.outbox);
        let joined = match retry_dropped(|| self.join_script(&member)).await {
            Ok(joined) => joined,
            Err(e) => {
                self.depart(member);
                return Err(e.into());
            }
        };
        self.sockets.entered(&member);
        match retry_dropped(|| self.entry(&member, joined.clone(), joiner.since)).await {
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
        let big = self.hub.big_rooms();
        let (mut conn, mut counter) = (self.conn.clone(), self.conn.clone());
        // The user counter is raised to the joiner's id: a Redis that lost it must not hand
        // the id out again, whichever instance signed them in.
        tokio::try_join!(
            global::entering(
                &mut conn,
                &self.scripts,
                self.settings.presence_ttl,
                &member.room,
            ),
            global::raise(&mut counter, &self.scripts, global::USER_IDS, user.id),
        )?;
        let mut call = self.scripts.room_call(&self.scripts.join, &member.room);
        call.arg(member.room.as_str())
            .arg(&self.instance)
            .arg(user.id)
            .arg(user_json(user))
            .arg(joined_data)
            .arg(left_data)
            .arg(self.settings.presence_kept())
            .arg(self.seen.get(&member.room))
            .arg(member.socket)
            .arg(millis(self.settings.presence_ttl))
            .arg(big.threshold)
            .arg(big.page);
        self.scripts.tail(&mut call);
        let (before, joined, list_id, history_id, users, pruned, count, next, arrival): (
            u64,
            String,
            u64,
            u64,
            String,
            u64,
            usize,
            u64,
            u64,
        ) = call.invoke_async(&mut conn).await?;
        self.seen.see(&member.room, history_id);
        self.settings.floor.see_users(user.id);
        // Where whispers look for the user: without it they would look offline.
        retry_dropped(|| {
            let mut conn = conn.clone();
            let room = &member.room;
            async move {
                global::user_moved(&mut conn, &self.scripts, user.id, room, arrival, true).await
            }
        })
        .await?;
        Ok(Joined {
            before,
            joined,
            list_id,
            history_id,
            users,
            pruned,
            count,
            next: (next > 0).then_some(next),
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
            pruned,
            ..
        } = joined;
        let plan = recovery::plan(since, before, pruned, self.settings.policy);
        // One more than the page, to learn whether older events remain.
        let want = plan.limit.saturating_add(1);
        let mut conn = self.conn.clone();
        let range = (plan.after, before);
        let mut stored = read_back(
            &mut conn,
            &stream_key(&member.room),
            user.id,
            range,
            want,
            self.scan_bound(),
        )
        .await?;
        if plan.recovery {
            let presence = read_back(
                &mut conn,
                &presence_key(&member.room),
                user.id,
                range,
                want,
                want,
            )
            .await?;
            stored.extend(presence);
            stored.sort_by_key(|(id, _)| *id);
            stored.drain(..stored.len().saturating_sub(want));
        }
        let stored = stored.into_iter().map(|(_, body)| body).collect();
        let bounded = plan.bound(stored, self.settings.policy.max_bytes);
        // The script hands over a big room's first page only, and where the rest begins.
        let Joined { count, next, .. } = joined;
        let users: Vec<User> = serde_json::from_str(&joined.users).unwrap_or_default();
        let users: Vec<&User> = users.iter().collect();
        let mut frames = Vec::with_capacity(3);
        if !joined.joined.is_empty() {
            frames.push(text_frame(joined.joined.as_bytes()));
        }
        frames.push(
            ListEvent {
                id: list_id,
                kind: EventKind::List,
                user,
                data: &users,
                time: now_ms(),
                count,
                next,
            }
            .to_frame(),
        );
        frames.push(bounded.frame(history_id, user, None));
        Ok(Entry {
            frames,
            floor: history_id,
            joined: !joined.joined.is_empty(),
            count,
        })
    }
}

impl RedisLog {
    /// Entries one read may scan to fill its page: whispers between others are skipped, so
    /// a page may need more than its own count, but never more than the stream holds: twice
    /// the retention, since trimming is approximate and a stream may hold somewhat more.
    fn scan_bound(&self) -> usize {
        usize::try_from(self.settings.max_events.saturating_mul(2)).unwrap_or(usize::MAX)
    }

    /// Reads a page of the history before `before` for `member` on a task of its own, and
    /// sends it to that socket only. `Busy` while `--history-reads` pages are being read.
    pub(super) fn page(&self, member: &Membership, before: u64) -> Accepted {
        let permit = self
            .pages
            .clone()
            .try_acquire_owned()
            .map_err(|_| EngineError::Busy)?;
        let conn = self.conn.clone();
        let hub = self.hub.clone();
        let member = member.clone();
        let policy = self.settings.policy;
        let scan = self.scan_bound();
        tokio::spawn(async move {
            let _permit = permit;
            let key = stream_key(&member.room);
            let read = retry_dropped(|| {
                let mut conn = conn.clone();
                let (key, viewer) = (&key, member.user.id);
                async move {
                    let range = (0, before.saturating_sub(1));
                    let want = policy.page.saturating_add(1);
                    read_back(&mut conn, key, viewer, range, want, scan).await
                }
            })
            .await;
            match read {
                Ok(events) => {
                    let events = events.into_iter().map(|(_, body)| body).collect();
                    let page = recovery::bound(events, policy.page, policy.max_bytes);
                    recovery::send_page(&hub, &member, before, &page);
                }
                Err(e) => {
                    tracing::error!(error = %e, room = %member.room, "reading a page of history failed");
                    hub.reply_error(
                        &member,
                        crate::chat::protocol::code::HISTORY_UNAVAILABLE,
                        "history not read: the server could not read it",
                    );
                }
            }
        });
        Ok(())
    }
}

/// The newest `want` events of a room's stream (`key`) with `after < id <= through` that
/// `viewer` may see, with their ids, oldest first. Reads backwards in slices of `want`, skipping what the viewer may
/// not see (others' whispers), until it has them all, or the stream ends, or it scanned
/// `scan` entries: the reading a page costs is bounded by the retention.
async fn read_back(
    conn: &mut (impl ConnectionLike + Send),
    key: &str,
    viewer: u64,
    (after, through): (u64, u64),
    want: usize,
    scan: usize,
) -> redis::RedisResult<Vec<(u64, Box<RawValue>)>> {
    let mut found: Vec<(u64, Box<RawValue>)> = Vec::new();
    let mut upper = through;
    let mut scanned = 0usize;
    while want > 0 && found.len() < want && upper > after && scanned < scan {
        let count = want.min(scan - scanned);
        let reply: StreamRangeReply = redis::cmd("XREVRANGE")
            .arg(key)
            .arg(format!("{upper}-0"))
            .arg(format!("{}-0", after + 1))
            .arg("COUNT")
            .arg(count)
            .query_async(conn)
            .await?;
        scanned += reply.ids.len();
        let Some(oldest) = reply.ids.last() else {
            break;
        };
        let oldest = entry_id(&oldest.id).unwrap_or(0);
        let short = reply.ids.len() < count;
        found.extend(
            reply
                .ids
                .iter()
                .filter(|entry| {
                    entry
                        .get::<String>("v")
                        .and_then(|v| parse_visibility(&v))
                        .is_some_and(|v| v.allows(viewer))
                })
                .filter_map(|entry| Some((entry_id(&entry.id)?, entry.get::<String>("b")?)))
                .filter_map(|(id, body)| Some((id, RawValue::from_string(body).ok()?)))
                .take(want - found.len()),
        );
        if short || oldest <= after + 1 {
            break;
        }
        upper = oldest - 1;
    }
    found.reverse();
    Ok(found)
}
