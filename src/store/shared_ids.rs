//! `IdSource`: where user ids come from. The data dir's counter, or with `--redis` one counter
//! in Redis, so every instance hands out ids that no other instance will. With Redis each id
//! is also kept in the instance's floor (`floor.rs`) before it is handed out, and the counter
//! is raised to that floor first: a Redis that restarted empty, even while this instance
//! restarted too, never hands out an id an offline user holds.

use std::{
    fmt,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use crate::redis_conn::{RedisConn, RedisTarget};
use anyhow::Context;

use crate::redis_retry::retry_dropped;

use super::{
    Floor, UserIds,
    user_ids::{AllocateError, IdsExhausted},
};

const KEY: &str = "passerby:user_ids";

/// INCR, but never below the highest id this instance has seen handed out or kept in its
/// floor: a Redis that restarted empty must not give a user's id to someone else.
const ALLOCATE: &str = "
local known = tonumber(ARGV[1])
if tonumber(redis.call('GET', KEYS[1]) or '0') < known then
  redis.call('SET', KEYS[1], known)
end
return redis.call('INCR', KEYS[1])
";

pub enum IdSource {
    File(UserIds),
    Redis {
        conn: RedisConn,
        /// The highest id this instance saw handed out; guest names are numbered by it.
        issued: AtomicU64,
        floor: Arc<Floor>,
    },
}

impl fmt::Debug for IdSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IdSource::File(ids) => ids.fmt(f),
            IdSource::Redis { issued, .. } => {
                f.debug_struct("Redis").field("issued", issued).finish()
            }
        }
    }
}

impl IdSource {
    pub async fn redis(target: &RedisTarget, floor: Arc<Floor>) -> anyhow::Result<IdSource> {
        let url = &target.url;
        let mut conn = target.connect().await?;
        let issued: Option<u64> = redis::cmd("GET")
            .arg(KEY)
            .query_async(&mut conn)
            .await
            .with_context(|| format!("cannot use Redis at {url}"))?;
        Ok(IdSource::Redis {
            conn,
            issued: AtomicU64::new(issued.unwrap_or(0)),
            floor,
        })
    }

    /// How many ids were handed out so far (as far as this instance knows).
    pub fn issued(&self) -> u64 {
        match self {
            IdSource::File(ids) => ids.issued(),
            IdSource::Redis { issued, .. } => issued.load(Ordering::Relaxed),
        }
    }

    /// The next id, never handed out before. An error that is `IdsExhausted` (see
    /// `anyhow::Error::is`) means no id is left: sign-in answers 503.
    pub async fn allocate(&self) -> anyhow::Result<u64> {
        match self {
            IdSource::File(ids) => ids.allocate().map_err(|e| match e {
                AllocateError::Exhausted(e) => e.into(),
                e => e.into(),
            }),
            IdSource::Redis {
                conn,
                issued,
                floor,
            } => {
                let known = issued.load(Ordering::Relaxed).max(floor.values().users);
                // Run twice (the first call ran, but its answer was lost with the
                // connection), it only skips an id.
                let id: u64 = retry_dropped(|| {
                    let mut conn = conn.clone();
                    async move {
                        redis::Script::new(ALLOCATE)
                            .key(KEY)
                            .arg(known)
                            .invoke_async(&mut conn)
                            .await
                    }
                })
                .await
                .map_err(|e| {
                    // INCR refuses to go past 2^63 - 1 rather than wrap.
                    if e.to_string().contains("overflow") {
                        anyhow::Error::new(IdsExhausted)
                    } else {
                        anyhow::Error::new(e).context("Redis")
                    }
                })?;
                floor
                    .issue_user(id)
                    .context("writing the Redis floor in the data dir")?;
                issued.fetch_max(id, Ordering::Relaxed);
                Ok(id)
            }
        }
    }
}
