//! The one task that calls the scripts for this instance's sockets, in the order they
//! asked, so a socket never waits on Redis; and the leaves Redis has not heard yet.

use std::{sync::Arc, time::Duration};

use redis::aio::ConnectionManager;
use tokio::sync::{mpsc, oneshot};

use super::{
    queue::Queued,
    state::{Epoch, Seen},
    wire::{Pieces, Scripts},
};
use crate::chat::{EngineError, Membership, hub::Hub, room::RoomName};

/// Work for the worker task, done in the order the sockets asked.
#[derive(Debug)]
pub(super) enum Job {
    Emit {
        member: Membership,
        event: Pieces,
    },
    /// Redis fills in the recipient, whose details only it knows.
    Private {
        member: Membership,
        to: u64,
        event: Pieces,
    },
    Error {
        member: Membership,
        message: String,
    },
    Leave {
        room: RoomName,
        user: u64,
        epoch: u64,
    },
    Flush(oneshot::Sender<()>),
}

pub(super) struct Worker {
    pub conn: ConnectionManager,
    pub scripts: Arc<Scripts>,
    pub hub: Arc<Hub>,
    pub seen: Arc<Seen>,
    pub epoch: Arc<Epoch>,
    pub instance: String,
    pub max_events: u64,
    /// The presence stream's bound, for `left`.
    pub max_presence: u64,
    /// Sockets that closed while Redis was away: their users are still online there.
    pub unsent_leaves: Vec<(RoomName, u64, u64)>,
}

impl Worker {
    pub async fn run(mut self, mut queue: mpsc::UnboundedReceiver<Queued>) {
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
            // The job's slots in the queue are freed once it ran, not when it was taken:
            // a stalled Redis call still counts against the bound.
            self.run_job(job.job).await;
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
                    .arg(self.seen.get(&member.room))
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
                    .arg(member.room.as_str())
                    .arg(member.user.id)
                    .arg(to)
                    .arg(event.kind)
                    .arg(event.user)
                    .arg(event.data)
                    .arg(self.max_events)
                    .arg(self.seen.get(&member.room))
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
        if epoch != self.epoch.current() {
            return Ok(());
        }
        self.scripts
            .leave
            .arg(room.as_str())
            .arg(&self.instance)
            .arg(user)
            .arg(self.max_presence)
            .arg(self.seen.get(room))
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

    fn not_sent(&self, member: &Membership, e: &redis::RedisError) {
        tracing::warn!(user = member.user.id, error = %e, "message not sent");
        self.reply(
            member,
            &format!("not sent: {}", EngineError::from(e.clone())),
        );
    }

    fn reply(&self, member: &Membership, message: &str) {
        self.hub.reply_error(member, message);
    }
}
