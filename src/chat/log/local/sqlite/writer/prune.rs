//! The writer's pruning: rooms past their count limit, a few at a time after commits, and
//! events past the age limit, on a clock.

use std::time::Duration;

use super::Writer;
use crate::chat::{protocol::now_ms, room::RoomName};

/// Pruning by age runs an eighth of the age limit apart, so an event outlives the limit by
/// little, within these bounds. It is checked after every batch, so a busy writer prunes
/// on time too.
pub(super) const AGE_PRUNE_EVERY: Duration = Duration::from_secs(600);
pub(super) const AGE_PRUNE_AT_MOST_EVERY: Duration = Duration::from_millis(100);

/// Rooms the writer remembers (reservations, counts since pruning) before it forgets them
/// all at once, so rooms nobody uses any more cost it nothing. Forgetting costs a row write
/// per room on its next commit, and a prune of each room it had counts for.
const REMEMBERED_ROOMS: usize = 16_384;

impl Writer {
    /// Prunes a room once it has stored an eighth of its limit since the last time: a range
    /// delete now and then instead of one per event.
    pub(super) fn prune_full_rooms(&mut self) {
        if self.reserved.len() > REMEMBERED_ROOMS {
            self.reserved.clear();
        }
        if self.unpruned.len() > REMEMBERED_ROOMS {
            // Pruned before they are forgotten, so none grows past its limit unseen.
            for (room, _) in std::mem::take(&mut self.unpruned) {
                if let Err(e) = self.store.prune_room(room.as_str()) {
                    tracing::error!(error = %e, room = %room, "pruning history failed");
                }
            }
            return;
        }
        let every = self.store.prune_every();
        let due: Vec<RoomName> = self
            .unpruned
            .iter()
            .filter(|(_, n)| **n >= every)
            .map(|(room, _)| room.clone())
            .collect();
        for room in due {
            self.unpruned.remove(&room);
            if let Err(e) = self.store.prune_room(room.as_str()) {
                tracing::error!(error = %e, room = %room, "pruning history failed");
            }
        }
    }

    pub(super) fn prune_by_age(&mut self) {
        match self.store.prune_by_age(now_ms()) {
            Ok(0) => {}
            Ok(n) => tracing::info!(events = n, "pruned old history"),
            Err(e) => tracing::error!(error = %e, "pruning old history failed"),
        }
    }
}
