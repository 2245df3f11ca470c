//! A client's own id for a message (`cid`) on the embedded engines: the sender gets an `ack`
//! with the id its message got, and a retry with the same `cid` (on the same socket or after a
//! reconnect) is stored once and answered with the same `ack`. Without a `cid`, nothing
//! changes: no `ack`.

use serde_json::{Value, json};

use crate::helpers::{Client, TestApp, spawn_with};

/// The memory engine (no history) and SQLite.
async fn engines() -> [TestApp; 2] {
    let lifted = |c: &mut passerby::config::Config| {
        c.rate_limit = 1000.0;
        c.rate_burst = 1000.0;
    };
    [
        spawn_with(move |c| {
            lifted(c);
            c.history_max_events = 0;
        })
        .await,
        spawn_with(lifted).await,
    ]
}

fn chat(text: &str, cid: &str) -> String {
    json!({"type": "chat", "data": text, "cid": cid}).to_string()
}

/// Events until the `ack` of `cid`, which is returned with what came before it.
async fn until_ack(client: &mut Client, cid: &str) -> (Value, Vec<Value>) {
    client
        .until(|e| e["type"] == "ack" && e["data"]["cid"] == cid)
        .await
}

fn said<'a>(events: &'a [Value], text: &'a str) -> impl Iterator<Item = &'a Value> {
    events.iter().filter(move |e| e["data"] == text)
}

#[tokio::test]
async fn a_cid_is_acked_with_its_id_and_a_retry_after_a_reconnect_is_stored_once() {
    for app in engines().await {
        let cookie = app.sign_in("alice").await;
        let mut alice = app.connect(&cookie).await;
        alice.expect("join").await;
        alice.expect("list").await;
        alice.expect("history").await;
        let (mut bob, _) = app.join("bob").await;
        alice.expect("join").await;

        alice.say(&chat("hello", "m-1")).await;
        let (ack, before) = until_ack(&mut alice, "m-1").await;
        let sent = said(&before, "hello").next().expect("the chat came first");
        assert_eq!(ack["data"]["id"], sent["id"], "{ack}");
        assert_eq!(
            ack["id"], sent["id"],
            "the ack takes no id: the last one the socket had"
        );
        assert!(ack.get("user").is_none(), "{ack}");

        // The same socket sends it again: the same ack, nothing new in the room.
        alice.say(&chat("hello", "m-1")).await;
        let (again, before) = until_ack(&mut alice, "m-1").await;
        assert_eq!(again["data"]["id"], sent["id"]);
        assert_eq!(said(&before, "hello").count(), 0, "{before:?}");

        // After a reconnect too, though the text differs: the cid names the message.
        alice.ws.close(None).await.unwrap();
        let mut alice = app.connect(&cookie).await;
        alice.say(&chat("hello (edited)", "m-1")).await;
        let (again, _) = until_ack(&mut alice, "m-1").await;
        assert_eq!(again["data"]["id"], sent["id"]);

        // Another user's m-1 is another message.
        bob.say(&chat("mine", "m-1")).await;
        let (bobs, mut heard) = until_ack(&mut bob, "m-1").await;
        assert_ne!(bobs["data"]["id"], sent["id"]);

        alice.say("the end").await;
        heard.extend(bob.before_chat("the end").await);
        assert_eq!(said(&heard, "hello").count(), 1, "stored once: {heard:?}");
        assert_eq!(said(&heard, "hello (edited)").count(), 0, "{heard:?}");
        assert!(
            heard.iter().all(|e| e["type"] != "ack"),
            "an ack goes to its sender only: {heard:?}"
        );
    }
}

#[tokio::test]
async fn a_whisper_with_a_cid_is_acked_and_stored_once_and_one_to_nobody_is_refused_with_a_code() {
    for app in engines().await {
        let (mut alice, _) = app.join("alice").await;
        let (mut bob, bob_user) = app.join("bob").await;
        alice.expect("join").await;
        let to = bob_user["id"].as_u64().unwrap();
        let whisper = json!({"type": "private", "to": to, "data": "psst", "cid": "w1"});
        for _ in 0..2 {
            alice.say(&whisper.to_string()).await;
        }
        let (first, _) = until_ack(&mut alice, "w1").await;
        let (second, _) = until_ack(&mut alice, "w1").await;
        assert_eq!(first["data"]["id"], second["data"]["id"]);
        let got = bob.expect("private").await;
        assert_eq!(got["id"], first["data"]["id"]);

        let nobody = json!({"type": "private", "to": 999_999, "data": "x", "cid": "w2"});
        alice.say(&nobody.to_string()).await;
        let error = loop {
            let event = alice.next_event().await;
            assert_ne!(event["type"], "ack", "{event}");
            if event["type"] == "error" {
                break event;
            }
        };
        assert_eq!(error["code"], "not_online", "{error}");
        alice.say("after").await;
        let heard = bob.before_chat("after").await;
        assert!(heard.iter().all(|e| e["type"] != "private"), "{heard:?}");
    }
}

#[tokio::test]
async fn messages_without_a_cid_get_no_ack_and_a_bad_cid_is_a_bad_command() {
    for app in engines().await {
        let (mut alice, _) = app.join("alice").await;
        alice.say("plain").await;
        alice
            .say(&json!({"type": "chat", "data": "json"}).to_string())
            .await;
        alice.say(&chat("bad", "a b")).await;
        alice.say(&chat("long", &"x".repeat(65))).await;
        alice.say(&chat("last", "ok")).await;
        let (_, before) = until_ack(&mut alice, "ok").await;
        let kinds: Vec<&str> = before.iter().map(|e| e["type"].as_str().unwrap()).collect();
        assert_eq!(
            kinds,
            ["chat", "chat", "error", "error", "chat"],
            "{before:?}"
        );
        for error in &before[2..4] {
            let text = error["data"].as_str().unwrap();
            assert!(
                text.starts_with("bad command") && text.contains("cid"),
                "{error}"
            );
        }
    }
}

#[tokio::test]
async fn a_cid_is_remembered_for_the_window_only_and_then_names_a_new_message() {
    let app = spawn_with(|c| {
        c.rate_limit = 1000.0;
        c.rate_burst = 1000.0;
        c.cid_window_secs = std::time::Duration::from_secs(1);
    })
    .await;
    let (mut alice, _) = app.join("alice").await;
    let (mut bob, _) = app.join("bob").await;
    alice.expect("join").await;
    alice.say(&chat("once", "w")).await;
    let (first, _) = until_ack(&mut alice, "w").await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    alice.say(&chat("twice", "w")).await;
    let (second, _) = until_ack(&mut alice, "w").await;
    assert!(
        second["data"]["id"].as_u64() > first["data"]["id"].as_u64(),
        "past the window the cid is a new message: {second}"
    );
    bob.say("bob still chats").await;
    let heard = alice.before_chat("bob still chats").await;
    assert!(heard.is_empty(), "{heard:?}");
    let heard = bob.before_chat("bob still chats").await;
    assert_eq!(texts_of(&heard), ["once", "twice"]);
}

fn texts_of(events: &[Value]) -> Vec<&str> {
    events
        .iter()
        .filter(|e| e["type"] == "chat")
        .map(|e| e["data"].as_str().unwrap())
        .collect()
}
