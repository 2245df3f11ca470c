//! The moderation flags (`moderation`): moderator sign-ins, and the bounds on bans, mutes,
//! room settings, the audit log and the word filter.

#[derive(Debug, Clone, clap::Args)]
pub struct ModerationFlags {
    /// Hours a moderator's sign-in cookie (POST /admin/session) is good for.
    #[arg(long, env = "PASSERBY_MODERATOR_SESSION_HOURS", default_value_t = 12, value_parser = clap::value_parser!(u32).range(1..=720))]
    pub moderator_session_hours: u32,

    /// Failed moderator sign-ins (wrong tokens or cookies) one client address may make per
    /// minute; past it every attempt gets 429 with Retry-After.
    #[arg(long, env = "PASSERBY_MODERATOR_AUTH_FAILURES", default_value_t = 10.0)]
    pub moderator_auth_failures: f64,

    /// Bans in force at once; one more is refused with 409 until one is lifted or expires.
    #[arg(long, env = "PASSERBY_MAX_BANS", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_bans: u64,

    /// Mutes in force at once; one more is refused with 409 until one is lifted or expires.
    #[arg(long, env = "PASSERBY_MAX_MUTES", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_mutes: u64,

    /// Rooms with a slow mode or read-only at once; one more is refused with 409.
    #[arg(long, env = "PASSERBY_MAX_ROOM_SETTINGS", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_room_settings: u64,

    /// Moderator actions the audit log keeps; each one past it drops the oldest.
    #[arg(long, env = "PASSERBY_AUDIT_MAX_ENTRIES", default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub audit_max_entries: u64,

    /// Words in the word filter; a longer list is refused with 413.
    #[arg(long, env = "PASSERBY_MAX_FILTER_WORDS", default_value_t = 2000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub max_filter_words: u64,

    /// Characters in one word of the word filter; a longer word is refused with 400.
    #[arg(long, env = "PASSERBY_MAX_FILTER_WORD_CHARS", default_value_t = 50, value_parser = clap::value_parser!(u64).range(1..=1000))]
    pub max_filter_word_chars: u64,
}

impl ModerationFlags {
    /// The moderation bounds and lifetimes.
    pub fn settings(&self) -> crate::moderation::Settings {
        crate::moderation::Settings {
            session_hours: self.moderator_session_hours,
            max_bans: usize::try_from(self.max_bans).unwrap_or(usize::MAX),
            max_mutes: usize::try_from(self.max_mutes).unwrap_or(usize::MAX),
            max_room_settings: usize::try_from(self.max_room_settings).unwrap_or(usize::MAX),
            audit_max_entries: self.audit_max_entries,
            auth_failures_per_minute: self.moderator_auth_failures,
            word_filter: crate::moderation::words::FilterLimits {
                max_words: usize::try_from(self.max_filter_words).unwrap_or(usize::MAX),
                max_word_chars: usize::try_from(self.max_filter_word_chars).unwrap_or(usize::MAX),
            },
        }
    }
}
