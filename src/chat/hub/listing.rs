//! Who is online here, room by room, a bounded page at a time: what the moderators' page shows.

use std::sync::Arc;

use super::Hub;
use crate::{auth::User, chat::room::RoomName};

/// One room as the listing shows it: its users here (at most the page's cap, in the order
/// they came) and how many there are in all.
#[derive(Debug, Clone)]
pub struct RoomListing {
    pub room: RoomName,
    pub online: usize,
    pub users: Vec<Arc<User>>,
}

impl Hub {
    /// The rooms here whose names sort after `after`, at most `limit` of them in name order,
    /// each with at most `max_users` users, and whether more rooms follow. The lock is held
    /// for one pass over the room names, never for a sort of them all.
    pub fn rooms_page(
        &self,
        after: Option<&str>,
        limit: usize,
        max_users: usize,
    ) -> (Vec<RoomListing>, bool) {
        let state = self.lock();
        let mut names: Vec<&RoomName> = state
            .rooms
            .keys()
            .filter(|room| after.is_none_or(|after| room.as_str() > after))
            .collect();
        let more = names.len() > limit;
        if more {
            names.select_nth_unstable(limit);
            names.truncate(limit);
        }
        names.sort_unstable();
        let page = names
            .into_iter()
            .filter_map(|room| {
                let members = state.rooms.get(room)?;
                let users = members
                    .arrival
                    .values()
                    .take(max_users)
                    .filter_map(|id| Some(members.users.get(id)?.user.clone()))
                    .collect();
                Some(RoomListing {
                    room: room.clone(),
                    online: members.users.len(),
                    users,
                })
            })
            .collect();
        (page, more)
    }

    /// The `limit` rooms here with the most users, busiest first and then by name: what the
    /// page's list of rooms shows. Counting takes one pass under the lock; the sort is after.
    pub fn busiest(&self, limit: usize) -> Vec<(RoomName, usize)> {
        let mut rooms: Vec<(RoomName, usize)> = {
            let state = self.lock();
            state
                .rooms
                .iter()
                .filter(|(_, members)| !members.users.is_empty())
                .map(|(room, members)| (room.clone(), members.users.len()))
                .collect()
        };
        rooms.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        rooms.truncate(limit);
        rooms
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{auth::UserName, chat::outbox::Outbox};

    fn attach(hub: &Hub, room: &str, id: u64) {
        let user = Arc::new(User::guest(id, UserName::parse(&format!("u{id}")).unwrap()));
        let session = crate::auth::SessionId::from_bytes([id as u8; 16]);
        let room = RoomName::parse(room).unwrap();
        let _ = hub.attach(room, user, session, Outbox::new(4));
    }

    #[test]
    fn pages_go_by_name_and_cap_the_users_listed_but_not_counted() {
        let hub = Hub::default();
        for (room, id) in [("d", 1), ("b", 2), ("a", 3), ("c", 4), ("b", 5), ("b", 6)] {
            attach(&hub, room, id);
        }
        let names = |page: &[RoomListing]| -> Vec<String> {
            page.iter().map(|r| r.room.to_string()).collect()
        };
        let (first, more) = hub.rooms_page(None, 2, 2);
        assert_eq!(names(&first), ["a", "b"]);
        assert!(more);
        assert_eq!(first[1].online, 3);
        let ids: Vec<u64> = first[1].users.iter().map(|u| u.id).collect();
        assert_eq!(ids, [2, 5], "the first who came, up to the cap");
        let (rest, more) = hub.rooms_page(Some("b"), 2, 2);
        assert_eq!(names(&rest), ["c", "d"]);
        assert!(!more);
        let (none, more) = hub.rooms_page(Some("d"), 2, 2);
        assert!(none.is_empty() && !more);
    }

    #[test]
    fn busiest_rooms_come_first_then_by_name_up_to_the_limit() {
        let hub = Hub::default();
        for (room, id) in [
            ("d", 1),
            ("b", 2),
            ("a", 3),
            ("c", 4),
            ("b", 5),
            ("c", 6),
            ("b", 7),
        ] {
            attach(&hub, room, id);
        }
        let busiest: Vec<(String, usize)> = hub
            .busiest(3)
            .into_iter()
            .map(|(room, n)| (room.to_string(), n))
            .collect();
        assert_eq!(busiest, [("b".into(), 3), ("c".into(), 2), ("a".into(), 1)]);
    }
}
