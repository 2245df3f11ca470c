//! The history store under strain: a full writer queue, a store that cannot write, age
//! retention while the writer is busy, and user ids at the top of their range.

use std::{collections::HashSet, path::Path, time::Duration};

use passerby::store::{
    HistoryStore,
    history::{FILE_NAME, Retention},
};
use serde_json::{Value, json};

use crate::helpers::{Client, TestApp, WAIT, spawn_in, spawn_with, two_chatting};

/// A second connection to the server's history file, as an operator's tool would open.
fn open_db(dir: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open(dir.join(FILE_NAME)).unwrap()
}

/// Reads until an `error` arrives, and returns it with the chats read on the way.
async fn until_error(client: &mut Client) -> (Value, Vec<Value>) {
    let mut chats = Vec::new();
    loop {
        let event = client.next_event().await;
        match event["type"].as_str() {
            Some("error") => return (event, chats),
            Some("chat") => chats.push(event),
            _ => {}
        }
    }
}

/// Reads until the chat `text` arrives; the chats before it.
async fn until_chat(client: &mut Client, text: &str) -> Vec<String> {
    let mut before = Vec::new();
    loop {
        let event = client.next_event().await;
        if event["type"] == "chat" {
            let data = event["data"].as_str().unwrap().to_owned();
            if data == text {
                return before;
            }
            before.push(data);
        }
    }
}

async fn open_in_room(app: &TestApp, cookie: &str, room: &str) -> Client {
    app.connect_to(&format!("/ws?room={room}"), &[("Cookie", cookie)])
        .await
        .expect("socket opens")
}

#[tokio::test]
async fn a_full_history_queue_refuses_a_sender_and_a_joiner_with_1013_then_chat_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_in(dir.path().to_owned(), |c| {
        c.history_queue = 2;
        c.rate_limit = 1e6;
        c.rate_burst = 1e6;
    })
    .await;
    let (mut alice, mut bob) = two_chatting(&app).await;
    let carol = app.sign_in("carol").await;
    // An exclusive lock from outside: the writer waits on its commit and the queue fills.
    let mut db = open_db(dir.path());
    let lock = db
        .transaction_with_behavior(rusqlite::TransactionBehavior::Exclusive)
        .unwrap();
    const SENT: usize = 40;
    for n in 0..SENT {
        alice.say(&format!("queued {n}")).await;
    }
    let (refused, _) = until_error(&mut alice).await;
    let reason = refused["data"].as_str().unwrap();
    assert!(
        reason.starts_with("not sent: the server is busy"),
        "{reason}"
    );
    let mut late = app.connect(&carol).await;
    assert_eq!(
        late.close_code().await,
        Some((1013, "server busy: try again later".into())),
        "a joiner is told to come back"
    );
    drop(lock);
    // The queue drains as soon as the writer commits; until then "after" may be refused too.
    // An `error` read here may be an earlier refusal's, so each try has its own text.
    // Each try carries a `cid`, so it gets an answer of its own (an `ack`, or an `error`
    // naming it): once every try is answered, none still waits in the queue for the retry
    // below to find it full.
    let mut sent = None;
    let mut unanswered = HashSet::new();
    for attempt in 0.. {
        let cid = format!("after-{attempt}");
        let command = json!({"type": "chat", "data": format!("after {attempt}"), "cid": cid});
        alice.say(&command.to_string()).await;
        unanswered.insert(cid.clone());
        loop {
            let event = alice.next_event().await;
            match event["type"].as_str() {
                Some("ack") => {
                    unanswered.remove(event["data"]["cid"].as_str().unwrap());
                }
                Some("error") if event["cid"].is_string() => {
                    unanswered.remove(event["cid"].as_str().unwrap());
                }
                Some("chat") => {
                    let text = event["data"].as_str().unwrap();
                    if text.starts_with("after") {
                        sent = Some(text.to_owned());
                    }
                }
                _ => {}
            }
            if !unanswered.contains(&cid) {
                break;
            }
        }
        if sent.is_some() {
            break;
        }
    }
    while !unanswered.is_empty() {
        let event = alice.next_event().await;
        match event["type"].as_str() {
            Some("ack") => unanswered.remove(event["data"]["cid"].as_str().unwrap()),
            Some("error") if event["cid"].is_string() => {
                unanswered.remove(event["cid"].as_str().unwrap())
            }
            _ => false,
        };
    }
    let heard = until_chat(&mut bob, &sent.unwrap()).await;
    assert!(
        !heard.is_empty() && heard.len() < SENT,
        "what was queued arrives, what was refused does not: {} of {SENT}",
        heard.len()
    );
    // The page retries after 1013; the retry gets in.
    let mut again = app.connect(&carol).await;
    again.expect("join").await;
    again.expect("list").await;
    again.expect("history").await;
    let join = loop {
        let event = bob.next_event().await;
        if event["type"] == "join" {
            break event;
        }
    };
    assert_eq!(join["data"], "carol joined.");
}

#[tokio::test]
async fn healthz_is_503_while_the_store_cannot_write_and_200_once_it_can() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_in(dir.path().to_owned(), |_| {}).await;
    let (mut alice, mut bob) = two_chatting(&app).await;
    assert_eq!(app.get("/healthz").await.status(), 200);
    open_db(dir.path())
        .execute_batch("DROP TABLE events")
        .unwrap();
    alice.say("lost").await;
    let (refused, _) = until_error(&mut alice).await;
    assert_eq!(refused["data"], "not sent: the server could not store it");
    let response = app.get("/healthz").await;
    assert_eq!(response.status(), 503);
    let body = response.text().await.unwrap();
    assert!(
        body.starts_with("unavailable: the history store cannot write"),
        "{body}"
    );
    let carol = app.sign_in("carol").await;
    let mut late = app.connect(&carol).await;
    assert_eq!(late.close_code().await.map(|(code, _)| code), Some(1013));

    // Opening the store creates the table again, as a repair would.
    let retention = Retention {
        max_events: 100,
        max_age: None,
    };
    HistoryStore::open(dir.path(), retention).unwrap();
    alice.say("back").await;
    assert_eq!(
        until_chat(&mut bob, "back").await,
        Vec::<String>::new(),
        "nobody saw what was not stored, nor carol's join"
    );
    assert_eq!(app.get("/healthz").await.status(), 200);
    assert_eq!(app.text("/healthz").await, "ok\n");
}

#[tokio::test]
async fn age_retention_prunes_on_time_while_the_writer_is_busy() {
    let app = spawn_with(|c| {
        c.history_max_age_days = 1.0 / 86_400.0;
        c.rate_limit = 1e6;
        c.rate_burst = 1e6;
    })
    .await;
    let old = app.sign_in("old").await;
    let mut first = open_in_room(&app, &old, "old").await;
    for kind in ["join", "list", "history"] {
        first.expect(kind).await;
    }
    first.say("ancient").await;
    first.expect("chat").await;
    // `first` stays: the looks below are its user's second socket, so they add no presence
    // that could push "ancient" out of a newcomer's history; they ask for everything anyway.
    // The lobby keeps the writer busy with one commit after another for the whole test.
    let (mut busy, _) = app.join("busy").await;
    let load = tokio::spawn(async move {
        for n in 0u64.. {
            let text = format!("busy {n}");
            busy.say(&text).await;
            until_chat(&mut busy, &text).await;
        }
    });
    let deadline = tokio::time::Instant::now() + 3 * WAIT;
    loop {
        let mut look = open_in_room(&app, &old, "old&since=0").await;
        let history = loop {
            let event = look.next_event().await;
            if event["type"] == "history" {
                break event;
            }
        };
        let kept: Vec<&Value> = history["data"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["data"] == "ancient")
            .collect();
        if kept.is_empty() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "a message past the one-second age limit is still kept"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!load.is_finished(), "the lobby chatted all along");
    load.abort();
    drop(first);
}

#[tokio::test]
async fn at_the_top_of_the_user_id_range_sign_in_is_503_not_a_wrapped_id() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("user_ids"), format!("{}\n", u64::MAX - 1)).unwrap();
    let app = spawn_in(dir.path().to_owned(), |_| {}).await;
    let last = app.post_sign_in(&[("name", "last")]).await;
    assert_eq!(last.status(), 200);
    let reply: Value = last.json().await.unwrap();
    assert_eq!(reply["user"]["id"].as_u64(), Some(u64::MAX - 1));
    let refused = app.post_sign_in(&[("name", "one-too-many")]).await;
    assert_eq!(refused.status(), 503);
    let reply: Value = refused.json().await.unwrap();
    assert_eq!(reply["data"], "no user ids are left to hand out");
    assert_eq!(app.get("/healthz").await.status(), 200, "chat goes on");
}
