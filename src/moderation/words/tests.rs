use super::*;

const LIMITS: FilterLimits = FilterLimits {
    max_words: 10,
    max_word_chars: 8,
};

fn filter(words: &[&str]) -> WordFilter {
    let spec = FilterSpec {
        words: words.iter().map(|w| w.to_string()).collect(),
        mode: FilterMode::Mask,
    };
    WordFilter::build(spec, LIMITS).unwrap()
}

#[test]
fn the_empty_filter_matches_nothing() {
    let f = WordFilter::default();
    assert!(f.is_empty());
    assert!(!f.matches("anything"));
    assert_eq!(f.mask("anything"), None);
    assert_eq!(filter(&[]).mask("x"), None);
}

#[test]
fn case_full_width_and_ligatures_do_not_get_around_it() {
    let f = filter(&["bad", "fish"]);
    for text in ["BAD", "so ＢＡＤ", "Ｂａｄ!", "ﬁsh", "FISH"] {
        assert!(f.matches(text), "{text:?}");
    }
    assert!(!f.matches("good"));
    // Words are normalized too: a full-width word matches plain text.
    assert!(filter(&["ＷＯＲＤ"]).matches("a word"));
}

#[test]
fn invisible_characters_between_letters_do_not_get_around_it() {
    let f = filter(&["bad"]);
    for text in [
        "b\u{200B}ad",
        "b\u{200D}a\u{00AD}d",
        "\u{FEFF}bad",
        "b\u{2060}ａd",
    ] {
        assert!(f.matches(text), "{text:?}");
    }
    assert_eq!(f.mask("b\u{200B}ad!").as_deref(), Some("****!"));
}

#[test]
fn matching_is_by_substring_so_chinese_needs_no_spaces_and_short_words_hide_in_others() {
    let f = filter(&["傻瓜", "ass"]);
    assert_eq!(f.mask("你这个傻瓜啊").as_deref(), Some("你这个**啊"));
    // The documented cost of substring matching.
    assert_eq!(f.mask("class").as_deref(), Some("cl***"));
}

#[test]
fn masking_replaces_each_original_character_of_a_match() {
    let f = filter(&["bad"]);
    assert_eq!(f.mask("a ＢＡＤ day").as_deref(), Some("a *** day"));
    assert_eq!(f.mask("bad and BAD").as_deref(), Some("*** and ***"));
    assert_eq!(f.mask("fine"), None);
    // One ligature stands for two letters: it is masked whole.
    assert_eq!(filter(&["if"]).mask("iﬁx").as_deref(), Some("**x"));
    // A letter and its combining mark are one character of the normal form.
    assert_eq!(
        filter(&["café"]).mask("a cafe\u{301}!").as_deref(),
        Some("a *****!")
    );
}

#[test]
fn overlapping_and_nested_matches_are_all_masked() {
    let f = filter(&["ab", "bc", "abcd"]);
    assert_eq!(f.mask("xabcx").as_deref(), Some("x***x"));
    assert_eq!(f.mask("abcd").as_deref(), Some("****"));
}

#[test]
fn words_are_trimmed_and_deduplicated_by_normal_form() {
    let f = filter(&[" bad ", "BAD", "ｂａｄ", "ok"]);
    assert_eq!(f.spec().words, ["bad", "ok"]);
}

#[test]
fn the_bounds_are_checked() {
    let build = |words: Vec<String>| {
        WordFilter::build(
            FilterSpec {
                words,
                mode: FilterMode::Reject,
            },
            LIMITS,
        )
    };
    let many = (0..11).map(|i| format!("w{i}")).collect();
    assert_eq!(
        build(many).unwrap_err(),
        FilterError::TooManyWords { count: 11, max: 10 }
    );
    assert_eq!(
        build(vec!["ok".into(), "123456789".into()]).unwrap_err(),
        FilterError::WordTooLong {
            index: 1,
            len: 9,
            max: 8
        }
    );
    assert!(build(vec!["字".repeat(8)]).is_ok(), "characters, not bytes");
    assert_eq!(
        build(vec!["\u{200B}".into()]).unwrap_err(),
        FilterError::EmptyWord { index: 0 }
    );
    assert_eq!(
        build(vec!["  ".into()]).unwrap_err(),
        FilterError::EmptyWord { index: 0 }
    );
}

#[test]
fn a_name_is_checked_whatever_the_mode() {
    let f = filter(&["admin"]);
    assert_eq!(f.check_name("ＡＤＭＩＮ"), Err(FilteredName));
    assert_eq!(f.check_name("小明"), Ok(()));
}

#[test]
fn a_long_message_against_many_words_is_one_pass() {
    let limits = FilterLimits {
        max_words: 5000,
        max_word_chars: 64,
    };
    let words = (0..5000).map(|i| format!("word{i:04}")).collect();
    let f = WordFilter::build(
        FilterSpec {
            words,
            mode: FilterMode::Mask,
        },
        limits,
    )
    .unwrap();
    let text = "a".repeat(64 * 1024);
    let started = std::time::Instant::now();
    assert_eq!(f.mask(&text), None);
    assert!(f.matches(&format!("{text}WORD4999")));
    // Generous: one pass over 64 KiB takes well under a millisecond; this only catches a
    // quadratic matcher.
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}

#[test]
fn a_filter_is_stored_put_in_force_and_read_again_on_open() {
    use crate::moderation::{Moderation, ModerationError, Settings};
    let settings = Settings {
        session_hours: 1,
        max_bans: 1,
        max_mutes: 1,
        max_room_settings: 1,
        audit_max_entries: 1,
        auth_failures_per_minute: 1.0,
        word_filter: LIMITS,
    };
    let dir = tempfile::tempdir().unwrap();
    let moderation = Moderation::open(dir.path(), None, settings).unwrap();
    assert!(moderation.word_filter().is_empty());
    let spec = FilterSpec {
        words: vec!["bad".into()],
        mode: FilterMode::Reject,
    };
    let held = moderation.word_filter();
    moderation.set_word_filter(spec.clone()).unwrap();
    assert!(
        held.is_empty(),
        "a message under way keeps the filter it began with"
    );
    assert!(moderation.word_filter().matches("BAD"));
    let too_long = FilterSpec {
        words: vec!["x".repeat(9)],
        mode: FilterMode::Mask,
    };
    assert!(matches!(
        moderation.set_word_filter(too_long),
        Err(ModerationError::Filter(FilterError::WordTooLong { .. }))
    ));
    assert_eq!(
        moderation.word_filter().spec(),
        &spec,
        "a refused one changes nothing"
    );
    drop(moderation);

    let reopened = Moderation::open(dir.path(), None, settings).unwrap();
    assert_eq!(reopened.word_filter().spec(), &spec);
    drop(reopened);
    let smaller = Settings {
        word_filter: FilterLimits {
            max_words: 10,
            max_word_chars: 2,
        },
        ..settings
    };
    let refused = Moderation::open(dir.path(), None, smaller).unwrap_err();
    assert!(refused.to_string().contains("word filter"), "{refused}");
}
