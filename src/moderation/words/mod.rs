//! The word filter: words moderators keep out of names and messages, and the matcher that
//! finds them.
//!
//! How a word matches: as a substring of the message's normal form (NFKC, full case folding,
//! format characters dropped; see `normalize.rs`), with no regard to word boundaries. That is
//! the only predictable choice for Chinese and Japanese, which put no spaces between words,
//! and it is what moderators of those rooms expect. The price is in short English words: "ass"
//! is also found in "class" and "assume", so list longer or more specific words, or use
//! `reject` only for words that never hide inside others. Spaces count as characters, so a
//! phrase "bad word" matches only with a space between; letters spaced apart ("b a d") are
//! not caught, while invisible characters between letters ("b\u{200B}ad") are.
//!
//! A filter is compiled once, when moderators change it, into one Aho–Corasick automaton, so
//! checking a message is one pass over it whatever the number of words.

mod normalize;

use std::ops::Range;

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};
use serde::{Deserialize, Serialize};

use normalize::Normalized;

/// What a match does to a message. A name that matches is refused either way: a masked name
/// would be confusing to everyone who reads it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FilterMode {
    /// Each matched character is replaced with `*` and the message goes out.
    #[default]
    Mask,
    /// The message is refused with an `error`.
    Reject,
}

impl FilterMode {
    pub fn as_str(self) -> &'static str {
        match self {
            FilterMode::Mask => "mask",
            FilterMode::Reject => "reject",
        }
    }
}

/// The filter as moderators set it and read it back: `PUT|GET /admin/api/word-filter`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilterSpec {
    pub words: Vec<String>,
    #[serde(default)]
    pub mode: FilterMode,
}

/// `--max-filter-words` and `--max-filter-word-chars`.
#[derive(Debug, Clone, Copy)]
pub struct FilterLimits {
    pub max_words: usize,
    pub max_word_chars: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    #[error("{count} words is more than the filter takes (--max-filter-words {max})")]
    TooManyWords { count: usize, max: usize },
    #[error("word {index} is {len} characters; a word is at most {max} (--max-filter-word-chars)")]
    WordTooLong {
        index: usize,
        len: usize,
        max: usize,
    },
    #[error("word {index} is empty once normalized (blank or only invisible characters)")]
    EmptyWord { index: usize },
    #[error("the word filter could not be compiled: {0}")]
    Build(String),
}

/// Why a name is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("name contains a word the moderators filter out")]
pub struct FilteredName;

/// A compiled filter. The empty one matches nothing and costs nothing.
#[derive(Debug, Default)]
pub struct WordFilter {
    spec: FilterSpec,
    automaton: Option<AhoCorasick>,
}

impl WordFilter {
    /// Checks the bounds and compiles. Words are kept as given (trimmed, duplicates of the
    /// same normal form dropped) so moderators read back what they wrote.
    pub fn build(spec: FilterSpec, limits: FilterLimits) -> Result<Self, FilterError> {
        if spec.words.len() > limits.max_words {
            return Err(FilterError::TooManyWords {
                count: spec.words.len(),
                max: limits.max_words,
            });
        }
        let mut words = Vec::with_capacity(spec.words.len());
        let mut patterns = Vec::with_capacity(spec.words.len());
        for (index, word) in spec.words.iter().enumerate() {
            let word = word.trim();
            let len = word.chars().count();
            if len > limits.max_word_chars {
                return Err(FilterError::WordTooLong {
                    index,
                    len,
                    max: limits.max_word_chars,
                });
            }
            let pattern = normalize::normalize(word);
            if pattern.trim().is_empty() {
                return Err(FilterError::EmptyWord { index });
            }
            if !patterns.contains(&pattern) {
                patterns.push(pattern);
                words.push(word.to_owned());
            }
        }
        let automaton = if patterns.is_empty() {
            None
        } else {
            // A DFA would be faster per byte but costs memory per word; the contiguous NFA is
            // linear in the text and small at a few thousand words.
            let automaton = AhoCorasick::builder()
                .match_kind(MatchKind::Standard)
                .kind(Some(AhoCorasickKind::ContiguousNFA))
                .build(&patterns)
                .map_err(|e| FilterError::Build(e.to_string()))?;
            Some(automaton)
        };
        Ok(WordFilter {
            spec: FilterSpec {
                words,
                mode: spec.mode,
            },
            automaton,
        })
    }

    pub fn spec(&self) -> &FilterSpec {
        &self.spec
    }

    pub fn mode(&self) -> FilterMode {
        self.spec.mode
    }

    pub fn is_empty(&self) -> bool {
        self.automaton.is_none()
    }

    /// Whether any word is in `text`.
    pub fn matches(&self, text: &str) -> bool {
        let Some(automaton) = &self.automaton else {
            return false;
        };
        automaton.is_match(&Normalized::of(text).text)
    }

    /// A name is refused if any word is in it, whatever the mode.
    pub fn check_name(&self, name: &str) -> Result<(), FilteredName> {
        if self.matches(name) {
            Err(FilteredName)
        } else {
            Ok(())
        }
    }

    /// `text` with every character of every match replaced by `*`, or `None` if nothing
    /// matched. Overlapping matches ("ab" and "bc" in "abc") are all masked.
    pub fn mask(&self, text: &str) -> Option<String> {
        let spans = self.spans(text);
        if spans.is_empty() {
            return None;
        }
        let mut out = String::with_capacity(text.len());
        let mut spans = spans.into_iter().peekable();
        for (i, c) in text.char_indices() {
            while spans.peek().is_some_and(|s| s.end <= i) {
                spans.next();
            }
            let masked = spans.peek().is_some_and(|s| s.start <= i);
            out.push(if masked { '*' } else { c });
        }
        Some(out)
    }

    /// The original byte ranges of every match, sorted and merged.
    fn spans(&self, text: &str) -> Vec<Range<usize>> {
        let Some(automaton) = &self.automaton else {
            return Vec::new();
        };
        let normalized = Normalized::of(text);
        let mut spans: Vec<Range<usize>> = Vec::new();
        // Overlapping search reports every word ending at each position. Words ending at one
        // place are suffixes of one another, so there are at most --max-filter-word-chars of
        // them: linear in the text, times a constant.
        for found in automaton.find_overlapping_iter(&normalized.text) {
            let Some(range) = normalized.original_range(found.range()) else {
                continue;
            };
            spans.push(range);
        }
        spans.sort_by_key(|r| r.start);
        let mut merged: Vec<Range<usize>> = Vec::with_capacity(spans.len());
        for span in spans {
            match merged.last_mut() {
                Some(last) if span.start <= last.end => last.end = last.end.max(span.end),
                _ => merged.push(span),
            }
        }
        merged
    }
}

#[cfg(test)]
mod tests;
