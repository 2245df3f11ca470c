//! Private messages across rooms, one user in several rooms, the count, and the room page.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{Client, TestApp, spawn_app, spawn_with};

const QUIET: Duration = Duration::from_millis(200);

/// Signs in as `name` and opens a socket in `room`, past its `join`, `list` and `history`.
async fn join_room(app: &TestApp, cookie: &str, room: &str) -> (Client, Value) {
    let mut client = app
        .connect_to(&format!("/ws?room={room}"), &[("Cookie", cookie)])
        .await
        .unwrap();
    client.expect("join").await;
    let list = client.expect("list").await;
    client.expect("history").await;
    (client, list)
}

fn whisper(to: &Value, text: &str) -> String {
    json!({"type": "private", "to": to["id"], "data": text}).to_string()
}

#[tokio::test]
async fn a_whisper_reaches_both_people_on_every_socket_and_nobody_else() {
    let app = spawn_app().await;
    let (mut alice, alice_user) = app.join("alice").await;
    let (mut bob, bob_user) = app.join("bob").await;
    let (mut carol, _) = app.join("carol").await;
    alice.expect("join").await;
    alice.expect("join").await;
    bob.expect("join").await;
    // Dave, in another room, is neither sender nor recipient.
    let dave = app.sign_in("dave").await;
    let (mut dave, _) = join_room(&app, &dave, "elsewhere").await;

    alice.say(&whisper(&bob_user, "  just between us  ")).await;
    for client in [&mut alice, &mut bob] {
        let event = client.expect("private").await;
        assert_eq!(event["user"], alice_user);
        assert_eq!(event["to"], bob_user);
        assert_eq!(event["data"], "just between us");
        assert!(event["id"].as_u64().is_some() && event["time"].as_u64().is_some());
    }
    // Carol, in the same room, hears the next chat and nothing before it.
    alice.say("hello all").await;
    assert_eq!(carol.next_event().await["type"], "chat");
    assert!(
        dave.events_within(QUIET).await.is_empty(),
        "another user hears nothing"
    );
}

#[tokio::test]
async fn a_whisper_finds_the_recipient_in_another_room_and_all_the_senders_tabs() {
    let app = spawn_app().await;
    let alice_cookie = app.sign_in("alice").await;
    let bob_cookie = app.sign_in("bob").await;
    let (mut alice_lobby, list) = join_room(&app, &alice_cookie, "lobby").await;
    let alice_user = list["user"].clone();
    let (mut alice_tea, _) = join_room(&app, &alice_cookie, "茶室").await;
    let (mut bob, list) = join_room(&app, &bob_cookie, "garden").await;
    let bob_user = list["user"].clone();

    alice_lobby.say(&whisper(&bob_user, "over here")).await;
    for client in [&mut alice_lobby, &mut alice_tea, &mut bob] {
        let event = client.expect("private").await;
        assert_eq!(event["user"], alice_user);
        assert_eq!(event["to"], bob_user);
    }
    // And back: Bob answers Alice, whose sockets in both rooms get it.
    bob.say(&whisper(&alice_user, "got it")).await;
    for client in [&mut bob, &mut alice_lobby, &mut alice_tea] {
        assert_eq!(client.expect("private").await["data"], "got it");
    }
}

#[tokio::test]
async fn a_whisper_to_nobody_online_is_an_error_to_the_sender() {
    let app = spawn_app().await;
    let (mut alice, alice_user) = app.join("alice").await;
    let (mut bob, _) = app.join("bob").await;
    alice.expect("join").await;
    // Signed in but with no socket open: not online.
    let offline = app.post_sign_in(&[("name", "offline")]).await;
    let offline: Value = offline.json().await.unwrap();
    for to in [offline["user"].clone(), json!({"id": 999_999})] {
        alice.say(&whisper(&to, "anyone?")).await;
        let error = alice.expect("error").await;
        assert!(
            error["data"].as_str().unwrap().contains("not online"),
            "{error}"
        );
    }
    alice.say(&whisper(&alice_user, "me, myself")).await;
    let error = alice.expect("error").await;
    assert!(
        error["data"].as_str().unwrap().contains("someone else"),
        "{error}"
    );
    for bad in [
        r#"{"type":"private","to":"2","data":"a string id"}"#,
        r#"{"type":"private","data":"to nobody"}"#,
        r#"{"type":"private","to":-3,"data":"x"}"#,
    ] {
        alice.say(bad).await;
        alice.expect("error").await;
    }
    assert!(bob.events_within(QUIET).await.is_empty());
    assert_eq!(app.rejected_becomes("bad_recipient", 3.0).await, Some(3.0));
}

#[tokio::test]
async fn whispers_have_the_chat_text_limit_and_rate_limit() {
    let app = spawn_with(|c| {
        c.max_message_chars = 5;
        c.rate_limit = 1.0;
        // The refused and the blank whisper take a token each, like sent ones.
        c.rate_burst = 4.0;
    })
    .await;
    let (mut alice, _) = app.join("alice").await;
    let (mut bob, bob_user) = app.join("bob").await;
    alice.expect("join").await;
    alice.say(&whisper(&bob_user, "far too long")).await;
    assert!(
        alice.expect("error").await["data"]
            .as_str()
            .unwrap()
            .contains("limit")
    );
    alice.say(&whisper(&bob_user, "   ")).await; // blank: ignored, as chat is
    alice.say(&whisper(&bob_user, "one")).await;
    alice.say("two").await;
    alice.say(&whisper(&bob_user, "three")).await;
    let kinds: Vec<Value> = [
        alice.next_event().await,
        alice.next_event().await,
        alice.next_event().await,
    ]
    .iter()
    .map(|e| e["type"].clone())
    .collect();
    assert_eq!(
        kinds,
        ["private", "chat", "error"],
        "the third is over the shared limit"
    );
    assert_eq!(bob.expect("private").await["data"], "one");
    assert_eq!(bob.expect("chat").await["data"], "two");
    assert!(bob.events_within(QUIET).await.is_empty());
}

#[tokio::test]
async fn one_user_in_two_rooms_is_present_and_counted_in_each_separately() {
    let app = spawn_app().await;
    let alice = app.sign_in("alice").await;
    let bob = app.sign_in("bob").await;
    let (mut a_lobby, list) = join_room(&app, &alice, "lobby").await;
    assert_eq!(list["count"], 1);
    let (a_tea, list) = join_room(&app, &alice, "tea").await;
    assert_eq!(list["count"], 1, "a room of her own");
    let (mut b_tea, list) = join_room(&app, &bob, "tea").await;
    assert_eq!(list["count"], 2);
    assert_eq!(list["data"].as_array().unwrap().len(), 2);
    assert!(
        a_lobby.events_within(QUIET).await.is_empty(),
        "bob joined tea, not the lobby"
    );

    // Alice closes her tea tab: she left tea, and is still in the lobby.
    drop(a_tea);
    let left = b_tea.expect("left").await;
    assert_eq!(left["count"], 1);
    b_tea.say("quiet here").await;
    b_tea.expect("chat").await;
    assert!(a_lobby.events_within(QUIET).await.is_empty());
    a_lobby.say("still here").await;
    a_lobby.expect("chat").await;
}

#[tokio::test]
async fn ids_run_per_room() {
    let app = spawn_app().await;
    let cookie = app.sign_in("a").await;
    let (mut first, list) = join_room(&app, &cookie, "first").await;
    let (mut second, other_list) = join_room(&app, &cookie, "second").await;
    assert_eq!(
        list["id"], other_list["id"],
        "each room started its own sequence"
    );
    first.say("1").await;
    first.say("2").await;
    let last_first = [first.next_event().await, first.next_event().await][1]["id"].clone();
    second.say("1").await;
    let next_second = second.next_event().await["id"].clone();
    assert!(next_second.as_u64() < last_first.as_u64());
}

#[tokio::test]
async fn the_page_shows_its_room_and_refuses_a_bad_one_clearly() {
    let app = spawn_app().await;
    let page = app.get("/ws?room=茶室").await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(
        html.contains(r#"data-room="茶室""#),
        "the page knows its room"
    );

    let lobby = app.text("/ws").await;
    assert!(lobby.contains(r#"data-room="lobby""#));

    for bad in ["no%20spaces", "..%2Fx", "%3Cscript%3E", "", &"a".repeat(33)] {
        let page = app.get(&format!("/ws?room={bad}")).await;
        assert_eq!(page.status(), 400, "{bad}");
        assert!(
            page.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
        let html = page.text().await.unwrap();
        assert!(html.contains("room name"), "{bad}: the reason is shown");
        assert!(
            html.contains(r#"href="/ws""#),
            "{bad}: a way back to the lobby"
        );
        assert!(
            !html.contains("<script>"),
            "{bad}: the name is shown as text"
        );
    }
}
