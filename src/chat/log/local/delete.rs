//! Deleting messages under the local log: each step takes the room's next id for its `delete`
//! event under the log's lock and hands it to the keeper there, so it keeps its place in the
//! room's order; the keeper removes what the step selects below that id and keeps the event.
//! A purge repeats steps of at most `batch` messages, each queued behind whatever the room
//! and every other room sent meanwhile, so none waits on more than one step.

use std::time::Instant;

use futures_util::future::BoxFuture;

use super::{Keeper, LocalLog, take_ids};
use crate::chat::{
    log::deletion::{DeleteError, Deleted, Deletion, Doomed, MISSING, NOT_YET},
    room::RoomName,
};

/// What one step deleted, oldest first: resolves once it is kept and delivered.
pub type StepFuture = BoxFuture<'static, Result<Vec<u64>, DeleteError>>;

impl<K: Keeper> LocalLog<K> {
    pub(super) async fn delete_messages(&self, what: Deletion) -> Result<Deleted, DeleteError> {
        if !self.keeper.keeps_history() {
            return Err(DeleteError::NoHistory);
        }
        let rooms = match &what {
            Deletion::Message { room, .. }
            | Deletion::Purge {
                room: Some(room), ..
            } => vec![room.clone()],
            Deletion::Purge {
                user,
                room: None,
                since_ms,
                ..
            } => self.keeper.rooms_with(*user, since_ms.unwrap_or(0)).await?,
        };
        let doomed = Doomed::of(&what);
        let mut deleted = Deleted::default();
        for room in rooms {
            loop {
                let Some(step) = self.step(&room, doomed)? else {
                    if let Doomed::Message(id) = doomed {
                        return Err(DeleteError::NotAMessage {
                            room,
                            id,
                            why: MISSING,
                        });
                    }
                    break;
                };
                let ids = step.await?;
                let n = ids.len();
                deleted.add(&room, ids);
                if !doomed.more_after(n) {
                    break;
                }
            }
        }
        Ok(deleted)
    }

    /// Queues one step in `room` with the room's next id; `None` if the room was never kept.
    fn step(&self, room: &RoomName, doomed: Doomed) -> Result<Option<StepFuture>, DeleteError> {
        let mut rooms = self.lock();
        let Some(last_id) = rooms.kept(room, Instant::now(), || self.keeper.reserved(room))? else {
            return Ok(None);
        };
        if let Doomed::Message(id) = doomed
            && id > *last_id
        {
            return Err(DeleteError::NotAMessage {
                room: room.clone(),
                id,
                why: NOT_YET,
            });
        }
        let id = take_ids(last_id, 1)?;
        Ok(Some(self.keeper.delete(room, id, doomed)))
    }
}
