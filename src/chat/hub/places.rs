//! `Places`: one user's or one sign-in's sockets here, each with its room.
//!
//! A user has one or two sockets (a tab or two), so a short `Vec` sized to them beats a map
//! per user: with 10 000 users that is 10 000 small tables fewer, twice (see
//! docs/BENCHMARKS.md, "Big rooms").

use crate::chat::room::RoomName;

#[derive(Debug, Default)]
pub(super) struct Places(Vec<(u64, RoomName)>);

impl Places {
    /// Adds a socket; the list grows by one, not to the next power of two.
    pub(super) fn insert(&mut self, socket: u64, room: RoomName) {
        self.0.reserve_exact(1);
        self.0.push((socket, room));
    }

    /// Takes a socket out; true when none is left.
    pub(super) fn remove(&mut self, socket: u64) -> bool {
        if let Some(at) = self.0.iter().position(|(s, _)| *s == socket) {
            self.0.swap_remove(at);
        }
        self.0.is_empty()
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = (u64, &RoomName)> {
        self.0.iter().map(|(socket, room)| (*socket, room))
    }

    pub(super) fn first_room(&self) -> Option<&RoomName> {
        self.0.first().map(|(_, room)| room)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_sockets_until_the_last_goes() {
        let mut places = Places::default();
        places.insert(1, RoomName::lobby());
        places.insert(2, RoomName::lobby());
        assert!(!places.remove(1));
        assert_eq!(places.iter().map(|(s, _)| s).collect::<Vec<_>>(), [2]);
        assert!(!places.remove(7), "an unknown socket changes nothing");
        assert!(places.remove(2));
    }
}
