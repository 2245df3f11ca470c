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
}
