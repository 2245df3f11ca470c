//! `UserName`: a display name that passed validation at the edge.

use std::fmt;

const MAX_CHARS: usize = 24;
const GUEST_SUFFIXES: [char; 10] = ['甲', '乙', '丙', '丁', '戊', '己', '庚', '辛', '壬', '癸'];

/// The guest name offered after `n` sign-ins, as the seed does it: 路人甲, 路人乙, …
pub fn guest_name(n: u64) -> UserName {
    UserName(format!("路人{}", GUEST_SUFFIXES[(n % 10) as usize]))
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserName(String);

impl UserName {
    /// Trims, then requires 1–24 characters and nothing invisible that could hide or
    /// reorder text: control characters, zero-width and bidirectional formatting marks.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let name = raw.trim();
        if name.is_empty() {
            return Err("name must not be empty".into());
        }
        if name.chars().count() > MAX_CHARS {
            return Err(format!("name must be at most {MAX_CHARS} characters"));
        }
        if name.chars().any(char::is_control) {
            return Err("name must not contain control characters".into());
        }
        if name.chars().any(is_invisible_format) {
            return Err("name must not contain invisible formatting characters".into());
        }
        Ok(UserName(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

impl fmt::Display for UserName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn is_invisible_format(c: char) -> bool {
    matches!(c,
        '\u{200B}'..='\u{200F}'   // zero-width space, joiners, LRM/RLM
        | '\u{202A}'..='\u{202E}' // bidi embeddings and overrides
        | '\u{2060}'..='\u{2064}' // word joiner, invisible operators
        | '\u{2066}'..='\u{2069}' // bidi isolates
        | '\u{FEFF}'              // byte order mark
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guest_names_cycle_through_the_ten_stems() {
        assert_eq!(guest_name(0).as_str(), "路人甲");
        assert_eq!(guest_name(1).as_str(), "路人乙");
        assert_eq!(guest_name(9).as_str(), "路人癸");
        assert_eq!(guest_name(10).as_str(), "路人甲");
    }

    #[test]
    fn names_are_trimmed() {
        assert_eq!(UserName::parse("  小明 \t").unwrap().as_str(), "小明");
    }

    #[test]
    fn empty_and_blank_names_are_refused() {
        assert!(UserName::parse("").is_err());
        assert!(UserName::parse("   ").is_err());
    }

    #[test]
    fn length_is_counted_in_characters_not_bytes() {
        assert!(UserName::parse(&"路".repeat(24)).is_ok());
        assert!(UserName::parse(&"路".repeat(25)).is_err());
        assert!(UserName::parse(&"a".repeat(24)).is_ok());
        assert!(UserName::parse(&"a".repeat(25)).is_err());
    }

    #[test]
    fn control_characters_are_refused() {
        for bad in ["a\nb", "a\u{0}b", "a\u{7f}b", "a\u{85}b"] {
            let err = UserName::parse(bad).unwrap_err();
            assert!(err.contains("control"), "{bad:?}: {err}");
        }
    }

    #[test]
    fn invisible_formatting_is_refused() {
        for bad in ["ad\u{202E}nim", "a\u{200B}b", "\u{2066}x"] {
            assert!(UserName::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn markup_is_just_text() {
        assert!(UserName::parse("<img src=x onerror=1>").is_ok());
    }
}
