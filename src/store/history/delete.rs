//! Deleting messages from the history: found by id, or by author through the
//! `events_by_author` index (a user's events, whatever the room holds besides), and removed
//! with the `delete` event that lists them in one transaction.

use rusqlite::params;

use super::{HistoryStore, NewEvent, columns, sql_id};
use crate::chat::log::deletion::Doomed;

/// An event's author, exactly as `events_by_author` indexes it (see the schema).
const AUTHOR: &str = "(CASE WHEN json_valid(body) THEN json_extract(body, '$.user.id') END)";

/// The kinds a purge removes: what a user said (`EventKind::is_message`).
///
/// The queries name their index: with no statistics SQLite prefers the primary key for a
/// room (it holds the bodies), which reads every event of the room to find one user's.
const MESSAGES: &str = "('chat', 'image', 'private')";

impl HistoryStore {
    /// The events `doomed` selects in `room` below `below`, oldest first, with their bodies:
    /// by id whatever it is (the caller tells a message from the rest), or the oldest
    /// `limit` messages of a user said at `since_ms` or later.
    pub fn doomed(
        &self,
        room: &str,
        below: u64,
        doomed: Doomed,
    ) -> rusqlite::Result<Vec<(u64, String)>> {
        let row = |r: &rusqlite::Row<'_>| Ok((r.get::<_, i64>(0)? as u64, r.get(1)?));
        match doomed {
            Doomed::Message(id) => {
                let mut stmt = self.conn.prepare_cached(
                    "SELECT id, body FROM events WHERE room = ?1 AND id = ?2 AND id < ?3",
                )?;
                let id = i64::try_from(id).unwrap_or(i64::MAX);
                let below = i64::try_from(below).unwrap_or(i64::MAX);
                stmt.query_map(params![room, id, below], row)?.collect()
            }
            Doomed::User {
                user,
                since_ms,
                limit,
            } => {
                let mut stmt = self.conn.prepare_cached(&format!(
                    "SELECT id, body FROM events INDEXED BY events_by_author
                     WHERE {AUTHOR} = ?1 AND room = ?2 AND id < ?3
                       AND time >= ?4 AND json_extract(body, '$.type') IN {MESSAGES}
                     ORDER BY id LIMIT ?5"
                ))?;
                let user = i64::try_from(user).unwrap_or(i64::MAX);
                let below = i64::try_from(below).unwrap_or(i64::MAX);
                let since = i64::try_from(since_ms).unwrap_or(i64::MAX);
                let limit = i64::try_from(limit).unwrap_or(i64::MAX);
                stmt.query_map(params![user, room, below, since, limit], row)?
                    .collect()
            }
        }
    }

    /// Deletes `ids` of `room` and keeps `event` (the `delete` that lists them), at once.
    pub fn replace(
        &mut self,
        room: &str,
        ids: &[u64],
        event: &NewEvent<'_>,
    ) -> rusqlite::Result<()> {
        let tx = self.conn.transaction()?;
        {
            let mut delete = tx.prepare_cached("DELETE FROM events WHERE room = ?1 AND id = ?2")?;
            for id in ids {
                delete.execute(params![room, sql_id(*id)?])?;
            }
            let (a, b) = columns(event.visible);
            tx.prepare_cached(
                "INSERT INTO events (room, id, time, visible_a, visible_b, body)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![
                event.room,
                sql_id(event.id)?,
                event.time as i64,
                a,
                b,
                event.body
            ])?;
        }
        tx.commit()
    }

    /// The rooms holding messages of `user` said at `since_ms` or later.
    pub fn rooms_with(&self, user: u64, since_ms: u64) -> rusqlite::Result<Vec<String>> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT DISTINCT room FROM events INDEXED BY events_by_author
             WHERE {AUTHOR} = ?1 AND time >= ?2
               AND json_extract(body, '$.type') IN {MESSAGES}"
        ))?;
        let user = i64::try_from(user).unwrap_or(i64::MAX);
        let since = i64::try_from(since_ms).unwrap_or(i64::MAX);
        stmt.query_map(params![user, since], |r| r.get(0))?
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{chat::Visibility, store::history::Retention};

    fn store() -> (tempfile::TempDir, HistoryStore) {
        let dir = tempfile::tempdir().unwrap();
        let retention = Retention {
            max_events: 1000,
            max_age: None,
        };
        let store = HistoryStore::open(dir.path(), retention).unwrap();
        (dir, store)
    }

    fn body(id: u64, kind: &str, user: u64, time: u64) -> String {
        format!(
            r#"{{"id":{id},"type":"{kind}","user":{{"type":"g","id":{user},"name":"n","image":1}},"data":"x","time":{time}}}"#
        )
    }

    fn put(store: &mut HistoryStore, room: &str, id: u64, kind: &str, user: u64, time: u64) {
        let body = body(id, kind, user, time);
        let event = NewEvent {
            room,
            id,
            time,
            visible: Visibility::Room,
            body: &body,
            presence: false,
        };
        store.append(&[event], &[(room, id + 100)]).unwrap();
    }

    fn ids(found: Vec<(u64, String)>) -> Vec<u64> {
        found.into_iter().map(|(id, _)| id).collect()
    }

    #[test]
    fn a_users_messages_are_found_by_author_oldest_first_within_the_limit_and_time() {
        let (_dir, mut store) = store();
        put(&mut store, "a", 1, "join", 7, 10);
        put(&mut store, "a", 2, "chat", 7, 10);
        put(&mut store, "a", 3, "chat", 8, 10);
        put(&mut store, "a", 4, "image", 7, 20);
        put(&mut store, "a", 5, "private", 7, 30);
        put(&mut store, "b", 6, "chat", 7, 30);
        let user = |since_ms, limit| Doomed::User {
            user: 7,
            since_ms,
            limit,
        };
        assert_eq!(ids(store.doomed("a", 99, user(0, 10)).unwrap()), [2, 4, 5]);
        assert_eq!(ids(store.doomed("a", 99, user(0, 2)).unwrap()), [2, 4]);
        assert_eq!(ids(store.doomed("a", 99, user(20, 10)).unwrap()), [4, 5]);
        assert_eq!(
            ids(store.doomed("a", 5, user(0, 10)).unwrap()),
            [2, 4],
            "below"
        );
        let mut rooms = store.rooms_with(7, 0).unwrap();
        rooms.sort();
        assert_eq!(rooms, ["a", "b"]);
        assert_eq!(store.rooms_with(7, 31).unwrap(), Vec::<String>::new());
        assert_eq!(store.rooms_with(8, 0).unwrap(), ["a"]);
    }

    #[test]
    fn a_purge_reads_through_the_author_index() {
        let (_dir, store) = store();
        let plan: Vec<String> = store
            .conn
            .prepare(&format!(
                "EXPLAIN QUERY PLAN SELECT id, body FROM events INDEXED BY events_by_author
                 WHERE {AUTHOR} = 1 AND room = 'a' AND id < 9
                   AND time >= 0 AND json_extract(body, '$.type') IN {MESSAGES}
                 ORDER BY id LIMIT 5"
            ))
            .unwrap()
            .query_map([], |r| r.get(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(
            plan.iter().any(|step| step.contains("events_by_author")),
            "{plan:?}"
        );
    }

    #[test]
    fn replacing_removes_the_messages_and_keeps_the_delete_in_one_go() {
        let (_dir, mut store) = store();
        put(&mut store, "a", 1, "chat", 7, 10);
        put(&mut store, "a", 2, "chat", 7, 10);
        let delete = body(3, "delete", 7, 11);
        let event = NewEvent {
            room: "a",
            id: 3,
            time: 11,
            visible: Visibility::Room,
            body: &delete,
            presence: false,
        };
        store.replace("a", &[1], &event).unwrap();
        assert_eq!(
            store.read("a", 0, 99, 1, 10).unwrap(),
            [body(2, "chat", 7, 10), delete]
        );
        assert!(
            store
                .doomed("a", 99, Doomed::Message(1))
                .unwrap()
                .is_empty()
        );
    }
}
