//! What the Redis log remembers besides the hub: the highest id seen per room, and the
//! epoch that keeps a leave from undoing a retelling of who is here.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard},
};

use crate::{
    auth::User,
    chat::{
        Membership,
        hub::{Departure, Hub},
        room::RoomName,
    },
};

/// The highest id this instance saw in each room; it outlives the room's sockets, so a
/// Redis that lost its data never hands out an id again (see `raise` in `prelude.lua`).
#[derive(Debug, Default)]
pub(super) struct Seen(Mutex<HashMap<RoomName, u64>>);

impl Seen {
    pub fn get(&self, room: &RoomName) -> u64 {
        self.lock().get(room).copied().unwrap_or(0)
    }

    pub fn see(&self, room: &RoomName, id: u64) {
        let mut seen = self.lock();
        let last = seen.entry(room.clone()).or_default();
        *last = (*last).max(id);
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<RoomName, u64>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Bumped each time this instance tells Redis again who is here. A leave counted before
/// that must not be sent after it: the retelling already left that socket out. Taken
/// around `Hub::detach` and around the snapshot retold, so each leave falls clearly on one
/// side of a retelling.
#[derive(Debug, Default)]
pub(super) struct Epoch(Mutex<u64>);

/// One user's sockets in one room here, as Redis is told again.
pub(super) type Present = (RoomName, Arc<User>, u32);

impl Epoch {
    /// Takes the socket out of the hub; if it was there, the epoch it left in.
    pub fn detach(&self, hub: &Hub, member: &Membership) -> Option<(Departure, u64)> {
        let epoch = self.lock();
        hub.detach(member).map(|departure| (departure, *epoch))
    }

    /// Who is here, to retell; `forgotten` starts a new epoch, voiding the leaves counted
    /// until now.
    pub fn snapshot(&self, hub: &Hub, forgotten: bool) -> Vec<Present> {
        let mut epoch = self.lock();
        if forgotten {
            *epoch += 1;
        }
        hub.presence()
    }

    pub fn current(&self) -> u64 {
        *self.lock()
    }

    fn lock(&self) -> MutexGuard<'_, u64> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}
