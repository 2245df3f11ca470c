//! This instance's sockets per room under the Redis engine, what each was sent, and the
//! highest id this instance saw per room.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex, MutexGuard,
        atomic::{AtomicU64, Ordering},
    },
};

use super::{Membership, RoomName, wire::Published};
use crate::{auth::User, chat::outbox::Outbox};

pub(super) type Rooms = Mutex<HashMap<RoomName, LocalRoom>>;

/// This instance's sockets in one room.
#[derive(Debug, Default)]
pub(super) struct LocalRoom {
    pub sockets: HashMap<u64, Socket>,
    /// Sockets per user here: for `online`, and to tell Redis again if it forgot them.
    pub users: HashMap<u64, (u32, Arc<User>)>,
}

/// Bumped each time this instance tells Redis again who is here. A leave counted before
/// that must not be sent after it: the retelling already left that socket out.
pub(super) type Epoch = AtomicU64;

/// The highest id this instance saw in each room; it outlives the room's sockets.
pub(super) type Seen = Mutex<HashMap<RoomName, u64>>;

#[derive(Debug)]
pub(super) struct Socket {
    pub user_id: u64,
    pub outbox: Outbox,
    /// Events up to this id reach the socket through `history`, not live.
    pub floor: u64,
    /// The last id the socket was sent; an `error` reply reuses it.
    pub last: u64,
    /// While joining: what was published before the socket knew its floor.
    pub pending: Option<Vec<Published>>,
}

impl Socket {
    pub fn deliver(&mut self, event: &Published) {
        if let Some(pending) = &mut self.pending {
            pending.push(event.clone());
        } else if event.id > self.floor.max(self.last) && event.visible.allows(self.user_id) {
            // `last` also drops what a catch-up after a lost subscription already gave.
            self.last = event.id;
            // A full outbox marks its socket for closing; its task does the rest.
            let _ = self.outbox.push(event.frame.clone());
        }
    }
}

/// Gives an event to this instance's sockets in its room.
pub(super) fn deliver(rooms: &Rooms, seen: &Seen, room: &RoomName, event: &Published) {
    see(seen, room, event.id);
    if let Some(room) = lock(rooms).get_mut(room) {
        room.sockets.values_mut().for_each(|s| s.deliver(event));
    }
}

pub(super) fn seen(seen: &Seen, room: &RoomName) -> u64 {
    seen.lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(room)
        .copied()
        .unwrap_or(0)
}

pub(super) fn see(seen: &Seen, room: &RoomName, id: u64) {
    let mut seen = seen.lock().unwrap_or_else(|p| p.into_inner());
    let last = seen.entry(room.clone()).or_default();
    *last = (*last).max(id);
}

pub(super) fn lock(rooms: &Rooms) -> MutexGuard<'_, HashMap<RoomName, LocalRoom>> {
    rooms.lock().unwrap_or_else(|p| p.into_inner())
}

/// Takes the socket off this instance; if it was there, the epoch it left in (read under
/// the same lock the retelling reads the sockets under).
pub(super) fn remove(rooms: &Rooms, member: &Membership, epoch: &Epoch) -> Option<u64> {
    let mut rooms = lock(rooms);
    let room = rooms.get_mut(&member.room)?;
    room.sockets.remove(&member.socket)?;
    let epoch = epoch.load(Ordering::SeqCst);
    if let Some((n, _)) = room.users.get_mut(&member.user.id) {
        *n -= 1;
        if *n == 0 {
            room.users.remove(&member.user.id);
        }
    }
    if room.sockets.is_empty() {
        rooms.remove(&member.room);
    }
    Some(epoch)
}
