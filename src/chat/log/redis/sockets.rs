//! The sockets of this instance that Redis holds an entry for (their join script answered),
//! until their leave is queued: what each beat refreshes, and what a Redis that forgot them
//! is told again. A socket lingering out the presence grace stays here until it departs.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard},
};

use super::presence::Leave;
use crate::{
    auth::User,
    chat::{Membership, room::RoomName},
};

#[derive(Debug, Default)]
pub(super) struct Sockets(Mutex<Registry>);

#[derive(Debug, Default)]
struct Registry {
    entered: HashMap<u64, Here>,
    /// Sockets waiting out the presence grace, by room and user, oldest first.
    lingering: HashMap<(RoomName, u64), Vec<u64>>,
}

/// A socket of this instance, as Redis knows it.
#[derive(Debug, Clone)]
pub(super) struct Here {
    pub socket: u64,
    pub room: RoomName,
    pub user: Arc<User>,
}

impl Sockets {
    /// Its join script answered: Redis has its entry.
    pub fn entered(&self, member: &Membership) {
        self.lock().entered.insert(
            member.socket,
            Here {
                socket: member.socket,
                room: member.room.clone(),
                user: member.user.clone(),
            },
        );
    }

    /// The socket's entry is to go. `announced` if Redis answered its join: only then may a
    /// Redis that forgot it send its `left` (see `scripts/leave.lua`).
    pub fn leave(&self, member: &Membership) -> Leave {
        let announced = self.lock().entered.remove(&member.socket).is_some();
        Leave::new(member.socket, &member.room, &member.user, announced)
    }

    /// The user's last socket here waits out the grace: its entry stays, refreshed, until
    /// `depart`, so the cluster still counts the user.
    pub fn linger(&self, member: &Membership) {
        let mut registry = self.lock();
        if registry.entered.contains_key(&member.socket) {
            registry
                .lingering
                .entry((member.room.clone(), member.user.id))
                .or_default()
                .push(member.socket);
        }
    }

    /// Ends the oldest lingering socket of the user in the room: its entry is to go.
    pub fn depart(&self, room: &RoomName, user: u64) -> Option<Leave> {
        let mut registry = self.lock();
        let key = (room.clone(), user);
        let waiting = registry.lingering.get_mut(&key)?;
        let socket = waiting.remove(0);
        if waiting.is_empty() {
            registry.lingering.remove(&key);
        }
        let here = registry.entered.remove(&socket)?;
        Some(Leave::new(socket, &here.room, &here.user, true))
    }

    /// The sockets whose entries this instance keeps alive.
    pub fn snapshot(&self) -> Vec<Here> {
        self.lock().entered.values().cloned().collect()
    }

    fn lock(&self) -> MutexGuard<'_, Registry> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        auth::{SessionId, UserName},
        chat::{hub::Hub, outbox::Outbox},
    };

    fn member(hub: &Hub, name: &str, id: u64) -> Membership {
        let user = Arc::new(User::guest(id, UserName::parse(name).unwrap()));
        let room = RoomName::parse("lobby").unwrap();
        hub.attach(room, user, SessionId::from_bytes([1; 16]), Outbox::new(4))
            .0
    }

    #[test]
    fn only_a_socket_whose_join_answered_is_refreshed_and_its_leave_says_so() {
        let (hub, sockets) = (Hub::default(), Sockets::default());
        let (joined, timed_out) = (member(&hub, "a", 1), member(&hub, "b", 2));
        sockets.entered(&joined);
        let refreshed: Vec<u64> = sockets.snapshot().iter().map(|h| h.socket).collect();
        assert_eq!(refreshed, [joined.socket]);
        assert!(!sockets.leave(&timed_out).announced);
        assert!(sockets.leave(&joined).announced);
        assert!(sockets.snapshot().is_empty());
    }

    #[test]
    fn a_lingering_socket_is_refreshed_until_it_departs_oldest_first() {
        let (hub, sockets) = (Hub::default(), Sockets::default());
        let (first, second) = (member(&hub, "a", 1), member(&hub, "a", 1));
        sockets.entered(&first);
        sockets.entered(&second);
        sockets.linger(&first);
        sockets.linger(&second);
        assert_eq!(
            sockets.snapshot().len(),
            2,
            "lingering sockets keep their entries"
        );
        let room = RoomName::parse("lobby").unwrap();
        assert_eq!(sockets.depart(&room, 1).unwrap().socket, first.socket);
        assert_eq!(sockets.depart(&room, 1).unwrap().socket, second.socket);
        assert!(sockets.depart(&room, 1).is_none());
        assert!(sockets.snapshot().is_empty());
    }
}
