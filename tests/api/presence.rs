//! Presence is not history: a reload within `--presence-grace-secs` makes no `left`/`join`
//! pair, a user who leaves for good is `left` after the grace, and `join`/`left` are kept
//! apart from messages (`--history-max-presence`), so a newcomer's history is messages.

use std::time::{Duration, Instant};

use passerby::config::Config;
use serde_json::Value;

use crate::helpers::{Client, TestApp, spawn_in, spawn_with};

/// Long enough that no machine is slow enough to reload past it.
const LONG_GRACE: Duration = Duration::from_secs(60);

pub fn churn_freely(c: &mut Config) {
    c.rate_limit = 1e6;
    c.rate_burst = 1e6;
    c.socket_rate = 1e6;
    c.socket_burst = 1e6;
    c.socket_address_rate = 1e6;
    c.socket_address_burst = 1e6;
}

pub fn id(event: &Value) -> u64 {
    event["id"].as_u64().unwrap()
}

pub fn kinds(history: &Value) -> Vec<&str> {
    history["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect()
}

fn names(list: &Value) -> Vec<&str> {
    list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["name"].as_str().unwrap())
        .collect()
}

/// Closes a socket and waits for the server's answer: by then the server has taken it out.
pub async fn close(mut client: Client) {
    client.ws.close(None).await.unwrap();
    client.close_code().await;
}

/// A user's first socket: `join`, `list` (returned), `history`.
async fn arrives(app: &TestApp, name: &str) -> (Client, Value) {
    let cookie = app.sign_in(name).await;
    let mut client = app.connect(&cookie).await;
    client.expect("join").await;
    let list = client.expect("list").await;
    client.expect("history").await;
    (client, list)
}

/// A socket that is not its user's arrival: `list` first (no `join`), then `history`.
pub async fn comes_back(app: &TestApp, cookie: &str) -> (Client, Value) {
    let mut client = app.connect(cookie).await;
    let list = client.expect("list").await;
    client.expect("history").await;
    (client, list)
}

#[tokio::test]
async fn a_reload_within_the_grace_makes_no_left_and_no_join() {
    let app = spawn_with(|c| c.presence_grace_secs = LONG_GRACE).await;
    let (mut alice, _) = app.join("alice").await;
    let bob_cookie = app.sign_in("bob").await;
    let mut bob = app.connect(&bob_cookie).await;
    bob.expect("join").await;
    bob.expect("list").await;
    bob.expect("history").await;
    assert_eq!(alice.expect("join").await["data"], "bob joined.");

    close(bob).await;
    // Gone from his sockets, not from the room: a newcomer meanwhile still sees him.
    let (mut carol, carol_list) = arrives(&app, "carol").await;
    assert_eq!(names(&carol_list), ["alice", "bob", "carol"]);
    assert_eq!(alice.expect("join").await["data"], "carol joined.");

    let (mut bob, list) = comes_back(&app, &bob_cookie).await;
    assert_eq!(names(&list), ["alice", "bob", "carol"], "in his old place");
    bob.say("back").await;
    for watcher in [&mut alice, &mut carol] {
        let next = watcher.next_event().await;
        assert_eq!(next["type"], "chat", "no left, no join, the chat: {next}");
        assert_eq!(next["data"], "back");
    }
    assert_eq!(bob.expect("chat").await["data"], "back");
}

#[tokio::test]
async fn a_user_who_leaves_for_good_is_left_after_the_grace() {
    let grace = Duration::from_millis(600);
    let app = spawn_with(|c| c.presence_grace_secs = grace).await;
    let (mut alice, _) = app.join("alice").await;
    let (bob, _) = app.join("bob").await;
    alice.expect("join").await;

    let closed = Instant::now();
    close(bob).await;
    let left = alice.expect("left").await;
    assert!(
        closed.elapsed() >= grace,
        "left after {:?}",
        closed.elapsed()
    );
    assert_eq!(left["data"], "bob is left.");
    assert_eq!(left["count"], 1);
    let (_, list) = arrives(&app, "carol").await;
    assert_eq!(names(&list), ["alice", "carol"]);
}

#[tokio::test]
async fn leaving_twice_within_the_grace_is_left_once_after_the_last() {
    let grace = Duration::from_millis(800);
    let app = spawn_with(|c| c.presence_grace_secs = grace).await;
    let (mut alice, _) = app.join("alice").await;
    let bob_cookie = app.sign_in("bob").await;
    let mut bob = app.connect(&bob_cookie).await;
    crate::helpers::greeting(&mut bob).await;
    alice.expect("join").await;

    close(bob).await;
    let (bob, _) = comes_back(&app, &bob_cookie).await;
    let last_closed = Instant::now();
    close(bob).await;
    let left = alice.expect("left").await;
    assert!(
        last_closed.elapsed() >= grace,
        "the first departure did not announce him: left {:?} after the last close",
        last_closed.elapsed()
    );
    alice.say("alone").await;
    assert_eq!(alice.next_event().await["data"], "alone", "one left only");
    assert_eq!(left["count"], 1);
}

#[tokio::test]
async fn shutdown_sends_every_left_still_in_its_grace() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_in(dir.path().to_owned(), |c| {
        c.presence_grace_secs = LONG_GRACE
    })
    .await;
    let alice_cookie = app.sign_in("alice").await;
    let mut alice = app.connect(&alice_cookie).await;
    crate::helpers::greeting(&mut alice).await;
    let (bob, _) = app.join("bob").await;
    let joined = alice.expect("join").await;
    close(bob).await;
    app.stop().await.unwrap();

    let app = spawn_in(dir.path().to_owned(), |_| {}).await;
    let mut check = app.connect_since(&alice_cookie, id(&joined)).await;
    check.expect("join").await;
    check.expect("list").await;
    let history = check.expect("history").await;
    let data = history["data"].as_array().unwrap();
    assert!(
        data.iter()
            .any(|e| e["type"] == "left" && e["data"] == "bob is left."),
        "bob's left was stored at shutdown: {history}"
    );
    assert!(data.iter().all(|e| id(e) > id(&joined)), "ids go on");
}

#[tokio::test]
async fn after_a_churn_a_newcomer_sees_the_real_messages() {
    let app = spawn_with(|c| {
        churn_freely(c);
        c.history_on_join = 50;
    })
    .await;
    let (mut alice, _) = app.join("alice").await;
    let bob_cookie = app.sign_in("bob").await;
    for round in 0..25 {
        let mut bob = app.connect(&bob_cookie).await;
        crate::helpers::greeting(&mut bob).await;
        if round % 5 == 0 {
            alice.say(&format!("real {round}")).await;
        }
        close(bob).await;
    }
    // Alice saw every join, left and chat; what matters is what a newcomer gets.
    drop(alice);
    let carol_cookie = app.sign_in("carol").await;
    let mut carol = app.connect(&carol_cookie).await;
    carol.expect("join").await;
    carol.expect("list").await;
    let history = carol.expect("history").await;
    assert_eq!(kinds(&history), ["chat"; 5], "{history}");
    let texts: Vec<&str> = history["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["data"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["real 0", "real 5", "real 10", "real 15", "real 20"]);
}

#[tokio::test]
async fn presence_beyond_its_bound_does_not_push_messages_out() {
    let app = spawn_with(|c| {
        churn_freely(c);
        c.history_max_events = 5;
        c.history_max_presence = 4;
    })
    .await;
    let (mut alice, _) = app.join("alice").await;
    for n in 0..5 {
        alice.say(&format!("m{n}")).await;
        alice.expect("chat").await;
    }
    let bob_cookie = app.sign_in("bob").await;
    for _ in 0..30 {
        let mut bob = app.connect(&bob_cookie).await;
        crate::helpers::greeting(&mut bob).await;
        close(bob).await;
    }
    let carol_cookie = app.sign_in("carol").await;
    let mut carol = app.connect_since(&carol_cookie, 0).await;
    carol.expect("join").await;
    carol.expect("list").await;
    let recovery = carol.expect("history").await;
    let kinds = kinds(&recovery);
    let chats = kinds.iter().filter(|k| **k == "chat").count();
    assert_eq!(chats, 5, "every message is kept: {recovery}");
    assert!(
        recovery.get("truncated").is_none(),
        "no message was pruned, so nothing is missing: {recovery}"
    );
    let presence = kinds.len() - chats;
    assert!(
        (1..=8).contains(&presence),
        "a recovery replays the presence kept, within its bound: {presence}"
    );
}

#[tokio::test]
async fn ids_keep_increasing_across_a_restart_with_presence_kept_apart() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_in(dir.path().to_owned(), churn_freely).await;
    let (mut alice, _) = app.join("alice").await;
    let (bob, _) = app.join("bob").await;
    alice.expect("join").await;
    close(bob).await;
    let left = alice.expect("left").await;
    alice.say("before").await;
    let before = alice.expect("chat").await;
    assert!(id(&before) > id(&left));
    drop(alice);
    app.stop().await.unwrap();

    let app = spawn_in(dir.path().to_owned(), |_| {}).await;
    let carol_cookie = app.sign_in("carol").await;
    let mut carol = app.connect(&carol_cookie).await;
    carol.expect("join").await;
    carol.expect("list").await;
    let history = carol.expect("history").await;
    assert_eq!(kinds(&history), ["chat"], "messages only: {history}");
    carol.say("after").await;
    let after = carol.expect("chat").await;
    assert!(
        id(&after) > id(&before),
        "{} after {}",
        id(&after),
        id(&before)
    );
}
