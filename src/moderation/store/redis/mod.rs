//! `RedisStore`: moderation shared by every instance of one Redis or Redis Cluster, under
//! `passerby:{moderation}:`.
//!
//! Moderators, bans, mutes and room settings are hashes (bans and mutes also in a sorted set
//! by end time, so the ended ones are pruned on the next write), ids come from INCR, and the
//! audit log is a stream capped with MAXLEN whose entry ids are the audit ids. Every write
//! publishes its `Change` in the same script, so an instance that hears nothing missed nothing
//! that was stored; one that lost its subscription reloads everything (`listen.rs`). All keys
//! share one hash tag, so each script's keys sit in one slot of a cluster.
//!
//! The audit log's side is in `audit.rs`, the connection and the upgrade from the untagged
//! names in `conn.rs`, the scripts in `scripts.rs`, the writes of bans and mutes in `timed.rs`. Calls block, with short timeouts, like the
//! SQLite store's: the admin API is low traffic, the `passerby moderator` commands share this
//! code, and on the server's workers a wait hands the other tasks on (`run`).

mod audit;
mod conn;
mod scripts;
mod timed;

use std::{
    sync::{Mutex, MutexGuard},
    time::Duration,
};

use anyhow::Context;
use redis::ConnectionLike;

use conn::{Conn, Opener};

use super::{ModerationStore, ModeratorRecord, StoreError, StoreResult};
use crate::moderation::{
    audit::{AuditEntry, NewAudit},
    bans::{Ban, NewBan},
    change::{Change, Published},
    mutes::Mute,
    name::ModeratorName,
    rooms::RoomSettings,
    token::TokenHash,
    words::FilterSpec,
};
use crate::redis_conn::RedisTarget;

pub const CHANNEL: &str = "passerby:moderation:changes";
const MODERATORS: &str = "passerby:{moderation}:moderators";
const MODERATORS_ADDED: &str = "passerby:{moderation}:moderators:added";
const BANS: &str = "passerby:{moderation}:bans";
const BANS_UNTIL: &str = "passerby:{moderation}:bans:until";
const BAN_IDS: &str = "passerby:{moderation}:bans:next";
const MUTES: &str = "passerby:{moderation}:mutes";
const MUTES_UNTIL: &str = "passerby:{moderation}:mutes:until";
const ROOMS: &str = "passerby:{moderation}:rooms";
const WORD_FILTER: &str = "passerby:{moderation}:word-filter";

/// How long a call may wait on Redis: past it the API answers 503 rather than hang.
const TIMEOUT: Duration = Duration::from_secs(1);

pub struct RedisStore {
    opener: Opener,
    /// Dropped after any failure and opened again on the next call.
    conn: Mutex<Option<Conn>>,
    /// Who publishes: an instance skips the changes it made itself.
    instance: u64,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("instance", &self.instance)
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// Checks that Redis answers, and on a single server moves keys kept under the old
    /// names; `instance` names this process in what it publishes.
    pub fn open(target: &RedisTarget, instance: u64) -> anyhow::Result<Self> {
        let store = RedisStore {
            opener: Opener::new(target, TIMEOUT)?,
            conn: Mutex::new(None),
            instance,
        };
        store
            .run(|c| redis::cmd("PING").query::<String>(c))
            .with_context(|| format!("cannot reach Redis at {}", target.url))?;
        if !target.cluster {
            let moved = store
                .run(conn::upgrade)
                .context("moving moderation keys to their new names")?;
            if moved > 0 {
                tracing::info!(
                    moved,
                    "moderation keys moved under passerby:{{moderation}}:"
                );
            }
        }
        Ok(store)
    }

    fn lock(&self) -> MutexGuard<'_, Option<Conn>> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn run<T>(
        &self,
        f: impl FnOnce(&mut dyn ConnectionLike) -> redis::RedisResult<T>,
    ) -> StoreResult<T> {
        // On a worker of the server's runtime the wait (up to `TIMEOUT` while Redis stalls)
        // must not hold up the sockets scheduled there: the worker hands them on first.
        let multi_thread = tokio::runtime::Handle::try_current()
            .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
        if multi_thread {
            tokio::task::block_in_place(|| self.run_here(f))
        } else {
            self.run_here(f)
        }
    }

    fn run_here<T>(
        &self,
        f: impl FnOnce(&mut dyn ConnectionLike) -> redis::RedisResult<T>,
    ) -> StoreResult<T> {
        let mut slot = self.lock();
        let conn = match slot.as_mut() {
            Some(conn) => conn,
            None => slot.insert(self.opener.open(TIMEOUT)?),
        };
        let result = f(conn.like());
        if result.is_err() {
            // A timed-out reply may still arrive: a fresh connection cannot mistake it.
            *slot = None;
        }
        Ok(result?)
    }

    fn message(&self, change: Change) -> StoreResult<String> {
        Ok(serde_json::to_string(&Published {
            from: self.instance,
            change,
        })?)
    }
}

fn decode<T: serde::de::DeserializeOwned>(what: &str, raw: &str) -> Option<T> {
    serde_json::from_str(raw)
        .map_err(|e| tracing::warn!(error = %e, "skipped an unreadable {what} in Redis"))
        .ok()
}

impl ModerationStore for RedisStore {
    fn add_moderator(
        &self,
        name: &ModeratorName,
        hash: &TokenHash,
        now_ms: i64,
    ) -> StoreResult<()> {
        let added: bool = self.run(|c| {
            redis::Script::new(scripts::ADD_MODERATOR)
                .key(MODERATORS)
                .key(MODERATORS_ADDED)
                .arg(name.as_str())
                .arg(hash.as_bytes())
                .arg(now_ms)
                .invoke(c)
        })?;
        if !added {
            return Err(StoreError::ModeratorExists(name.clone()));
        }
        Ok(())
    }

    fn remove_moderator(&self, name: &ModeratorName) -> StoreResult<bool> {
        let removed: u32 = self.run(|c| {
            redis::Script::new(scripts::REMOVE_MODERATOR)
                .key(MODERATORS)
                .key(MODERATORS_ADDED)
                .arg(name.as_str())
                .invoke(c)
        })?;
        Ok(removed > 0)
    }

    fn moderators(&self) -> StoreResult<Vec<ModeratorRecord>> {
        let added: Vec<(String, i64)> =
            self.run(|c| redis::cmd("HGETALL").arg(MODERATORS_ADDED).query(c))?;
        let names: Vec<String> = self.run(|c| redis::cmd("HKEYS").arg(MODERATORS).query(c))?;
        let mut out: Vec<ModeratorRecord> = names
            .iter()
            .filter_map(|n| ModeratorName::parse(n).ok())
            .map(|name| ModeratorRecord {
                created_ms: added
                    .iter()
                    .find(|(n, _)| n == name.as_str())
                    .map_or(0, |(_, ms)| *ms),
                name,
            })
            .collect();
        out.sort_by(|a, b| a.name.as_str().cmp(b.name.as_str()));
        Ok(out)
    }

    fn token_hashes(&self) -> StoreResult<Vec<(ModeratorName, TokenHash)>> {
        let all: Vec<(String, Vec<u8>)> =
            self.run(|c| redis::cmd("HGETALL").arg(MODERATORS).query(c))?;
        Ok(all
            .into_iter()
            .filter_map(|(name, hash)| {
                Some((
                    ModeratorName::parse(&name).ok()?,
                    TokenHash::from_bytes(&hash)?,
                ))
            })
            .collect())
    }

    fn audit(&self, entry: &NewAudit<'_>, keep: u64) -> StoreResult<i64> {
        audit::append(self, entry, keep)
    }

    fn audit_page(&self, before: Option<i64>, limit: usize) -> StoreResult<Vec<AuditEntry>> {
        audit::page(self, before, limit)
    }

    fn add_ban(&self, new: &NewBan) -> StoreResult<Ban> {
        let id: i64 = self.run(|c| redis::cmd("INCR").arg(BAN_IDS).query(c))?;
        let ban = Ban {
            id,
            target: new.target,
            reason: new.reason.clone(),
            moderator: new.moderator.clone(),
            created: new.created,
            until: new.until,
        };
        let json = serde_json::to_string(&ban)?;
        let message = self.message(Change::Ban { ban: ban.clone() })?;
        let score = ban.until.map_or("+inf".to_owned(), |u| u.to_string());
        self.put_timed((BANS, BANS_UNTIL), new.created, id, (json, score), message)?;
        Ok(ban)
    }

    fn remove_ban(&self, id: i64) -> StoreResult<bool> {
        self.remove_timed((BANS, BANS_UNTIL), id, Change::Unban { id })
    }

    fn bans(&self, now_ms: i64) -> StoreResult<Vec<Ban>> {
        let all: Vec<(i64, String)> = self.run(|c| redis::cmd("HGETALL").arg(BANS).query(c))?;
        let (bans, ended): (Vec<Ban>, Vec<Ban>) = all
            .iter()
            .filter_map(|(_, json)| decode::<Ban>("ban", json))
            .partition(|b| b.in_force(now_ms));
        let ids: Vec<i64> = ended.iter().map(|b| b.id).collect();
        self.forget_ended((BANS, BANS_UNTIL), &ids)?;
        Ok(bans)
    }

    fn put_mute(&self, mute: &Mute) -> StoreResult<()> {
        let json = serde_json::to_string(mute)?;
        let message = self.message(Change::Mute { mute: mute.clone() })?;
        self.put_timed(
            (MUTES, MUTES_UNTIL),
            mute.created,
            mute.user,
            (json, mute.until.to_string()),
            message,
        )
    }

    fn remove_mute(&self, user: u64) -> StoreResult<bool> {
        self.remove_timed((MUTES, MUTES_UNTIL), user, Change::Unmute { user })
    }

    fn mutes(&self, now_ms: i64) -> StoreResult<Vec<Mute>> {
        let all: Vec<(u64, String)> = self.run(|c| redis::cmd("HGETALL").arg(MUTES).query(c))?;
        let (mutes, ended): (Vec<Mute>, Vec<Mute>) = all
            .iter()
            .filter_map(|(_, json)| decode::<Mute>("mute", json))
            .partition(|m| m.until > now_ms);
        let users: Vec<u64> = ended.iter().map(|m| m.user).collect();
        self.forget_ended((MUTES, MUTES_UNTIL), &users)?;
        Ok(mutes)
    }

    fn put_room_settings(&self, room: &str, settings: RoomSettings) -> StoreResult<()> {
        let json = serde_json::to_string(&settings)?;
        let message = self.message(Change::Room {
            room: room.to_owned(),
            settings,
        })?;
        let json = if settings.is_default() {
            String::new()
        } else {
            json
        };
        self.run(|c| {
            redis::Script::new(scripts::PUT_ROOM)
                .key(ROOMS)
                .arg(room)
                .arg(json)
                .arg(CHANNEL)
                .arg(message)
                .invoke::<()>(c)
        })
    }

    fn room_settings(&self) -> StoreResult<Vec<(String, RoomSettings)>> {
        let all: Vec<(String, String)> = self.run(|c| redis::cmd("HGETALL").arg(ROOMS).query(c))?;
        Ok(all
            .into_iter()
            .filter_map(|(room, json)| Some((room, decode("room setting", &json)?)))
            .collect())
    }

    fn put_word_filter(&self, filter: &FilterSpec) -> StoreResult<()> {
        let json = serde_json::to_string(filter)?;
        let message = self.message(Change::WordFilter {
            filter: filter.clone(),
        })?;
        self.run(|c| {
            redis::Script::new(scripts::PUT_WORD_FILTER)
                .key(WORD_FILTER)
                .arg(json)
                .arg(CHANNEL)
                .arg(message)
                .invoke::<()>(c)
        })
    }

    fn word_filter(&self) -> StoreResult<Option<FilterSpec>> {
        let json: Option<String> = self.run(|c| redis::cmd("GET").arg(WORD_FILTER).query(c))?;
        Ok(json.map(|json| serde_json::from_str(&json)).transpose()?)
    }

    fn announce(&self, change: Change) -> StoreResult<()> {
        let message = self.message(change)?;
        self.run(|c| {
            redis::cmd("PUBLISH")
                .arg(CHANNEL)
                .arg(message)
                .query::<()>(c)
        })
    }
}
