//! `Change`: one moderation decision as every instance hears it, and what hearing it does.
//!
//! With `--redis` the store publishes each change beside writing it; every other instance
//! applies it to its in-memory copy (the one every sign-in, socket and message consults)
//! and, for a ban or a kick, closes its own matching sockets. The instance that made the
//! change applied it already, so it skips its own (`Published::from`).
//!
//! A new moderation setting is one more variant here, written and published by its store
//! method (as `RedisStore::put_word_filter` does), applied in `Moderation::apply` and read
//! back in `Moderation::reload`.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{
    Moderation,
    bans::{Ban, BanTarget, Bans},
    mutes::{Mute, Mutes},
    rooms::RoomSettings,
    store::StoreError,
    time,
    words::{FilterSpec, WordFilter},
};
use crate::chat::{Engine, protocol::close};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Change {
    Ban {
        ban: Ban,
    },
    Unban {
        id: i64,
    },
    Mute {
        mute: Mute,
    },
    Unmute {
        user: u64,
    },
    Room {
        room: String,
        settings: RoomSettings,
    },
    /// Not stored: only the sockets open at that moment are closed.
    Kick {
        user: u64,
        reason: String,
    },
    /// Compiled by each instance from the spec, as at start.
    WordFilter {
        filter: FilterSpec,
    },
}

/// A change on the channel, with the instance that made it.
#[derive(Debug, Serialize, Deserialize)]
pub struct Published {
    pub from: u64,
    pub change: Change,
}

impl Moderation {
    /// Applies a change made on another instance: the in-memory copy first, so a socket
    /// reopened after the close below is refused, then the sockets here.
    pub fn apply(&self, change: Change, engine: &Engine) {
        match change {
            Change::Ban { ban } => {
                self.bans_mut().insert(ban.clone());
                self.close_banned(&ban, engine);
            }
            Change::Unban { id } => {
                self.bans_mut().remove(id);
            }
            Change::Mute { mute } => self.mutes_mut().put(mute),
            Change::Unmute { user } => {
                self.mutes_mut().remove(user);
            }
            Change::Room { room, settings } => self.rooms_mut().put(room, settings),
            Change::Kick { user, reason } => {
                engine.close_user(user, close::REMOVED, &reason);
            }
            Change::WordFilter { filter } => self.hear_word_filter(Some(filter)),
        }
    }

    /// Puts a filter set elsewhere in force here. One that does not fit this instance's
    /// flags (`--max-filter-words` set lower here) keeps the one in force, said in the log.
    fn hear_word_filter(&self, spec: Option<FilterSpec>) {
        match WordFilter::build(spec.unwrap_or_default(), self.settings.word_filter) {
            Ok(filter) => self.apply_word_filter(Arc::new(filter)),
            Err(e) => tracing::error!(error = %e, "a word filter set elsewhere does not fit here"),
        }
    }

    /// Reads bans, mutes and room settings back from the store in place of what is held
    /// (after a lost subscription), and closes the sockets of the bans not heard of before.
    pub fn reload(&self, engine: &Engine) -> Result<(), StoreError> {
        let now = time::now_ms();
        let bans = self.store.bans(now)?;
        let mutes = self.store.mutes(now)?;
        let rooms = self.store.room_settings()?;
        let filter = self.store.word_filter()?;
        let new: Vec<Ban> = {
            let mut held = self.bans_mut();
            let new = bans
                .iter()
                .filter(|b| held.get(b.id).is_none())
                .cloned()
                .collect();
            *held = Bans::new(bans);
            new
        };
        *self.mutes_mut() = Mutes::new(mutes);
        self.rooms_mut().replace(rooms);
        self.hear_word_filter(filter);
        for ban in &new {
            self.close_banned(ban, engine);
        }
        Ok(())
    }

    /// Closes this instance's sockets that a ban covers; returns how many.
    pub fn close_banned(&self, ban: &Ban, engine: &Engine) -> usize {
        let users = match ban.target {
            BanTarget::User(user) => vec![user],
            BanTarget::Address(net) => self.addresses.users_in(&net),
        };
        let reason = ban.describe();
        users
            .into_iter()
            .map(|user| engine.close_user(user, close::REMOVED, &reason))
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_crosses_the_wire_whole_with_ids_past_what_a_double_holds() {
        let ban = Ban {
            id: 7,
            target: BanTarget::Address("2001:db8::/48".parse().unwrap()),
            reason: "flood".into(),
            moderator: "alice".into(),
            created: 1,
            until: None,
        };
        let mute = Mute {
            user: u64::MAX - 1,
            reason: String::new(),
            moderator: "bob".into(),
            created: 2,
            until: 3,
        };
        for change in [Change::Ban { ban }, Change::Mute { mute }] {
            let text = serde_json::to_string(&Published { from: 9, change }).unwrap();
            let back: Published = serde_json::from_str(&text).unwrap();
            assert_eq!(back.from, 9);
            assert_eq!(serde_json::to_string(&back).unwrap(), text);
        }
        let back: Published =
            serde_json::from_str(r#"{"from":1,"change":{"type":"ban","ban":{"id":1,"user":18446744073709551614,"reason":"","moderator":"m","created":0,"until":5}}}"#)
                .unwrap();
        let Change::Ban { ban } = back.change else {
            panic!("a ban")
        };
        assert_eq!(ban.target, BanTarget::User(u64::MAX - 1));
        assert_eq!(ban.until, Some(5));
    }
}
