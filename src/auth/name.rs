//! `UserName`: a display name that passed validation at the edge.
//!
//! A name is shown beside every message, so it must not hide, reorder or smear text: no
//! control or format characters, nothing that renders as blank, no towers of combining marks.

use std::fmt;

use unicode_properties::{GeneralCategory, GeneralCategoryGroup, UnicodeGeneralCategory};

const MAX_CHARS: usize = 24;
/// Combining marks allowed on one base character. Vietnamese needs two (ệ), pointed Hebrew
/// and Tibetan stacks (སྒྲུ) three; "Zalgo" text needs dozens.
pub const MAX_MARKS: usize = 3;
const ZWJ: char = '\u{200D}';
const GUEST_SUFFIXES: [char; 10] = ['甲', '乙', '丙', '丁', '戊', '己', '庚', '辛', '壬', '癸'];

/// The guest name offered after `n` sign-ins, as the seed does it: 路人甲, 路人乙, …
pub fn guest_name(n: u64) -> UserName {
    UserName(format!("路人{}", GUEST_SUFFIXES[(n % 10) as usize]))
}

/// Why a name was refused; the text is what the sign-in page shows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("name must not be empty")]
    Empty,
    #[error("name must be at most {MAX_CHARS} characters")]
    TooLong,
    #[error("name must not contain control characters or line breaks ({})", code_point(*.0))]
    Control(char),
    #[error(
        "name must not contain U+200D (the zero-width joiner, an invisible formatting character): \
         emoji joined into one picture are not allowed in names; use them one by one"
    )]
    Joiner,
    #[error("name must not contain invisible formatting characters ({})", code_point(*.0))]
    Format(char),
    #[error("name must not contain characters that show as blank ({})", code_point(*.0))]
    Blank(char),
    #[error("name must not start with a combining mark ({})", code_point(*.0))]
    LeadingMark(char),
    #[error("name must not stack more than {MAX_MARKS} combining marks on one character")]
    StackedMarks,
}

impl NameError {
    /// The `params` of a refused sign-in: which rule, the character if one is to blame (as
    /// `U+XXXX`), and the limits.
    pub fn params(&self) -> serde_json::Value {
        let (rule, c) = match self {
            NameError::Empty => ("empty", None),
            NameError::TooLong => ("too_long", None),
            NameError::Control(c) => ("control", Some(*c)),
            NameError::Joiner => ("joiner", None),
            NameError::Format(c) => ("format", Some(*c)),
            NameError::Blank(c) => ("blank", Some(*c)),
            NameError::LeadingMark(c) => ("leading_mark", Some(*c)),
            NameError::StackedMarks => ("stacked_marks", None),
        };
        serde_json::json!({
            "rule": rule,
            "char": c.map(code_point),
            "max": MAX_CHARS,
            "max_marks": MAX_MARKS,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserName(String);

impl UserName {
    /// Trims, then requires 1–24 characters, none of them invisible or blank-looking, and at
    /// most `MAX_MARKS` combining marks on any one character.
    pub fn parse(raw: &str) -> Result<Self, NameError> {
        let name = raw.trim();
        if name.is_empty() {
            return Err(NameError::Empty);
        }
        if name.chars().count() > MAX_CHARS {
            return Err(NameError::TooLong);
        }
        let mut marks = 0;
        for (i, c) in name.chars().enumerate() {
            let category = c.general_category();
            match category {
                GeneralCategory::Control
                | GeneralCategory::LineSeparator
                | GeneralCategory::ParagraphSeparator => return Err(NameError::Control(c)),
                GeneralCategory::Format if c == ZWJ => return Err(NameError::Joiner),
                GeneralCategory::Format => return Err(NameError::Format(c)),
                _ if is_blank_looking(c) => return Err(NameError::Blank(c)),
                _ => {}
            }
            if c.general_category_group() == GeneralCategoryGroup::Mark {
                if i == 0 {
                    return Err(NameError::LeadingMark(c));
                }
                marks += 1;
                if marks > MAX_MARKS {
                    return Err(NameError::StackedMarks);
                }
            } else {
                marks = 0;
            }
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

/// Characters outside category Cf that draw nothing, so a name of them looks empty or looks
/// like another name: the Unicode "default ignorable" letters and marks, and the blank glyphs
/// that pass for letters or symbols. The two emoji presentation selectors (U+FE0E, U+FE0F)
/// stay allowed: "❤️" needs one.
fn is_blank_looking(c: char) -> bool {
    matches!(c,
        '\u{115F}' | '\u{1160}' | '\u{3164}' | '\u{FFA0}' // Hangul fillers
        | '\u{2800}'                // braille pattern blank
        | '\u{034F}'                // combining grapheme joiner
        | '\u{17B4}' | '\u{17B5}'   // Khmer inherent vowels
        | '\u{180B}'..='\u{180F}'   // Mongolian variation selectors
        | '\u{FE00}'..='\u{FE0D}'   // variation selectors 1–14
        | '\u{E0100}'..='\u{E01EF}' // variation selectors 17–256
        | '\u{FFFC}'                // object replacement character
    )
}

fn code_point(c: char) -> String {
    format!("U+{:04X}", u32::from(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(name: &str) -> NameError {
        UserName::parse(name).expect_err(name)
    }

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
        assert_eq!(refused(""), NameError::Empty);
        assert_eq!(refused("   "), NameError::Empty);
    }

    #[test]
    fn length_is_counted_in_characters_not_bytes() {
        assert!(UserName::parse(&"路".repeat(24)).is_ok());
        assert!(UserName::parse(&"路".repeat(25)).is_err());
        assert!(UserName::parse(&"a".repeat(24)).is_ok());
        assert!(UserName::parse(&"a".repeat(25)).is_err());
    }

    #[test]
    fn control_characters_and_line_breaks_are_refused() {
        for bad in ["a\nb", "a\u{0}b", "a\u{7f}b", "a\u{85}b", "a\u{2028}b"] {
            let err = refused(bad).to_string();
            assert!(err.contains("control"), "{bad:?}: {err}");
        }
    }

    #[test]
    fn the_issues_examples_are_refused_with_their_code_point() {
        let stacked = format!("a{}", "\u{0301}".repeat(23));
        for (bad, expected) in [
            ("ab\u{061C}c", NameError::Format('\u{061C}')),
            ("\u{3164}\u{3164}\u{3164}", NameError::Blank('\u{3164}')),
            ("\u{2800}", NameError::Blank('\u{2800}')),
            ("x\u{E0041}", NameError::Format('\u{E0041}')),
            (stacked.as_str(), NameError::StackedMarks),
        ] {
            assert_eq!(refused(bad), expected, "{bad:?}");
        }
        assert!(refused("ab\u{061C}c").to_string().contains("U+061C"));
        assert!(refused("\u{3164}").to_string().contains("blank"));
    }

    #[test]
    fn every_format_character_is_refused() {
        for c in [
            '\u{00AD}',
            '\u{061C}',
            '\u{180E}',
            '\u{200B}',
            '\u{200C}',
            '\u{200E}',
            '\u{200F}',
            '\u{202A}',
            '\u{202E}',
            '\u{2060}',
            '\u{2064}',
            '\u{2066}',
            '\u{2069}',
            '\u{FEFF}',
            '\u{E0001}',
            '\u{E0020}',
            '\u{E007F}',
        ] {
            let err = refused(&format!("ad{c}min"));
            assert_eq!(err, NameError::Format(c), "{c:?}");
            assert!(err.to_string().contains("invisible"));
        }
    }

    #[test]
    fn hangul_fillers_and_other_blanks_are_refused() {
        for c in [
            '\u{115F}',
            '\u{1160}',
            '\u{3164}',
            '\u{FFA0}',
            '\u{2800}',
            '\u{034F}',
            '\u{FE00}',
            '\u{E0100}',
        ] {
            assert_eq!(refused(&format!("名{c}")), NameError::Blank(c), "{c:?}");
        }
    }

    #[test]
    fn joined_emoji_are_refused_and_the_reason_says_so() {
        let family = "\u{1F468}\u{200D}\u{1F469}\u{200D}\u{1F467}";
        let err = refused(family);
        assert_eq!(err, NameError::Joiner);
        assert!(err.to_string().contains("emoji"), "{err}");
    }

    #[test]
    fn combining_marks_are_limited_per_character_not_per_name() {
        assert!(UserName::parse("a\u{0301}\u{0302}\u{0303}").is_ok());
        assert_eq!(
            refused("a\u{0301}\u{0302}\u{0303}\u{0304}"),
            NameError::StackedMarks
        );
        // Marks on different letters do not add up.
        assert!(UserName::parse("a\u{0301}\u{0302}b\u{0301}\u{0302}c\u{0301}\u{0302}").is_ok());
        assert_eq!(refused("\u{0301}abc"), NameError::LeadingMark('\u{0301}'));
    }

    #[test]
    fn real_names_in_many_scripts_pass() {
        for good in [
            "小明",
            "路人甲",
            "山田太郎",
            "やまだ",
            "김민준",
            "José",           // NFC: é is one character
            "Jose\u{0301}",   // NFD: e and a combining acute
            "Nguyễn Văn Anh", // Vietnamese, NFC
            "Nguye\u{0323}\u{0302}n",
            "Zoë O'Brien-Łukasz",
            "Мария",
            "محمد",
            "דוד",
            "सत्यम्", // Devanagari with virama
            "ที่รัก",  // Thai, two marks on one letter
            "སྒྲུབ",   // Tibetan, three marks stacked
            "Ana 🌸",
            "❤\u{FE0F}",
            "1\u{FE0F}\u{20E3}",     // keycap
            "\u{1F44B}\u{1F3FD}",    // a skin tone modifier is a symbol, not a joiner
            "\u{1F1E8}\u{1F1F3}",    // a flag: two regional indicators
            "<img src=x onerror=1>", // markup is just text
        ] {
            assert!(
                UserName::parse(good).is_ok(),
                "{good:?}: {:?}",
                UserName::parse(good)
            );
        }
    }
}
