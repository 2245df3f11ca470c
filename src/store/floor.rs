//! `Floor`: with `--redis`, the highest room id and user id this instance has seen or issued,
//! kept in `<data-dir>/redis_floor`, so a Redis that lost its data is raised above them
//! before this instance issues anything, even after both restarted.
//!
//! Writing on every id would cost an fsync each. Instead the file holds a reservation, as
//! `user_ids` does: values at least `BLOCK` above what was seen when it was written, rewritten
//! once what is seen comes within half a block of them. A user id this instance hands out is
//! on disk before it is returned; a room id, seen as Redis publishes it, is on disk within one
//! position check (`--redis-position-check`), and a crash loses ground only if a room moved
//! by more than half a block in that time. A clean shutdown writes the exact values, so a
//! restart moves nothing.
//!
//! The file is two lines, `rooms <n>` and `users <n>`.

use std::{
    fs, io,
    path::{Path, PathBuf},
    sync::{Mutex, MutexGuard},
};

use anyhow::Context;

const FILE_NAME: &str = "redis_floor";
/// How far ahead of what was seen the file is written.
const BLOCK: u64 = 1024;

#[derive(Debug)]
pub struct Floor {
    path: PathBuf,
    state: Mutex<State>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Values {
    /// The highest id of any room.
    pub rooms: u64,
    /// The highest user id.
    pub users: u64,
}

#[derive(Debug)]
struct State {
    /// What was on disk at start (ids up to it may have been issued before) and what was seen
    /// since: the floor Redis is raised to.
    floor: Values,
    /// What the file says now.
    written: Values,
}

impl Floor {
    pub fn open(data_dir: &Path) -> anyhow::Result<Floor> {
        let path = data_dir.join(FILE_NAME);
        let floor = match fs::read_to_string(&path) {
            Ok(text) => {
                parse(&text).with_context(|| format!("{} is corrupt: {text:?}", path.display()))?
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Values::default(),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        Ok(Floor {
            path,
            state: Mutex::new(State {
                floor,
                written: floor,
            }),
        })
    }

    /// What Redis must be raised to.
    pub fn values(&self) -> Values {
        self.lock().floor
    }

    /// A room id seen (heard from Redis): written by the next `save`.
    pub fn see_room(&self, id: u64) {
        let mut state = self.lock();
        state.floor.rooms = state.floor.rooms.max(id);
    }

    /// The cluster's user counter, as read from Redis: written by the next `save`.
    pub fn see_users(&self, id: u64) {
        let mut state = self.lock();
        state.floor.users = state.floor.users.max(id);
    }

    /// A user id this instance is about to hand out: on disk before it is.
    pub fn issue_user(&self, id: u64) -> io::Result<()> {
        let mut state = self.lock();
        state.floor.users = state.floor.users.max(id);
        if state.due() {
            state.reserve(&self.path)?;
        }
        Ok(())
    }

    /// Writes a new reservation if what was seen came near the one on disk.
    pub fn save(&self) -> io::Result<()> {
        let mut state = self.lock();
        if state.due() {
            state.reserve(&self.path)?;
        }
        Ok(())
    }

    /// Writes the exact values: nothing more will be seen.
    pub fn close(&self) -> io::Result<()> {
        let mut state = self.lock();
        let exact = state.floor;
        write(&self.path, exact)?;
        state.written = exact;
        Ok(())
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl State {
    fn due(&self) -> bool {
        let near = |seen: u64, written: u64| seen.saturating_add(BLOCK / 2) > written;
        near(self.floor.rooms, self.written.rooms) || near(self.floor.users, self.written.users)
    }

    fn reserve(&mut self, path: &Path) -> io::Result<()> {
        let ahead = Values {
            rooms: self
                .floor
                .rooms
                .saturating_add(BLOCK)
                .max(self.written.rooms),
            users: self
                .floor
                .users
                .saturating_add(BLOCK)
                .max(self.written.users),
        };
        write(path, ahead)?;
        self.written = ahead;
        Ok(())
    }
}

fn parse(text: &str) -> Option<Values> {
    let mut values = Values::default();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let (name, value) = line.split_once(' ')?;
        let value = value.trim().parse().ok()?;
        match name {
            "rooms" => values.rooms = value,
            "users" => values.users = value,
            _ => return None,
        }
    }
    Some(values)
}

fn write(path: &Path, values: Values) -> io::Result<()> {
    let text = format!("rooms {}\nusers {}\n", values.rooms, values.users);
    super::user_ids::write_atomically(path, &text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fresh_floor_is_zero_and_what_was_seen_survives_a_crash_by_its_reservation() {
        let dir = tempfile::tempdir().unwrap();
        let floor = Floor::open(dir.path()).unwrap();
        assert_eq!(floor.values(), Values::default());
        floor.see_room(46);
        floor.issue_user(7).unwrap();
        floor.save().unwrap();
        // No close: as after kill -9.
        let reopened = Floor::open(dir.path()).unwrap().values();
        assert!(reopened.rooms >= 46 && reopened.users >= 7, "{reopened:?}");
    }

    #[test]
    fn a_user_id_is_on_disk_before_it_is_handed_out() {
        let dir = tempfile::tempdir().unwrap();
        let floor = Floor::open(dir.path()).unwrap();
        for id in 1..=BLOCK * 3 {
            floor.issue_user(id).unwrap();
            let on_disk = Floor::open(dir.path()).unwrap().values();
            assert!(on_disk.users >= id, "{id}: {on_disk:?}");
        }
    }

    #[test]
    fn a_clean_close_writes_the_exact_values() {
        let dir = tempfile::tempdir().unwrap();
        let floor = Floor::open(dir.path()).unwrap();
        floor.see_room(46);
        floor.see_users(9);
        floor.save().unwrap();
        floor.close().unwrap();
        let reopened = Floor::open(dir.path()).unwrap().values();
        assert_eq!(
            reopened,
            Values {
                rooms: 46,
                users: 9
            }
        );
    }

    #[test]
    fn a_corrupt_file_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(FILE_NAME), "rooms banana\n").unwrap();
        let err = Floor::open(dir.path()).unwrap_err().to_string();
        assert!(err.contains("corrupt"), "{err}");
    }
}
