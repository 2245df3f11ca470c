//! `Rooms`: the local log's rooms in memory, their last ids, and how they come and go.
//!
//! A room stays while it has sockets, and for `--room-idle-secs` after its last event; then
//! it leaves memory. Its ids must not go back when it comes again, so a room coming back
//! starts from the highest of two floors: what the keeper reserved for it (SQLite's `rooms`
//! row, read when the room comes back rather than every room at start), and the highest last
//! id of any room this instance let go (`floor`), which covers the memory keeper and any
//! reservation still on its way to disk. A room new to this instance counts against its
//! creator's `--room-rate` and against `--max-rooms`; past either the joiner is refused.

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use super::{
    EngineError,
    limit::{RateLimiter, RatePolicy},
    room::RoomName,
};
pub use crate::store::reservations::Reserved;

/// How rooms come and go; see the `--room-*` and `--max-rooms` flags.
#[derive(Debug, Clone, Copy)]
pub struct RoomPolicy {
    /// An empty room leaves memory this long after its last event.
    pub idle: Duration,
    /// Rooms in memory at most; a room past it is refused.
    pub max_rooms: usize,
    /// New rooms one user may open per minute, sustained and in a burst.
    pub per_minute: f64,
    /// How long a sender's `cid`s are remembered (`--cid-window-secs`).
    pub cid_window: Duration,
}

impl Default for RoomPolicy {
    fn default() -> Self {
        RoomPolicy {
            idle: Duration::from_secs(300),
            max_rooms: 10_000,
            per_minute: 30.0,
            cid_window: Duration::from_secs(600),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Room {
    last_id: u64,
    used: Instant,
}

#[derive(Debug)]
pub struct Rooms {
    policy: RoomPolicy,
    live: HashMap<RoomName, Room>,
    /// The highest last id of any room that left memory: a room that comes back starts above.
    floor: u64,
    /// New rooms per user.
    created: RateLimiter,
    /// When the next sweep for idle rooms is due.
    sweep_at: Instant,
}

impl Rooms {
    pub fn new(policy: RoomPolicy) -> Self {
        let per_second = policy.per_minute / 60.0;
        Rooms {
            policy,
            live: HashMap::new(),
            floor: 0,
            created: RateLimiter::new(RatePolicy {
                per_second,
                burst: policy.per_minute,
            }),
            sweep_at: Instant::now() + policy.idle,
        }
    }

    /// Rooms in memory now.
    pub fn len(&self) -> usize {
        self.live.len()
    }

    pub fn is_empty(&self) -> bool {
        self.live.is_empty()
    }

    /// The room's last id, for a socket joining it. A room not in memory is brought back
    /// from `reserved` (what the keeper holds for it; without a row of its own it is a new
    /// room, which counts against `user`'s rate). `empty` says whether a room has
    /// no sockets here, so idle ones can make way.
    pub fn admit(
        &mut self,
        room: &RoomName,
        user: u64,
        now: Instant,
        reserved: impl FnOnce() -> Result<Reserved, EngineError>,
        empty: impl Fn(&RoomName) -> bool,
    ) -> Result<&mut u64, EngineError> {
        if !self.live.contains_key(room) {
            if now >= self.sweep_at || self.live.len() >= self.policy.max_rooms {
                self.sweep(now, &empty);
            }
            if self.live.len() >= self.policy.max_rooms {
                return Err(EngineError::TooManyRooms);
            }
            let stored = reserved()?;
            if stored.room.is_none() && self.created.try_take(user, 1.0, now).is_err() {
                return Err(EngineError::RoomRate);
            }
            self.bring(room, stored, now);
        }
        Ok(self.ids(room, now))
    }

    /// The room's last id, for an event of a member already in it. A member's room is in
    /// memory (it only leaves without sockets); if it is not, it starts above the floor.
    pub fn ids(&mut self, room: &RoomName, now: Instant) -> &mut u64 {
        let floor = self.floor;
        let entry = self.live.entry(room.clone()).or_insert(Room {
            last_id: floor,
            used: now,
        });
        entry.used = now;
        &mut entry.last_id
    }

    /// The last id of a room for an event no member sends (a moderator's `delete`): a room
    /// not in memory comes back from `reserved`, without counting as anyone's new room;
    /// `None` if it was never kept (nothing in it to act on).
    pub fn kept(
        &mut self,
        room: &RoomName,
        now: Instant,
        reserved: impl FnOnce() -> Result<Reserved, EngineError>,
    ) -> Result<Option<&mut u64>, EngineError> {
        if !self.live.contains_key(room) {
            let stored = reserved()?;
            if stored.room.is_none() {
                return Ok(None);
            }
            self.bring(room, stored, now);
        }
        Ok(Some(self.ids(room, now)))
    }

    fn bring(&mut self, room: &RoomName, stored: Reserved, now: Instant) {
        let last_id = stored.last_id().max(self.floor);
        self.live.insert(room.clone(), Room { last_id, used: now });
    }

    /// Lets go of rooms without sockets. Idle ones go always; at the cap, every empty one
    /// goes, so rooms nobody is in never keep a real room out.
    fn sweep(&mut self, now: Instant, empty: &impl Fn(&RoomName) -> bool) {
        let at_cap = self.live.len() >= self.policy.max_rooms;
        let idle = self.policy.idle;
        let mut floor = self.floor;
        self.live.retain(|name, room| {
            let stale = at_cap || now.saturating_duration_since(room.used) >= idle;
            let keep = !(stale && empty(name));
            if !keep {
                floor = floor.max(room.last_id);
            }
            keep
        });
        self.floor = floor;
        // At most a quarter of the idle time late: a sweep is one pass over the rooms.
        self.sweep_at = now + (idle / 4).max(Duration::from_millis(100));
    }

    /// Sweeps if one is due, from the engine's clock.
    pub fn tick(&mut self, now: Instant, empty: impl Fn(&RoomName) -> bool) {
        if now >= self.sweep_at {
            self.sweep(now, &empty);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn none() -> Result<Reserved, EngineError> {
        Ok(Reserved::default())
    }

    fn room(name: &str) -> RoomName {
        RoomName::parse(name).unwrap()
    }

    fn policy(max_rooms: usize, per_minute: f64) -> RoomPolicy {
        RoomPolicy {
            idle: Duration::from_secs(10),
            max_rooms,
            per_minute,
            ..RoomPolicy::default()
        }
    }

    #[test]
    fn an_idle_empty_room_leaves_and_comes_back_above_its_last_id() {
        let mut rooms = Rooms::new(policy(10, 60.0));
        let t0 = Instant::now();
        *rooms.admit(&room("a"), 1, t0, none, |_| true).unwrap() = 42;
        rooms.tick(t0 + Duration::from_secs(11), |_| true);
        assert!(rooms.is_empty(), "idle and empty: gone");
        let back = *rooms
            .admit(&room("a"), 1, t0 + Duration::from_secs(12), none, |_| true)
            .unwrap();
        assert!(back >= 42, "ids never go back: {back}");
    }

    #[test]
    fn a_room_with_sockets_stays_however_idle() {
        let mut rooms = Rooms::new(policy(10, 60.0));
        let t0 = Instant::now();
        rooms.admit(&room("a"), 1, t0, none, |_| false).unwrap();
        rooms.tick(t0 + Duration::from_secs(60), |_| false);
        assert_eq!(rooms.len(), 1);
    }

    #[test]
    fn a_stored_reservation_is_not_a_new_room_and_is_continued() {
        let mut rooms = Rooms::new(policy(10, 1.0));
        let t0 = Instant::now();
        rooms.admit(&room("a"), 1, t0, none, |_| true).unwrap();
        assert!(matches!(
            rooms.admit(&room("b"), 1, t0, none, |_| false),
            Err(EngineError::RoomRate)
        ));
        let last = *rooms
            .admit(
                &room("c"),
                1,
                t0,
                || {
                    Ok(Reserved {
                        room: Some(1024),
                        floor: 0,
                    })
                },
                |_| false,
            )
            .unwrap();
        assert_eq!(last, 1024, "an existing room costs no creation");
    }

    #[test]
    fn the_cap_lets_empty_rooms_go_first_and_refuses_past_it() {
        let mut rooms = Rooms::new(policy(2, 60.0));
        let t0 = Instant::now();
        rooms.admit(&room("a"), 1, t0, none, |_| false).unwrap();
        rooms.admit(&room("b"), 1, t0, none, |_| false).unwrap();
        assert!(matches!(
            rooms.admit(&room("c"), 1, t0, none, |_| false),
            Err(EngineError::TooManyRooms)
        ));
        let empty_b = |r: &RoomName| r.as_str() == "b";
        rooms.admit(&room("c"), 1, t0, none, empty_b).unwrap();
        assert_eq!(rooms.len(), 2, "b made way at once");
    }

    #[test]
    fn a_moderators_event_brings_a_kept_room_back_and_never_makes_one() {
        let mut rooms = Rooms::new(policy(10, 1.0));
        let t0 = Instant::now();
        let kept = || {
            Ok(Reserved {
                room: Some(2048),
                floor: 0,
            })
        };
        assert!(rooms.kept(&room("gone"), t0, none).unwrap().is_none());
        assert!(rooms.is_empty(), "a room never kept is not made");
        assert_eq!(
            rooms.kept(&room("a"), t0, kept).unwrap().copied(),
            Some(2048)
        );
        assert_eq!(
            rooms.kept(&room("b"), t0, kept).unwrap().copied(),
            Some(2048)
        );
        // Neither counted against the user's new rooms: one more is still allowed.
        rooms.admit(&room("c"), 1, t0, none, |_| false).unwrap();
    }
}
