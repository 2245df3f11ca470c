//! `Reason`: why a moderator acted, as the removed user and the audit log read it.

/// Longest reason, in characters; a close frame shows the first 123 bytes of what is built
/// from it.
pub const MAX_CHARS: usize = 200;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reason(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReasonError {
    #[error("a reason is at most {MAX_CHARS} characters")]
    TooLong,
    #[error("a reason cannot hold control characters")]
    Control,
}

impl Reason {
    /// Trimmed; absent or blank is an empty reason.
    pub fn parse(raw: Option<&str>) -> Result<Self, ReasonError> {
        let text = raw.unwrap_or("").trim();
        if text.chars().count() > MAX_CHARS {
            return Err(ReasonError::TooLong);
        }
        if text.chars().any(char::is_control) {
            return Err(ReasonError::Control);
        }
        Ok(Reason(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `None` when empty, for the audit log.
    pub fn given(&self) -> Option<&str> {
        (!self.0.is_empty()).then_some(self.0.as_str())
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_trimmed_bounded_and_printable() {
        assert_eq!(Reason::parse(None).unwrap().given(), None);
        assert_eq!(Reason::parse(Some("  spam ")).unwrap().as_str(), "spam");
        assert_eq!(
            Reason::parse(Some(&"x".repeat(201))),
            Err(ReasonError::TooLong)
        );
        assert_eq!(Reason::parse(Some("a\u{0}b")), Err(ReasonError::Control));
    }
}
