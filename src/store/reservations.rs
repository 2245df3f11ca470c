//! `Reservations`: a room's id reservation, read when the room comes back into memory.
//!
//! Its own read connection to the history file (WAL: it never waits for the writer), so a
//! room is looked up when someone joins it instead of every room being loaded at start. And
//! the other side: a room whose events all aged out gives up its row to a floor.

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

/// Drops the `rooms` row of each of `rooms` that has no event left, raising the floor to its
/// reservation first: rooms nobody uses leave the file, and one that comes back starts above
/// every id it ever handed out. (`pruned_through` goes too: the floor is above it, so a
/// client that resumes there is still told it missed something.)
pub(super) fn forget_empty_rooms<'a>(
    conn: &Connection,
    rooms: impl Iterator<Item = &'a str>,
) -> rusqlite::Result<()> {
    let mut last = conn.prepare_cached(
        "SELECT last_id FROM rooms
         WHERE room = ?1 AND NOT EXISTS (SELECT 1 FROM events WHERE room = ?1)",
    )?;
    let mut forget = conn.prepare_cached("DELETE FROM rooms WHERE room = ?1")?;
    let mut raise = conn.prepare_cached(
        "INSERT INTO room_floor (one, last_id) VALUES (0, ?1)
         ON CONFLICT (one) DO UPDATE SET last_id = max(last_id, excluded.last_id)",
    )?;
    for room in rooms {
        let id: Option<i64> = last.query_row([room], |r| r.get(0)).optional()?;
        if let Some(id) = id {
            raise.execute([id])?;
            forget.execute([room])?;
        }
    }
    Ok(())
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
            presence: false,
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

    #[test]
    fn a_room_back_without_a_row_counts_up_to_the_floor_as_pruned_but_not_its_new_events() {
        let dir = tempfile::tempdir().unwrap();
        let retention = Retention {
            max_events: 100,
            max_age: Some(Duration::from_secs(1)),
        };
        let mut store = HistoryStore::open(dir.path(), retention).unwrap();
        let event = |room: &'static str, id, time, body: &'static str| NewEvent {
            room,
            id,
            time,
            visible: Visibility::Room,
            body,
            presence: false,
        };
        store
            .append(&[event("a", 900, 1_000, "old")], &[("a", 1924)])
            .unwrap();
        store.prune_by_age(9_500).unwrap();
        assert_eq!(
            store.pruned_through("a").unwrap(),
            1924,
            "gone up to the floor"
        );
        // A new room above the floor, and a live one still below it.
        store
            .append(&[event("b", 1925, 9_000, "new")], &[("b", 2949)])
            .unwrap();
        assert_eq!(store.pruned_through("b").unwrap(), 1924);
        store
            .append(&[event("a", 950, 9_000, "live")], &[("a", 1974)])
            .unwrap();
        assert_eq!(store.pruned_through("a").unwrap(), 949);
        assert_eq!(store.read("a", 949, 2000, 1, 50).unwrap(), ["live"]);
    }
}
