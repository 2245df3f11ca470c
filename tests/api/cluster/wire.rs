//! The bytes of events the Redis scripts build are the bytes serde writes for the same
//! event, so live frames and history agree with the embedded engine's.

use futures_util::StreamExt;
use passerby::{
    auth::User,
    chat::protocol::{EventData, EventKind, PrivateEvent, ServerEvent},
};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use super::Cluster;
use crate::helpers::{Client, WAIT};

/// Quotes, a backslash, markup and characters beyond ASCII: whatever serde escapes or not.
const TRICKY: &str = "say \"time\":0} </script> \\ ünï 😀 \",\"to\":0,";
const TRICKY_NAME: &str = "Zoë \"q\" \\ 😀";

/// The next text frame, as sent.
async fn next_raw(client: &mut Client) -> String {
    loop {
        let message = tokio::time::timeout(WAIT, client.ws.next())
            .await
            .expect("an event within the wait")
            .expect("socket still open")
            .expect("a readable frame");
        match message {
            Message::Text(text) => return text.to_string(),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("expected an event, got {other:?}"),
        }
    }
}

async fn expect_raw(client: &mut Client, kind: &str) -> (String, Value) {
    let raw = next_raw(client).await;
    let event: Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(event["type"], kind, "unexpected event {raw}");
    (raw, event)
}

fn user(value: &Value) -> User {
    serde_json::from_value(value.clone()).unwrap()
}

/// What serde writes for the event `event` says it is.
fn serialized(event: &Value) -> String {
    let kind: EventKind = serde_json::from_value(event["type"].clone()).unwrap();
    let (sender, data) = (user(&event["user"]), event["data"].as_str().unwrap());
    let (id, time) = (
        event["id"].as_u64().unwrap(),
        event["time"].as_u64().unwrap(),
    );
    if kind == EventKind::Private {
        let to = user(&event["to"]);
        return serde_json::to_string(&PrivateEvent {
            id,
            kind,
            user: &sender,
            to: &to,
            data,
            time,
        })
        .unwrap();
    }
    serde_json::to_string(&ServerEvent {
        id,
        kind,
        user: &sender,
        data: EventData::Text(data),
        time,
        count: event["count"].as_u64().map(|n| n as usize),
    })
    .unwrap()
}

#[tokio::test]
async fn events_built_by_redis_are_byte_for_byte_what_serde_writes() {
    let cluster = Cluster::new();
    let (a, b) = (cluster.instance().await, cluster.instance().await);
    let (mut alice, _) = a.join(TRICKY_NAME).await;
    let bob_cookie = a.sign_in("bob").await;
    let mut bob = b.connect(&bob_cookie).await;
    let (_, joined) = expect_raw(&mut bob, "join").await;
    let bob_id = joined["user"]["id"].as_u64().unwrap();
    expect_raw(&mut bob, "list").await;
    expect_raw(&mut bob, "history").await;

    let (join, event) = expect_raw(&mut alice, "join").await;
    assert_eq!(event["count"], 2, "{join}");
    assert_eq!(join, serialized(&event));

    alice
        .say(&json!({"type": "chat", "data": TRICKY}).to_string())
        .await;
    let (chat, event) = expect_raw(&mut bob, "chat").await;
    assert_eq!(event["data"], TRICKY);
    assert_eq!(chat, serialized(&event));
    assert_eq!(next_raw(&mut alice).await, chat, "one body for the cluster");

    alice
        .say(&json!({"type": "private", "to": bob_id, "data": TRICKY}).to_string())
        .await;
    let (private, event) = expect_raw(&mut bob, "private").await;
    assert_eq!(event["to"]["id"], bob_id);
    assert_eq!(private, serialized(&event));

    bob.ws.close(None).await.unwrap();
    expect_raw(&mut alice, "private").await;
    let (left, event) = expect_raw(&mut alice, "left").await;
    assert_eq!(event["count"], 1, "{left}");
    assert_eq!(left, serialized(&event));

    // History hands out the very bytes that went out live.
    let mut carol = b.connect_since(&b.sign_in("carol").await, 0).await;
    expect_raw(&mut carol, "join").await;
    expect_raw(&mut carol, "list").await;
    let (history, _) = expect_raw(&mut carol, "history").await;
    for live in [&join, &chat, &left] {
        assert!(history.contains(live.as_str()), "{live} not in {history}");
    }
    assert!(!history.contains(&private), "a whisper stays between two");
}
