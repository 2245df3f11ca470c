//! `Reservations`: a room's id reservation, read when the room comes back into memory.
//!
//! Its own read connection to the history file (WAL: it never waits for the writer), so a
//! room is looked up when someone joins it instead of every room being loaded at start.

use std::{path::Path, sync::Mutex};

use anyhow::Context;
use rusqlite::{Connection, OpenFlags, OptionalExtension};

use super::history::FILE_NAME;

/// What the file holds for one room.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reserved {
    /// The room's own reservation, if it has a row: it exists (events, or ids handed out).
    pub room: Option<u64>,
    /// Above every id of every room whose row was dropped: where a room without one starts.
    pub floor: u64,
}

impl Reserved {
    /// The room's last id may have been up to this.
    pub fn last_id(&self) -> u64 {
        self.room.unwrap_or(0).max(self.floor)
    }
}

#[derive(Debug)]
pub struct Reservations {
    conn: Mutex<Connection>,
}

impl Reservations {
    /// Opens the history file read-only; `HistoryStore::open` must have created it.
    pub fn open(data_dir: &Path) -> anyhow::Result<Self> {
        let path = data_dir.join(FILE_NAME);
        let conn = Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .with_context(|| format!("opening {} to read", path.display()))?;
        conn.execute_batch("PRAGMA busy_timeout=5000;")?;
        Ok(Reservations {
            conn: Mutex::new(conn),
        })
    }

    /// The reservation of `room` and the floor under every room.
    pub fn get(&self, room: &str) -> rusqlite::Result<Reserved> {
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let mut stmt = conn.prepare_cached(
            "SELECT (SELECT last_id FROM rooms WHERE room = ?1),
                    (SELECT last_id FROM room_floor WHERE one = 0)",
        )?;
        let (room, floor): (Option<i64>, Option<i64>) = stmt
            .query_row([room], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?
            .unwrap_or((None, None));
        Ok(Reserved {
            room: room.map(|id| id as u64),
            floor: floor.map_or(0, |id| id as u64),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::{
        chat::Visibility,
        store::history::{HistoryStore, NewEvent, Retention},
    };

    #[test]
    fn a_room_whose_events_aged_out_leaves_its_row_and_raises_the_floor() {
        let dir = tempfile::tempdir().unwrap();
        let retention = Retention {
            max_events: 100,
            max_age: Some(Duration::from_secs(1)),
        };
        let mut store = HistoryStore::open(dir.path(), retention).unwrap();
        let reservations = Reservations::open(dir.path()).unwrap();
        let event = |room: &'static str, id, time| NewEvent {
            room,
            id,
            time,
            visible: Visibility::Room,
            body: "{}",
        };
        store
            .append(
                &[event("old", 5, 1_000), event("new", 7, 9_000)],
                &[("old", 1029), ("new", 1031)],
            )
            .unwrap();
        assert_eq!(
            reservations.get("old").unwrap(),
            Reserved {
                room: Some(1029),
                floor: 0
            }
        );
        store.prune_by_age(9_500).unwrap();
        let old = reservations.get("old").unwrap();
        assert_eq!(old.room, None, "its row is gone");
        assert_eq!(old.last_id(), 1029, "its ids are not");
        assert_eq!(reservations.get("new").unwrap().room, Some(1031));
        assert_eq!(store.rooms().unwrap().len(), 1);
    }
}
