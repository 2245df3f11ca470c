//! A socket's entry leaving Redis (`scripts/leave.lua`), for the worker: each leave is sent
//! until Redis answers it, and a copy that runs twice or late (Redis stalled past the
//! timeout, then ran every retry) takes nothing out twice.

use std::{
    collections::VecDeque,
    sync::Arc,
    time::{Duration, Instant},
};

use crate::redis_conn::RedisConn;

use super::{
    global,
    state::Seen,
    wire::{Scripts, presence_texts, user_json},
};
use crate::{auth::User, chat::room::RoomName, redis_retry::retry_dropped};

/// How long a socket that left stays marked so in Redis: a join or beat of it that Redis
/// runs late, after the leave, must find the mark. Scripts held by a stalled Redis run as
/// soon as it goes on, so this only has to outlast that burst, with a wide margin.
pub(super) const GONE_FOR: Duration = Duration::from_secs(120);

/// The longest wait between two tries of the leaves Redis has not answered.
const MOST_BACKOFF: Duration = Duration::from_secs(8);

/// One socket's entry to take out of Redis.
#[derive(Debug, Clone)]
pub(super) struct Leave {
    pub socket: u64,
    room: RoomName,
    user: Arc<User>,
    /// Redis answered its join: if Redis forgot the entry, it still owes the room a `left`.
    pub announced: bool,
}

impl Leave {
    pub fn new(socket: u64, room: &RoomName, user: &Arc<User>, announced: bool) -> Leave {
        Leave {
            socket,
            room: room.clone(),
            user: user.clone(),
            announced,
        }
    }

    /// Its room, whose lane keeps its order.
    pub fn room(&self) -> &RoomName {
        &self.room
    }
}

/// Sends leaves for the worker, and keeps those Redis did not answer to try again, with a
/// growing wait while Redis stays away.
pub(super) struct Leaves {
    pub conn: RedisConn,
    pub scripts: Arc<Scripts>,
    pub seen: Arc<Seen>,
    pub instance: String,
    /// The presence stream's bound, for `left`.
    pub max_presence: u64,
    unsent: VecDeque<Leave>,
    next_try: Instant,
    backoff: Duration,
}

impl Leaves {
    pub fn new(
        conn: RedisConn,
        scripts: Arc<Scripts>,
        seen: Arc<Seen>,
        instance: String,
        max_presence: u64,
    ) -> Leaves {
        Leaves {
            conn,
            scripts,
            seen,
            instance,
            max_presence,
            unsent: VecDeque::new(),
            next_try: Instant::now(),
            backoff: Duration::from_secs(1),
        }
    }

    /// Sends the leave, after those still unsent; if Redis does not answer, keeps it.
    pub async fn run(&mut self, leave: Leave) {
        if !self.unsent.is_empty() {
            self.unsent.push_back(leave);
            self.retry().await;
            return;
        }
        if let Err(e) = self.send(&leave).await {
            tracing::warn!(user = leave.user.id, error = %e, "left not sent yet: Redis");
            self.unsent.push_back(leave);
            self.failed();
        }
    }

    /// Tries the unsent leaves again, oldest first, once their wait is over.
    pub async fn retry(&mut self) {
        if self.unsent.is_empty() || Instant::now() < self.next_try {
            return;
        }
        while let Some(leave) = self.unsent.pop_front() {
            if self.send(&leave).await.is_err() {
                self.unsent.push_front(leave);
                self.failed();
                return;
            }
        }
        self.backoff = Duration::from_secs(1);
    }

    fn failed(&mut self) {
        self.next_try = Instant::now() + self.backoff;
        self.backoff = (self.backoff * 2).min(MOST_BACKOFF);
    }

    async fn send(&mut self, leave: &Leave) -> redis::RedisResult<()> {
        let (_, left) = presence_texts(&leave.user);
        let mut call = self.scripts.room_call(&self.scripts.leave, &leave.room);
        call.arg(leave.room.as_str())
            .arg(&self.instance)
            .arg(leave.socket)
            .arg(leave.user.id)
            .arg(user_json(&leave.user))
            .arg(left)
            .arg(self.max_presence)
            .arg(self.seen.get(&leave.room))
            .arg(millis(GONE_FOR))
            .arg(u8::from(leave.announced));
        self.scripts.tail(&mut call);
        let (_, arrival): (u64, u64) = retry_dropped(|| {
            let mut conn = self.conn.clone();
            let call = &call;
            async move { call.invoke_async(&mut conn).await }
        })
        .await?;
        // Only tidiness: a whisper's lookup skips a room that no longer has the user.
        let (user, room) = (leave.user.id, &leave.room);
        if arrival > 0
            && let Err(e) =
                global::user_moved(&mut self.conn, &self.scripts, user, room, arrival, false).await
        {
            tracing::debug!(user, error = %e, "where the user is not updated");
        }
        Ok(())
    }
}

/// A duration in whole milliseconds, at least 1, for a script.
pub(super) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}
