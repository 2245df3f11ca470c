//! The text the word filter matches on: NFKC, full case folding, format characters dropped,
//! and for each byte of it the span of the original text it came from.
//!
//! NFKC cannot be applied one character at a time (a letter and its combining marks compose,
//! Hangul jamo join), so the original is cut into segments that NFKC never joins: a new one
//! starts before each character that nothing before it can compose with (a starter whose
//! decomposition starts with a starter that never composes backwards: the composition
//! boundary of UAX #15). Normalizing each segment alone gives the NFKC of the whole. A segment is one character in most
//! text; a letter with its combining marks, or a run of jamo, is one segment, and a match
//! that covers part of a segment is mapped back to the whole of it.

use std::ops::Range;

use caseless::Caseless;
use unicode_normalization::{
    IsNormalized, UnicodeNormalization,
    char::{canonical_combining_class, decompose_compatible},
    is_nfkc_quick,
};
use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};

/// Normalized text and where each of its bytes came from.
#[derive(Debug, Default)]
pub struct Normalized {
    pub text: String,
    /// For each byte of `text`, the index in `segments` it came from.
    owner: Vec<u32>,
    /// Byte ranges of the original text.
    segments: Vec<Range<usize>>,
    /// Reused for each segment's folding, so a message costs no allocation per character.
    scratch: String,
}

impl Normalized {
    pub fn of(original: &str) -> Self {
        let mut out = Normalized {
            text: String::with_capacity(original.len()),
            owner: Vec::with_capacity(original.len()),
            segments: Vec::new(),
            scratch: String::new(),
        };
        let mut start = 0;
        for (i, c) in original.char_indices() {
            if i > start && starts_segment(c) {
                out.push_segment(original, start..i);
                start = i;
            }
        }
        if start < original.len() {
            out.push_segment(original, start..original.len());
        }
        out
    }

    /// The original byte range a match `[start, end)` of `text` covers, widened to whole
    /// segments.
    pub fn original_range(&self, matched: Range<usize>) -> Option<Range<usize>> {
        if matched.is_empty() {
            return None;
        }
        let first = *self.owner.get(matched.start)?;
        let last = *self.owner.get(matched.end - 1)?;
        let start = self.segments.get(first as usize)?.start;
        let end = self.segments.get(last as usize)?.end;
        Some(start..end)
    }

    fn push_segment(&mut self, original: &str, range: Range<usize>) {
        let index = self.segments.len() as u32;
        fold_into(&original[range.clone()], &mut self.text, &mut self.scratch);
        self.owner.resize(self.text.len(), index);
        self.segments.push(range);
    }
}

/// The normal form of a filter word: what `Normalized::of(word).text` would be.
pub fn normalize(word: &str) -> String {
    let mut out = String::with_capacity(word.len());
    fold_into(word, &mut out, &mut String::new());
    out
}

/// Unicode's compatibility caseless form (NFKC of the full case folding of NFKC: folding can
/// leave text unnormalized, as "ẞ" folding to "ss" does not, but "ǰ" folding to "ǰ" does),
/// without format characters, appended to `out`.
fn fold_into(segment: &str, out: &mut String, scratch: &mut String) {
    // Most segments are one ASCII character, whose caseless form is its lower case.
    if let [byte] = segment.as_bytes() {
        out.push(char::from(byte.to_ascii_lowercase()));
        return;
    }
    if let Some(c) = single_char(segment) {
        // One character already in NFKC whose folding is one character in NFKC (a Han
        // character, a Greek capital): no normalizer needs to run.
        if let Some(folded) = single_char_fold(c) {
            if !is_format(folded) {
                out.push(folded);
            }
            return;
        }
    }
    scratch.clear();
    scratch.extend(segment.nfkc().default_case_fold());
    out.extend(scratch.nfkc().filter(|c| !is_format(*c)));
}

fn single_char(segment: &str) -> Option<char> {
    let mut chars = segment.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) => Some(c),
        _ => None,
    }
}

/// The folding of `c`, if `c` and its folding are each one character that NFKC leaves as it is.
fn single_char_fold(c: char) -> Option<char> {
    if is_plain_cjk(c) {
        return Some(c);
    }
    if !is_stable(c) {
        return None;
    }
    let mut folded = std::iter::once(c).default_case_fold();
    match (folded.next(), folded.next()) {
        (Some(f), None) if f == c || is_stable(f) => Some(f),
        _ => None,
    }
}

/// The unified Han ideographs and the Hangul syllables, most of a Chinese, Japanese or Korean
/// message: starters that NFKC and case folding leave as they are, so the tables need not be
/// asked. (A Hangul syllable may take a trailing consonant after it; that consonant is what
/// joins its segment, not the syllable.)
fn is_plain_cjk(c: char) -> bool {
    matches!(c, '\u{4E00}'..='\u{9FFF}' | '\u{AC00}'..='\u{D7A3}')
}

fn is_stable(c: char) -> bool {
    is_nfkc_quick(std::iter::once(c)) == IsNormalized::Yes
}

/// Zero-width spaces and joiners, soft hyphens, direction marks and tags (category Cf), and
/// the other characters Unicode says to ignore when not shown (variation selectors, the
/// grapheme joiner, Hangul fillers): invisible, so inserted between letters they would hide
/// a word from the filter and not from a reader. Dropped for matching only; the message keeps
/// them.
fn is_format(c: char) -> bool {
    c.general_category() == GeneralCategory::Format
        || matches!(c,
            '\u{034F}'                 // combining grapheme joiner
            | '\u{115F}' | '\u{1160}' | '\u{3164}' | '\u{FFA0}' // Hangul fillers
            | '\u{17B4}' | '\u{17B5}'  // Khmer inherent vowels
            | '\u{180B}'..='\u{180F}'  // Mongolian variation selectors
            | '\u{FE00}'..='\u{FE0F}'  // variation selectors 1–16
            | '\u{E0100}'..='\u{E01EF}' // variation selectors 17–256
        )
}

/// Whether nothing before `c` can compose with it: `c` is a starter, and so is the first
/// character it decomposes to, which is not one that composes with what precedes it (NFKC
/// quick check Maybe: combining marks, Hangul vowels and trailing consonants, a few others).
fn starts_segment(c: char) -> bool {
    c.is_ascii() || is_plain_cjk(c) || starts_segment_by_tables(c)
}

fn starts_segment_by_tables(c: char) -> bool {
    let mut first = None;
    decompose_compatible(c, |d| {
        first.get_or_insert(d);
    });
    let first = first.unwrap_or(c);
    canonical_combining_class(c) == 0
        && canonical_combining_class(first) == 0
        && is_nfkc_quick(std::iter::once(first)) != IsNormalized::Maybe
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spans(text: &str) -> Vec<&str> {
        let n = Normalized::of(text);
        n.text
            .char_indices()
            .map(|(i, c)| {
                let range = n.original_range(i..i + c.len_utf8()).unwrap();
                &text[range]
            })
            .collect()
    }

    #[test]
    fn full_width_ligatures_and_case_fold_to_plain_lower_case() {
        assert_eq!(Normalized::of("ＢＡＤ").text, "bad");
        assert_eq!(Normalized::of("ﬁne").text, "fine");
        assert_eq!(Normalized::of("BaD Straße").text, "bad strasse");
        assert_eq!(Normalized::of("ΣΊΣΥΦΟΣ").text, normalize("σίσυφος"));
        assert_eq!(Normalized::of("①").text, "1");
    }

    #[test]
    fn format_characters_are_dropped_and_their_bytes_belong_to_no_match() {
        let text = "b\u{200B}a\u{00AD}d\u{2060}";
        assert_eq!(Normalized::of(text).text, "bad");
        for hidden in ["\u{FE0F}", "\u{034F}", "\u{3164}", "\u{E0041}", "\u{202E}"] {
            assert_eq!(
                Normalized::of(&format!("b{hidden}ad")).text,
                "bad",
                "{hidden:?}"
            );
        }
        assert_eq!(spans(text), ["b", "a", "d"]);
    }

    #[test]
    fn each_normalized_byte_maps_back_to_its_original_characters() {
        assert_eq!(spans("aＢc"), ["a", "Ｂ", "c"]);
        // A ligature is one character of the original for two of the normal form.
        assert_eq!(spans("ﬁ"), ["ﬁ", "ﬁ"]);
        // "e" and a combining acute compose into one "é": both map to both.
        assert_eq!(spans("cafe\u{301}!"), ["c", "a", "f", "e\u{301}", "!"]);
        assert_eq!(Normalized::of("cafe\u{301}").text, normalize("café"));
    }

    #[test]
    fn segments_give_the_same_text_as_normalizing_the_whole() {
        for text in [
            "한국어 ᄒ\u{1161}\u{11AB}",
            "e\u{301}\u{323}x",
            "ＡＢＣ①㍿ ﬃ",
            "路人甲 说：你好",
            "a\u{0F73}b",
            "Å Ω K",
        ] {
            let whole: String = text.nfkc().default_case_fold().collect::<String>();
            let whole: String = whole.nfkc().filter(|c| !is_format(*c)).collect();
            assert_eq!(Normalized::of(text).text, whole, "{text:?}");
        }
    }

    #[test]
    fn the_shortcuts_agree_with_the_tables() {
        let plain = ('\u{4E00}'..='\u{9FFF}').chain('\u{AC00}'..='\u{D7A3}');
        for c in plain.chain((0..128u8).map(char::from)) {
            assert!(starts_segment_by_tables(c), "{c:?}");
            assert!(is_stable(c), "{c:?}");
            let folded: String = std::iter::once(c).default_case_fold().collect();
            let expected = c.to_ascii_lowercase().to_string();
            assert_eq!(folded.nfkc().collect::<String>(), expected, "{c:?}");
        }
    }

    #[test]
    fn an_empty_match_or_one_past_the_end_maps_to_nothing() {
        let n = Normalized::of("ab");
        assert_eq!(n.original_range(1..1), None);
        assert_eq!(n.original_range(1..5), None);
        assert_eq!(Normalized::of("").original_range(0..1), None);
    }
}
