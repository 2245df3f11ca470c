//! The lanes that call Redis for this instance's sockets, so a socket never waits on Redis;
//! and the leaves Redis has not heard yet.
//!
//! Each room's jobs go to one lane (`queue`) and are done in the order the sockets asked.
//! A lane works in rounds: from every room it holds it takes up to `--redis-batch` messages
//! (one script call per room, `send`), sends the round's calls in one round trip, then does
//! that round's leaves (`presence::Leaves`). So a flooded room takes one call per round like
//! any other and cannot hold up the quiet ones, and a burst costs one call, not one per
//! message.

use std::{
    collections::{HashMap, VecDeque},
    sync::Arc,
    time::{Duration, Instant},
};

use crate::redis_conn::RedisConn;
use tokio::sync::{mpsc, oneshot};

use super::{
    presence::{Leave, Leaves},
    queue::Queued,
    send::Call,
    state::Seen,
    wire::{Pieces, Scripts},
};
use crate::chat::{
    Membership,
    hub::Hub,
    protocol::{Cid, Reply},
    room::RoomName,
};

/// How often leaves Redis did not take are tried again.
const RETRY_LEAVES: Duration = Duration::from_secs(1);

/// Work for a lane, done in the order the sockets asked.
#[derive(Debug)]
pub(super) enum Job {
    /// A message of the member's room: to the room, or a whisper to `to` (Redis fills in
    /// the recipient, whose details only it knows). `cid`: the client's id for it.
    Message {
        member: Membership,
        to: Option<u64>,
        event: Pieces,
        cid: Option<Cid>,
    },
    Reply {
        member: Membership,
        reply: Reply,
    },
    Leave(Leave),
    Flush(oneshot::Sender<()>),
}

impl Job {
    /// The room whose order the job keeps; a flush has none (each lane gets one).
    pub fn room(&self) -> Option<&RoomName> {
        match self {
            Job::Message { member, .. } | Job::Reply { member, .. } => Some(&member.room),
            Job::Leave(leave) => Some(leave.room()),
            Job::Flush(_) => None,
        }
    }
}

pub(super) struct Worker {
    pub conn: RedisConn,
    pub scripts: Arc<Scripts>,
    pub hub: Arc<Hub>,
    pub seen: Arc<Seen>,
    /// Names this instance's numbered calls in Redis.
    pub instance: String,
    pub max_events: u64,
    /// Messages of one room sent in one call at most (`--redis-batch`).
    pub batch: usize,
    /// Seconds Redis remembers a `cid` and a call's answer.
    pub window: u64,
    /// The last call's number: a retried call keeps its number, so Redis runs it once.
    pub calls: u64,
    pub leaves: Leaves,
}

/// What a lane holds: each room's jobs in order, the rooms in turn, and flushes waiting for
/// the lane to be empty.
#[derive(Default)]
struct Pending {
    rooms: HashMap<RoomName, VecDeque<Queued>>,
    turns: VecDeque<RoomName>,
    flushes: Vec<oneshot::Sender<()>>,
}

impl Pending {
    fn add(&mut self, queued: Queued) {
        let Some(room) = queued.job.room().cloned() else {
            if let Job::Flush(done) = queued.job {
                self.flushes.push(done);
            }
            return;
        };
        self.rooms
            .entry(room)
            .or_insert_with_key(|room| {
                self.turns.push_back(room.clone());
                VecDeque::new()
            })
            .push_back(queued);
    }

    /// Answers the flushes once nothing is left.
    fn settle(&mut self) {
        if self.rooms.is_empty() {
            for done in self.flushes.drain(..) {
                let _ = done.send(());
            }
        }
    }
}

impl Worker {
    pub async fn run(mut self, mut queue: mpsc::UnboundedReceiver<Queued>) {
        let mut pending = Pending::default();
        let mut retried = Instant::now();
        loop {
            pending.settle();
            if pending.rooms.is_empty() {
                tokio::select! {
                    job = queue.recv() => match job {
                        Some(job) => pending.add(job),
                        None => return,
                    },
                    _ = tokio::time::sleep_until((retried + RETRY_LEAVES).into()) => {}
                }
            }
            // Whatever else is queued joins this round; the queue's bound keeps it finite.
            while let Ok(job) = queue.try_recv() {
                pending.add(job);
            }
            if retried.elapsed() >= RETRY_LEAVES {
                retried = Instant::now();
                self.leaves.retry().await;
            }
            self.round(&mut pending).await;
        }
    }

    /// One turn for every room: the replies at its head, then its next messages (one call)
    /// or its next leave. The calls go out together; a job's slots in the queue are freed
    /// once it ran, so a stalled Redis call still counts against the bound.
    async fn round(&mut self, pending: &mut Pending) {
        let mut calls = Vec::new();
        let mut leaves = Vec::new();
        for _ in 0..pending.turns.len() {
            let Some(room) = pending.turns.pop_front() else {
                break;
            };
            let Some(jobs) = pending.rooms.get_mut(&room) else {
                continue;
            };
            while let Some(Job::Reply { .. }) = jobs.front().map(|q| &q.job) {
                if let Some(Queued {
                    job: Job::Reply { member, reply },
                    ..
                }) = jobs.pop_front()
                {
                    self.hub.reply(&member, &reply);
                }
            }
            match jobs.front().map(|q| &q.job) {
                Some(Job::Leave { .. }) => leaves.extend(jobs.pop_front()),
                Some(Job::Message { .. }) => {
                    let mut taken = Vec::new();
                    while taken.len() < self.batch
                        && matches!(jobs.front().map(|q| &q.job), Some(Job::Message { .. }))
                    {
                        taken.extend(jobs.pop_front());
                    }
                    self.calls += 1;
                    calls.push(Call::new(room.clone(), self.calls, taken));
                }
                _ => {}
            }
            if jobs.is_empty() {
                pending.rooms.remove(&room);
            } else {
                pending.turns.push_back(room);
            }
        }
        if !calls.is_empty() {
            self.send(calls).await;
        }
        for queued in leaves {
            if let Job::Leave(leave) = queued.job {
                self.leaves.run(leave).await;
            }
        }
    }
}
