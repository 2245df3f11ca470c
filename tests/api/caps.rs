//! Connection caps: per client address (behind a trusted proxy, per forwarded address), in
//! total, and WebSockets per user; each while other clients keep chatting.

use std::{net::Ipv4Addr, time::Duration};

use futures_util::StreamExt;
use tokio_tungstenite::tungstenite;

use crate::{
    helpers::{Client, TestApp, WAIT, metric, spawn_with, still_chatting, two_chatting},
    raw::{Raw, get, raw_from, read_response},
};

/// A refusal at accept: the answer comes without a request, and the connection then closes.
async fn refused_at_accept(app: &TestApp, from: Ipv4Addr) -> Raw {
    let mut tcp = raw_from(app.addr, from).await;
    let answer = read_response(&mut tcp).await.expect("an answer");
    assert!(answer.head.contains("connection: close"), "{answer:?}");
    assert!(answer.head.contains("retry-after:"), "{answer:?}");
    let json: serde_json::Value = serde_json::from_str(&answer.body).unwrap();
    assert_eq!(json["code"], 1, "{json}");
    answer
}

/// Retries a fresh connection from `from` until it is served, as a client honouring
/// Retry-After would.
async fn served_again(app: &TestApp, from: Ipv4Addr) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let mut tcp = raw_from(app.addr, from).await;
        if let Some(response) = get(&mut tcp, "/healthz", "").await {
            if response.status == 200 {
                return;
            }
        }
        assert!(tokio::time::Instant::now() < deadline, "never let in again");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn connections_past_the_per_address_cap_get_429_until_some_close() {
    // Alice and Bob hold three connections from 127.0.0.1; the attacker is 127.0.0.3.
    let app = spawn_with(|c| c.max_connections_per_address = 4).await;
    let (mut alice, mut bob) = two_chatting(&app).await;
    let attacker = Ipv4Addr::new(127, 0, 0, 3);
    let mut held = Vec::new();
    for _ in 0..4 {
        let mut tcp = raw_from(app.addr, attacker).await;
        assert_eq!(get(&mut tcp, "/healthz", "").await.unwrap().status, 200);
        held.push(tcp);
    }
    let refused = refused_at_accept(&app, attacker).await;
    assert_eq!(refused.status, 429, "{refused:?}");
    assert!(refused.head.contains("retry-after: 1"), "{refused:?}");

    // Another address has its own allowance, and the chat goes on.
    let mut other = raw_from(app.addr, Ipv4Addr::new(127, 0, 0, 4)).await;
    assert_eq!(get(&mut other, "/healthz", "").await.unwrap().status, 200);
    still_chatting(&mut alice, &mut bob, "not us").await;

    drop(held.pop());
    served_again(&app, attacker).await;
    let text = app.metrics().await;
    assert!(
        metric(
            &text,
            r#"passerby_connections_refused_total{reason="per_address"}"#
        ) >= Some(1.0),
        "{text}"
    );
}

#[tokio::test]
async fn past_max_connections_a_new_connection_gets_503() {
    let app = spawn_with(|c| c.max_connections = 6).await;
    let (mut alice, mut bob) = two_chatting(&app).await;
    let crowd = Ipv4Addr::new(127, 0, 0, 5);
    let mut held = Vec::new();
    let refused = loop {
        assert!(held.len() <= 6, "never refused");
        let mut tcp = raw_from(app.addr, crowd).await;
        match get(&mut tcp, "/healthz", "").await {
            Some(response) if response.status == 200 => held.push(tcp),
            Some(response) => break response,
            None => panic!("closed without an answer"),
        }
    };
    assert_eq!(refused.status, 503, "{refused:?}");
    assert!(refused.head.contains("retry-after:") && refused.head.contains("connection: close"));
    assert!(held.len() >= 2, "only {} let in", held.len());
    still_chatting(&mut alice, &mut bob, "full house").await;

    drop(held.pop());
    served_again(&app, crowd).await;
}

/// Opens a socket as if forwarded by the trusted proxy for `client`.
async fn socket_for(
    app: &TestApp,
    cookie: &str,
    client: &str,
) -> Result<Client, tungstenite::Error> {
    app.connect_to("/ws", &[("Cookie", cookie), ("X-Forwarded-For", client)])
        .await
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_forwarded_address_has_its_own_allowance() {
    let app = spawn_with(|c| {
        c.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
        c.max_connections_per_address = 2;
    })
    .await;
    let alice = app.sign_in("alice").await;
    let bob = app.sign_in("bob").await;
    let (one, two) = ("203.0.113.1", "203.0.113.2");
    // Four sockets from the proxy's one address: it is not capped at accept.
    let mut a1 = socket_for(&app, &alice, one).await.unwrap();
    let _a2 = socket_for(&app, &alice, one).await.unwrap();
    let mut b1 = socket_for(&app, &bob, two).await.unwrap();
    let _b2 = socket_for(&app, &bob, two).await.unwrap();
    match socket_for(&app, &alice, one).await {
        Err(tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 429);
            assert_eq!(response.headers()["retry-after"], "1");
        }
        other => panic!("expected 429, got {:?}", other.map(|_| ())),
    }
    let page = app
        .http
        .get(app.url("/healthz"))
        .header("X-Forwarded-For", one)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 429, "a plain request counts too");
    let reply: serde_json::Value = page.json().await.unwrap();
    assert_eq!(reply["code"], 1);

    // The sockets that got in chat.
    for _ in 0..3 {
        a1.next_event().await; // join, list, history
    }
    a1.say("through the proxy").await;
    loop {
        let event = b1.next_event().await;
        if event["type"] == "chat" {
            assert_eq!(event["data"], "through the proxy");
            break;
        }
    }

    // A closed socket gives its place back.
    drop(a1);
    let deadline = tokio::time::Instant::now() + WAIT;
    while socket_for(&app, &alice, one).await.is_err() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the place never came back"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn sockets_past_the_per_user_cap_close_with_4004_and_earlier_tabs_still_chat() {
    let app = spawn_with(|c| c.max_sockets_per_user = 2).await;
    let cookie = app.sign_in("alice").await;
    let mut first = app.connect(&cookie).await;
    for kind in ["join", "list", "history"] {
        first.expect(kind).await;
    }
    let (mut bob, _) = app.join("bob").await;
    first.expect("join").await;
    let second = app.connect(&cookie).await;
    let mut third = app.connect(&cookie).await;
    assert_eq!(
        third.close_code().await,
        Some((4004, "too many open tabs: close one".to_owned()))
    );
    // Her first tab still chats.
    first.say("one tab too many").await;
    loop {
        let event = bob.next_event().await;
        if event["type"] == "chat" {
            assert_eq!(event["data"], "one tab too many");
            break;
        }
    }
    assert_eq!(
        app.metric_becomes(
            r#"passerby_connections_refused_total{reason="per_user"}"#,
            1.0
        )
        .await,
        Some(1.0)
    );

    drop(second);
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let mut again = app.connect(&cookie).await;
        // A socket let in gets its list; a refused one gets a close frame.
        match again.ws.next().await {
            Some(Ok(tungstenite::Message::Text(_))) => break,
            other => assert!(
                tokio::time::Instant::now() < deadline,
                "the tab never came back: {other:?}"
            ),
        }
    }
}
