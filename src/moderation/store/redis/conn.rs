//! The moderation store's blocking connection to one Redis or to a Redis Cluster, and the
//! one-time move of keys kept under the names used before the cluster's hash tag.

use std::time::Duration;

use redis::{ConnectionLike, cluster::ClusterClient, cluster::ClusterConnection};

use crate::redis_conn::RedisTarget;

/// Where connections come from: reopened after any failure.
pub(super) enum Opener {
    Single(redis::Client),
    Cluster(ClusterClient),
}

pub(super) enum Conn {
    Single(redis::Connection),
    /// Boxed: far larger than a single server's, and opened once per failure.
    Cluster(Box<ClusterConnection>),
}

impl Opener {
    pub(super) fn new(target: &RedisTarget, timeout: Duration) -> anyhow::Result<Opener> {
        if !target.cluster {
            return Ok(Opener::Single(target.client()?));
        }
        Ok(Opener::Cluster(target.cluster_client(timeout, timeout)?))
    }

    pub(super) fn open(&self, timeout: Duration) -> redis::RedisResult<Conn> {
        Ok(match self {
            Opener::Single(client) => {
                let conn = client.get_connection_with_timeout(timeout)?;
                conn.set_read_timeout(Some(timeout))?;
                conn.set_write_timeout(Some(timeout))?;
                Conn::Single(conn)
            }
            Opener::Cluster(client) => {
                let conn = client.get_connection()?;
                conn.set_write_timeout(Some(timeout))?;
                Conn::Cluster(Box::new(conn))
            }
        })
    }
}

impl Conn {
    /// Sync cluster connections refuse pipelines and `MULTI`, so every write of several
    /// keys is a script instead, which both kinds run.
    pub(super) fn like(&mut self) -> &mut dyn ConnectionLike {
        match self {
            Conn::Single(conn) => conn,
            Conn::Cluster(conn) => conn.as_mut(),
        }
    }
}

/// Each old name beside its new one; the new ones share the `{moderation}` tag, so a
/// script over several of them stays in one slot of a cluster.
const RENAMES: &[(&str, &str)] = &[
    ("passerby:moderation:moderators", super::MODERATORS),
    (
        "passerby:moderation:moderators:added",
        super::MODERATORS_ADDED,
    ),
    ("passerby:moderation:bans", super::BANS),
    ("passerby:moderation:bans:until", super::BANS_UNTIL),
    ("passerby:moderation:bans:next", super::BAN_IDS),
    ("passerby:moderation:mutes", super::MUTES),
    ("passerby:moderation:mutes:until", super::MUTES_UNTIL),
    ("passerby:moderation:rooms", super::ROOMS),
    ("passerby:moderation:word-filter", super::WORD_FILTER),
    ("passerby:moderation:audit", super::audit::AUDIT),
    ("passerby:moderation:audit:next", super::audit::AUDIT_IDS),
];

/// One step, so two instances starting together cannot both see an old key and the
/// second fail to rename what the first moved. Where a new key exists already it was
/// written since the upgrade, so it is kept and the old one dropped.
const UPGRADE: &str = r"
local moved = 0
for i = 1, #KEYS, 2 do
  if redis.call('EXISTS', KEYS[i]) == 1 then
    if redis.call('RENAMENX', KEYS[i], KEYS[i + 1]) == 0 then
      redis.call('DEL', KEYS[i])
    end
    moved = moved + 1
  end
end
return moved
";

/// Moves what an older passerby kept under the untagged names; a cluster never had them
/// (the old names span slots, which a cluster's script could not touch at once anyway).
pub(super) fn upgrade(conn: &mut dyn ConnectionLike) -> redis::RedisResult<u32> {
    let script = redis::Script::new(UPGRADE);
    let mut invocation = script.prepare_invoke();
    for (old, new) in RENAMES {
        invocation.key(*old).key(*new);
    }
    invocation.invoke(conn)
}
