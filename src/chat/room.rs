//! `RoomName`: which room a socket chats in.

use std::{fmt, sync::Arc};

const MAX_CHARS: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RoomName(Arc<str>);

/// Why a room name is refused. The text is the reason a socket's 4002 close and the room's
/// error page carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RoomNameError {
    #[error("room name must not be empty")]
    Empty,
    #[error("room name must be at most {MAX_CHARS} characters")]
    TooLong,
    #[error("room name may hold only letters, digits, - and _, not {0:?}")]
    Char(char),
}

impl RoomName {
    pub const DEFAULT: &'static str = "lobby";

    pub fn lobby() -> Self {
        RoomName(Arc::from(Self::DEFAULT))
    }

    /// 1–32 letters (any script, so 中文 works), digits, `-` and `_`.
    pub fn parse(raw: &str) -> Result<Self, RoomNameError> {
        if raw.is_empty() {
            return Err(RoomNameError::Empty);
        }
        if raw.chars().count() > MAX_CHARS {
            return Err(RoomNameError::TooLong);
        }
        if let Some(bad) = raw
            .chars()
            .find(|&c| !(c.is_alphanumeric() || c == '-' || c == '_'))
        {
            return Err(RoomNameError::Char(bad));
        }
        Ok(RoomName(Arc::from(raw)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RoomName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn letters_digits_dash_underscore_and_cjk_pass() {
        for ok in ["lobby", "room-1", "a_b", "聊天室", "x", &"a".repeat(32)] {
            assert!(RoomName::parse(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn everything_else_is_refused() {
        for bad in [
            "",
            "a b",
            "../x",
            "a/b",
            "a.b",
            "<x>",
            &"a".repeat(33),
            "a\u{0}",
        ] {
            assert!(RoomName::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn each_refusal_says_why() {
        assert_eq!(
            RoomName::parse("").unwrap_err().to_string(),
            "room name must not be empty"
        );
        assert_eq!(
            RoomName::parse(&"a".repeat(33)).unwrap_err().to_string(),
            "room name must be at most 32 characters"
        );
        assert_eq!(
            RoomName::parse("a b").unwrap_err().to_string(),
            "room name may hold only letters, digits, - and _, not ' '"
        );
    }
}
