//! `ModeratorName`: how the operator names a moderator on the command line and in the audit log.

use std::fmt;

/// Longest moderator name, in characters.
pub const MAX_CHARS: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ModeratorName(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NameError {
    #[error("a moderator name is 1 to {MAX_CHARS} characters")]
    Length,
    #[error("a moderator name takes letters, digits, `-`, `_` and `.` only")]
    Characters,
}

impl ModeratorName {
    /// ASCII only: the name lands in logs, the audit log and a cookie, where nothing should
    /// need escaping or look like another name.
    pub fn parse(raw: &str) -> Result<Self, NameError> {
        if raw.is_empty() || raw.len() > MAX_CHARS {
            return Err(NameError::Length);
        }
        if !raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        {
            return Err(NameError::Characters);
        }
        Ok(ModeratorName(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ModeratorName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_short_plain_ascii() {
        assert!(ModeratorName::parse("alice").is_ok());
        assert!(ModeratorName::parse("night-shift_2.b").is_ok());
        assert_eq!(ModeratorName::parse(""), Err(NameError::Length));
        assert_eq!(
            ModeratorName::parse(&"a".repeat(33)),
            Err(NameError::Length)
        );
        for bad in ["a b", "a|b", "ålice", "a\n", "a:b"] {
            assert_eq!(
                ModeratorName::parse(bad),
                Err(NameError::Characters),
                "{bad}"
            );
        }
    }
}
