//! `SqliteStore`: moderation in `<data-dir>/moderation.sqlite3`, apart from chat history so
//! the `passerby moderator` commands can open it while the server runs.

use std::{
    path::Path,
    sync::{Mutex, MutexGuard},
    time::Duration,
};

use rusqlite::{Connection, params};

use super::{ModerationStore, ModeratorRecord, StoreError, StoreResult};
use crate::moderation::{
    audit::{AuditEntry, NewAudit},
    bans::{Ban, BanTarget, NewBan},
    mutes::Mute,
    name::ModeratorName,
    rooms::RoomSettings,
    token::TokenHash,
    words::FilterSpec,
};

pub const FILE_NAME: &str = "moderation.sqlite3";

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS moderators (
    name TEXT PRIMARY KEY,
    token_hash BLOB NOT NULL,
    created_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    time_ms INTEGER NOT NULL,
    moderator TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    reason TEXT
);
CREATE TABLE IF NOT EXISTS bans (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id INTEGER,
    address TEXT,
    reason TEXT NOT NULL,
    moderator TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    until_ms INTEGER
);
CREATE TABLE IF NOT EXISTS rooms (
    room TEXT PRIMARY KEY,
    slow_mode_secs INTEGER NOT NULL,
    read_only INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS word_filter (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    spec TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS mutes (
    user_id INTEGER PRIMARY KEY,
    reason TEXT NOT NULL,
    moderator TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    until_ms INTEGER NOT NULL
);
";

#[derive(Debug)]
pub struct SqliteStore {
    conn: Mutex<Connection>,
}

impl SqliteStore {
    pub fn open(data_dir: &Path) -> anyhow::Result<Self> {
        let path = data_dir.join(FILE_NAME);
        let conn = Connection::open(&path)?;
        // The server and a `passerby moderator` command may write at once: WAL lets readers
        // go on, and a writer waits its turn rather than failing.
        conn.busy_timeout(Duration::from_secs(5))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.execute_batch(SCHEMA)?;
        Ok(SqliteStore {
            conn: Mutex::new(conn),
        })
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn ban_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Option<Ban>> {
    let user: Option<i64> = row.get(1)?;
    let address: Option<String> = row.get(2)?;
    let target = match (user, address) {
        (Some(user), _) => BanTarget::User(user as u64),
        (None, Some(address)) => match address.parse() {
            Ok(net) => BanTarget::Address(net),
            Err(_) => return Ok(None),
        },
        (None, None) => return Ok(None),
    };
    Ok(Some(Ban {
        id: row.get(0)?,
        target,
        reason: row.get(3)?,
        moderator: row.get(4)?,
        created: row.get(5)?,
        until: row.get(6)?,
    }))
}

impl ModerationStore for SqliteStore {
    fn add_moderator(
        &self,
        name: &ModeratorName,
        hash: &TokenHash,
        now_ms: i64,
    ) -> StoreResult<()> {
        let added = self.conn().execute(
            "INSERT OR IGNORE INTO moderators (name, token_hash, created_ms) VALUES (?1, ?2, ?3)",
            params![name.as_str(), hash.as_bytes(), now_ms],
        )?;
        if added == 0 {
            return Err(StoreError::ModeratorExists(name.clone()));
        }
        Ok(())
    }

    fn remove_moderator(&self, name: &ModeratorName) -> StoreResult<bool> {
        let removed = self
            .conn()
            .execute("DELETE FROM moderators WHERE name = ?1", [name.as_str()])?;
        Ok(removed > 0)
    }

    fn moderators(&self) -> StoreResult<Vec<ModeratorRecord>> {
        let conn = self.conn();
        let mut stmt = conn.prepare("SELECT name, created_ms FROM moderators ORDER BY name")?;
        let rows = stmt.query_map([], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (name, created_ms) = row?;
            if let Ok(name) = ModeratorName::parse(&name) {
                out.push(ModeratorRecord { name, created_ms });
            }
        }
        Ok(out)
    }

    fn token_hashes(&self) -> StoreResult<Vec<(ModeratorName, TokenHash)>> {
        let conn = self.conn();
        let mut stmt = conn.prepare("SELECT name, token_hash FROM moderators")?;
        let rows = stmt.query_map([], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, Vec<u8>>(1)?))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (name, hash) = row?;
            if let (Ok(name), Some(hash)) =
                (ModeratorName::parse(&name), TokenHash::from_bytes(&hash))
            {
                out.push((name, hash));
            }
        }
        Ok(out)
    }

    fn audit(&self, entry: &NewAudit<'_>, keep: u64) -> StoreResult<i64> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.execute(
            "INSERT INTO audit (time_ms, moderator, action, target, reason) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                entry.time,
                entry.moderator,
                entry.action,
                entry.target,
                entry.reason
            ],
        )?;
        let id = tx.last_insert_rowid();
        // Ids only grow, so the newest `keep` entries are the ids above id - keep.
        let keep = i64::try_from(keep).unwrap_or(i64::MAX);
        tx.execute(
            "DELETE FROM audit WHERE id <= ?1",
            [id.saturating_sub(keep)],
        )?;
        tx.commit()?;
        Ok(id)
    }

    fn audit_page(&self, before: Option<i64>, limit: usize) -> StoreResult<Vec<AuditEntry>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT id, time_ms, moderator, action, target, reason FROM audit
             WHERE id < ?1 ORDER BY id DESC LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![before.unwrap_or(i64::MAX), limit as i64], |row| {
            Ok(AuditEntry {
                id: row.get(0)?,
                time: row.get(1)?,
                moderator: row.get(2)?,
                action: row.get(3)?,
                target: row.get(4)?,
                reason: row.get(5)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn add_ban(&self, ban: &NewBan) -> StoreResult<Ban> {
        let conn = self.conn();
        let (user, address) = match &ban.target {
            BanTarget::User(id) => (Some(*id as i64), None),
            BanTarget::Address(net) => (None, Some(net.to_string())),
        };
        conn.execute(
            "INSERT INTO bans (user_id, address, reason, moderator, created_ms, until_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                user,
                address,
                ban.reason,
                ban.moderator,
                ban.created,
                ban.until
            ],
        )?;
        Ok(Ban {
            id: conn.last_insert_rowid(),
            target: ban.target,
            reason: ban.reason.clone(),
            moderator: ban.moderator.clone(),
            created: ban.created,
            until: ban.until,
        })
    }

    fn remove_ban(&self, id: i64) -> StoreResult<bool> {
        Ok(self
            .conn()
            .execute("DELETE FROM bans WHERE id = ?1", [id])?
            > 0)
    }

    fn bans(&self, now_ms: i64) -> StoreResult<Vec<Ban>> {
        let conn = self.conn();
        conn.execute(
            "DELETE FROM bans WHERE until_ms IS NOT NULL AND until_ms <= ?1",
            [now_ms],
        )?;
        let mut stmt = conn.prepare(
            "SELECT id, user_id, address, reason, moderator, created_ms, until_ms FROM bans ORDER BY id",
        )?;
        let rows = stmt.query_map([], ban_from_row)?;
        let mut out = Vec::new();
        for row in rows {
            out.extend(row?);
        }
        Ok(out)
    }

    fn put_mute(&self, mute: &Mute) -> StoreResult<()> {
        self.conn().execute(
            "INSERT OR REPLACE INTO mutes (user_id, reason, moderator, created_ms, until_ms)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                mute.user as i64,
                mute.reason,
                mute.moderator,
                mute.created,
                mute.until
            ],
        )?;
        Ok(())
    }

    fn remove_mute(&self, user: u64) -> StoreResult<bool> {
        Ok(self
            .conn()
            .execute("DELETE FROM mutes WHERE user_id = ?1", [user as i64])?
            > 0)
    }

    fn mutes(&self, now_ms: i64) -> StoreResult<Vec<Mute>> {
        let conn = self.conn();
        conn.execute("DELETE FROM mutes WHERE until_ms <= ?1", [now_ms])?;
        let mut stmt =
            conn.prepare("SELECT user_id, reason, moderator, created_ms, until_ms FROM mutes")?;
        let rows = stmt.query_map([], |row| {
            Ok(Mute {
                user: row.get::<_, i64>(0)? as u64,
                reason: row.get(1)?,
                moderator: row.get(2)?,
                created: row.get(3)?,
                until: row.get(4)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn put_room_settings(&self, room: &str, settings: RoomSettings) -> StoreResult<()> {
        let conn = self.conn();
        if settings.is_default() {
            conn.execute("DELETE FROM rooms WHERE room = ?1", [room])?;
        } else {
            conn.execute(
                "INSERT OR REPLACE INTO rooms (room, slow_mode_secs, read_only) VALUES (?1, ?2, ?3)",
                params![room, settings.slow_mode_secs as i64, settings.read_only],
            )?;
        }
        Ok(())
    }

    fn room_settings(&self) -> StoreResult<Vec<(String, RoomSettings)>> {
        let conn = self.conn();
        let mut stmt = conn.prepare("SELECT room, slow_mode_secs, read_only FROM rooms")?;
        let rows = stmt.query_map([], |row| {
            Ok((
                row.get::<_, String>(0)?,
                RoomSettings {
                    slow_mode_secs: row.get::<_, i64>(1)?.max(0) as u64,
                    read_only: row.get(2)?,
                },
            ))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn put_word_filter(&self, filter: &FilterSpec) -> StoreResult<()> {
        // One row of JSON: the filter is read whole at start and replaced whole on change.
        let spec = serde_json::to_string(filter)?;
        self.conn().execute(
            "INSERT OR REPLACE INTO word_filter (id, spec) VALUES (1, ?1)",
            [spec],
        )?;
        Ok(())
    }

    fn word_filter(&self) -> StoreResult<Option<FilterSpec>> {
        let conn = self.conn();
        let mut stmt = conn.prepare("SELECT spec FROM word_filter WHERE id = 1")?;
        let mut rows = stmt.query([])?;
        match rows.next()? {
            Some(row) => Ok(Some(serde_json::from_str(&row.get::<_, String>(0)?)?)),
            None => Ok(None),
        }
    }
}
