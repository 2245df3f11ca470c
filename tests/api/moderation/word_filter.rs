//! `PUT|GET /admin/api/word-filter`: words masked or refused in chat and whispers after NFKC
//! and case folding, names with them refused at sign-in, the bounds, and a restart.

use reqwest::Method;
use serde_json::{Value, json};

use super::{Moderated, spawn_moderated};
use crate::helpers::{Client, TestApp, still_chatting};

const FILTERED: &str = "not sent: the message contains a word the moderators filter out";

/// Alice and Bob in the lobby, and Bob's id for whispers.
async fn alice_and_bob(app: &TestApp) -> (Client, Client, u64) {
    let (mut alice, _) = app.join("alice").await;
    let (bob, bob_user) = app.join("bob").await;
    assert_eq!(alice.expect("join").await["data"], "bob joined.");
    (alice, bob, bob_user["id"].as_u64().unwrap())
}

fn whisper(to: u64, text: &str) -> String {
    json!({"type": "private", "to": to, "data": text}).to_string()
}

async fn set_filter(m: &Moderated, words: &[&str], mode: &str) -> Value {
    let (status, body) = m
        .api(
            Method::PUT,
            "/admin/api/word-filter",
            Some(json!({"words": words, "mode": mode})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body
}

#[tokio::test]
async fn mask_replaces_each_character_of_a_word_in_chat_and_whispers_whatever_its_width_or_case() {
    let m = spawn_moderated(|_| {}).await;
    let (mut alice, mut bob, bob_id) = alice_and_bob(&m.app).await;
    for token in [None, Some("pbm_wrong")] {
        let body = Some(json!({"words": ["bad"], "mode": "mask"}));
        let put = m
            .call(Method::PUT, "/admin/api/word-filter", token, body, &[])
            .await;
        assert_eq!(put.status(), 401);
        let get = m
            .call(Method::GET, "/admin/api/word-filter", token, None, &[])
            .await;
        assert_eq!(get.status(), 401);
    }
    let (_, empty) = m.api(Method::GET, "/admin/api/word-filter", None).await;
    assert_eq!(empty, json!({"words": [], "mode": "mask"}));

    let set = set_filter(&m, &[" bad ", "傻瓜", "BAD"], "mask").await;
    assert_eq!(set, json!({"words": ["bad", "傻瓜"], "mode": "mask"}));
    let (_, read) = m.api(Method::GET, "/admin/api/word-filter", None).await;
    assert_eq!(read, set);

    for (said, seen) in [
        ("so ＢＡＤ!", "so ***!"),
        ("BaD news, 你这个傻瓜", "*** news, 你这个**"),
        ("b\u{200B}ad", "****"),
    ] {
        alice.say(said).await;
        assert_eq!(bob.expect("chat").await["data"], seen, "{said:?}");
        assert_eq!(alice.expect("chat").await["data"], seen, "{said:?}");
    }
    alice.say(&whisper(bob_id, "psst, Ｂ\u{2060}Ａd")).await;
    assert_eq!(bob.expect("private").await["data"], "psst, ****");
    assert_eq!(alice.expect("private").await["data"], "psst, ****");
    still_chatting(&mut bob, &mut alice, "nothing to hide").await;

    let (_, audit) = m.api(Method::GET, "/admin/api/audit", None).await;
    let entry = &audit["entries"][0];
    assert_eq!(entry["action"], "word_filter");
    assert_eq!(entry["target"], "word-filter");
    assert_eq!(entry["reason"], "mode=mask words=2");
}

#[tokio::test]
async fn reject_refuses_chat_and_whispers_with_a_word_and_others_keep_chatting() {
    let m = spawn_moderated(|_| {}).await;
    let (mut alice, mut bob, bob_id) = alice_and_bob(&m.app).await;
    set_filter(&m, &["bad"], "reject").await;

    for said in ["BAD", "ｂａｄ day", "b\u{200B}a\u{00AD}d"] {
        alice.say(said).await;
        assert_eq!(alice.expect("error").await["data"], FILTERED, "{said:?}");
    }
    alice.say(&whisper(bob_id, "you are Bad")).await;
    assert_eq!(alice.expect("error").await["data"], FILTERED);
    // Bob saw none of them: his next event is the clean line.
    still_chatting(&mut alice, &mut bob, "a good day").await;
    alice.say(&whisper(bob_id, "a good whisper")).await;
    assert_eq!(bob.expect("private").await["data"], "a good whisper");
    assert_eq!(alice.expect("private").await["data"], "a good whisper");
    assert_eq!(m.app.rejected_becomes("filtered", 4.0).await, Some(4.0));

    // Cleared, the words pass again.
    set_filter(&m, &[], "reject").await;
    still_chatting(&mut alice, &mut bob, "bad").await;
}

#[tokio::test]
async fn a_refused_message_takes_a_token_from_the_rate_limit() {
    let m = spawn_moderated(|c| {
        c.rate_burst = 2.0;
        c.rate_limit = 0.01;
    })
    .await;
    let (mut alice, mut bob, _) = alice_and_bob(&m.app).await;
    set_filter(&m, &["bad"], "reject").await;
    alice.say("bad").await;
    assert_eq!(alice.expect("error").await["data"], FILTERED);
    alice.say("bad again").await;
    assert_eq!(alice.expect("error").await["data"], FILTERED);
    alice.say("fine").await;
    let error = alice.expect("error").await;
    assert!(
        error["data"]
            .as_str()
            .unwrap()
            .starts_with("too many messages"),
        "{error}"
    );
    // Bob has his own bucket.
    still_chatting(&mut bob, &mut alice, "still here").await;
}

#[tokio::test]
async fn a_name_with_a_word_is_refused_at_sign_in_in_either_mode() {
    let m = spawn_moderated(|_| {}).await;
    let (mut alice, mut bob, _) = alice_and_bob(&m.app).await;
    for mode in ["mask", "reject"] {
        set_filter(&m, &["admin", "路人"], mode).await;
        for name in ["ＡＤＭＩＮ", "the_Admin_", "我是路人"] {
            let response = m.app.post_sign_in(&[("name", name)]).await;
            assert_eq!(response.status(), 400, "{mode} {name}");
            let body: Value = response.json().await.unwrap();
            assert_eq!(
                body["data"], "name contains a word the moderators filter out",
                "{mode} {name}"
            );
        }
        // The offered guest names are the server's own, never refused.
        let guest = m.app.post_sign_in(&[]).await;
        assert_eq!(guest.status(), 200, "{mode}");
        assert_eq!(m.app.post_sign_in(&[("name", "carol")]).await.status(), 200);
    }
    still_chatting(&mut alice, &mut bob, "signed in before").await;
}

#[tokio::test]
async fn the_number_and_length_of_words_are_bounded_and_a_refused_filter_changes_nothing() {
    let m = spawn_moderated(|c| {
        c.moderators.max_filter_words = 3;
        c.moderators.max_filter_word_chars = 5;
    })
    .await;
    let (mut alice, mut bob, _) = alice_and_bob(&m.app).await;
    let before = set_filter(&m, &["bad"], "mask").await;
    let put = |body: Value| m.api(Method::PUT, "/admin/api/word-filter", Some(body));

    let (status, body) = put(json!({"words": ["a", "b", "c", "d"], "mode": "mask"})).await;
    assert_eq!(status, 413, "{body}");
    assert!(
        body["data"]
            .as_str()
            .unwrap()
            .contains("--max-filter-words 3")
    );
    let (status, body) = put(json!({"words": ["ok", "toolong"]})).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["data"]
            .as_str()
            .unwrap()
            .contains("--max-filter-word-chars"),
        "{body}"
    );
    // A body larger than any filter within the flags is refused before it is read whole.
    let (status, body) = put(json!({"words": ["x".repeat(100_000)]})).await;
    assert_eq!(status, 413, "{body}");
    for bad in [
        json!({"words": ["\u{200B}"]}),
        json!({"words": ["ok"], "mode": "shout"}),
        json!({"words": "bad"}),
        json!({"words": [], "extra": 1}),
    ] {
        let (status, body) = put(bad.clone()).await;
        assert_eq!(status, 400, "{bad}: {body}");
    }
    let (_, read) = m.api(Method::GET, "/admin/api/word-filter", None).await;
    assert_eq!(read, before);
    alice.say("bad").await;
    assert_eq!(bob.expect("chat").await["data"], "***");
    assert_eq!(alice.expect("chat").await["data"], "***");
    still_chatting(&mut bob, &mut alice, "we chat on").await;

    let (status, body) = put(json!({"words": ["a", "b", "字字字字字"], "mode": "reject"})).await;
    assert_eq!(status, 200, "at the bounds: {body}");
}

#[tokio::test]
async fn the_filter_survives_a_restart() {
    let m = spawn_moderated(|_| {}).await;
    set_filter(&m, &["bad", "ＷＯＲＳＥ"], "reject").await;
    let m = m.restart(|_| {}).await;
    let (_, read) = m.api(Method::GET, "/admin/api/word-filter", None).await;
    assert_eq!(
        read,
        json!({"words": ["bad", "ＷＯＲＳＥ"], "mode": "reject"})
    );
    let (mut alice, mut bob, _) = alice_and_bob(&m.app).await;
    alice.say("worse").await;
    assert_eq!(alice.expect("error").await["data"], FILTERED);
    still_chatting(&mut alice, &mut bob, "fine").await;
    let (_, audit) = m.api(Method::GET, "/admin/api/audit", None).await;
    assert_eq!(audit["entries"][0]["action"], "word_filter");
}
