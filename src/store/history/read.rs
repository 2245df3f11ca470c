//! Reading a room's kept events back: everything a viewer may see (a recovery), or its
//! messages only (a newcomer's history and pages back).

use rusqlite::params;

use super::HistoryStore;

impl HistoryStore {
    /// The bodies of the events in `room` that `viewer` may see with `after < id <= through`:
    /// the newest `limit` of them, oldest first, presence included (a recovery).
    pub fn read(
        &self,
        room: &str,
        after: u64,
        through: u64,
        viewer: u64,
        limit: usize,
    ) -> rusqlite::Result<Vec<String>> {
        self.read_kinds(room, after, through, viewer, limit, true)
    }

    /// The same, messages only: a newcomer's history and pages back.
    pub fn read_messages(
        &self,
        room: &str,
        after: u64,
        through: u64,
        viewer: u64,
        limit: usize,
    ) -> rusqlite::Result<Vec<String>> {
        self.read_kinds(room, after, through, viewer, limit, false)
    }

    fn read_kinds(
        &self,
        room: &str,
        after: u64,
        through: u64,
        viewer: u64,
        limit: usize,
        presence: bool,
    ) -> rusqlite::Result<Vec<String>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT body FROM (
                 SELECT id, body FROM events
                 WHERE room = ?1 AND id > ?2 AND id <= ?3
                   AND (visible_a IS NULL OR visible_a = ?4 OR visible_b = ?4)
                   AND presence <= ?6
                 ORDER BY id DESC LIMIT ?5
             ) ORDER BY id",
        )?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = stmt.query_map(
            params![
                room,
                after as i64,
                through as i64,
                viewer as i64,
                limit,
                presence
            ],
            |r| r.get(0),
        )?;
        rows.collect()
    }
}
