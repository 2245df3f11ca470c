//! Big rooms: above `--big-room` users, the `join`s and `left`s a room hears are held back and
//! summed up into one `presence` frame per `--presence-interval-ms`, shared by every socket,
//! and `list` carries a first page of `--list-page` users, the rest a `users` page at a time.
//!
//! Written on the delivery side, once for every engine: the log still gives each `join` and
//! `left` its id and keeps it (history and `since` are as for any room); the hub reads them
//! back (`protocol::presence::read_presence`) and decides by the count they carry, which is
//! the room's across the cluster with Redis. So a room of n users that fills costs each
//! socket one frame per interval instead of n `join`s, and the joiner a page, not n users.
//!
//! A room crosses the line either way at a flush: while a batch waits, every `join` and
//! `left` goes into it (so none overtakes another), and after the flush the next one's count
//! decides anew. A user who came and went within one interval is listed by what they did
//! last, so a socket whose `list` was made in the middle of it ends up right either way.

use std::{collections::HashMap, ops::Bound, sync::Arc, time::Duration};

use super::{Hub, Members, State, Unstamped};
use crate::{
    auth::User,
    chat::{
        Membership,
        log::{Event, Visibility},
        protocol::{
            EventKind, Frame, now_ms,
            presence::{PresenceData, PresenceEvent, UsersEvent, read_presence},
        },
        room::RoomName,
    },
};

/// `--big-room`'s default: a list of 200 users is about 12 KiB, and 200 `join`s to 200
/// sockets as a room fills are 40 000 frames; past it both grow as the square.
pub const DEFAULT_THRESHOLD: usize = 200;
/// `--presence-interval-ms`' default: who came and went, at most a second late.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(1);
/// `--list-page`'s default: what an online list shows without scrolling, many times over.
pub const DEFAULT_PAGE: usize = 100;

/// How the hub treats big rooms. `threshold` 0 makes none big.
#[derive(Debug, Clone, Copy)]
pub struct BigRooms {
    pub threshold: usize,
    pub interval: Duration,
    pub page: usize,
}

impl Default for BigRooms {
    /// Off: every room keeps the seed's `list`, `join` and `left`.
    fn default() -> Self {
        BigRooms {
            threshold: 0,
            interval: DEFAULT_INTERVAL,
            page: DEFAULT_PAGE,
        }
    }
}

impl BigRooms {
    /// Whether a room of `count` users is big.
    pub fn is_big(&self, count: usize) -> bool {
        self.threshold > 0 && count > self.threshold
    }

    /// How many users a `list` for a room of `count` carries: all of them in a small room.
    pub fn list_len(&self, count: usize) -> usize {
        if self.is_big(count) {
            self.page.max(1)
        } else {
            count
        }
    }
}

/// The `join`s and `left`s a big room heard since its last `presence`.
#[derive(Debug, Default)]
pub(super) struct Batch {
    /// Each user's last move: the order it came in, the user, whether they joined.
    moves: HashMap<u64, (u64, User, bool)>,
    next: u64,
    /// The room's count after the newest of them.
    count: usize,
}

impl Members {
    /// The events to deliver now: all of them, less the `join`s and `left`s a big room
    /// holds back for its next `presence`. True in the second place if a batch was started.
    pub(super) fn hold_presence<'e>(
        &mut self,
        events: &'e [Event],
        big: &BigRooms,
    ) -> (std::borrow::Cow<'e, [Event]>, bool) {
        if big.threshold == 0 {
            return (events.into(), false);
        }
        let had_batch = self.batch.is_some();
        // Copied only once something is held back: a chat costs a prefix check.
        let mut kept: Option<Vec<Event>> = None;
        for (at, event) in events.iter().enumerate() {
            if self.hold(event, big) {
                kept.get_or_insert_with(|| events[..at].to_vec());
            } else if let Some(kept) = &mut kept {
                kept.push(event.clone());
            }
        }
        let started = !had_batch && self.batch.is_some();
        match kept {
            Some(kept) => (kept.into(), started),
            None => (events.into(), started),
        }
    }

    /// Whether `event` is a `join` or `left` this room holds back, and if so, holds it.
    fn hold(&mut self, event: &Event, big: &BigRooms) -> bool {
        if event.visible != Visibility::Room {
            return false;
        }
        let Some(presence) = read_presence(&event.frame) else {
            return false;
        };
        if self.batch.is_none() && !big.is_big(presence.count) {
            return false;
        }
        let batch = self.batch.get_or_insert_with(Batch::default);
        let order = batch.next;
        batch.next += 1;
        batch.count = presence.count;
        batch
            .moves
            .insert(presence.user.id, (order, presence.user, presence.joined));
        true
    }

    /// The room's `presence` for what its batch holds, if it holds anything.
    fn presence_frame(&mut self, page: usize) -> Option<Frame> {
        let batch = self.batch.take()?;
        let mut moves: Vec<(u64, User, bool)> = batch.moves.into_values().collect();
        moves.sort_unstable_by_key(|(order, ..)| *order);
        let page = page.max(1);
        let pick = |joined: bool| -> (Vec<&User>, bool) {
            let all: Vec<&User> = moves
                .iter()
                .filter(|(_, _, j)| *j == joined)
                .map(|(_, user, _)| user)
                .collect();
            let cut = all.len() > page;
            // The newest moves matter most to who is shown now.
            (all[all.len().saturating_sub(page)..].to_vec(), cut)
        };
        let (joined, more_joined) = pick(true);
        let (left, more_left) = pick(false);
        Some(
            PresenceEvent {
                kind: EventKind::Presence,
                data: PresenceData {
                    joined: &joined,
                    left: &left,
                    count: batch.count,
                    more: more_joined || more_left,
                },
                time: now_ms(),
            }
            .to_frame(),
        )
    }
}

impl Hub {
    /// How big rooms are treated; set once, before any socket joins.
    pub fn set_big_rooms(&self, big: BigRooms) {
        self.lock().big = big;
    }

    pub fn big_rooms(&self) -> BigRooms {
        self.lock().big
    }

    /// Sends every big room its `presence` for the interval just over: one frame shared by
    /// all its sockets (a joining one gets it once settled). Called on the engine's clock.
    pub fn flush_presence(&self) {
        let mut state = self.lock();
        let State {
            rooms,
            batched,
            big,
            ..
        } = &mut *state;
        for room in batched.drain() {
            let Some(members) = rooms.get_mut(&room) else {
                continue;
            };
            let Some(frame) = members.presence_frame(big.page) else {
                continue;
            };
            for socket in members.sockets.values_mut() {
                socket.late(frame.clone());
            }
        }
    }

    /// A `users` page for one socket, from the users here (for a local log, the room).
    pub fn reply_users(&self, member: &Membership, after: u64) {
        let page = self.big_rooms().page.max(1);
        let (users, count, next) = self.users_page(&member.room, after, page);
        let users: Vec<&User> = users.iter().map(|u| &**u).collect();
        self.reply_users_page(member, &users, count, after, next);
    }

    /// A page of users read elsewhere (Redis), sent to one socket as a `users`.
    pub fn reply_users_page(
        &self,
        member: &Membership,
        users: &[&User],
        count: usize,
        after: u64,
        next: Option<u64>,
    ) {
        let frame = Unstamped::new(&UsersEvent {
            id: 0,
            kind: EventKind::Users,
            user: &member.user,
            data: users,
            time: now_ms(),
            count,
            after,
            next,
        });
        self.reply_with(member, frame);
    }

    /// The room's users here after the `after` cursor (0: from the first), at most `limit`,
    /// in the order they came; the room's count; and the cursor of the next page, if any.
    pub fn users_page(&self, room: &RoomName, after: u64, limit: usize) -> UsersPage {
        let state = self.lock();
        state
            .rooms
            .get(room)
            .map_or_else(UsersPage::default, |m| m.page(after, limit))
    }

    /// What a joiner's `list` holds: every user here in a small room, the first page in a
    /// big one (`BigRooms::list_len`).
    pub fn first_page(&self, room: &RoomName) -> UsersPage {
        let state = self.lock();
        let big = state.big;
        state.rooms.get(room).map_or_else(UsersPage::default, |m| {
            m.page(0, big.list_len(m.users.len()))
        })
    }
}

/// Users in the order they came, the room's count, and the cursor after them if more follow.
pub type UsersPage = (Vec<Arc<User>>, usize, Option<u64>);

impl Members {
    fn page(&self, after: u64, limit: usize) -> UsersPage {
        let from = if after == 0 {
            Bound::Unbounded
        } else {
            // Cursors are arrivals plus one, so 0 stays free for "from the first".
            Bound::Excluded(after - 1)
        };
        let mut range = self.arrival.range((from, Bound::Unbounded));
        let page: Vec<(u64, Arc<User>)> = range
            .by_ref()
            .take(limit)
            .filter_map(|(arrival, id)| Some((*arrival, self.users.get(id)?.user.clone())))
            .collect();
        let next = match (range.next(), page.last()) {
            (Some(_), Some((arrival, _))) => Some(arrival + 1),
            _ => None,
        };
        let users = page.into_iter().map(|(_, user)| user).collect();
        (users, self.users.len(), next)
    }
}
