//! The WebSocket protocol: who may connect, presence, chat and ids.

use std::time::Duration;

use serde_json::Value;

use crate::helpers::{spawn_app, spawn_with, two_chatting};

const QUIET: Duration = Duration::from_millis(300);

#[tokio::test]
async fn a_new_socket_gets_join_then_the_list_with_itself() {
    let app = spawn_app().await;
    let cookie = app.sign_in("小明").await;
    let mut client = app.connect(&cookie).await;
    let join = client.expect("join").await;
    assert_eq!(join["data"], "小明 joined.");
    assert_eq!(join["user"]["name"], "小明");
    assert_eq!(join["count"], 1);
    let list = client.expect("list").await;
    client.expect("history").await;
    let users = list["data"].as_array().unwrap();
    assert_eq!(users.len(), 1);
    assert_eq!(users[0]["name"], "小明");
    assert_eq!(list["count"], 1);
    assert!(list["id"].as_u64() > join["id"].as_u64());
    assert!(list["time"].as_u64().unwrap() > 1_600_000_000_000);
}

#[tokio::test]
async fn the_socket_opens_on_ws_on_root_and_on_any_path() {
    let app = spawn_app().await;
    let cookie = app.sign_in("a").await;
    for path in ["/ws", "/", "/anything/at/all"] {
        let mut client = app
            .connect_to(path, &[("Cookie", &cookie)])
            .await
            .unwrap_or_else(|e| panic!("{path}: {e}"));
        client.expect("join").await;
        client.expect("list").await;
        client.expect("history").await;
        drop(client);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn everyone_sees_join_chat_and_left_with_one_id_each() {
    let app = spawn_app().await;
    let (mut alice, _) = app.join("alice").await;
    let (mut bob, bob_user) = app.join("bob").await;

    let join = alice.expect("join").await;
    assert_eq!(join["data"], "bob joined.");
    assert_eq!(join["user"], bob_user);
    assert_eq!(join["count"], 2);

    bob.say("  hello alice  ").await;
    let to_alice = alice.expect("chat").await;
    let to_bob = bob.expect("chat").await;
    assert_eq!(
        to_alice, to_bob,
        "one event, same id and bytes for every recipient"
    );
    assert_eq!(to_alice["data"], "hello alice", "chat is trimmed");
    assert_eq!(to_alice["user"], bob_user);
    assert!(to_alice["id"].as_u64() > join["id"].as_u64());

    drop(bob);
    let left = alice.expect("left").await;
    assert_eq!(left["data"], "bob is left.");
    assert_eq!(left["user"], bob_user);
    assert_eq!(left["count"], 1);
    assert!(left["id"].as_u64() > to_alice["id"].as_u64());
}

#[tokio::test]
async fn the_list_names_everyone_online_once() {
    let app = spawn_app().await;
    let (_alice, _) = app.join("alice").await;
    let bob_cookie = app.sign_in("bob").await;
    let mut bob_tab1 = app.connect(&bob_cookie).await;
    bob_tab1.expect("join").await;
    bob_tab1.expect("list").await;
    bob_tab1.expect("history").await;
    let mut bob_tab2 = app.connect(&bob_cookie).await;
    let list = bob_tab2.expect("list").await;
    bob_tab2.expect("history").await;
    let names: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["alice", "bob"]);
}

#[tokio::test]
async fn a_second_tab_is_not_a_second_join_and_closing_one_tab_is_not_leaving() {
    let app = spawn_app().await;
    let (mut alice, _) = app.join("alice").await;
    let bob_cookie = app.sign_in("bob").await;
    let mut tab1 = app.connect(&bob_cookie).await;
    tab1.expect("join").await;
    tab1.expect("list").await;
    tab1.expect("history").await;
    assert_eq!(alice.expect("join").await["data"], "bob joined.");

    let mut tab2 = app.connect(&bob_cookie).await;
    tab2.expect("list").await;
    tab2.expect("history").await;
    drop(tab1);
    bob_chat_reaches_both(&mut alice, &mut tab2).await;
    drop(tab2);
    assert_eq!(alice.expect("left").await["data"], "bob is left.");
}

/// Proves nothing was broadcast in between: the next event alice sees is bob's chat.
async fn bob_chat_reaches_both(
    alice: &mut crate::helpers::Client,
    bob: &mut crate::helpers::Client,
) {
    bob.say("still here").await;
    assert_eq!(alice.expect("chat").await["data"], "still here");
    assert_eq!(bob.expect("chat").await["data"], "still here");
}

#[tokio::test]
async fn a_json_chat_command_is_chat() {
    let app = spawn_app().await;
    let (mut alice, _) = app.join("alice").await;
    alice.say(r#"{"type":"chat","data":" hi "}"#).await;
    assert_eq!(alice.expect("chat").await["data"], "hi");
    alice.say(r#"{"just":"json"}"#).await;
    assert_eq!(alice.expect("chat").await["data"], r#"{"just":"json"}"#);
}

#[tokio::test]
async fn unknown_commands_get_an_error_to_the_sender_only() {
    let app = spawn_app().await;
    let (mut alice, mut bob) = two_chatting(&app).await;
    bob.say(r#"{"type":"teleport"}"#).await;
    let error = bob.expect("error").await;
    assert!(
        error["data"].as_str().unwrap().contains("teleport"),
        "{error}"
    );
    assert!(alice.events_within(QUIET).await.is_empty());
}

#[tokio::test]
async fn blank_messages_are_ignored() {
    let app = spawn_app().await;
    let (mut alice, _) = app.join("alice").await;
    alice.say("   \n\t ").await;
    alice.say(r#"{"type":"chat","data":"  "}"#).await;
    alice.say("real").await;
    assert_eq!(alice.expect("chat").await["data"], "real");
}

#[tokio::test]
async fn ids_strictly_increase_under_concurrent_senders() {
    let app = spawn_with(|c| {
        c.rate_limit = 1000.0;
        c.rate_burst = 1000.0;
    })
    .await;
    let (mut watcher, _) = app.join("watcher").await;
    let mut senders = Vec::new();
    for i in 0..4 {
        let (client, _) = app.join(&format!("s{i}")).await;
        senders.push(client);
    }
    for _ in 0..4 {
        watcher.expect("join").await;
    }
    let tasks: Vec<_> = senders
        .into_iter()
        .enumerate()
        .map(|(i, mut c)| {
            tokio::spawn(async move {
                for n in 0..25 {
                    c.say(&format!("{i}-{n}")).await;
                }
                c
            })
        })
        .collect();
    let mut last = 0;
    for _ in 0..100 {
        let event = watcher.expect("chat").await;
        let id = event["id"].as_u64().unwrap();
        assert!(id > last, "id {id} after {last}");
        last = id;
    }
    for t in tasks {
        t.await.unwrap();
    }
}

#[tokio::test]
async fn bad_cookies_are_closed_with_4001_and_announce_nothing() {
    let app = spawn_app().await;
    let (mut alice, alice_user) = app.join("alice").await;
    let other_server = spawn_app().await;
    let foreign = other_server.sign_in("mallory").await;
    let real = app.sign_in("eve").await;
    let signed = real.strip_prefix("name=").unwrap();
    let signed = signed
        .replace("%2F", "/")
        .replace("%2B", "+")
        .replace("%3D", "=");
    let (tag, _) = signed.split_at(44);
    // The seed's unsigned cookie: base64 JSON naming alice.
    let seed_style = format!(
        "name={}",
        base64_encode(&serde_json::to_vec(&alice_user).unwrap())
    );
    // eve's real tag in front of a payload that claims to be alice.
    let edited = format!(
        "name={tag}{}",
        base64_encode(&serde_json::to_vec(&alice_user).unwrap())
    );
    for cookie in [
        None,
        Some("name=garbage".to_owned()),
        Some(seed_style),
        Some(edited),
        Some(foreign),
    ] {
        let headers: Vec<(&str, &str)> = cookie.iter().map(|c| ("Cookie", c.as_str())).collect();
        let mut client = app
            .connect_to("/ws", &headers)
            .await
            .expect("upgrade goes through");
        let (code, reason) = client.close_code().await.expect("a close frame");
        assert_eq!(
            (code, reason.as_str()),
            (4001, "Invalid user"),
            "{cookie:?}"
        );
    }
    assert!(
        alice.events_within(QUIET).await.is_empty(),
        "nothing broadcast"
    );
    alice.say("still fine").await;
    alice.expect("chat").await;
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[tokio::test]
async fn cross_origin_upgrades_are_refused_with_403() {
    let app = spawn_with(|c| c.allowed_origins = vec!["https://chat.example".into()]).await;
    let cookie = app.sign_in("a").await;
    let refused = app
        .connect_to(
            "/ws",
            &[("Cookie", &cookie), ("Origin", "http://evil.example")],
        )
        .await;
    match refused {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 403);
        }
        other => panic!("expected 403, got {:?}", other.map(|_| "a socket")),
    }
    let null_origin = app
        .connect_to("/ws", &[("Cookie", &cookie), ("Origin", "null")])
        .await;
    assert!(null_origin.is_err());
    let own = app.url("");
    for origin in [own.as_str(), "https://chat.example"] {
        let mut ok = app
            .connect_to("/ws", &[("Cookie", &cookie), ("Origin", origin)])
            .await
            .unwrap_or_else(|e| panic!("{origin}: {e}"));
        ok.expect("join").await;
        drop(ok);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_bad_room_name_is_closed_with_a_reason() {
    let app = spawn_app().await;
    let cookie = app.sign_in("a").await;
    let mut client = app
        .connect_to("/ws?room=no%20spaces", &[("Cookie", &cookie)])
        .await
        .unwrap();
    let (code, reason) = client.close_code().await.unwrap();
    assert_eq!(code, 4002);
    assert!(reason.contains("room name"), "{reason}");
}

#[tokio::test]
async fn rooms_chosen_by_query_are_separate() {
    let app = spawn_app().await;
    let (mut lobby, _) = app.join("a").await;
    let cookie = app.sign_in("b").await;
    let mut other = app
        .connect_to("/ws?room=茶室", &[("Cookie", &cookie)])
        .await
        .unwrap();
    let list: Value = {
        other.expect("join").await;
        other.expect("list").await
    };
    other.expect("history").await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    other.say("hello tea room").await;
    other.expect("chat").await;
    assert!(lobby.events_within(QUIET).await.is_empty());
}
