//! What the Redis log remembers besides the hub: the highest id seen per room.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard},
};

use crate::chat::{hub::Hub, room::RoomName};

/// The highest id this instance saw in each room; it outlives the room's sockets, so a
/// Redis that lost its data never hands out an id again (see `raise` in `prelude.lua`).
/// Only what Redis is raised to: what this instance's sockets were actually sent is the
/// hub's, and a join moves this mark forward without sending anything (see `gaps`).
///
/// Bounded: the subscriber hears every room of the cluster, so once the map doubles, rooms
/// without a socket here are forgotten. A room with sockets here keeps its guard; one
/// nobody here uses relies on Redis alone, like a room this instance never saw.
#[derive(Debug)]
pub(super) struct Seen {
    hub: Arc<Hub>,
    rooms: Mutex<SeenRooms>,
}

#[derive(Debug)]
struct SeenRooms {
    last: HashMap<RoomName, u64>,
    prune_at: usize,
    /// The highest id of any room, pruned or not: the instance's floor (`store::Floor`).
    highest: u64,
}

/// Rooms remembered before the first pruning.
const SEEN_PRUNE_AT: usize = 1024;

impl Seen {
    pub fn new(hub: Arc<Hub>) -> Self {
        Seen {
            hub,
            rooms: Mutex::new(SeenRooms {
                last: HashMap::new(),
                prune_at: SEEN_PRUNE_AT,
                highest: 0,
            }),
        }
    }

    pub fn get(&self, room: &RoomName) -> u64 {
        self.lock().last.get(room).copied().unwrap_or(0)
    }

    pub fn see(&self, room: &RoomName, id: u64) {
        let mut seen = self.lock();
        if seen.last.len() >= seen.prune_at {
            seen.last.retain(|room, _| self.hub.online(room) > 0);
            seen.prune_at = (seen.last.len() * 2).max(SEEN_PRUNE_AT);
        }
        seen.highest = seen.highest.max(id);
        let last = seen.last.entry(room.clone()).or_default();
        *last = (*last).max(id);
    }

    /// The highest id seen in any room.
    pub fn highest(&self) -> u64 {
        self.lock().highest
    }

    /// Rooms remembered now.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.lock().last.len()
    }

    fn lock(&self) -> MutexGuard<'_, SeenRooms> {
        self.rooms.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rooms_without_sockets_here_are_forgotten_once_the_map_doubles() {
        let seen = Seen::new(Arc::new(Hub::default()));
        for n in 0..SEEN_PRUNE_AT * 3 {
            seen.see(&RoomName::parse(&format!("r{n}")).unwrap(), 7);
        }
        assert!(seen.len() <= SEEN_PRUNE_AT, "{}", seen.len());
        let last = RoomName::parse(&format!("r{}", SEEN_PRUNE_AT * 3 - 1)).unwrap();
        assert_eq!(seen.get(&last), 7, "the newest is still there");
    }
}
