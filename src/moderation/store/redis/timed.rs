//! The writes of timed entries, bans and mutes: each kept in its hash and in a sorted set by
//! end, so the ended ones are pruned on the next write.

use super::{CHANNEL, RedisStore, scripts};
use crate::moderation::{change::Change, store::StoreResult};

impl RedisStore {
    /// Removes one timed entry (a ban by id, a mute by user) from its hash and its index by
    /// end, and publishes `change`, in one step; whether it was there.
    pub(super) fn remove_timed(
        &self,
        (hash, until): (&str, &str),
        key: impl redis::ToRedisArgs + Copy,
        change: Change,
    ) -> StoreResult<bool> {
        let message = self.message(change)?;
        let removed: u32 = self.run(|c| {
            redis::Script::new(scripts::REMOVE_TIMED)
                .key(hash)
                .key(until)
                .arg(key)
                .arg(CHANNEL)
                .arg(message)
                .invoke(c)
        })?;
        Ok(removed > 0)
    }

    /// Forgets timed entries that ended, found while reading them all.
    pub(super) fn forget_ended<K: redis::ToRedisArgs>(
        &self,
        (hash, until): (&str, &str),
        keys: &[K],
    ) -> StoreResult<()> {
        if keys.is_empty() {
            return Ok(());
        }
        self.run(|c| {
            redis::Script::new(scripts::FORGET)
                .key(hash)
                .key(until)
                .arg(keys)
                .invoke::<()>(c)
        })
    }

    /// Prunes what ended by `now_ms`, stores `json` under `field` with its end `score`, and
    /// publishes `message`, in one step.
    pub(super) fn put_timed(
        &self,
        (hash, until): (&str, &str),
        now_ms: i64,
        field: impl redis::ToRedisArgs,
        (json, score): (String, String),
        message: String,
    ) -> StoreResult<()> {
        self.run(|c| {
            redis::Script::new(scripts::PUT_TIMED)
                .key(hash)
                .key(until)
                .arg(now_ms)
                .arg(field)
                .arg(json)
                .arg(score)
                .arg(CHANNEL)
                .arg(message)
                .invoke::<()>(c)
        })
    }
}
