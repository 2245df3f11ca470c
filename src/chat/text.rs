//! `ChatText`: a chat message that passed validation.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatText(String);

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    /// Blank messages are ignored, as in the seed: no reply, no broadcast.
    #[error("message is empty")]
    Empty,
    #[error("message is {len} characters; the limit is {max}")]
    TooLong { len: usize, max: usize },
}

impl ChatText {
    /// Trims, then requires at least one and at most `max_chars` characters.
    pub fn parse(raw: &str, max_chars: usize) -> Result<Self, TextError> {
        let text = raw.trim();
        if text.is_empty() {
            return Err(TextError::Empty);
        }
        // Counting stops early, so a 64 KiB frame costs no more than the limit.
        let len = text.chars().take(max_chars + 1).count();
        if len > max_chars {
            return Err(TextError::TooLong {
                len: text.chars().count(),
                max: max_chars,
            });
        }
        Ok(ChatText(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ChatText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_trimmed() {
        assert_eq!(ChatText::parse("  hi \n", 10).unwrap().as_str(), "hi");
    }

    #[test]
    fn blank_text_is_empty() {
        assert_eq!(ChatText::parse(" \t\n", 10), Err(TextError::Empty));
    }

    #[test]
    fn the_limit_counts_characters() {
        assert!(ChatText::parse(&"字".repeat(10), 10).is_ok());
        assert_eq!(
            ChatText::parse(&"字".repeat(11), 10),
            Err(TextError::TooLong { len: 11, max: 10 })
        );
    }
}
