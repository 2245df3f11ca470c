//! The one task that calls the scripts for this instance's sockets, in the order they
//! asked, so a socket never waits on Redis; leaves go through `presence::Leaves`.

use std::{sync::Arc, time::Duration};

use redis::aio::ConnectionManager;
use tokio::sync::{mpsc, oneshot};

use super::{
    presence::{Leave, Leaves},
    queue::Queued,
    state::Seen,
    wire::{Pieces, Scripts},
};
use crate::chat::{EngineError, Membership, hub::Hub};

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
    Leave(Leave),
    Flush(oneshot::Sender<()>),
}

pub(super) struct Worker {
    pub conn: ConnectionManager,
    pub scripts: Arc<Scripts>,
    pub hub: Arc<Hub>,
    pub seen: Arc<Seen>,
    pub max_events: u64,
    pub leaves: Leaves,
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
                    self.leaves.retry().await;
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
            Job::Leave(leave) => self.leaves.run(leave).await,
            Job::Flush(done) => {
                let _ = done.send(());
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
