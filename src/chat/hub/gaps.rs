//! What a catch-up needs from the hub: where each room's sockets are (the lowest id any of
//! them had), and telling the sockets that fell behind what can be sent that events are gone
//! (`truncated`).

use super::{Hub, Unstamped};
use crate::chat::{
    protocol::{EventData, EventKind, ServerEvent, now_ms},
    room::RoomName,
};

impl Hub {
    /// Each room with a settled socket here, with the lowest last id among those sockets:
    /// what the one furthest behind actually got. Joining sockets are left out: their
    /// `history` brings them up to their floor.
    pub fn positions(&self) -> Vec<(RoomName, u64)> {
        let state = self.lock();
        state
            .rooms
            .iter()
            .filter_map(|(room, members)| {
                let lowest = members
                    .sockets
                    .values()
                    .filter(|s| s.settled())
                    .map(|s| s.last())
                    .min()?;
                Some((room.clone(), lowest))
            })
            .collect()
    }

    /// Sends `truncated` with `reason` to every settled socket in `room` whose last id is
    /// below `below`, stamped with that id (it takes none of its own), and skips them to
    /// `through`: nothing up to it is sent to them any more. Returns how many were told.
    pub fn truncate(&self, room: &RoomName, below: u64, through: u64, reason: &str) -> usize {
        let mut state = self.lock();
        let Some(members) = state.rooms.get_mut(room) else {
            return 0;
        };
        let mut told = 0;
        for socket in members.sockets.values_mut() {
            if !socket.settled() || socket.last() >= below {
                continue;
            }
            let Some(presence) = members.users.get(&socket.user()) else {
                continue;
            };
            let frame = Unstamped::new(&ServerEvent {
                id: 0,
                kind: EventKind::Truncated,
                user: &presence.user,
                data: EventData::Text(reason),
                time: now_ms(),
                count: None,
            });
            // A full outbox marks its socket for closing; its task does the rest.
            let _ = socket.outbox.push(frame.stamp(socket.last()));
            socket.skip_to(through);
            told += 1;
        }
        told
    }
}
