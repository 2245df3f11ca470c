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

mod socket;
#[cfg(test)]
mod tests;

use std::{
    collections::{BTreeMap, HashMap},
    sync::{
        Arc, Mutex, MutexGuard,
        atomic::{AtomicU64, Ordering},
    },
};

use super::{
    Membership,
    log::{Entry, Event, Visibility},
    outbox::{Outbox, Signal},
    protocol::{Chunk, EventData, EventKind, Frame, ServerEvent, close, now_ms},
    room::RoomName,
};
use crate::auth::{SessionId, User};
use socket::Socket;

#[derive(Debug, Default)]
pub struct Hub {
    state: Mutex<State>,
    next_socket: AtomicU64,
}

#[derive(Debug, Default)]
struct State {
    rooms: HashMap<RoomName, Members>,
    /// Each user's sockets here, with the room each is in: whispers, `user` and
    /// `users_online` ask by user, and never walk the rooms.
    users: HashMap<u64, HashMap<u64, RoomName>>,
    /// Each sign-in's sockets here, with the room each is in: a sign-out closes them.
    sessions: HashMap<SessionId, HashMap<u64, RoomName>>,
}

impl State {
    /// Signals each of `sockets` (an index's entry: socket id → room) to close.
    fn close(&self, sockets: Option<&HashMap<u64, RoomName>>, code: u16, reason: &str) -> usize {
        let sockets = sockets.into_iter().flatten();
        sockets
            .filter_map(|(socket, room)| self.rooms.get(room)?.sockets.get(socket))
            .map(|socket| {
                let reason = reason.to_owned().into();
                socket.outbox.signal(Signal::Close(code, reason));
            })
            .count()
    }
}

/// One room's sockets on this instance.
#[derive(Debug, Default)]
struct Members {
    sockets: HashMap<u64, Socket>,
    users: HashMap<u64, Presence>,
    /// Users in the order they came, for `list`.
    arrival: BTreeMap<u64, u64>,
    next_arrival: u64,
}

#[derive(Debug)]
struct Presence {
    user: Arc<User>,
    sockets: u32,
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
    pub fn settle(&self, member: &Membership, entry: Entry) {
        let mut state = self.lock();
        if let Some(socket) = state
            .rooms
            .get_mut(&member.room)
            .and_then(|m| m.sockets.get_mut(&member.socket))
        {
            socket.settle(entry);
        }
    }

    /// Takes a socket out; `None` if it was not here.
    pub fn detach(&self, member: &Membership) -> Option<Departure> {
        let mut state = self.lock();
        let members = state.rooms.get_mut(&member.room)?;
        let session = members.sockets.remove(&member.socket)?.session;
        if let Some(sockets) = state.sessions.get_mut(&session) {
            sockets.remove(&member.socket);
            if sockets.is_empty() {
                state.sessions.remove(&session);
            }
        }
        let user = member.user.id;
        if let Some(sockets) = state.users.get_mut(&user) {
            sockets.remove(&member.socket);
            if sockets.is_empty() {
                state.users.remove(&user);
            }
        }
        let members = state.rooms.get_mut(&member.room)?;
        let presence = members.users.get_mut(&user)?;
        presence.sockets -= 1;
        if presence.sockets > 0 {
            return Some(Departure::Stays);
        }
        let arrival = presence.arrival;
        members.users.remove(&user);
        members.arrival.remove(&arrival);
        if members.sockets.is_empty() {
            state.rooms.remove(&member.room);
        }
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
        let mut state = self.lock();
        let State { rooms, users, .. } = &mut *state;
        if let Some(members) = rooms.get_mut(room) {
            let shared = events
                .iter()
                .all(|e| e.visible == Visibility::Room)
                .then(|| events.iter().map(|e| e.frame.clone()).collect::<Chunk>());
            for socket in members.sockets.values_mut() {
                socket.deliver(events, shared.as_ref());
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
                .flatten()
                .filter(|(_, r)| *r != room)
            {
                if let Some(socket) = rooms
                    .get_mut(elsewhere)
                    .and_then(|m| m.sockets.get_mut(socket))
                {
                    socket.aside(event, room);
                }
            }
        }
    }

    /// An `error` to one socket. It carries the id of the last event that socket was sent:
    /// it is not an event of the room, so it takes no id of its own, and a client that
    /// resumes from it misses nothing.
    pub fn reply_error(&self, member: &Membership, message: &str) {
        let sent = self.reply_with(member, |last| {
            ServerEvent {
                id: last,
                kind: EventKind::Error,
                user: &member.user,
                data: EventData::Text(message),
                time: now_ms(),
                count: None,
            }
            .to_frame()
        });
        if !sent {
            tracing::debug!(
                user = member.user.id,
                message,
                "no socket for the error reply"
            );
        }
    }

    /// A frame for one socket only that is no event of the room (an `error`, a page of
    /// history): `build` gets the id of the last event the socket was sent, and runs under
    /// the lock, so no event can reach the socket between that id and this frame. False if
    /// the socket is not here.
    pub fn reply_with(&self, member: &Membership, build: impl FnOnce(u64) -> Frame) -> bool {
        let state = self.lock();
        let Some(socket) = state
            .rooms
            .get(&member.room)
            .and_then(|m| m.sockets.get(&member.socket))
        else {
            return false;
        };
        // A full outbox marks its socket for closing; its task does the rest.
        let _ = socket.outbox.push(build(socket.last()));
        true
    }

    /// Asks every socket of `user` here to close with `code` and `reason` (cut to what a close
    /// frame holds); returns how many. Found through the per-user index, so it costs that
    /// user's sockets only.
    pub fn close_user(&self, user: u64, code: u16, reason: &str) -> usize {
        let reason = close::fit_reason(reason);
        let state = self.lock();
        state.close(state.users.get(&user), code, reason)
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

    /// Tells every socket of one sign-in here to close with `code` and `reason` (its task
    /// closes it and leaves); returns how many were told.
    pub fn close_session(&self, session: &SessionId, code: u16, reason: &'static str) -> usize {
        let state = self.lock();
        state.close(state.sessions.get(session), code, reason)
    }

    /// The sign-ins with a socket here (a catch-up after a lost subscription checks them).
    pub fn sessions(&self) -> Vec<SessionId> {
        self.lock().sessions.keys().copied().collect()
    }

    /// Users with a socket in the room here.
    pub fn online(&self, room: &RoomName) -> usize {
        self.lock().rooms.get(room).map_or(0, |m| m.users.len())
    }

    /// Distinct users with a socket in any room here.
    pub fn users_online(&self) -> usize {
        self.lock().users.len()
    }

    /// The room's users here, in the order they came.
    pub fn users(&self, room: &RoomName) -> Vec<Arc<User>> {
        let state = self.lock();
        let Some(members) = state.rooms.get(room) else {
            return Vec::new();
        };
        members
            .arrival
            .values()
            .map(|id| members.users[id].user.clone())
            .collect()
    }

    /// A user with a socket here, by id.
    pub fn user(&self, id: u64) -> Option<Arc<User>> {
        let state = self.lock();
        let room = state.users.get(&id)?.values().next()?;
        Some(state.rooms.get(room)?.users.get(&id)?.user.clone())
    }

    /// Every user here with their sockets per room: what Redis is told again if it forgot.
    pub fn presence(&self) -> Vec<(RoomName, Arc<User>, u32)> {
        let state = self.lock();
        state
            .rooms
            .iter()
            .flat_map(|(room, members)| {
                members
                    .users
                    .values()
                    .map(move |p| (room.clone(), p.user.clone(), p.sockets))
            })
            .collect()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}
