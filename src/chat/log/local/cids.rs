//! The `cid`s each user's messages were stored under lately, so a retry of one (after a lost
//! `ack`, a reconnect) is answered with the same id instead of being stored again.
//!
//! Bounded twice: a user's `PER_USER` newest, each for the window (`--cid-window-secs`).
//! Users whose entries all expired are dropped whenever the map has doubled since the last
//! sweep.

use std::{
    collections::{HashMap, VecDeque},
    time::{Duration, Instant},
};

use crate::chat::{
    log::Said,
    protocol::{Cid, Reply},
    room::RoomName,
};

/// The newest `cid`s remembered per user; an older one sent again is stored again.
pub const PER_USER: usize = 256;

const SWEEP_AT: usize = 1024;

#[derive(Debug)]
struct Stored {
    room: RoomName,
    cid: Cid,
    id: u64,
    at: Instant,
}

#[derive(Debug)]
pub(super) struct RecentCids {
    users: HashMap<u64, VecDeque<Stored>>,
    sweep_at: usize,
    window: Duration,
}

impl RecentCids {
    pub fn new(window: Duration) -> Self {
        RecentCids {
            users: HashMap::new(),
            sweep_at: SWEEP_AT,
            window,
        }
    }

    /// The id `user`'s message `cid` got in `room`, if it was stored within the window.
    pub fn get(&self, room: &RoomName, user: u64, cid: &Cid, now: Instant) -> Option<u64> {
        self.users
            .get(&user)?
            .iter()
            .rev()
            .take_while(|s| now.duration_since(s.at) < self.window)
            .find(|s| s.cid == *cid && s.room == *room)
            .map(|s| s.id)
    }

    /// Splits a sender's messages into those to store and the `ack`s of those already stored.
    pub fn split<'a, 's>(
        &self,
        room: &RoomName,
        user: u64,
        said: &'a [Said<'s>],
        now: Instant,
    ) -> (Vec<&'a Said<'s>>, Vec<Reply>) {
        let (mut fresh, mut again) = (Vec::with_capacity(said.len()), Vec::new());
        for said in said {
            match said
                .cid
                .and_then(|cid| Some((cid, self.get(room, user, cid, now)?)))
            {
                Some((cid, id)) => again.push(Reply::Ack {
                    cid: cid.clone(),
                    id,
                }),
                None => fresh.push(said),
            }
        }
        (fresh, again)
    }

    pub fn remember(&mut self, room: &RoomName, user: u64, cid: &Cid, id: u64, now: Instant) {
        if self.users.len() >= self.sweep_at {
            self.users.retain(|_, stored| {
                stored
                    .back()
                    .is_some_and(|s| now.duration_since(s.at) < self.window)
            });
            self.sweep_at = (self.users.len() * 2).max(SWEEP_AT);
        }
        let stored = self.users.entry(user).or_default();
        while stored.len() >= PER_USER
            || stored
                .front()
                .is_some_and(|s| now.duration_since(s.at) >= self.window)
        {
            stored.pop_front();
        }
        stored.push_back(Stored {
            room: room.clone(),
            cid: cid.clone(),
            id,
            at: now,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOW: Duration = Duration::from_secs(600);

    #[test]
    fn a_cid_is_found_for_its_user_and_room_within_the_window_and_per_user_bound() {
        let (room, other) = (RoomName::parse("a").unwrap(), RoomName::parse("b").unwrap());
        let cid = Cid::parse("m1").unwrap();
        let now = Instant::now();
        let mut cids = RecentCids::new(WINDOW);
        cids.remember(&room, 1, &cid, 7, now);
        assert_eq!(cids.get(&room, 1, &cid, now), Some(7));
        assert_eq!(cids.get(&room, 2, &cid, now), None, "another user's");
        assert_eq!(cids.get(&other, 1, &cid, now), None, "another room's");
        assert_eq!(cids.get(&room, 1, &cid, now + WINDOW), None, "expired");
        for n in 0..PER_USER {
            let cid = Cid::parse(&format!("n{n}")).unwrap();
            cids.remember(&room, 1, &cid, 100 + n as u64, now);
        }
        assert_eq!(
            cids.get(&room, 1, &cid, now),
            None,
            "pushed out by newer ones"
        );
        let last = Cid::parse(&format!("n{}", PER_USER - 1)).unwrap();
        assert_eq!(cids.get(&room, 1, &last, now), Some(99 + PER_USER as u64));
    }

    #[test]
    fn users_whose_cids_all_expired_are_swept_once_the_map_doubles() {
        let room = RoomName::parse("a").unwrap();
        let cid = Cid::parse("x").unwrap();
        let now = Instant::now();
        let mut cids = RecentCids::new(WINDOW);
        for user in 0..SWEEP_AT as u64 {
            cids.remember(&room, user, &cid, 1, now);
        }
        cids.remember(&room, u64::MAX, &cid, 1, now + WINDOW);
        assert_eq!(cids.users.len(), 1);
    }
}
