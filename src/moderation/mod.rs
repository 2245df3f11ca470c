//! Moderation: moderators and their tokens, bans, mutes, room settings, the word filter and
//! the audit log.
//!
//! Everything is kept by a `ModerationStore` (SQLite in the data dir, or Redis with
//! `--redis`), and what every sign-in, socket and message consults — the bans, mutes and room
//! settings in force, the compiled word filter — is also held here in memory, so those checks
//! never wait on a disk or a network. With Redis every change is published and every
//! instance applies it to its own copy (`change.rs`, `listen.rs`).

pub mod addresses;
pub mod audit;
pub mod bans;
pub mod change;
pub mod cli;
pub mod failures;
mod listen;
pub mod mutes;
pub mod name;
pub mod reason;
pub mod rooms;
pub mod store;
pub mod time;
pub mod token;
pub mod words;

use std::{
    net::IpAddr,
    path::Path,
    sync::{Arc, Mutex, MutexGuard, RwLock, RwLockWriteGuard},
};

use anyhow::Context;

use addresses::Addresses;
use audit::{AuditEntry, NewAudit};
use bans::{Ban, Bans, NewBan};
use change::Change;
use failures::AuthFailures;
use mutes::{Mute, Mutes};
use name::ModeratorName;
use rooms::{RoomRefusal, RoomSettings, Rooms};
use store::{ModerationStore, RedisStore, SqliteStore, StoreError};

use crate::redis_conn::RedisTarget;
use token::TokenHash;
use words::{FilterError, FilterLimits, FilterSpec, WordFilter};

/// The bounds and lifetimes, from the flags.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// `--moderator-session-hours`: how long the moderator cookie is good for.
    pub session_hours: u32,
    /// `--max-bans`: bans in force at once.
    pub max_bans: usize,
    /// `--max-mutes`: mutes in force at once.
    pub max_mutes: usize,
    /// `--max-room-settings`: rooms with a slow mode or read-only at once.
    pub max_room_settings: usize,
    /// `--audit-max-entries`: audit entries kept; the oldest go first.
    pub audit_max_entries: u64,
    /// `--moderator-auth-failures`: failed attempts per client address per minute.
    pub auth_failures_per_minute: f64,
    /// `--max-filter-words` and `--max-filter-word-chars`.
    pub word_filter: FilterLimits,
}

#[derive(Debug, thiserror::Error)]
pub enum ModerationError {
    #[error("{max} bans are in force already (--max-bans): lift one first")]
    TooManyBans { max: usize },
    #[error("{max} users are muted already (--max-mutes): unmute one first")]
    TooManyMutes { max: usize },
    #[error("{max} rooms have settings already (--max-room-settings): clear one first")]
    TooManyRooms { max: usize },
    #[error(transparent)]
    Filter(#[from] FilterError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Debug)]
pub struct Moderation {
    store: Box<dyn ModerationStore>,
    bans: RwLock<Bans>,
    mutes: RwLock<Mutes>,
    rooms: RwLock<Rooms>,
    writes: Mutex<()>,
    /// Swapped whole on change; a message clones the `Arc` and matches without a lock held.
    word_filter: RwLock<Arc<WordFilter>>,
    pub failures: AuthFailures,
    pub settings: Settings,
    /// Users' open sockets by client address, for bans of an address range.
    pub addresses: Addresses,
    /// With `--redis`: where to hear the other instances' changes.
    redis: Option<Vec<redis::Client>>,
    /// A random id this process publishes under, so it skips what it made itself.
    instance: u64,
}

impl Moderation {
    /// Opens the store (Redis if `redis` names one, else the data dir's) and loads the bans,
    /// mutes and room settings in force. With Redis, `listen` must follow.
    pub fn open(
        data_dir: &Path,
        redis: Option<&RedisTarget>,
        settings: Settings,
    ) -> anyhow::Result<Self> {
        let instance = random_id()?;
        let (store, client): (Box<dyn ModerationStore>, _) = match redis {
            Some(target) => {
                let store = RedisStore::open(target, instance)?;
                (Box::new(store), Some(target.clients()?))
            }
            None => (open_store(data_dir, None)?, None),
        };
        let now = time::now_ms();
        let bans = Bans::new(store.bans(now)?);
        let mutes = Mutes::new(store.mutes(now)?);
        let rooms = Rooms::new(store.room_settings()?);
        let word_filter = match store.word_filter()? {
            // Built under today's flags: a filter stored under larger ones stops the start
            // with the reason, rather than being cut short without a word.
            Some(spec) => WordFilter::build(spec, settings.word_filter).map_err(|e| {
                anyhow::anyhow!("the stored word filter does not fit the flags: {e}")
            })?,
            None => WordFilter::default(),
        };
        Ok(Moderation {
            store,
            bans: RwLock::new(bans),
            mutes: RwLock::new(mutes),
            rooms: RwLock::new(rooms),
            writes: Mutex::new(()),
            word_filter: RwLock::new(Arc::new(word_filter)),
            failures: AuthFailures::new(settings.auth_failures_per_minute),
            settings,
            addresses: Addresses::default(),
            redis: client,
            instance,
        })
    }

    /// Tells every other instance to close the user's sockets with `reason`; this one's are
    /// the caller's to close.
    pub fn kick(&self, user: u64, reason: &str) -> Result<(), StoreError> {
        self.store.announce(Change::Kick {
            user,
            reason: reason.to_owned(),
        })
    }

    /// The moderator whose token this is. Every stored hash is compared, each in constant
    /// time, so neither which moderator nor how near a guess came shows in the timing.
    pub fn moderator_for_token(&self, token: &str) -> Result<Option<ModeratorName>, StoreError> {
        let hash = TokenHash::of(token);
        let mut found = None;
        for (name, stored) in self.store.token_hashes()? {
            if stored.matches(&hash) {
                found = Some(name);
            }
        }
        Ok(found)
    }

    /// The current token hash of a moderator, `None` once removed.
    pub fn token_hash(&self, name: &ModeratorName) -> Result<Option<TokenHash>, StoreError> {
        Ok(self
            .store
            .token_hashes()?
            .into_iter()
            .find(|(n, _)| n == name)
            .map(|(_, hash)| hash))
    }

    /// Appends to the audit log.
    pub fn record(
        &self,
        moderator: &ModeratorName,
        action: &str,
        target: &str,
        reason: Option<&str>,
    ) -> Result<i64, StoreError> {
        let entry = NewAudit {
            time: time::now_ms(),
            moderator: moderator.as_str(),
            action,
            target,
            reason,
        };
        self.store.audit(&entry, self.settings.audit_max_entries)
    }

    pub fn audit_page(
        &self,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        self.store.audit_page(before, limit)
    }

    /// Stores a ban and puts it in force.
    pub fn ban(&self, new: NewBan) -> Result<Ban, ModerationError> {
        let _writing = self.writing();
        {
            let mut bans = self.bans_mut();
            bans.expire(time::now_ms());
            if bans.len() >= self.settings.max_bans {
                return Err(ModerationError::TooManyBans {
                    max: self.settings.max_bans,
                });
            }
        }
        let ban = self.store.add_ban(&new)?;
        self.bans_mut().insert(ban.clone());
        Ok(ban)
    }

    /// Lifts a ban; `None` if there was none in force with this id.
    pub fn unban(&self, id: i64) -> Result<Option<Ban>, StoreError> {
        let _writing = self.writing();
        let stored = self.store.remove_ban(id)?;
        let held = self.bans_mut().remove(id);
        Ok(held.filter(|_| stored))
    }

    pub fn bans_page(&self, before: Option<i64>, limit: usize) -> Vec<Ban> {
        let mut bans = self.bans_mut();
        bans.expire(time::now_ms());
        bans.page(before, limit)
    }

    /// The ban in force on this user or client address, if any.
    pub fn banned(&self, user: Option<u64>, addr: Option<IpAddr>) -> Option<Ban> {
        let bans = self.bans.read().unwrap_or_else(|p| p.into_inner());
        if bans.is_empty() {
            return None;
        }
        bans.find(user, addr, time::now_ms()).cloned()
    }

    /// Stores a mute and puts it in force, replacing the user's earlier one.
    pub fn mute(&self, mute: Mute) -> Result<(), ModerationError> {
        let _writing = self.writing();
        {
            let mut mutes = self.mutes_mut();
            mutes.expire(time::now_ms());
            if !mutes.contains(mute.user) && mutes.len() >= self.settings.max_mutes {
                return Err(ModerationError::TooManyMutes {
                    max: self.settings.max_mutes,
                });
            }
        }
        self.store.put_mute(&mute)?;
        self.mutes_mut().put(mute);
        Ok(())
    }

    pub fn unmute(&self, user: u64) -> Result<Option<Mute>, StoreError> {
        let _writing = self.writing();
        let stored = self.store.remove_mute(user)?;
        Ok(self.mutes_mut().remove(user).filter(|_| stored))
    }

    pub fn mutes_page(&self, before: Option<u64>, limit: usize) -> Vec<Mute> {
        let mut mutes = self.mutes_mut();
        mutes.expire(time::now_ms());
        mutes.page(before, limit)
    }

    /// The mute in force on this user, if any: asked on every message.
    pub fn muted(&self, user: u64) -> Option<Mute> {
        let mutes = self.mutes.read().unwrap_or_else(|p| p.into_inner());
        if mutes.is_empty() {
            return None;
        }
        mutes.get(user, time::now_ms()).cloned()
    }

    /// Sets a room's slow mode and read-only flag; the defaults clear them.
    pub fn set_room(&self, room: &str, settings: RoomSettings) -> Result<(), ModerationError> {
        let _writing = self.writing();
        {
            let rooms = self.rooms.read().unwrap_or_else(|p| p.into_inner());
            let max = self.settings.max_room_settings;
            if !settings.is_default() && !rooms.contains(room) && rooms.len() >= max {
                return Err(ModerationError::TooManyRooms { max });
            }
        }
        self.store.put_room_settings(room, settings)?;
        self.rooms_mut().put(room.to_owned(), settings);
        Ok(())
    }

    pub fn room(&self, room: &str) -> RoomSettings {
        self.rooms
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(room)
    }

    /// Whether `user` may send in `room` now (slow mode, read-only); counts the send if so.
    pub fn admit(&self, room: &str, user: u64) -> Result<(), RoomRefusal> {
        let rooms = self.rooms.read().unwrap_or_else(|p| p.into_inner());
        if rooms.is_empty() {
            return Ok(());
        }
        rooms.admit(room, user, std::time::Instant::now())
    }

    /// Held across a write to the store, so the caps are checked and the write made as one
    /// step, while the checks go on reading what is in force: a store that stalls (Redis
    /// away) holds up moderators, never a sign-in or a message.
    fn writing(&self) -> MutexGuard<'_, ()> {
        self.writes.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The word filter in force: asked on every message and sign-in.
    pub fn word_filter(&self) -> Arc<WordFilter> {
        Arc::clone(&self.word_filter.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// Checks and compiles a new word filter, stores it, and puts it in force.
    pub fn set_word_filter(&self, spec: FilterSpec) -> Result<Arc<WordFilter>, ModerationError> {
        let filter = Arc::new(WordFilter::build(spec, self.settings.word_filter)?);
        let _writing = self.writing();
        self.store.put_word_filter(filter.spec())?;
        self.apply_word_filter(Arc::clone(&filter));
        Ok(filter)
    }

    /// Puts a compiled filter in force on this instance. The one place a filter changes in
    /// memory: an instance told of a change made elsewhere (`change.rs`) compiles the spec it
    /// was told with `WordFilter::build` and calls this too.
    pub fn apply_word_filter(&self, filter: Arc<WordFilter>) {
        *self.word_filter.write().unwrap_or_else(|p| p.into_inner()) = filter;
    }

    fn bans_mut(&self) -> RwLockWriteGuard<'_, Bans> {
        self.bans.write().unwrap_or_else(|p| p.into_inner())
    }

    fn mutes_mut(&self) -> RwLockWriteGuard<'_, Mutes> {
        self.mutes.write().unwrap_or_else(|p| p.into_inner())
    }

    fn rooms_mut(&self) -> RwLockWriteGuard<'_, Rooms> {
        self.rooms.write().unwrap_or_else(|p| p.into_inner())
    }
}

/// Opens the store alone (Redis if `redis` names one, else the data dir's), as the server
/// does and for the `passerby moderator` commands.
pub fn open_store(
    data_dir: &Path,
    redis: Option<&RedisTarget>,
) -> anyhow::Result<Box<dyn ModerationStore>> {
    Ok(match redis {
        Some(target) => Box::new(RedisStore::open(target, random_id()?)?),
        None => {
            let path = data_dir.join(store::SQLITE_FILE);
            Box::new(
                SqliteStore::open(data_dir)
                    .with_context(|| format!("opening {}", path.display()))?,
            )
        }
    })
}

fn random_id() -> anyhow::Result<u64> {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    Ok(u64::from_le_bytes(bytes))
}
