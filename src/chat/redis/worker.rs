//! The one task that calls the scripts for this instance's sockets, in the order they
//! asked, so a socket never waits on Redis; and the leaves Redis has not heard yet.

use std::{
    sync::{Arc, atomic::Ordering},
    time::Duration,
};

use redis::aio::ConnectionManager;
use tokio::sync::{mpsc, oneshot};

use super::{
    Membership, RoomName,
    rooms::{Epoch, Rooms, Seen, lock, seen},
    unavailable,
    wire::{Pieces, Scripts},
};
use crate::{
    auth::User,
    chat::protocol::{EventData, EventKind, ServerEvent, now_ms},
};

/// Work for the worker task, done in the order the sockets asked.
#[derive(Debug)]
pub(super) enum Job {
    Emit {
        member: Key,
        event: Pieces,
    },
    /// Redis fills in the recipient, whose details only it knows.
    Private {
        member: Key,
        to: u64,
        event: Pieces,
    },
    Error {
        member: Key,
        message: String,
    },
    Leave {
        room: RoomName,
        user: u64,
        epoch: u64,
    },
    Flush(oneshot::Sender<()>),
}

/// A socket, as jobs name it.
#[derive(Debug, Clone)]
pub(super) struct Key {
    room: RoomName,
    socket: u64,
    user: Arc<User>,
}

impl From<&Membership> for Key {
    fn from(m: &Membership) -> Key {
        Key {
            room: m.room.clone(),
            socket: m.socket,
            user: m.user.clone(),
        }
    }
}

pub(super) struct Worker {
    pub conn: ConnectionManager,
    pub scripts: Arc<Scripts>,
    pub rooms: Arc<Rooms>,
    pub seen: Arc<Seen>,
    pub epoch: Arc<Epoch>,
    pub instance: String,
    pub max_events: u64,
    /// Sockets that closed while Redis was away: their users are still online there.
    pub unsent_leaves: Vec<(RoomName, u64, u64)>,
}

impl Worker {
    pub async fn run(mut self, mut queue: mpsc::UnboundedReceiver<Job>) {
        let mut retry = tokio::time::interval(Duration::from_secs(1));
        loop {
            let job = tokio::select! {
                job = queue.recv() => match job {
                    Some(job) => job,
                    None => return,
                },
                _ = retry.tick() => {
                    self.retry_leaves().await;
                    continue;
                }
            };
            self.run_job(job).await;
        }
    }

    async fn run_job(&mut self, job: Job) {
        match job {
            Job::Emit { member, event } => {
                let sent: redis::RedisResult<u64> = self
                    .scripts
                    .emit
                    .arg(member.room.as_str())
                    .arg(event.kind)
                    .arg(event.user)
                    .arg(event.data)
                    .arg(self.max_events)
                    .arg(seen(&self.seen, &member.room))
                    .arg(member.user.id)
                    .invoke_async(&mut self.conn)
                    .await;
                if let Err(e) = sent {
                    self.not_sent(&member, &e);
                }
            }
            Job::Private { member, to, event } => {
                let sent: redis::RedisResult<u64> = self
                    .scripts
                    .private
                    .arg(member.user.id)
                    .arg(to)
                    .arg(event.kind)
                    .arg(event.user)
                    .arg(event.data)
                    .arg(self.max_events)
                    .invoke_async(&mut self.conn)
                    .await;
                match sent {
                    Ok(0) => self.reply(&member, &format!("user {to} is not online")),
                    Ok(_) => {}
                    Err(e) => self.not_sent(&member, &e),
                }
            }
            Job::Error { member, message } => self.reply(&member, &message),
            Job::Leave { room, user, epoch } => {
                if let Err(e) = self.leave(&room, user, epoch).await {
                    tracing::error!(user, error = %e, "left not sent yet: Redis");
                    self.unsent_leaves.push((room, user, epoch));
                }
            }
            Job::Flush(done) => {
                let _ = done.send(());
            }
        }
    }

    async fn leave(&mut self, room: &RoomName, user: u64, epoch: u64) -> redis::RedisResult<()> {
        if epoch != self.epoch.load(Ordering::SeqCst) {
            return Ok(());
        }
        self.scripts
            .leave
            .arg(room.as_str())
            .arg(&self.instance)
            .arg(user)
            .arg(self.max_events)
            .arg(seen(&self.seen, room))
            .invoke_async::<u64>(&mut self.conn)
            .await
            .map(drop)
    }

    async fn retry_leaves(&mut self) {
        while let Some((room, user, epoch)) = self.unsent_leaves.pop() {
            if self.leave(&room, user, epoch).await.is_err() {
                self.unsent_leaves.push((room, user, epoch));
                return;
            }
        }
    }

    fn not_sent(&self, member: &Key, e: &redis::RedisError) {
        tracing::warn!(user = member.user.id, error = %e, "message not sent");
        self.reply(member, &format!("not sent: {}", unavailable(e)));
    }

    /// An `error` to one socket, carrying the last id it was sent: it makes no id of its own.
    fn reply(&self, member: &Key, message: &str) {
        let rooms = lock(&self.rooms);
        let Some(socket) = rooms
            .get(&member.room)
            .and_then(|room| room.sockets.get(&member.socket))
        else {
            tracing::debug!(
                user = member.user.id,
                message,
                "no socket for the error reply"
            );
            return;
        };
        let pushed = socket.outbox.push(
            ServerEvent {
                id: socket.last,
                kind: EventKind::Error,
                user: &member.user,
                data: EventData::Text(message),
                time: now_ms(),
                count: None,
            }
            .to_frame(),
        );
        tracing::debug!(?pushed, message, "error reply");
    }
}
