//! Room settings: slow mode (one message per user per N seconds) and read-only rooms.
//!
//! Read-only takes messages from moderators only: a socket opened with a good moderator
//! cookie skips these checks (`chat::connection`), every other one is refused here.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use serde::{Deserialize, Serialize};

/// The longest slow mode: an hour between messages.
pub const MAX_SLOW_MODE_SECS: u64 = 3600;

/// Users' last message times remembered at most; past it the ones older than any slow mode
/// are forgotten.
const MAX_TRACKED: usize = 100_000;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoomSettings {
    #[serde(default)]
    pub slow_mode_secs: u64,
    #[serde(default)]
    pub read_only: bool,
}

impl RoomSettings {
    pub fn is_default(&self) -> bool {
        *self == RoomSettings::default()
    }
}

/// Why a message may not be sent in a room now.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RoomRefusal {
    #[error("this room is read-only")]
    ReadOnly,
    #[error("slow mode: one message every {every} s here; wait {wait} s")]
    SlowMode { every: u64, wait: u64 },
}

/// Each room's settings, and when each user last sent in a slow room.
#[derive(Debug, Default)]
pub struct Rooms {
    settings: HashMap<String, RoomSettings>,
    last_sent: Mutex<HashMap<(String, u64), Instant>>,
}

impl Rooms {
    pub fn new(settings: Vec<(String, RoomSettings)>) -> Self {
        Rooms {
            settings: settings.into_iter().collect(),
            last_sent: Mutex::default(),
        }
    }

    pub fn len(&self) -> usize {
        self.settings.len()
    }

    pub fn is_empty(&self) -> bool {
        self.settings.is_empty()
    }

    pub fn get(&self, room: &str) -> RoomSettings {
        self.settings.get(room).copied().unwrap_or_default()
    }

    pub fn contains(&self, room: &str) -> bool {
        self.settings.contains_key(room)
    }

    pub fn put(&mut self, room: String, settings: RoomSettings) {
        if settings.is_default() {
            self.settings.remove(&room);
        } else {
            self.settings.insert(room, settings);
        }
    }

    /// Every room's settings at once (a reload); when each user last sent is kept.
    pub fn replace(&mut self, settings: Vec<(String, RoomSettings)>) {
        self.settings = settings.into_iter().collect();
    }

    /// `Ok` and the send counted, or why not.
    pub fn admit(&self, room: &str, user: u64, now: Instant) -> Result<(), RoomRefusal> {
        let Some(settings) = self.settings.get(room) else {
            return Ok(());
        };
        if settings.read_only {
            return Err(RoomRefusal::ReadOnly);
        }
        if settings.slow_mode_secs == 0 {
            return Ok(());
        }
        let every = Duration::from_secs(settings.slow_mode_secs);
        let mut last_sent = self.last_sent.lock().unwrap_or_else(|p| p.into_inner());
        let key = (room.to_owned(), user);
        if let Some(at) = last_sent.get(&key) {
            let since = now.saturating_duration_since(*at);
            if since < every {
                let wait = (every - since).as_secs_f64().ceil() as u64;
                return Err(RoomRefusal::SlowMode {
                    every: settings.slow_mode_secs,
                    wait: wait.max(1),
                });
            }
        }
        if last_sent.len() >= MAX_TRACKED {
            let longest = Duration::from_secs(MAX_SLOW_MODE_SECS);
            last_sent.retain(|_, at| now.saturating_duration_since(*at) < longest);
        }
        last_sent.insert(key, now);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slow_mode_lets_one_message_per_user_per_interval_and_read_only_none() {
        let mut rooms = Rooms::default();
        rooms.put(
            "slow".into(),
            RoomSettings {
                slow_mode_secs: 10,
                read_only: false,
            },
        );
        rooms.put(
            "quiet".into(),
            RoomSettings {
                slow_mode_secs: 0,
                read_only: true,
            },
        );
        let now = Instant::now();
        assert_eq!(rooms.admit("lobby", 1, now), Ok(()));
        assert_eq!(rooms.admit("lobby", 1, now), Ok(()));
        assert_eq!(rooms.admit("slow", 1, now), Ok(()));
        assert_eq!(rooms.admit("slow", 2, now), Ok(()), "per user");
        assert_eq!(
            rooms.admit("slow", 1, now + Duration::from_secs(3)),
            Err(RoomRefusal::SlowMode { every: 10, wait: 7 })
        );
        assert_eq!(
            rooms.admit("slow", 1, now + Duration::from_secs(10)),
            Ok(())
        );
        assert_eq!(rooms.admit("quiet", 1, now), Err(RoomRefusal::ReadOnly));
        rooms.put("quiet".into(), RoomSettings::default());
        assert!(!rooms.contains("quiet"));
    }
}
