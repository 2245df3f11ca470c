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

#[cfg(test)]
mod tests {

    use super::{
        super::test_support::{attached, chat, events},
        *,
    };
    use crate::chat::outbox::Outbox;

    fn join(hub: &Hub, room: &RoomName, id: u64, floor: Option<u64>) -> Outbox {
        attached(hub, room, id, floor).1
    }

    #[test]
    fn a_rooms_position_is_the_lowest_id_a_settled_socket_had() {
        let hub = Hub::default();
        let lobby = RoomName::lobby();
        join(&hub, &lobby, 1, Some(10));
        join(&hub, &lobby, 2, Some(4));
        join(&hub, &lobby, 3, None);
        assert_eq!(
            hub.positions(),
            [(lobby, 4)],
            "a joining socket is left out"
        );
    }

    #[test]
    fn only_sockets_behind_are_told_truncated_with_their_last_id_and_skip_what_they_were_told() {
        let hub = Hub::default();
        let lobby = RoomName::lobby();
        let behind = join(&hub, &lobby, 1, Some(4));
        let ahead = join(&hub, &lobby, 2, Some(9));
        assert_eq!(hub.truncate(&lobby, 8, 20, "gone"), 1);
        let told = events(&behind);
        assert_eq!(told.len(), 1);
        assert_eq!(
            (&told[0]["type"], &told[0]["id"], &told[0]["user"]["id"]),
            (&"truncated".into(), &4.into(), &1.into())
        );
        assert!(events(&ahead).is_empty());
        hub.deliver(&lobby, &[chat(20), chat(21)]);
        let ids = |o: &Outbox| -> Vec<u64> {
            events(o)
                .iter()
                .map(|e| e["id"].as_u64().unwrap())
                .collect()
        };
        assert_eq!(ids(&behind), [21], "nothing up to what it was told");
        assert_eq!(ids(&ahead), [20, 21]);
    }
}
