//! Mutes: a muted user still reads, but what they send is answered with an `error`.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::time::rfc3339;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Mute {
    pub user: u64,
    pub reason: String,
    pub moderator: String,
    pub created: i64,
    /// Milliseconds since the epoch.
    pub until: i64,
}

impl Mute {
    /// The `error` a muted user's message gets.
    pub fn describe(&self) -> String {
        let until = rfc3339(self.until);
        if self.reason.is_empty() {
            format!("you are muted until {until}")
        } else {
            format!("you are muted until {until}: {}", self.reason)
        }
    }
}

/// The mutes in force, by user.
#[derive(Debug, Default)]
pub struct Mutes(HashMap<u64, Mute>);

impl Mutes {
    pub fn new(mutes: Vec<Mute>) -> Self {
        Mutes(mutes.into_iter().map(|m| (m.user, m)).collect())
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn contains(&self, user: u64) -> bool {
        self.0.contains_key(&user)
    }

    pub fn put(&mut self, mute: Mute) {
        self.0.insert(mute.user, mute);
    }

    pub fn remove(&mut self, user: u64) -> Option<Mute> {
        self.0.remove(&user)
    }

    pub fn get(&self, user: u64, now_ms: i64) -> Option<&Mute> {
        self.0.get(&user).filter(|m| m.until > now_ms)
    }

    pub fn expire(&mut self, now_ms: i64) {
        self.0.retain(|_, m| m.until > now_ms);
    }

    /// Newest first by user id below `before`, at most `limit`.
    pub fn page(&self, before: Option<u64>, limit: usize) -> Vec<Mute> {
        let mut mutes: Vec<&Mute> = self
            .0
            .values()
            .filter(|m| before.is_none_or(|b| m.user < b))
            .collect();
        mutes.sort_unstable_by_key(|m| std::cmp::Reverse(m.user));
        mutes.into_iter().take(limit).cloned().collect()
    }
}
