//! `Hub`: this instance's sockets, by room and by user, and delivery into their outboxes.
//!
//! Written once for every engine. The event log decides ids and what each room hears; the
//! hub knows who is here and hands each socket the shared bytes it may see, in id order:
//! nothing at or below its floor (that came in its `history`), nothing twice, nothing for
//! other eyes.
//!
//! A whisper (`Visibility::Pair`) is one event of the room it is kept in, the sender's. Its
//! two users' sockets in that room get it like any event there; their sockets in other rooms
//! get it aside (`protocol::elsewhere`): with the id that socket last had, taking none of
//! its room's ids, so ids still never go back on any socket and `?since=` in every room stays
//! whole. Those sockets are found through `State::users`, the per-user index, so a whisper
//! costs the two users' sockets, not a look at every room they are in.
//!
//! Each socket also knows the sign-in (`SessionId`) it came with, indexed in
//! `State::sessions`, so signing out closes that browser's tabs and no one else's.

pub mod big;
#[cfg(test)]
mod big_tests;
mod close;
mod gaps;
mod listing;
pub mod names;
mod places;
mod replies;
pub use replies::not_online;
mod socket;
mod stamp;
#[cfg(test)]
mod test_support;
#[cfg(test)]
mod tests;
mod wake;

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    sync::{
        Arc, Mutex, MutexGuard,
        atomic::{AtomicU64, Ordering},
    },
};

use super::{
    Membership,
    log::{Entry, Event, Visibility},
    outbox::Outbox,
    protocol::{self, Chunk},
    room::RoomName,
};
use crate::auth::{SessionId, User};
pub use big::BigRooms;
pub use listing::RoomListing;
use places::Places;
use socket::Socket;
pub use stamp::Unstamped;
use wake::Wakers;

#[derive(Debug, Default)]
pub struct Hub {
    state: Mutex<State>,
    next_socket: AtomicU64,
    /// Everyone who had a socket here lately, by id, for `error`s that name them.
    names: names::RecentNames,
}

#[derive(Debug, Default)]
struct State {
    rooms: HashMap<RoomName, Members>,
    /// Each user's sockets here, with the room each is in: whispers, `user` and
    /// `users_online` ask by user, and never walk the rooms.
    users: HashMap<u64, Places>,
    /// Each sign-in's sockets here, with the room each is in: a sign-out closes them.
    sessions: HashMap<SessionId, Places>,
    big: BigRooms,
    /// Big rooms holding `join`s and `left`s for their next `presence`.
    batched: HashSet<RoomName>,
}

/// One room's sockets on this instance.
#[derive(Debug, Default)]
struct Members {
    sockets: HashMap<u64, Socket>,
    users: HashMap<u64, Presence>,
    /// Users in the order they came, for `list`.
    arrival: BTreeMap<u64, u64>,
    next_arrival: u64,
    /// A big room's `join`s and `left`s since its last `presence`.
    batch: Option<big::Batch>,
}

#[derive(Debug)]
struct Presence {
    user: Arc<User>,
    sockets: u32,
    /// Departures waiting out the presence grace: the user stays in `list` (and, with Redis,
    /// in the cluster's counts) until each has been let go (`depart`). Bounded by the
    /// sockets that closed.
    lingering: u32,
    arrival: u64,
}

/// Whether a socket brought its user into the room here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    First,
    Again,
}

/// Whether a socket was its user's last in the room here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Departure {
    Last,
    Stays,
    /// It was the last, but the user stays in the room for the presence grace: a reload
    /// comes back as `Arrival::Again`, and `depart` lets the user go once the grace is over.
    Lingers,
}

impl Hub {
    /// Adds a socket to a room. Until `settle` it only collects what the room hears, so its
    /// log can work out its `history` meanwhile without a gap.
    pub fn attach(
        &self,
        room: RoomName,
        user: Arc<User>,
        session: SessionId,
        outbox: Outbox,
    ) -> (Membership, Arrival) {
        let socket = self.next_socket.fetch_add(1, Ordering::Relaxed);
        self.names.saw(user.id, user.name.as_str());
        let mut state = self.lock();
        state
            .users
            .entry(user.id)
            .or_default()
            .insert(socket, room.clone());
        state
            .sessions
            .entry(session)
            .or_default()
            .insert(socket, room.clone());
        let members = state.rooms.entry(room.clone()).or_default();
        members
            .sockets
            .insert(socket, Socket::pending(user.id, session, outbox));
        let arrival = match members.users.get_mut(&user.id) {
            Some(presence) => {
                presence.sockets += 1;
                Arrival::Again
            }
            None => {
                let arrival = members.next_arrival;
                members.next_arrival += 1;
                members.arrival.insert(arrival, user.id);
                members.users.insert(
                    user.id,
                    Presence {
                        user: user.clone(),
                        sockets: 1,
                        lingering: 0,
                        arrival,
                    },
                );
                Arrival::First
            }
        };
        (Membership { room, user, socket }, arrival)
    }

    /// Hands a joining socket its first frames, then whatever the room heard meanwhile above
    /// its floor; from here on it hears the room live.
    /// In a big room the joiner's own `join` is left out too: the next `presence` has it.
    pub fn settle(&self, member: &Membership, mut entry: Entry) {
        let mut state = self.lock();
        if state.big.is_big(entry.count) {
            entry
                .frames
                .retain(|frame| protocol::presence::read_presence(frame).is_none());
        }
        if let Some(socket) = state
            .rooms
            .get_mut(&member.room)
            .and_then(|m| m.sockets.get_mut(&member.socket))
        {
            socket.settle(entry);
        }
    }

    /// Takes a socket out; `None` if it was not here. A user whose departure lingers stays
    /// until `depart`, so this is `Last` only when nothing else holds the user here.
    pub fn detach(&self, member: &Membership) -> Option<Departure> {
        self.take_out(member, false)
    }

    /// Takes a socket out, but the user's last socket leaves them in the room (`Lingers`)
    /// until `depart`: the presence grace.
    pub fn detach_lingering(&self, member: &Membership) -> Option<Departure> {
        self.take_out(member, true)
    }

    fn take_out(&self, member: &Membership, linger: bool) -> Option<Departure> {
        let mut state = self.lock();
        let members = state.rooms.get_mut(&member.room)?;
        let session = members.sockets.remove(&member.socket)?.session;
        if let Some(sockets) = state.sessions.get_mut(&session)
            && sockets.remove(member.socket)
        {
            state.sessions.remove(&session);
        }
        let user = member.user.id;
        if let Some(sockets) = state.users.get_mut(&user)
            && sockets.remove(member.socket)
        {
            state.users.remove(&user);
        }
        let members = state.rooms.get_mut(&member.room)?;
        let presence = members.users.get_mut(&user)?;
        presence.sockets -= 1;
        if presence.sockets > 0 {
            return Some(Departure::Stays);
        }
        if linger {
            presence.lingering += 1;
            return Some(Departure::Lingers);
        }
        if presence.lingering > 0 {
            // A lingering departure still holds the user; it announces them when it ends.
            return Some(Departure::Stays);
        }
        state.let_go(&member.room, user);
        Some(Departure::Last)
    }

    /// Ends one lingering departure of `user` from `room`: `Last` if nothing holds the user
    /// there any more (no socket came back, no other departure lingers), and they are gone
    /// from the room; `None` if the user was not lingering there.
    pub fn depart(&self, room: &RoomName, user: u64) -> Option<Departure> {
        let mut state = self.lock();
        let presence = state.rooms.get_mut(room)?.users.get_mut(&user)?;
        presence.lingering = presence.lingering.checked_sub(1)?;
        if presence.sockets > 0 || presence.lingering > 0 {
            return Some(Departure::Stays);
        }
        state.let_go(room, user);
        Some(Departure::Last)
    }

    /// Queues events, in id order, for every socket in the room that may see them. The
    /// frames are shared as one chunk by every socket that sees them all, which is nearly
    /// always every socket. A whisper also goes aside to its two users' sockets in other
    /// rooms here (see the module's docs), whether or not anyone here is in `room`.
    pub fn deliver(&self, room: &RoomName, events: &[Event]) {
        if events.is_empty() {
            return;
        }
        let mut wakers = Wakers::default();
        let mut state = self.lock();
        let State {
            rooms,
            users,
            big,
            batched,
            ..
        } = &mut *state;
        if let Some(members) = rooms.get_mut(room) {
            let (events, started) = members.hold_presence(events, big);
            if started {
                batched.insert(room.clone());
            }
            let events = &*events;
            let shared = events
                .iter()
                .all(|e| e.visible == Visibility::Room)
                .then(|| events.iter().map(|e| e.frame.clone()).collect::<Chunk>());
            wakers = Wakers::with_capacity(members.sockets.len());
            for socket in members.sockets.values_mut() {
                socket.deliver(events, shared.as_ref(), &mut wakers);
            }
        }
        for event in events {
            let Visibility::Pair(a, b) = event.visible else {
                continue;
            };
            let pair = if a == b { &[a][..] } else { &[a, b][..] };
            for (socket, elsewhere) in pair
                .iter()
                .filter_map(|user| users.get(user))
                .flat_map(Places::iter)
                .filter(|(_, r)| *r != room)
            {
                if let Some(socket) = rooms
                    .get_mut(elsewhere)
                    .and_then(|m| m.sockets.get_mut(&socket))
                {
                    socket.aside(event, room);
                }
            }
        }
        drop(state);
        wakers.wake_all();
    }

    /// Runs `f` on every socket's outbox here (ticks, shutdown).
    pub fn for_each_outbox(&self, f: impl Fn(&Outbox)) {
        for members in self.lock().rooms.values() {
            members
                .sockets
                .values()
                .for_each(|socket| f(&socket.outbox));
        }
    }

    /// Users with a socket in the room here.
    pub fn online(&self, room: &RoomName) -> usize {
        self.lock().rooms.get(room).map_or(0, |m| m.users.len())
    }

    /// Distinct users with a socket in any room here.
    pub fn users_online(&self) -> usize {
        self.lock().users.len()
    }

    /// The name of user `id`, online here or seen here lately.
    pub fn name_of(&self, id: u64) -> Option<String> {
        self.names.name(id)
    }

    /// A user with a socket here, by id.
    pub fn user(&self, id: u64) -> Option<Arc<User>> {
        let state = self.lock();
        let room = state.users.get(&id)?.first_room()?;
        Some(state.rooms.get(room)?.users.get(&id)?.user.clone())
    }

    /// Every user here with their sockets per room; a lingering departure counts as a
    /// socket, since the user is still in the room until it ends.
    pub fn presence(&self) -> Vec<(RoomName, Arc<User>, u32)> {
        let state = self.lock();
        state
            .rooms
            .iter()
            .flat_map(|(room, members)| {
                members
                    .users
                    .values()
                    .map(move |p| (room.clone(), p.user.clone(), p.sockets + p.lingering))
            })
            .collect()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl State {
    /// The user is no longer in the room here; a room with nobody left goes.
    fn let_go(&mut self, room: &RoomName, user: u64) {
        let Some(members) = self.rooms.get_mut(room) else {
            return;
        };
        if let Some(presence) = members.users.remove(&user) {
            members.arrival.remove(&presence.arrival);
        }
        if members.sockets.is_empty() && members.users.is_empty() {
            self.rooms.remove(room);
        }
    }
}
