//! Big rooms: above `--big-room` users a room's joins and lefts go out as one `presence` per
//! `--presence-interval-ms`, its `list` is a first page of `--list-page` users with a cursor,
//! and `{"type":"users","after":…}` brings the rest a page at a time, at a message's price;
//! a small room keeps the seed's `list`, `join` and `left` byte for byte.

use futures_util::StreamExt;
use passerby::{
    auth::User,
    chat::protocol::{EventData, EventKind, ServerEvent},
    config::Config,
};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::{
    helpers::{Client, TestApp, WAIT, spawn_with, still_chatting},
    presence::{churn_freely, close, kinds},
};

/// Rooms above `threshold` users are big; pages of `page`; a presence every 50 ms.
pub fn big(c: &mut Config, threshold: usize, page: usize) {
    churn_freely(c);
    c.big_rooms.big_room = threshold;
    c.big_rooms.list_page = page;
    c.big_rooms.presence_interval_ms = 50;
}

/// The next event that is not a `presence` (a big room's come and go, while the test
/// watches something else).
pub async fn next_besides_presence(client: &mut Client) -> Value {
    loop {
        let event = client.next_event().await;
        if event["type"] != "presence" {
            return event;
        }
    }
}

/// Names in a users array.
pub fn names(users: &Value) -> Vec<&str> {
    users
        .as_array()
        .unwrap_or_else(|| panic!("users: {users}"))
        .iter()
        .map(|u| u["name"].as_str().unwrap())
        .collect()
}

/// A user's first socket in a big room: `list` (no `join` of its own), then `history`.
pub async fn enters_big(app: &TestApp, name: &str) -> (Client, Value) {
    let cookie = app.sign_in(name).await;
    let mut client = app.connect(&cookie).await;
    let list = client.next_event().await;
    assert_eq!(list["type"], "list", "no join of its own first: {list}");
    client.expect("history").await;
    (client, list)
}

/// A `users` page after `after`.
pub async fn users_after(client: &mut Client, after: u64) -> Value {
    client
        .say(&json!({"type": "users", "after": after}).to_string())
        .await;
    let users = next_besides_presence(client).await;
    assert_eq!(users["type"], "users", "{users}");
    assert_eq!(users["after"], after, "a page echoes its cursor");
    users
}

#[tokio::test]
async fn a_big_room_sends_presence_instead_of_join_and_left_and_others_keep_chatting() {
    let app = spawn_with(|c| big(c, 2, 100)).await;
    let (mut alice, _) = app.join("alice").await;
    let (mut bob, _) = app.join("bob").await;
    let bob_joined = alice.expect("join").await;
    let since = bob_joined["id"].as_u64().unwrap();

    // The third user makes the room big: no `join` for anyone, a `presence` instead.
    let (mut carol, list) = enters_big(&app, "carol").await;
    assert_eq!(list["count"], 3);
    assert_eq!(names(&list["data"]), ["alice", "bob", "carol"]);
    assert!(list.get("next").is_none(), "the whole room fits a page");
    for client in [&mut alice, &mut bob] {
        let presence = client.expect("presence").await;
        assert!(presence.get("id").is_none(), "no id: {presence}");
        assert_eq!(names(&presence["data"]["joined"]), ["carol"]);
        assert_eq!(names(&presence["data"]["left"]), Vec::<&str>::new());
        assert_eq!(presence["data"]["count"], 3);
    }
    assert_eq!(carol.expect("presence").await["data"]["count"], 3);
    still_chatting(&mut alice, &mut bob, "still here").await;
    assert_eq!(carol.expect("chat").await["data"], "still here");

    let (dave, _) = enters_big(&app, "dave").await;
    assert_eq!(
        names(&alice.expect("presence").await["data"]["joined"]),
        ["dave"]
    );
    close(carol).await;
    let presence = alice.expect("presence").await;
    assert_eq!(names(&presence["data"]["left"]), ["carol"]);
    assert_eq!(presence["data"]["count"], 3);

    // Back at the line, the room is small again: the seed's `left`.
    close(dave).await;
    let left = next_besides_presence(&mut alice).await;
    assert_eq!(left["type"], "left", "{left}");
    assert_eq!(
        (&left["data"], &left["count"]),
        (&json!("dave is left."), &json!(2))
    );

    // History keeps each join and left with its id: a recovery replays them.
    let cookie = app.sign_in("erin").await;
    let mut erin = app.connect_since(&cookie, since).await;
    let list = erin.next_event().await;
    assert_eq!(list["type"], "list", "{list}");
    let history = erin.expect("history").await;
    assert_eq!(
        kinds(&history),
        ["join", "chat", "join", "left", "left"],
        "{history}"
    );
    assert_eq!(alice.expect("presence").await["data"]["count"], 3);
}

#[tokio::test]
async fn a_big_rooms_list_is_a_first_page_and_users_pages_the_rest_at_a_messages_price() {
    let app = spawn_with(|c| {
        big(c, 2, 2);
        c.rate_limit = 0.01;
        c.rate_burst = 3.0;
    })
    .await;
    let (mut alice, _) = app.join("u1").await;
    let (mut bob, _) = app.join("u2").await;
    alice.expect("join").await;
    let mut others = Vec::new();
    for name in ["u3", "u4", "u5"] {
        others.push(enters_big(&app, name).await);
    }
    let (mut last, list) = enters_big(&app, "u6").await;
    assert_eq!(list["count"], 6);
    assert_eq!(names(&list["data"]), ["u1", "u2"], "the first who came");
    let next = list["next"].as_u64().expect("a cursor to the rest");

    let page = users_after(&mut last, next).await;
    assert_eq!(names(&page["data"]), ["u3", "u4"]);
    assert_eq!(page["count"], 6);
    let next = page["next"].as_u64().expect("more follow");
    let page = users_after(&mut last, next).await;
    assert_eq!(names(&page["data"]), ["u5", "u6"]);
    assert!(page.get("next").is_none(), "the end: {page}");
    let from_the_first = users_after(&mut last, 0).await;
    assert_eq!(names(&from_the_first["data"]), ["u1", "u2"]);

    // A fourth request within the burst of three is over the rate limit, and not read.
    last.say(&json!({"type": "users", "after": 0}).to_string())
        .await;
    let refused = next_besides_presence(&mut last).await;
    assert_eq!(refused["type"], "error", "{refused}");
    assert!(
        refused["data"]
            .as_str()
            .unwrap()
            .starts_with("too many messages"),
        "{refused}"
    );
    last.say(r#"{"type":"users"}"#).await;
    let bad = next_besides_presence(&mut last).await;
    assert_eq!(bad["type"], "error", "{bad}");

    alice.say("others chat on").await;
    assert_eq!(
        next_besides_presence(&mut bob).await["data"],
        "others chat on"
    );
    assert_eq!(
        next_besides_presence(&mut alice).await["data"],
        "others chat on"
    );
}

/// The next text frame as sent, and parsed.
async fn raw(client: &mut Client) -> (String, Value) {
    loop {
        let message = tokio::time::timeout(WAIT, client.ws.next())
            .await
            .expect("an event")
            .expect("open")
            .expect("a frame");
        if let Message::Text(text) = message {
            let value = serde_json::from_str(&text).unwrap();
            return (text.to_string(), value);
        }
    }
}

/// What the seed's serializer makes of `event`'s fields: a small room's frames must be it.
fn seed_bytes(event: &Value) -> String {
    let user: User = serde_json::from_value(event["user"].clone()).unwrap();
    let listed: Vec<User> = event["data"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|u| serde_json::from_value(u.clone()).unwrap())
                .collect()
        })
        .unwrap_or_default();
    let listed: Vec<&User> = listed.iter().collect();
    let kind: EventKind = serde_json::from_value(event["type"].clone()).unwrap();
    let data = match event["data"].as_str() {
        Some(text) => EventData::Text(text),
        None => EventData::Users(&listed),
    };
    let frame = ServerEvent {
        id: event["id"].as_u64().unwrap(),
        kind,
        user: &user,
        data,
        time: event["time"].as_u64().unwrap(),
        count: event["count"].as_u64().map(|c| c as usize),
    }
    .to_frame();
    String::from_utf8(passerby::ws::frame::payload(&frame).to_vec()).unwrap()
}

#[tokio::test]
async fn a_small_room_keeps_the_seeds_list_join_and_left_byte_for_byte() {
    let app = spawn_with(|c| big(c, 3, 1)).await;
    let (mut alice, _) = app.join("alice").await;
    let cookie = app.sign_in("bob").await;
    let mut bob = app.connect(&cookie).await;
    for _ in 0..2 {
        let (text, event) = raw(&mut bob).await;
        assert_eq!(text, seed_bytes(&event), "bob's own {}", event["type"]);
    }
    bob.expect("history").await;
    let (text, join) = raw(&mut alice).await;
    assert_eq!(join["type"], "join");
    assert_eq!(text, seed_bytes(&join));
    let (carol, _) = app.join("carol").await;
    let (text, join) = raw(&mut alice).await;
    assert_eq!(
        (join["type"].as_str(), join["count"].as_u64()),
        (Some("join"), Some(3))
    );
    assert_eq!(text, seed_bytes(&join), "a room at the line is small");
    close(carol).await;
    let (text, left) = raw(&mut alice).await;
    assert_eq!(left["type"], "left");
    assert_eq!(text, seed_bytes(&left));
    bob.expect("join").await;
    bob.expect("left").await;
    still_chatting(&mut alice, &mut bob, "small talk").await;
}
