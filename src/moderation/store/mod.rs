//! `ModerationStore`: where moderators, bans, mutes and the audit log are kept.
//!
//! SQLite in the data dir (`sqlite.rs`), or with `--redis` Redis (`redis/`), which also
//! publishes every change to the other instances. The in-memory views that every sign-in
//! and message consult (`Bans`, `Mutes`, `Rooms`, the compiled word filter) are built from a
//! store at start and kept in step by `Moderation`, so a store only needs to be right, not
//! fast.

mod redis;
mod sqlite;

pub use redis::{CHANNEL, RedisStore};
pub use sqlite::{FILE_NAME as SQLITE_FILE, SqliteStore};

use super::{
    audit::{AuditEntry, NewAudit},
    bans::{Ban, NewBan},
    change::Change,
    mutes::Mute,
    name::ModeratorName,
    rooms::RoomSettings,
    token::TokenHash,
    words::FilterSpec,
};

/// A moderator as `passerby moderator list` shows them.
#[derive(Debug, Clone)]
pub struct ModeratorRecord {
    pub name: ModeratorName,
    pub created_ms: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("a moderator named {0} exists already")]
    ModeratorExists(ModeratorName),
    #[error("moderation store: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// Redis did not answer in time or at all: the API says 503, the checks go on with
    /// what this instance last heard.
    #[error("moderation store (Redis): {0}")]
    Redis(#[from] ::redis::RedisError),
    /// Something stored (the word filter, a ban in Redis) does not read back.
    #[error("moderation store: unreadable: {0}")]
    Json(#[from] serde_json::Error),
}

impl StoreError {
    /// Whether the store is out of reach for now, rather than wrong.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Redis(_))
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

pub trait ModerationStore: Send + Sync + std::fmt::Debug {
    fn add_moderator(&self, name: &ModeratorName, hash: &TokenHash, now_ms: i64)
    -> StoreResult<()>;
    /// False if there was no such moderator.
    fn remove_moderator(&self, name: &ModeratorName) -> StoreResult<bool>;
    fn moderators(&self) -> StoreResult<Vec<ModeratorRecord>>;
    /// Every moderator's token hash: the caller compares in constant time.
    fn token_hashes(&self) -> StoreResult<Vec<(ModeratorName, TokenHash)>>;

    /// Appends an entry and drops the oldest past `keep` entries; returns the new entry's id.
    fn audit(&self, entry: &NewAudit<'_>, keep: u64) -> StoreResult<i64>;
    /// Newest first, ids below `before` (all if `None`), at most `limit`.
    fn audit_page(&self, before: Option<i64>, limit: usize) -> StoreResult<Vec<AuditEntry>>;

    /// Stores a ban and gives it its id.
    fn add_ban(&self, ban: &NewBan) -> StoreResult<Ban>;
    /// False if there was no such ban.
    fn remove_ban(&self, id: i64) -> StoreResult<bool>;
    /// Bans still in force at `now_ms`; expired ones are deleted on the way.
    fn bans(&self, now_ms: i64) -> StoreResult<Vec<Ban>>;

    /// Sets a user's mute, replacing any earlier one.
    fn put_mute(&self, mute: &Mute) -> StoreResult<()>;
    fn remove_mute(&self, user: u64) -> StoreResult<bool>;
    /// Mutes still in force at `now_ms`; expired ones are deleted on the way.
    fn mutes(&self, now_ms: i64) -> StoreResult<Vec<Mute>>;

    /// Sets a room's settings; the defaults delete its row.
    fn put_room_settings(&self, room: &str, settings: RoomSettings) -> StoreResult<()>;
    fn room_settings(&self) -> StoreResult<Vec<(String, RoomSettings)>>;

    /// Replaces the word filter (one per server; no words clears it). A shared store tells
    /// the other instances in the same step (`Change::WordFilter`).
    fn put_word_filter(&self, filter: &FilterSpec) -> StoreResult<()>;
    /// The word filter as last put, `None` if never set.
    fn word_filter(&self) -> StoreResult<Option<FilterSpec>>;

    /// Tells the other instances of a change that is not stored (a kick). Every write above
    /// is told by the store that shares it, in the same step; alone, there is no one to tell.
    fn announce(&self, _change: Change) -> StoreResult<()> {
        Ok(())
    }
}
