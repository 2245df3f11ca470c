//! The audit log in Redis: one stream capped at `--audit-max-entries` with `MAXLEN`, whose
//! entry ids (`<id>-0`) are the audit ids, so a page is one `XREVRANGE` below `before`.

use redis::streams::StreamRangeReply;

use super::RedisStore;
use crate::moderation::{
    audit::{AuditEntry, NewAudit},
    store::StoreResult,
};

pub(super) const AUDIT: &str = "passerby:{moderation}:audit";
pub(super) const AUDIT_IDS: &str = "passerby:{moderation}:audit:next";

/// The id and the append in one step, so concurrent instances add stream ids in order.
const AUDIT_SCRIPT: &str = r"
local id = redis.call('INCR', KEYS[2])
redis.call('XADD', KEYS[1], 'MAXLEN', ARGV[1], id .. '-0',
  'time', ARGV[2], 'moderator', ARGV[3], 'action', ARGV[4], 'target', ARGV[5], unpack(ARGV, 6))
return id
";

pub(super) fn append(store: &RedisStore, entry: &NewAudit<'_>, keep: u64) -> StoreResult<i64> {
    let script = redis::Script::new(AUDIT_SCRIPT);
    let mut script = script.prepare_invoke();
    script
        .key(AUDIT)
        .key(AUDIT_IDS)
        .arg(keep.max(1))
        .arg(entry.time)
        .arg(entry.moderator)
        .arg(entry.action)
        .arg(entry.target);
    if let Some(reason) = entry.reason {
        script.arg("reason").arg(reason);
    }
    store.run(|c| script.invoke(c))
}

pub(super) fn page(
    store: &RedisStore,
    before: Option<i64>,
    limit: usize,
) -> StoreResult<Vec<AuditEntry>> {
    let end = match before {
        None => "+".to_owned(),
        Some(before) if before <= 1 => return Ok(Vec::new()),
        Some(before) => format!("{}-0", before - 1),
    };
    let reply: StreamRangeReply = store.run(|c| {
        redis::cmd("XREVRANGE")
            .arg(AUDIT)
            .arg(end)
            .arg("-")
            .arg("COUNT")
            .arg(limit)
            .query(c)
    })?;
    Ok(reply
        .ids
        .into_iter()
        .filter_map(|entry| {
            let id = entry.id.split_once('-')?.0.parse().ok()?;
            let field = |name: &str| entry.get::<String>(name);
            Some(AuditEntry {
                id,
                time: field("time")?.parse().ok()?,
                moderator: field("moderator")?,
                action: field("action")?,
                target: field("target")?,
                reason: field("reason"),
            })
        })
        .collect())
}
