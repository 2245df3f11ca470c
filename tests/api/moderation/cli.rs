//! `passerby moderator add|list|remove`, run as the real binary on a temp data dir.

use super::{add_moderator, moderator};

#[test]
fn add_prints_a_long_random_token_once_and_keeps_only_its_hash() {
    let dir = tempfile::tempdir().unwrap();
    let alice = add_moderator(dir.path(), "alice");
    let bob = add_moderator(dir.path(), "bob");
    assert_ne!(alice, bob);
    let random = alice.strip_prefix("pbm_").expect("a recognisable prefix");
    assert!(random.len() >= 43, "at least 256 bits: {alice}");
    assert!(
        random
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    );
    // Nothing in the data dir holds the token itself.
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        assert!(!text.contains(random), "the token was stored in the clear");
    }
    let (ok, _, stderr) = moderator(dir.path(), &["add", "alice"]);
    assert!(!ok, "a second alice is refused");
    assert!(stderr.contains("exists already"), "{stderr}");
}

#[test]
fn list_shows_the_moderators_and_remove_takes_one_out() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, stdout, _) = moderator(dir.path(), &["list"]);
    assert!(ok);
    assert_eq!(stdout, "");
    add_moderator(dir.path(), "carol");
    add_moderator(dir.path(), "alice");
    let (_, stdout, _) = moderator(dir.path(), &["list"]);
    let names: Vec<&str> = stdout
        .lines()
        .map(|l| l.split('\t').next().unwrap())
        .collect();
    assert_eq!(names, ["alice", "carol"]);
    assert!(!stdout.contains("pbm_"), "list never shows a token");
    let (ok, _, _) = moderator(dir.path(), &["remove", "alice"]);
    assert!(ok);
    let (_, stdout, _) = moderator(dir.path(), &["list"]);
    assert!(stdout.starts_with("carol\t"), "{stdout}");
    assert_eq!(stdout.lines().count(), 1);
    let (ok, _, stderr) = moderator(dir.path(), &["remove", "alice"]);
    assert!(!ok);
    assert_eq!(stderr.trim(), "error: there is no moderator named alice");
}

#[test]
fn bad_names_are_refused_with_the_rule() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, _, stderr) = moderator(dir.path(), &["add", "no spaces"]);
    assert!(!ok);
    assert!(stderr.contains("letters, digits"), "{stderr}");
}
