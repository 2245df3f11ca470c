//! Bounded and paged history: a `history` frame holds at most `--history-page` events and its
//! bytes budget, says `more` when older events remain, and `{"type":"history","before":id}`
//! pages back to the beginning, each page seen by its reader's eyes (whispers), at the price
//! of a message, and without holding up other rooms.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::{Client, greeting, spawn_with};

/// Sends a page request and returns the answer: the next `history` that echoes `before`.
pub async fn page(client: &mut Client, before: u64) -> Value {
    client
        .say(&json!({"type": "history", "before": before}).to_string())
        .await;
    loop {
        let event = client.next_event().await;
        if event["type"] == "history" {
            assert_eq!(event["before"], before, "a page echoes its before: {event}");
            return event;
        }
        assert_ne!(event["type"], "error", "{event}");
    }
}

pub fn data(history: &Value) -> Vec<Value> {
    history["data"].as_array().expect("history data").clone()
}

pub fn texts(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .filter(|e| e["type"] == "chat")
        .map(|e| e["data"].as_str().unwrap().to_owned())
        .collect()
}

fn first_id(events: &[Value]) -> u64 {
    events[0]["id"].as_u64().unwrap()
}

fn more(history: &Value) -> bool {
    match history.get("more") {
        None => false,
        Some(v) => {
            assert_eq!(v, true, "more is present only when true");
            true
        }
    }
}

/// Pages back from `history` to the beginning; every event seen, oldest first.
pub async fn page_to_the_beginning(client: &mut Client, history: &Value) -> Vec<Value> {
    let mut all = data(history);
    let mut has_more = more(history);
    for _ in 0..1000 {
        if !has_more {
            return all;
        }
        let older = page(client, first_id(&all)).await;
        let mut events = data(&older);
        assert!(!events.is_empty(), "more promised older events: {older}");
        has_more = more(&older);
        events.append(&mut all);
        all = events;
    }
    panic!("paging never reached the beginning");
}

fn fast(c: &mut passerby::config::Config) {
    c.rate_limit = 1e6;
    c.rate_burst = 1e6;
}

async fn said(client: &mut Client, texts: impl IntoIterator<Item = String>) -> Vec<String> {
    let texts: Vec<String> = texts.into_iter().collect();
    for text in &texts {
        client.say(text).await;
    }
    for _ in &texts {
        client.expect("chat").await;
    }
    texts
}

#[tokio::test]
async fn a_recovery_longer_than_a_page_gets_the_newest_page_truncated_with_more() {
    let app = spawn_with(|c| {
        fast(c);
        c.history_on_join = 2;
        c.history_page = 5;
    })
    .await;
    let (mut alice, _) = app.join("alice").await;
    alice.say("seen").await;
    let seen = alice.expect("chat").await["id"].as_u64().unwrap();
    let sent = said(&mut alice, (0..12).map(|i| format!("m{i}"))).await;
    let cookie = app.sign_in("bob").await;
    let mut bob = app.connect_since(&cookie, seen).await;
    let history = greeting(&mut bob).await;
    assert_eq!(history["truncated"], true, "the client rebuilds: {history}");
    assert!(more(&history), "and may page back: {history}");
    assert!(history.get("before").is_none(), "not a page");
    assert_eq!(texts(&data(&history)), sent[7..], "the newest page");
    // Paging back covers the rest with no gap.
    let all = page_to_the_beginning(&mut bob, &history).await;
    let everything: Vec<String> = std::iter::once("seen".to_owned()).chain(sent).collect();
    assert_eq!(texts(&all), everything);

    // One page's worth is not truncated, and says no more after `since`... but older
    // events remain before it, which a recovery does not mark.
    let last = data(&history).last().unwrap()["id"].as_u64().unwrap();
    let mut again = app.connect_since(&cookie, last - 3).await;
    let history = greeting(&mut again).await;
    assert!(history.get("truncated").is_none(), "{history}");
    assert!(!more(&history), "{history}");
}

#[tokio::test]
async fn a_newcomer_pages_back_to_the_beginning() {
    let app = spawn_with(|c| {
        fast(c);
        c.history_on_join = 3;
        c.history_page = 4;
    })
    .await;
    let (mut alice, _) = app.join("alice").await;
    let sent = said(&mut alice, (0..17).map(|i| format!("m{i}"))).await;
    let cookie = app.sign_in("bob").await;
    let mut bob = app.connect(&cookie).await;
    let history = greeting(&mut bob).await;
    assert!(
        history.get("truncated").is_none(),
        "a newcomer asked for nothing"
    );
    assert!(more(&history));
    assert_eq!(data(&history).len(), 3);
    let first = page(&mut bob, first_id(&data(&history))).await;
    assert_eq!(data(&first).len(), 4, "a page holds --history-page events");
    assert!(first["id"].as_u64().is_some());
    let all = page_to_the_beginning(&mut bob, &history).await;
    assert_eq!(texts(&all), sent);
    // Scrolling back shows the conversation: alice's `join` is presence, not history.
    assert!(
        all.iter().all(|e| e["type"] == "chat"),
        "messages only, down to the first: {}",
        all[0]
    );
    for pair in all.windows(2) {
        assert!(pair[0]["id"].as_u64() < pair[1]["id"].as_u64());
    }
    // Before the first event there is nothing: an empty page without more.
    let none = page(&mut bob, first_id(&all)).await;
    assert!(data(&none).is_empty() && !more(&none), "{none}");
    // Other clients chat meanwhile.
    alice.say("still here").await;
    assert_eq!(bob.expect("chat").await["data"], "still here");
}

#[tokio::test]
async fn a_page_is_bounded_by_the_bytes_budget_too() {
    const CHARS: usize = 200;
    let least = passerby::chat::outbox::largest_join(1, CHARS);
    let app = spawn_with(|c| {
        fast(c);
        c.history_on_join = 1;
        c.max_message_chars = CHARS;
        c.outbound_queue_bytes = least;
    })
    .await;
    let (mut alice, _) = app.join("alice").await;
    let text = "x".repeat(CHARS);
    let sent = said(
        &mut alice,
        (0..60).map(|i| format!("{i:02}{text}")[..CHARS].to_owned()),
    )
    .await;
    let before = alice.events_within(Duration::ZERO).await;
    assert!(before.is_empty());
    alice.say("last").await;
    let last = alice.expect("chat").await["id"].as_u64().unwrap();
    let got = page(&mut alice, last).await;
    let events = data(&got);
    assert!(
        !events.is_empty() && events.len() < 60,
        "the bytes budget, not the count, ends the page: {}",
        events.len()
    );
    assert!(more(&got));
    assert_eq!(texts(&events).last(), sent.last());
    let all = page_to_the_beginning(&mut alice, &got).await;
    assert_eq!(texts(&all), sent);
}

#[tokio::test]
async fn whispers_in_pages_are_seen_by_their_pair_only() {
    let app = spawn_with(|c| {
        fast(c);
        c.history_on_join = 1;
        c.history_page = 3;
    })
    .await;
    let (mut alice, _) = app.join("alice").await;
    let (mut bob, bob_user) = app.join("bob").await;
    alice.expect("join").await;
    let to = bob_user["id"].as_u64().unwrap();
    alice
        .say(&json!({"type": "private", "to": to, "data": "psst"}).to_string())
        .await;
    assert_eq!(bob.expect("private").await["data"], "psst");
    alice.expect("private").await;
    let sent = said(&mut alice, (0..8).map(|i| format!("m{i}"))).await;
    let (mut carol, _) = app.join("carol").await;
    alice.say("now").await;
    let carol_history = carol.expect("chat").await;
    let from = carol_history["id"].as_u64().unwrap();
    let seen_by_carol = page(&mut carol, from).await;
    let carol_all = page_to_the_beginning(&mut carol, &seen_by_carol).await;
    assert!(
        carol_all.iter().all(|e| e["type"] != "private"),
        "{carol_all:?}"
    );
    assert_eq!(texts(&carol_all), sent);
    while bob.next_event().await["data"] != "now" {}
    let seen_by_bob = page(&mut bob, from).await;
    let bob_all = page_to_the_beginning(&mut bob, &seen_by_bob).await;
    let whispers: Vec<&Value> = bob_all.iter().filter(|e| e["type"] == "private").collect();
    assert_eq!(whispers.len(), 1, "{bob_all:?}");
    assert_eq!(whispers[0]["data"], "psst");
}

#[tokio::test]
async fn paging_takes_from_the_rate_limit_and_a_bad_id_is_refused() {
    let app = spawn_with(|c| {
        c.rate_limit = 0.2;
        c.rate_burst = 3.0;
    })
    .await;
    let (mut alice, _) = app.join("alice").await;
    let (mut bob, _) = app.join("bob").await;
    alice.expect("join").await;
    alice
        .say(&json!({"type": "history", "before": 0}).to_string())
        .await;
    let error = alice.expect("error").await;
    assert!(
        error["data"].as_str().unwrap().contains("bad command"),
        "{error}"
    );
    alice.say(r#"{"type":"history","before":"x"}"#).await;
    alice.expect("error").await;
    // The bad ones took two tokens; one page is left, then the limit.
    page(&mut alice, 100).await;
    alice
        .say(&json!({"type": "history", "before": 100}).to_string())
        .await;
    let error = alice.expect("error").await;
    assert!(
        error["data"]
            .as_str()
            .unwrap()
            .contains("too many messages"),
        "{error}"
    );
    // Bob is not held to alice's limit.
    bob.say("hi").await;
    assert_eq!(alice.expect("chat").await["data"], "hi");
}

#[tokio::test]
async fn with_history_off_every_page_is_empty() {
    let app = spawn_with(|c| c.history_max_events = 0).await;
    let (mut alice, _) = app.join("alice").await;
    alice.say("gone").await;
    let id = alice.expect("chat").await["id"].as_u64().unwrap();
    let got = page(&mut alice, id).await;
    assert!(data(&got).is_empty() && !more(&got), "{got}");
}

#[tokio::test]
async fn history_on_join_above_the_page_is_refused_at_start() {
    let tmp = tempfile::tempdir().unwrap();
    let mut config = passerby::config::Config::with_data_dir(tmp.path());
    config.bind = "127.0.0.1:0".parse().unwrap();
    config.history_on_join = 11;
    config.history_page = 10;
    let refused = passerby::startup::App::build(config).await.err().unwrap();
    assert!(refused.to_string().contains("--history-page"), "{refused}");
}

/// Many pages of a long history, read over and over, while another room chats.
#[tokio::test]
async fn paging_a_long_history_does_not_slow_another_room() {
    let app = spawn_with(|c| {
        fast(c);
        c.history_on_join = 1;
    })
    .await;
    let cookie = app.sign_in("reader").await;
    let mut reader = app
        .connect_to("/ws?room=archive", &[("Cookie", cookie.as_str())])
        .await
        .unwrap();
    greeting(&mut reader).await;
    said(
        &mut reader,
        (0..3000).map(|i| format!("{i} {}", "y".repeat(100))),
    )
    .await;
    reader.say("top").await;
    let top = reader.expect("chat").await["id"].as_u64().unwrap();
    let (mut alice, _) = app.join("alice").await;
    let (mut bob, _) = app.join("bob").await;
    alice.expect("join").await;
    let pager = tokio::spawn(async move {
        let mut pages = 0;
        for _ in 0..10 {
            let mut before = top;
            loop {
                let got = page(&mut reader, before).await;
                pages += 1;
                if !more(&got) {
                    break;
                }
                before = first_id(&data(&got));
            }
        }
        pages
    });
    let mut worst = Duration::ZERO;
    for i in 0..100 {
        let start = Instant::now();
        let text = format!("lobby {i}");
        alice.say(&text).await;
        assert_eq!(bob.expect("chat").await["data"], text.as_str());
        alice.expect("chat").await;
        worst = worst.max(start.elapsed());
    }
    let pages = pager.await.unwrap();
    assert!(pages >= 10 * 10, "it paged through: {pages} pages");
    assert!(
        worst < Duration::from_secs(1),
        "a round trip took {worst:?}"
    );
}

#[tokio::test]
async fn page_reads_past_the_bound_are_refused_as_busy_while_others_chat() {
    use futures_util::SinkExt;
    use tokio_tungstenite::tungstenite::Message;
    const ASKED: usize = 16;
    let app = spawn_with(|c| {
        fast(c);
        c.history_on_join = 1;
        c.history_reads = 1;
    })
    .await;
    let (mut alice, _) = app.join("alice").await;
    let (mut bob, _) = app.join("bob").await;
    alice.expect("join").await;
    said(
        &mut alice,
        (0..400).map(|i| format!("{i} {}", "z".repeat(200))),
    )
    .await;
    while bob.next_event().await["data"] != format!("399 {}", "z".repeat(200)) {}
    alice.say("top").await;
    let top = alice.expect("chat").await["id"].as_u64().unwrap();
    bob.expect("chat").await;
    // All at once, in one write: the one reader cannot keep up with them.
    let ask = json!({"type": "history", "before": top}).to_string();
    for _ in 0..ASKED {
        alice.ws.feed(Message::text(ask.clone())).await.unwrap();
    }
    alice.ws.flush().await.unwrap();
    let (mut pages, mut busy) = (0, 0);
    while pages + busy < ASKED {
        let event = alice.next_event().await;
        match event["type"].as_str() {
            Some("history") => pages += 1,
            Some("error") => {
                let text = event["data"].as_str().unwrap();
                assert!(
                    text.starts_with("history not read: the server is busy"),
                    "{text}"
                );
                busy += 1;
            }
            _ => panic!("unexpected {event}"),
        }
    }
    assert!(pages >= 1 && busy >= 1, "{pages} pages, {busy} busy");
    // Others chat meanwhile, and alice may page again.
    bob.say("hi").await;
    assert_eq!(alice.expect("chat").await["data"], "hi");
    assert_eq!(data(&page(&mut alice, top).await).len(), 300);
}
