//! Revoked sessions of the embedded engine: `<data-dir>/sessions.db`, mirrored in memory.
//!
//! Every socket, upload and page asks whether its session was revoked, so the answer comes
//! from a map in memory; the file is written before a sign-out is answered, so a revocation
//! survives a restart, and read back whole on open.

use std::{
    collections::HashMap,
    path::Path,
    sync::{Arc, Mutex, MutexGuard},
};

use anyhow::Context;
use rusqlite::{Connection, params};

use super::RevokeError;
use crate::auth::SessionId;

pub const FILE_NAME: &str = "sessions.db";

#[derive(Debug, Clone)]
pub(super) struct Revoked {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// Held across a whole sign-out, so the cap is checked and the row written as one step.
    conn: Mutex<Connection>,
    /// Session id → when its cookie expires (unix seconds).
    ids: Mutex<HashMap<SessionId, u64>>,
    max: usize,
}

impl Revoked {
    pub(super) fn open(data_dir: &Path, max: usize, now: u64) -> anyhow::Result<Revoked> {
        let path = data_dir.join(FILE_NAME);
        let conn = Connection::open(&path)
            .with_context(|| format!("opening the sessions store {}", path.display()))?;
        // WAL with synchronous=NORMAL, as the history: a sign-out is in the OS before it is
        // answered, so it survives the process being killed, and no fsync holds up the
        // close of its sockets. One lost to a power cut leaves that cookie valid until
        // `--cookie-days` ends it.
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = NORMAL;
             PRAGMA busy_timeout = 5000;
             CREATE TABLE IF NOT EXISTS revoked (
                 sid BLOB PRIMARY KEY NOT NULL,
                 expires INTEGER NOT NULL
             ) WITHOUT ROWID;
             CREATE INDEX IF NOT EXISTS revoked_expires ON revoked (expires);",
        )
        .with_context(|| format!("preparing the sessions store {}", path.display()))?;
        conn.execute(
            "DELETE FROM revoked WHERE expires <= ?1",
            params![sql_time(now)],
        )?;
        let mut ids = HashMap::new();
        {
            let mut rows = conn.prepare("SELECT sid, expires FROM revoked")?;
            let rows = rows.query_map([], |row| {
                Ok((row.get::<_, Vec<u8>>(0)?, row.get::<_, i64>(1)?))
            })?;
            for row in rows {
                let (sid, expires) = row?;
                match <[u8; 16]>::try_from(sid) {
                    Ok(bytes) => {
                        ids.insert(SessionId::from_bytes(bytes), expires.max(0).unsigned_abs());
                    }
                    Err(_) => tracing::warn!("skipped a malformed row in the sessions store"),
                }
            }
        }
        Ok(Revoked {
            inner: Arc::new(Inner {
                conn: Mutex::new(conn),
                ids: Mutex::new(ids),
                max,
            }),
        })
    }

    pub(super) fn contains(&self, id: &SessionId, now: u64) -> bool {
        lock(&self.inner.ids)
            .get(id)
            .is_some_and(|&expires| expires > now)
    }

    pub(super) fn len(&self) -> usize {
        lock(&self.inner.ids).len()
    }

    /// Stores a revocation (idempotent). When the store is full, the expired ones go first;
    /// if it is still full, `Full`: an older revocation is never dropped to make room, or
    /// signing out a million times could bring a stolen cookie back to life.
    pub(super) async fn insert(
        &self,
        id: SessionId,
        expires: u64,
        now: u64,
    ) -> Result<(), RevokeError> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || inner.insert(id, expires, now))
            .await
            .map_err(|e| RevokeError::Store(anyhow::Error::new(e).context("sign-out task")))?
    }
}

impl Inner {
    fn insert(&self, id: SessionId, expires: u64, now: u64) -> Result<(), RevokeError> {
        let conn = lock(&self.conn);
        {
            let mut ids = lock(&self.ids);
            if ids.contains_key(&id) {
                return Ok(());
            }
            if ids.len() >= self.max {
                ids.retain(|_, &mut e| e > now);
                conn.execute(
                    "DELETE FROM revoked WHERE expires <= ?1",
                    params![sql_time(now)],
                )
                .context("pruning the sessions store")?;
            }
            if ids.len() >= self.max {
                tracing::warn!(max = self.max, "sign-out refused: --max-revoked-sessions");
                return Err(RevokeError::Full);
            }
        }
        conn.execute(
            "INSERT OR REPLACE INTO revoked (sid, expires) VALUES (?1, ?2)",
            params![&id.as_bytes()[..], sql_time(expires)],
        )
        .context("storing a sign-out")?;
        lock(&self.ids).insert(id, expires);
        Ok(())
    }
}

/// SQLite integers are signed; unix seconds fit for the next few billion years.
fn sql_time(secs: u64) -> i64 {
    i64::try_from(secs).unwrap_or(i64::MAX)
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sid(n: u8) -> SessionId {
        SessionId::from_bytes([n; 16])
    }

    #[tokio::test]
    async fn survives_a_reopen_and_forgets_what_expired() {
        let dir = tempfile::tempdir().unwrap();
        let store = Revoked::open(dir.path(), 10, 100).unwrap();
        store.insert(sid(1), 200, 100).await.unwrap();
        store.insert(sid(2), 150, 100).await.unwrap();
        assert!(store.contains(&sid(1), 100) && store.contains(&sid(2), 100));
        assert!(!store.contains(&sid(3), 100));
        assert!(!store.contains(&sid(2), 150), "its cookie expired: moot");
        drop(store);
        let store = Revoked::open(dir.path(), 10, 160).unwrap();
        assert!(store.contains(&sid(1), 160));
        assert_eq!(store.len(), 1, "the expired one was pruned on open");
    }

    #[tokio::test]
    async fn a_full_store_prunes_then_refuses_and_never_drops_a_live_one() {
        let dir = tempfile::tempdir().unwrap();
        let store = Revoked::open(dir.path(), 2, 100).unwrap();
        store.insert(sid(1), 150, 100).await.unwrap();
        store.insert(sid(2), 300, 100).await.unwrap();
        store.insert(sid(2), 300, 100).await.unwrap();
        assert!(matches!(
            store.insert(sid(3), 300, 120).await,
            Err(RevokeError::Full)
        ));
        store.insert(sid(3), 300, 200).await.unwrap();
        assert_eq!(store.len(), 2);
        assert!(store.contains(&sid(2), 200) && store.contains(&sid(3), 200));
    }
}
