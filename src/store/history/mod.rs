//! `HistoryStore`: every broadcast event, kept in SQLite (WAL mode) in the data dir.
//!
//! Plain synchronous calls on one connection; only the chat engine's writer thread uses it,
//! so nothing here needs a lock. Each event is kept as the exact JSON its recipients got, with
//! who may see it: the whole room, or two users (a private message, kept once, in the room it
//! was said in; its two users' other rooms keep nothing of it). Presence (`join`, `left`) is
//! kept apart from messages: its own bound per room, so a churn of joins never pushes the
//! messages out, and a newcomer's history (`read_messages`) is messages only.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::Context;
use rusqlite::{Connection, OptionalExtension, params};

use crate::chat::Visibility;

pub const FILE_NAME: &str = "history.sqlite3";

/// Bumped when the schema changes, so an old file can be migrated.
const SCHEMA_VERSION: i64 = 2;

/// `--history-max-presence`' default: `join` and `left` kept per room.
pub const DEFAULT_MAX_PRESENCE: u64 = 200;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS events (
    room      TEXT    NOT NULL,
    id        INTEGER NOT NULL,
    time      INTEGER NOT NULL,  -- ms since the Unix epoch, for the age limit
    visible_a INTEGER,           -- NULL: the whole room sees it; else only users a and b
    visible_b INTEGER,
    body      TEXT    NOT NULL,  -- the event's JSON, exactly as sent
    presence  INTEGER NOT NULL DEFAULT 0,  -- 1: a join or left, under its own bound
    PRIMARY KEY (room, id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS events_by_time ON events (time);
-- Whose event it is, read from the JSON, so a purge finds a user's messages without a scan
-- (see `delete.rs`, whose queries repeat this expression to use it). `json_valid` first: a
-- body that is not JSON must not make its insert fail.
CREATE INDEX IF NOT EXISTS events_by_author ON events (
    (CASE WHEN json_valid(body) THEN json_extract(body, '$.user.id') END), room, id);
-- last_id: ids up to here may have been handed out (a reservation, so it never goes back).
-- pruned_through: the newest id retention deleted; a client that saw less missed something.
CREATE TABLE IF NOT EXISTS rooms (
    room           TEXT    PRIMARY KEY,
    last_id        INTEGER NOT NULL,
    pruned_through INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
-- One row: the highest last_id of any room whose row went when its last event aged out.
-- A room without a row starts above it, so ids never go back and old rooms cost no row.
CREATE TABLE IF NOT EXISTS room_floor (
    one     INTEGER PRIMARY KEY CHECK (one = 0),
    last_id INTEGER NOT NULL
);
";

/// The `visible_a`, `visible_b` columns: both NULL for the whole room.
fn columns(visible: Visibility) -> (Option<i64>, Option<i64>) {
    match visible {
        Visibility::Room => (None, None),
        Visibility::Pair(a, b) => (Some(a as i64), Some(b as i64)),
    }
}

/// An id as SQLite holds it. Ids above `i64::MAX` are refused rather than stored negative,
/// where they would sort below every other and come back as different ids.
fn sql_id(id: u64) -> rusqlite::Result<i64> {
    i64::try_from(id).map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))
}

/// One event to keep.
#[derive(Debug, Clone, Copy)]
pub struct NewEvent<'a> {
    pub room: &'a str,
    pub id: u64,
    pub time: u64,
    pub visible: Visibility,
    pub body: &'a str,
    /// A `join` or `left`: kept under the presence bound, left out of `read_messages`.
    pub presence: bool,
}

/// How much history to keep per room. `max_age` of `None` keeps events of any age.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    pub max_events: u64,
    pub max_age: Option<Duration>,
}

#[derive(Debug)]
pub struct HistoryStore {
    conn: Connection,
    retention: Retention,
    /// `join` and `left` kept per room.
    max_presence: u64,
    path: PathBuf,
}

impl HistoryStore {
    pub fn open(data_dir: &Path, retention: Retention) -> anyhow::Result<Self> {
        let path = data_dir.join(FILE_NAME);
        let conn =
            Connection::open(&path).with_context(|| format!("opening {}", path.display()))?;
        // WAL: readers never block the writer, and a commit is one append and one fsync.
        // WAL with synchronous=NORMAL: a commit is in the OS before anyone sees the event, so a
        // crash of the process (kill -9) loses nothing, and no commit waits for the disk.
        // `power_safe` adds an fsync per commit, for machines that may lose power.
        let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
        anyhow::ensure!(
            mode.eq_ignore_ascii_case("wal"),
            "{} is not in WAL mode",
            path.display()
        );
        conn.execute_batch("PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=5000;")?;
        let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        anyhow::ensure!(
            version <= SCHEMA_VERSION,
            "{} was written by a newer passerby (schema {version})",
            path.display()
        );
        conn.execute_batch(SCHEMA)
            .with_context(|| format!("creating the schema in {}", path.display()))?;
        if version < 2 {
            migrate_presence(&conn)
                .with_context(|| format!("setting presence apart in {}", path.display()))?;
        }
        conn.execute_batch(
            "CREATE INDEX IF NOT EXISTS events_by_kind ON events (room, presence, id);",
        )?;
        conn.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        Ok(HistoryStore {
            conn,
            retention,
            max_presence: DEFAULT_MAX_PRESENCE,
            path,
        })
    }

    /// Keeps at most `n` `join` and `left` events per room (at least 1), apart from the
    /// messages' retention.
    pub fn keep_presence(&mut self, n: u64) {
        self.max_presence = n.max(1);
    }

    /// Makes every commit wait for the disk (synchronous=FULL), so events survive a power
    /// loss too, at the cost of an fsync of latency on every delivery.
    pub fn power_safe(&self) -> anyhow::Result<()> {
        self.conn.execute_batch("PRAGMA synchronous=FULL;")?;
        Ok(())
    }

    /// Another connection to the same file, for reads only: under WAL it reads beside the
    /// writer without waiting for it, so pages of history keep off the writer thread.
    pub fn reader(&self) -> anyhow::Result<Self> {
        let conn = Connection::open_with_flags(
            &self.path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .with_context(|| format!("opening {} to read", self.path.display()))?;
        conn.execute_batch("PRAGMA busy_timeout=5000;")?;
        Ok(HistoryStore {
            conn,
            retention: self.retention,
            max_presence: self.max_presence,
            path: self.path.clone(),
        })
    }

    pub fn retention(&self) -> Retention {
        self.retention
    }

    /// Events a room may store between two prunings: an eighth of the smaller bound.
    pub fn prune_every(&self) -> u64 {
        (self.retention.max_events.min(self.max_presence) / 8).max(1)
    }

    /// Every room and the id it may have handed out last, to continue from after a restart.
    pub fn rooms(&self) -> rusqlite::Result<Vec<(String, u64)>> {
        let mut stmt = self.conn.prepare("SELECT room, last_id FROM rooms")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64)))?;
        rows.collect()
    }

    /// Keeps `events` and raises each room's id reservation, in one transaction: one fsync
    /// for the whole batch.
    pub fn append(
        &mut self,
        events: &[NewEvent<'_>],
        reservations: &[(&str, u64)],
    ) -> rusqlite::Result<()> {
        let tx = self.conn.transaction()?;
        {
            let mut insert = tx.prepare_cached(
                "INSERT INTO events (room, id, time, visible_a, visible_b, body, presence)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?;
            for e in events {
                let (a, b) = columns(e.visible);
                let id = sql_id(e.id)?;
                insert.execute(params![e.room, id, e.time as i64, a, b, e.body, e.presence])?;
            }
            let mut reserve = tx.prepare_cached(
                // A room without a row starts with everything up to the floor counted as
                // pruned (whatever a client saw there before is gone), but never its events
                // of this batch: a live room whose old events aged out keeps ids below it.
                "INSERT INTO rooms (room, last_id, pruned_through)
                 VALUES (?1, ?2, min(coalesce((SELECT last_id FROM room_floor WHERE one = 0), 0), ?3))
                 ON CONFLICT (room) DO UPDATE SET last_id = max(last_id, excluded.last_id)",
            )?;
            let mut lowest: HashMap<&str, u64> = HashMap::new();
            for e in events {
                let id = lowest.entry(e.room).or_insert(e.id);
                *id = (*id).min(e.id);
            }
            for (room, last_id) in reservations {
                let before = lowest.get(room).map_or(u64::MAX, |id| id.saturating_sub(1));
                let before = i64::try_from(before).unwrap_or(i64::MAX);
                reserve.execute(params![room, sql_id(*last_id)?, before])?;
            }
        }
        tx.commit()
    }

    /// Runs `read` in one read transaction, so everything it reads is of one moment.
    pub fn snapshot<T>(
        &self,
        read: impl FnOnce(&Self) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<T> {
        self.conn.execute_batch("BEGIN DEFERRED")?;
        let result = read(self);
        // A read-only transaction: ending it cannot lose anything.
        let ended = self.conn.execute_batch("COMMIT");
        let value = result?;
        ended?;
        Ok(value)
    }

    /// The newest id retention deleted in `room` (0 if none). A room without a row lost
    /// everything up to the floor (see `forget_empty_rooms`).
    pub fn pruned_through(&self, room: &str) -> rusqlite::Result<u64> {
        let id: Option<i64> = self.conn.query_row(
            "SELECT coalesce(
                 (SELECT pruned_through FROM rooms WHERE room = ?1),
                 (SELECT last_id FROM room_floor WHERE one = 0))",
            [room],
            |r| r.get(0),
        )?;
        Ok(id.unwrap_or(0) as u64)
    }

    /// Keeps the newest `max_events` messages of `room`, and apart from them its newest
    /// `max_presence` `join` and `left`. Cheap: range deletes on an index.
    ///
    /// Only the messages' cut marks the room pruned: presence that went for its own bound
    /// is a gap a recovery passes over (as a whisper for others is), not lost history.
    pub fn prune_room(&mut self, room: &str) -> rusqlite::Result<usize> {
        let tx = self.conn.transaction()?;
        let mut deleted = 0;
        for (presence, keep) in [
            (false, self.retention.max_events),
            (true, self.max_presence),
        ] {
            let keep = i64::try_from(keep).unwrap_or(i64::MAX);
            let cutoff: Option<i64> = tx
                .query_row(
                    "SELECT id FROM events WHERE room = ?1 AND presence = ?3
                     ORDER BY id DESC LIMIT 1 OFFSET ?2",
                    params![room, keep, presence],
                    |r| r.get(0),
                )
                .optional()?;
            let Some(cutoff) = cutoff else { continue };
            deleted += tx.execute(
                "DELETE FROM events WHERE room = ?1 AND presence = ?3 AND id <= ?2",
                params![room, cutoff, presence],
            )?;
            if !presence {
                mark_pruned(&tx, room, cutoff)?;
            }
        }
        tx.commit()?;
        Ok(deleted)
    }

    /// Deletes events older than the age limit (`now_ms` being now), in every room.
    pub fn prune_by_age(&mut self, now_ms: u64) -> rusqlite::Result<usize> {
        let Some(max_age) = self.retention.max_age else {
            return Ok(0);
        };
        let before = now_ms.saturating_sub(max_age.as_millis() as u64) as i64;
        let tx = self.conn.transaction()?;
        let newest: Vec<(String, i64)> = {
            let mut stmt =
                tx.prepare("SELECT room, max(id) FROM events WHERE time < ?1 GROUP BY room")?;
            stmt.query_map([before], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<rusqlite::Result<_>>()?
        };
        let deleted = tx.execute("DELETE FROM events WHERE time < ?1", [before])?;
        for (room, id) in &newest {
            mark_pruned(&tx, room, *id)?;
        }
        super::reservations::forget_empty_rooms(&tx, newest.iter().map(|(room, _)| room.as_str()))?;
        tx.commit()?;
        Ok(deleted)
    }
}

/// Files written before presence was kept apart: their `join` and `left` are found by the
/// JSON they were sent as (a text cannot hold `"type":"join"` unescaped).
fn migrate_presence(conn: &Connection) -> rusqlite::Result<()> {
    let has_column: bool = conn.query_row(
        "SELECT count(*) FROM pragma_table_info('events') WHERE name = 'presence'",
        [],
        |r| r.get(0),
    )?;
    if !has_column {
        conn.execute_batch(
            "ALTER TABLE events ADD COLUMN presence INTEGER NOT NULL DEFAULT 0;
             UPDATE events SET presence = 1
             WHERE instr(body, ',\"type\":\"join\",') > 0
                OR instr(body, ',\"type\":\"left\",') > 0;",
        )?;
    }
    Ok(())
}

fn mark_pruned(conn: &Connection, room: &str, id: i64) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO rooms (room, last_id, pruned_through) VALUES (?1, ?2, ?2)
         ON CONFLICT (room) DO UPDATE SET pruned_through = max(pruned_through, excluded.pruned_through)",
        params![room, id],
    )?;
    Ok(())
}

mod delete;
mod read;
#[cfg(test)]
mod tests;
