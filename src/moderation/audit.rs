//! The audit log: what each moderator did, to whom, why and when.
//!
//! Bounded by count (`--audit-max-entries`): each entry past it drops the oldest, so the log
//! holds the most recent actions however busy the moderators are.

use serde::Serialize;

/// One action as `GET /admin/api/audit` lists it.
#[derive(Debug, Clone, Serialize)]
pub struct AuditEntry {
    pub id: i64,
    /// Milliseconds since the epoch.
    pub time: i64,
    pub moderator: String,
    /// `kick`, `ban`, `unban`, `mute`, `unmute`, `room`, `session`, `word_filter`.
    pub action: String,
    /// `user:<id>`, `address:<net>`, `ban:<id>`, `room:<name>`, `moderator:<name>` or `word-filter`.
    pub target: String,
    pub reason: Option<String>,
}

/// An entry to append.
#[derive(Debug)]
pub struct NewAudit<'a> {
    pub time: i64,
    pub moderator: &'a str,
    pub action: &'a str,
    pub target: &'a str,
    pub reason: Option<&'a str>,
}
