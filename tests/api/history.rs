//! History and recovery: what a newcomer gets, what a reconnecting client gets back, across
//! restarts and a `kill -9`, and that history and live events agree.

use std::{collections::HashSet, time::Duration};

use serde_json::Value;

use crate::{
    helpers::{greeting, spawn_app, spawn_in, spawn_with},
    server::OnDataDir,
};

const QUIET: Duration = Duration::from_millis(300);

fn id(event: &Value) -> u64 {
    event["id"].as_u64().expect("every event has an id")
}

fn chats(events: &[Value]) -> Vec<&str> {
    events
        .iter()
        .filter(|e| e["type"] == "chat")
        .map(|e| e["data"].as_str().unwrap())
        .collect()
}

fn history_data(history: &Value) -> Vec<Value> {
    history["data"].as_array().expect("history data").clone()
}

fn assert_strictly_increasing(events: &[Value]) {
    for pair in events.windows(2) {
        assert!(id(&pair[0]) < id(&pair[1]), "{} then {}", pair[0], pair[1]);
    }
}

#[tokio::test]
async fn a_newcomer_receives_the_recent_history_after_list() {
    let app = spawn_with(|c| c.history_on_join = 3).await;
    let (mut alice, _) = app.join("alice").await;
    for text in ["one", "two", "three", "four"] {
        alice.say(text).await;
        alice.expect("chat").await;
    }
    let cookie = app.sign_in("bob").await;
    let mut bob = app.connect(&cookie).await;
    let join = bob.expect("join").await;
    let list = bob.expect("list").await;
    let history = bob.expect("history").await;
    assert!(id(&history) > id(&list), "history takes the next id");
    assert_eq!(history["user"], list["user"]);
    assert!(history.get("truncated").is_none(), "{history}");
    let data = history_data(&history);
    assert_eq!(chats(&data), ["two", "three", "four"], "the newest three");
    assert_strictly_increasing(&data);
    assert!(
        data.iter().all(|e| id(e) < id(&join)),
        "all before bob's own join"
    );
    assert_eq!(data[0]["user"]["name"], "alice");
}

#[tokio::test]
async fn a_client_that_drops_while_others_chat_recovers_everything_it_missed_once() {
    let app = spawn_app().await;
    let (mut alice, _) = app.join("alice").await;
    let bob_cookie = app.sign_in("bob").await;
    let mut bob = app.connect(&bob_cookie).await;
    let history = greeting(&mut bob).await;
    alice.expect("join").await;
    alice.say("before").await;
    alice.expect("chat").await;
    let seen = id(&bob.expect("chat").await);
    assert!(seen > id(&history));
    drop(bob);
    alice.expect("left").await;
    for n in 0..5 {
        alice.say(&format!("missed {n}")).await;
        alice.expect("chat").await;
    }

    let mut bob = app.connect_since(&bob_cookie, seen).await;
    bob.expect("join").await;
    bob.expect("list").await;
    let history = bob.expect("history").await;
    assert!(history.get("truncated").is_none(), "{history}");
    let data = history_data(&history);
    assert_strictly_increasing(&data);
    assert!(data.iter().all(|e| id(e) > seen));
    assert_eq!(
        data[0]["type"], "left",
        "bob's own leave is part of what he missed"
    );
    assert_eq!(
        chats(&data),
        ["missed 0", "missed 1", "missed 2", "missed 3", "missed 4"]
    );
    alice.expect("join").await;
    alice.say("live again").await;
    let live = bob.expect("chat").await;
    assert_eq!(live["data"], "live again");
    assert!(bob.events_within(QUIET).await.is_empty(), "no duplicate");
}

#[tokio::test]
async fn recovery_works_across_a_restart_and_ids_continue() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_in(dir.path().to_owned(), |_| {}).await;
    let (mut alice, _) = app.join("alice").await;
    let bob_cookie = app.sign_in("bob").await;
    let mut bob = app.connect(&bob_cookie).await;
    greeting(&mut bob).await;
    alice.say("seen by bob").await;
    let seen = id(&bob.expect("chat").await);
    drop(bob);
    alice.expect("join").await;
    alice.expect("chat").await;
    alice.expect("left").await;
    alice.say("said while bob was away").await;
    let last_before = id(&alice.expect("chat").await);
    app.stop().await.unwrap();
    drop(alice);

    let app = spawn_in(dir.path().to_owned(), |_| {}).await;
    let mut bob = app.connect_since(&bob_cookie, seen).await;
    let join = bob.expect("join").await;
    assert!(id(&join) > last_before, "ids continue after the restart");
    bob.expect("list").await;
    let data = history_data(&bob.expect("history").await);
    assert_eq!(chats(&data), ["said while bob was away"]);
    let kinds: Vec<&str> = data.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        ["left", "chat", "left"],
        "bob's leave, the chat, alice's leave at shutdown"
    );
    app.stop().await.unwrap();
}

#[tokio::test]
async fn pruned_events_make_the_history_truncated_with_the_newest_events() {
    let app = spawn_with(|c| {
        c.history_max_events = 4;
        c.rate_limit = 1e6;
        c.rate_burst = 1e6;
    })
    .await;
    let (mut alice, _) = app.join("alice").await;
    let bob_cookie = app.sign_in("bob").await;
    let mut bob = app.connect(&bob_cookie).await;
    let since = id(&greeting(&mut bob).await);
    drop(bob);
    alice.expect("join").await;
    alice.expect("left").await;
    for n in 0..20 {
        alice.say(&format!("m{n}")).await;
        alice.expect("chat").await;
    }
    let mut bob = app.connect_since(&bob_cookie, since).await;
    let history = greeting(&mut bob).await;
    assert_eq!(history["truncated"], true, "{history}");
    let data = history_data(&history);
    assert!(!data.is_empty() && data.len() <= 5, "{} events", data.len());
    assert_eq!(chats(&data).last(), Some(&"m19"), "the newest events");
    assert_strictly_increasing(&data);
}

#[tokio::test]
async fn a_since_ahead_of_the_room_is_truncated_too() {
    let app = spawn_app().await;
    let (mut alice, _) = app.join("alice").await;
    alice.say("here").await;
    alice.expect("chat").await;
    let cookie = app.sign_in("bob").await;
    let mut bob = app.connect_since(&cookie, 1_000_000).await;
    let history = greeting(&mut bob).await;
    assert_eq!(history["truncated"], true);
    assert_eq!(chats(&history_data(&history)), ["here"]);
    let mut carol = app.connect_since(&app.sign_in("carol").await, 0).await;
    let history = greeting(&mut carol).await;
    assert!(history.get("truncated").is_none(), "since=0 misses nothing");
}

#[tokio::test]
async fn with_history_off_nothing_is_kept_and_a_recovery_is_truncated() {
    let app = spawn_with(|c| c.history_max_events = 0).await;
    let (mut alice, _) = app.join("alice").await;
    alice.say("gone").await;
    let seen = id(&alice.expect("chat").await);
    let cookie = app.sign_in("bob").await;
    let mut bob = app.connect(&cookie).await;
    let history = greeting(&mut bob).await;
    assert!(history_data(&history).is_empty());
    assert!(history.get("truncated").is_none());
    let mut again = app.connect_since(&cookie, seen - 1).await;
    assert_eq!(greeting(&mut again).await["truncated"], true);
}

#[tokio::test]
async fn concurrent_senders_get_increasing_ids_identical_in_history_and_live() {
    let app = spawn_with(|c| {
        c.rate_limit = 1e6;
        c.rate_burst = 1e6;
    })
    .await;
    let (mut watcher, _) = app.join("watcher").await;
    let mut senders = Vec::new();
    for n in 0..4 {
        senders.push(app.join(&format!("sender{n}")).await.0);
    }
    let tasks: Vec<_> = senders
        .into_iter()
        .enumerate()
        .map(|(n, mut client)| {
            tokio::spawn(async move {
                for m in 0..25 {
                    client.say(&format!("{n}:{m}")).await;
                }
                client
            })
        })
        .collect();
    let mut live = Vec::new();
    while chats(&live).len() < 100 {
        live.push(watcher.next_event().await);
    }
    for task in tasks {
        drop(task.await.unwrap());
    }
    assert_strictly_increasing(&live);
    let first = id(&live[0]);
    let cookie = app.sign_in("late").await;
    let mut late = app.connect_since(&cookie, first - 1).await;
    let data = history_data(&greeting(&mut late).await);
    let stored: Vec<&Value> = data.iter().take(live.len()).collect();
    let live: Vec<&Value> = live.iter().collect();
    assert_eq!(
        stored, live,
        "the same events, ids and bytes, in the same order"
    );
}

#[tokio::test]
async fn kill_9_while_messages_fly_loses_no_event_that_anyone_saw() {
    let dir = tempfile::tempdir().unwrap();
    let (mut server, app) = OnDataDir::start(dir.path());
    let (mut watcher, _) = app.join("watcher").await;
    let watcher_cookie = app.sign_in("watcher2").await;
    let mut senders = Vec::new();
    for n in 0..3 {
        senders.push(app.join(&format!("sender{n}")).await.0);
    }
    for client in &mut senders {
        for m in 0..5 {
            client.say(&format!("warm-up {m}")).await;
        }
    }
    let flood: Vec<_> = senders
        .into_iter()
        .enumerate()
        .map(|(n, mut client)| {
            tokio::spawn(async move {
                for m in 0.. {
                    use futures_util::SinkExt;
                    let text = tokio_tungstenite::tungstenite::Message::text(format!("{n}:{m}"));
                    if client.ws.send(text).await.is_err() {
                        return;
                    }
                    tokio::time::sleep(Duration::from_micros(200)).await;
                }
            })
        })
        .collect();
    // Kill once the watcher has seen a good part of the flood.
    let mut seen = Vec::new();
    while chats(&seen).len() < 200 {
        seen.push(watcher.next_event().await);
    }
    server.kill_9();
    // Whatever was already on its way to the watcher counts as seen too.
    while let Ok(Some(Ok(message))) = tokio::time::timeout(
        Duration::from_secs(1),
        futures_util::StreamExt::next(&mut watcher.ws),
    )
    .await
    {
        if let tokio_tungstenite::tungstenite::Message::Text(text) = message {
            seen.push(serde_json::from_str(&text).unwrap());
        }
    }
    for task in flood {
        task.await.unwrap();
    }

    let (_server, app) = OnDataDir::start(dir.path());
    let mut check = app.connect_since(&watcher_cookie, 0).await;
    let history = greeting(&mut check).await;
    assert!(history.get("truncated").is_none());
    let stored: HashSet<String> = history_data(&history)
        .iter()
        .map(Value::to_string)
        .collect();
    let persisted_kinds = ["join", "chat", "left"];
    let missing: Vec<&Value> = seen
        .iter()
        .filter(|e| persisted_kinds.contains(&e["type"].as_str().unwrap()))
        .filter(|e| !stored.contains(&e.to_string()))
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {} seen events lost, first {}",
        missing.len(),
        seen.len(),
        missing[0]
    );
    // And the ids go on from there.
    check.say("after the crash").await;
    let newest = seen.iter().map(id).max().unwrap();
    assert!(id(&check.expect("chat").await) > newest);
}
