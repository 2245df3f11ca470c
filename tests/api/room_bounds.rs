//! Rooms and socket opens are bounded: opens per user and per address (429 before the
//! upgrade), new rooms per user and rooms per instance (4005), each while others chat; and a
//! room let go keeps its ids increasing when it is used again.

use std::{net::Ipv4Addr, time::Duration};

use passerby::config::Config;
use serde_json::Value;
use tokio_tungstenite::tungstenite::{self, client::IntoClientRequest, http::HeaderValue};

use crate::{
    helpers::{Client, TestApp, WAIT, spawn_with, still_chatting, two_chatting},
    raw::raw_from,
};

/// Opens `/ws<query>` with `cookie`; the HTTP status if the upgrade was refused, with its
/// `Retry-After`.
async fn open(app: &TestApp, query: &str, cookie: &str) -> Result<Client, (u16, Option<String>)> {
    match app
        .connect_to(&format!("/ws{query}"), &[("Cookie", cookie)])
        .await
    {
        Ok(client) => Ok(client),
        Err(tungstenite::Error::Http(response)) => Err((
            response.status().as_u16(),
            response
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
        )),
        Err(e) => panic!("the socket neither opened nor was refused: {e}"),
    }
}

/// Opens a socket from another loopback address, as another client would.
async fn open_from(app: &TestApp, from: Ipv4Addr, cookie: &str) -> Result<Client, u16> {
    let tcp = raw_from(app.addr, from).await;
    let mut request = app.ws_url("/ws?room=far").into_client_request().unwrap();
    request
        .headers_mut()
        .insert("Cookie", HeaderValue::from_str(cookie).unwrap());
    match tokio_tungstenite::client_async(request, tokio_tungstenite::MaybeTlsStream::Plain(tcp))
        .await
    {
        Ok((ws, _)) => Ok(Client { ws }),
        Err(tungstenite::Error::Http(response)) => Err(response.status().as_u16()),
        Err(e) => panic!("the socket neither opened nor was refused: {e}"),
    }
}

/// The socket's first frames up to its `history`; the `list`'s id.
async fn entered(client: &mut Client) -> u64 {
    loop {
        let event = client.next_event().await;
        if event["type"] == "list" {
            let id = event["id"].as_u64().unwrap();
            client.expect("history").await;
            return id;
        }
    }
}

/// Carol signed in, with a socket held open in each of two new rooms.
async fn carol_in_two_rooms(app: &TestApp) -> (String, Vec<Client>) {
    let carol = app.sign_in("carol").await;
    let mut held = Vec::new();
    for room in ["r1", "r2"] {
        let mut socket = open(app, &format!("?room={room}"), &carol).await.unwrap();
        entered(&mut socket).await;
        held.push(socket);
    }
    (carol, held)
}

#[tokio::test]
async fn a_user_opening_sockets_past_the_rate_gets_429_with_retry_after() {
    let app = spawn_with(|c| {
        c.socket_rate = 0.01;
        c.socket_burst = 3.0;
    })
    .await;
    let (mut alice, mut bob) = two_chatting(&app).await;
    let carol = app.sign_in("carol").await;
    for _ in 0..3 {
        let mut socket = open(&app, "?room=c", &carol)
            .await
            .expect("within the burst");
        entered(&mut socket).await;
    }
    let refused = open(&app, "?room=c", &carol).await.err();
    let (status, retry_after) = refused.expect("the fourth open is refused");
    assert_eq!(status, 429);
    let secs: u64 = retry_after.expect("Retry-After").parse().unwrap();
    assert!(secs >= 1, "{secs}");
    // Her address is not spent, nor are the others.
    let dave = app.sign_in("dave").await;
    open(&app, "?room=d", &dave)
        .await
        .expect("another user opens");
    still_chatting(&mut alice, &mut bob, "carol's loop costs us nothing").await;
}

#[tokio::test]
async fn an_address_opening_sockets_past_the_rate_gets_429_others_do_not() {
    let app = spawn_with(|c| {
        c.socket_address_rate = 0.01;
        c.socket_address_burst = 2.0;
    })
    .await;
    let (mut alice, mut bob) = two_chatting(&app).await;
    let far = Ipv4Addr::new(127, 0, 0, 5);
    let mut held = Vec::new();
    for n in 0..2 {
        let cookie = app.sign_in(&format!("guest{n}")).await;
        held.push(
            open_from(&app, far, &cookie)
                .await
                .expect("within the burst"),
        );
    }
    // A new user from the same address: the address is out.
    let cookie = app.sign_in("guest9").await;
    assert_eq!(open_from(&app, far, &cookie).await.err(), Some(429));
    assert!(
        open_from(&app, Ipv4Addr::new(127, 0, 0, 6), &cookie)
            .await
            .is_ok(),
        "another address has its own allowance"
    );
    still_chatting(&mut alice, &mut bob, "still here").await;
}

#[tokio::test]
async fn a_user_opening_new_rooms_past_the_rate_is_closed_with_4005() {
    let app = spawn_with(|c| c.room_rate = 2.0).await;
    let (mut alice, mut bob) = two_chatting(&app).await;
    let (carol, _held) = carol_in_two_rooms(&app).await;
    let mut third = open(&app, "?room=r3", &carol).await.unwrap();
    let (code, reason) = third.close_code().await.expect("a close frame");
    assert_eq!(code, 4005, "{reason}");
    assert!(reason.contains("too many new rooms"), "{reason}");
    // A room with people in it is not a new room.
    let mut lobby = open(&app, "", &carol).await.unwrap();
    entered(&mut lobby).await;
    assert_eq!(alice.expect("join").await["data"], "carol joined.");
    assert_eq!(bob.expect("join").await["data"], "carol joined.");
    // Nor is a room she already opened.
    let mut again = open(&app, "?room=r1", &carol).await.unwrap();
    entered(&mut again).await;
    still_chatting(&mut alice, &mut bob, "carol cannot flood rooms").await;
}

#[tokio::test]
async fn rooms_past_the_instance_cap_are_refused_with_4005_until_one_empties() {
    let app = spawn_with(|c| c.max_rooms = 3).await;
    let (mut alice, mut bob) = two_chatting(&app).await;
    let (_carol, mut held) = carol_in_two_rooms(&app).await;
    let dave = app.sign_in("dave").await;
    let mut refused = open(&app, "?room=r3", &dave).await.unwrap();
    let (code, reason) = refused.close_code().await.expect("a close frame");
    assert_eq!(code, 4005, "{reason}");
    assert!(reason.contains("too many rooms"), "{reason}");
    still_chatting(&mut alice, &mut bob, "the lobby goes on").await;
    // An empty room makes way at once, however recently it was used.
    drop(held.pop());
    assert!(enter_when_admitted(&app, "?room=r3", &dave).await > 0);
}

/// Opens a socket into a room, trying again while it is refused with 4005 (a socket that
/// just closed may not have left its room yet); the `list`'s id.
async fn enter_when_admitted(app: &TestApp, query: &str, cookie: &str) -> u64 {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let mut socket = open(app, query, cookie).await.unwrap();
        let first: Value = match tokio::time::timeout(WAIT, socket_event(&mut socket)).await {
            Ok(Some(event)) => event,
            _ => {
                assert!(tokio::time::Instant::now() < deadline, "never admitted");
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        let mut id = first["id"].as_u64().unwrap();
        if first["type"] != "list" {
            id = entered(&mut socket).await;
        } else {
            socket.expect("history").await;
        }
        return id;
    }
}

/// The next event, or `None` if the socket closed (refused).
async fn socket_event(socket: &mut Client) -> Option<Value> {
    use futures_util::StreamExt;
    use tungstenite::Message;
    loop {
        match socket.ws.next().await? {
            Ok(Message::Text(text)) => return serde_json::from_str(&text).ok(),
            Ok(Message::Ping(_) | Message::Pong(_)) => continue,
            _ => return None,
        }
    }
}

/// One room at most in memory: opening another makes every empty one go at once.
async fn ids_go_on_after_eviction(configure: impl FnOnce(&mut Config)) {
    let app = spawn_with(|c| {
        c.max_rooms = 1;
        configure(c);
    })
    .await;
    let carol = app.sign_in("carol").await;
    let mut first = open(&app, "?room=x", &carol).await.unwrap();
    entered(&mut first).await;
    first.say("before").await;
    let said = first.expect("chat").await["id"].as_u64().unwrap();
    drop(first);
    enter_when_admitted(&app, "?room=y", &carol).await;
    let again = enter_when_admitted(&app, "?room=x", &carol).await;
    assert!(again > said, "ids went back: {again} after {said}");
}

#[tokio::test]
async fn a_room_let_go_and_used_again_keeps_its_ids_increasing_in_memory() {
    ids_go_on_after_eviction(|c| c.history_max_events = 0).await;
}

#[tokio::test]
async fn a_room_let_go_and_used_again_keeps_its_ids_increasing_with_sqlite() {
    ids_go_on_after_eviction(|_| {}).await;
}
