//! Deleting messages (`DELETE /admin/api/rooms/{room}/messages/{id}`) and purging a user's
//! (`POST /admin/api/users/{id}/purge`): every socket of the room hears the `delete`, and
//! neither a newcomer's history nor a recovery with `since` holds the messages again.

use serde_json::{Value, json};

use crate::{
    helpers::{Client, TestApp, greeting, still_chatting, two_chatting},
    moderation::{Moderated, spawn_moderated},
    whispers::{many_sockets, open_in},
};

pub async fn delete_message(
    app: &TestApp,
    token: &str,
    room: &str,
    id: impl std::fmt::Display,
) -> reqwest::Response {
    app.http
        .delete(app.url(&format!("/admin/api/rooms/{room}/messages/{id}")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

pub async fn purge(app: &TestApp, token: &str, user: &Value, body: Value) -> reqwest::Response {
    app.http
        .post(app.url(&format!("/admin/api/users/{}/purge", user["id"])))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// Says `text`; the `chat` as `other` (another socket in the room) got it.
pub async fn said_by(speaker: &mut Client, other: &mut Client, text: &str) -> Value {
    speaker.say(text).await;
    let chat = other.expect("chat").await;
    assert_eq!(chat["data"], text);
    assert_eq!(speaker.expect("chat").await["id"], chat["id"]);
    chat
}

/// Says `text` and returns its id.
pub async fn said(speaker: &mut Client, other: &mut Client, text: &str) -> u64 {
    said_by(speaker, other, text).await["id"].as_u64().unwrap()
}

/// The ids of a `history`'s events, and the ids its `delete` events list.
pub fn history_ids(history: &Value) -> (Vec<u64>, Vec<u64>) {
    let events = history["data"].as_array().unwrap();
    let ids = events.iter().map(|e| e["id"].as_u64().unwrap()).collect();
    let deleted = events
        .iter()
        .filter(|e| e["type"] == "delete")
        .flat_map(|e| e["data"]["ids"].as_array().unwrap().clone())
        .map(|id| id.as_u64().unwrap())
        .collect();
    (ids, deleted)
}

/// Reads `delete` events until they list `n` ids, past presence; the ids, and each event's
/// count.
pub async fn deletes(client: &mut Client, n: usize) -> (Vec<u64>, Vec<usize>) {
    let (mut ids, mut sizes) = (Vec::new(), Vec::new());
    while ids.len() < n {
        let event = client.next_event().await;
        if event["type"] == "join" || event["type"] == "left" {
            continue;
        }
        assert_eq!(event["type"], "delete", "{event}");
        let listed: Vec<u64> = event["data"]["ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|id| id.as_u64().unwrap())
            .collect();
        assert!(event["id"].as_u64().unwrap() > *listed.last().unwrap());
        sizes.push(listed.len());
        ids.extend(listed);
    }
    (ids, sizes)
}

#[tokio::test]
async fn a_deleted_message_leaves_every_socket_history_and_recovery_even_after_a_restart() {
    let moderated = spawn_moderated(|_| {}).await;
    let (app, token) = (&moderated.app, moderated.token.clone());
    let (mut alice, mut bob) = two_chatting(app).await;
    let kept = said(&mut alice, &mut bob, "keep me").await;
    let doomed = said(&mut alice, &mut bob, "delete me").await;

    let response = delete_message(app, &token, "lobby", doomed).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["rooms"], json!({"lobby": 1}));
    assert_eq!(body["total"], 1);
    let mut delete_id = 0;
    for client in [&mut alice, &mut bob] {
        let delete = client.expect("delete").await;
        assert_eq!(delete["data"], json!({"id": doomed, "ids": [doomed]}));
        assert_eq!(delete["user"]["name"], "alice", "whose message it was");
        assert!(delete["id"].as_u64().unwrap() > doomed, "an id of its own");
        delete_id = delete["id"].as_u64().unwrap();
    }

    still_chatting(&mut alice, &mut bob, "still here").await;

    // A newcomer's history and a recovery hold the delete, not the message.
    let mut carol = app.connect(&app.sign_in("carol").await).await;
    // A newcomer's history is messages: a `join` to try deleting is Carol's own.
    let join_id = carol.expect("join").await["id"].as_u64().unwrap();
    let newcomer = greeting(&mut carol).await;
    let (ids, deleted) = history_ids(&newcomer);
    assert!(ids.contains(&kept) && ids.contains(&delete_id), "{ids:?}");
    assert!(!ids.contains(&doomed), "{ids:?}");
    assert_eq!(deleted, [doomed]);
    let mut resumed = app.connect_since(&app.sign_in("carol2").await, kept).await;
    let (ids, deleted) = history_ids(&greeting(&mut resumed).await);
    assert!(
        ids.contains(&delete_id) && !ids.contains(&doomed),
        "{ids:?}"
    );
    assert_eq!(deleted, [doomed]);

    // Twice is 404; so is anything that is not a message of that room.
    for (room, id) in [
        ("lobby", doomed.to_string()),
        ("lobby", join_id.to_string()),
        ("lobby", delete_id.to_string()),
        ("lobby", "999999".to_owned()),
        ("lobby", "x".to_owned()),
        ("tea", kept.to_string()),
    ] {
        let response = delete_message(app, &token, room, &id).await;
        assert_eq!(response.status(), 404, "{room}/{id}");
        let reason: Value = response.json().await.unwrap();
        assert!(
            reason["data"].as_str().unwrap().contains("no message"),
            "{reason}"
        );
    }
    drop((alice, bob, carol, resumed));

    let moderated = moderated.restart(|_| {}).await;
    let app = &moderated.app;
    let (_dave, _) = app.join("dave").await;
    let cookie = app.sign_in("erin").await;
    let mut erin = app.connect_since(&cookie, 0).await;
    let (ids, deleted) = history_ids(&greeting(&mut erin).await);
    assert!(ids.contains(&kept) && !ids.contains(&doomed), "{ids:?}");
    assert_eq!(deleted, [doomed]);
    assert_eq!(
        delete_message(app, &token, "lobby", doomed).await.status(),
        404
    );
}

fn lifted(c: &mut passerby::config::Config) {
    many_sockets(c);
    c.purge_batch = 2;
}

#[tokio::test]
async fn a_purge_takes_a_users_messages_by_room_then_everywhere_in_batches() {
    let Moderated {
        app,
        token,
        dir: _dir,
    } = spawn_moderated(lifted).await;
    let (alice_cookie, bob_cookie) = (app.sign_in("alice").await, app.sign_in("bob").await);
    let (mut alice, _) = open_in(&app, &alice_cookie, "lobby").await;
    let (mut bob, _) = open_in(&app, &bob_cookie, "lobby").await;
    alice.expect("join").await;
    let (mut alice_tea, _) = open_in(&app, &alice_cookie, "tea").await;
    let (mut bob_tea, _) = open_in(&app, &bob_cookie, "tea").await;
    alice_tea.expect("join").await;
    let first = said_by(&mut alice, &mut bob, "lobby 0").await;
    let alice_user = first["user"].clone();
    let mut lobby = vec![first["id"].as_u64().unwrap()];
    for n in 1..5 {
        lobby.push(said(&mut alice, &mut bob, &format!("lobby {n}")).await);
    }
    let bobs = said(&mut bob, &mut alice, "bob's own").await;
    let tea = [
        said(&mut alice_tea, &mut bob_tea, "tea 0").await,
        said(&mut alice_tea, &mut bob_tea, "tea 1").await,
    ];

    let response = purge(&app, &token, &alice_user, json!({"room": "lobby"})).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["rooms"], json!({"lobby": 5}));
    let (ids, sizes) = deletes(&mut bob, 5).await;
    assert_eq!(ids, lobby);
    assert_eq!(sizes, [2, 2, 1], "one delete per batch of --purge-batch");
    deletes(&mut alice, 5).await;

    // Everywhere: only tea has any left.
    let response = purge(&app, &token, &alice_user, json!({})).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["rooms"], json!({"tea": 2}));
    assert_eq!(deletes(&mut bob_tea, 2).await.0, tea);

    // The last minute: what alice just said goes, bob's stays.
    let recent = said(&mut alice, &mut bob, "just now").await;
    let response = purge(&app, &token, &alice_user, json!({"minutes": 1})).await;
    assert_eq!(
        response.json::<Value>().await.unwrap()["rooms"],
        json!({"lobby": 1})
    );
    assert_eq!(deletes(&mut bob, 1).await.0, [recent]);
    let response = purge(&app, &token, &alice_user, json!({})).await;
    assert_eq!(response.json::<Value>().await.unwrap()["total"], 0);
    for bad in [
        json!({"minutes": 0}),
        json!({"room": "no room"}),
        json!({"rooms": 1}),
    ] {
        assert_eq!(
            purge(&app, &token, &alice_user, bad.clone()).await.status(),
            400,
            "{bad}"
        );
    }
    // Bob's message was never touched.
    let cookie = app.sign_in("dave").await;
    let mut dave = app.connect_since(&cookie, 0).await;
    let (ids, _) = history_ids(&greeting(&mut dave).await);
    assert!(ids.contains(&bobs), "{ids:?}");
    assert!(lobby.iter().chain(&tea).all(|id| !ids.contains(id)));
}

#[tokio::test]
async fn a_long_purge_goes_in_bounded_steps_while_other_rooms_keep_chatting() {
    const MESSAGES: usize = 400;
    let Moderated {
        app,
        token,
        dir: _dir,
    } = spawn_moderated(|c| {
        many_sockets(c);
        c.purge_batch = 25;
    })
    .await;
    let (mallory_cookie, bob_cookie) = (app.sign_in("mallory").await, app.sign_in("bob").await);
    let (mut mallory, _) = open_in(&app, &mallory_cookie, "lobby").await;
    let (mut bob, _) = open_in(&app, &bob_cookie, "lobby").await;
    mallory.expect("join").await;
    for n in 0..MESSAGES {
        mallory.say(&format!("spam {n}")).await;
    }
    let mallory_user = bob.expect("chat").await["user"].clone();
    for _ in 1..MESSAGES {
        bob.expect("chat").await;
    }
    let (mut carol, mut dave) = {
        let (c, d) = (app.sign_in("carol").await, app.sign_in("dave").await);
        let (mut carol, _) = open_in(&app, &c, "tea").await;
        let (dave, _) = open_in(&app, &d, "tea").await;
        carol.expect("join").await;
        (carol, dave)
    };
    let purging = {
        let (http, url) = (
            app.http.clone(),
            app.url(&format!("/admin/api/users/{}/purge", mallory_user["id"])),
        );
        let token = token.clone();
        tokio::spawn(async move {
            let request = http.post(url).bearer_auth(token).json(&json!({}));
            request.send().await.unwrap()
        })
    };
    for n in 0..20 {
        still_chatting(&mut carol, &mut dave, &format!("tea {n}")).await;
    }
    let response = purging.await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.json::<Value>().await.unwrap()["rooms"],
        json!({"lobby": MESSAGES})
    );
    let (ids, sizes) = deletes(&mut bob, MESSAGES).await;
    assert_eq!(ids.len(), MESSAGES);
    assert_eq!(sizes.len(), MESSAGES / 25);
    assert!(sizes.iter().all(|&n| n <= 25), "{sizes:?}");
}

#[tokio::test]
async fn only_a_moderator_deletes_and_each_deletion_is_in_the_audit_log() {
    let moderated = spawn_moderated(|_| {}).await;
    let (app, token) = (&moderated.app, moderated.token.as_str());
    let (mut alice, mut bob) = two_chatting(app).await;
    let chat = said_by(&mut alice, &mut bob, "mine").await;
    let id = chat["id"].as_u64().unwrap();
    for wrong in ["", "not-a-token"] {
        let response = delete_message(app, wrong, "lobby", id).await;
        assert_eq!(response.status(), 401);
        let response = purge(app, wrong, &chat["user"], json!({})).await;
        assert_eq!(response.status(), 401);
    }
    let unsigned = app
        .http
        .post(app.url(&format!("/admin/api/users/{}/purge", chat["user"]["id"])))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status(), 401);
    still_chatting(&mut alice, &mut bob, "nothing was deleted").await;

    assert_eq!(delete_message(app, token, "lobby", id).await.status(), 200);
    let body = json!({"room": "lobby", "minutes": 5, "reason": "spam"});
    assert_eq!(purge(app, token, &chat["user"], body).await.status(), 200);
    let (status, audit) = moderated
        .api(reqwest::Method::GET, "/admin/api/audit", None)
        .await;
    assert_eq!(status, 200);
    let entries = audit["entries"].as_array().unwrap();
    assert_eq!(entries[0]["action"], "purge");
    assert_eq!(entries[0]["target"], format!("user:{}", chat["user"]["id"]));
    let reason = entries[0]["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("spam (1 message(s) in room lobby"),
        "{reason}"
    );
    assert_eq!(entries[1]["action"], "delete");
    assert_eq!(entries[1]["target"], format!("message:lobby/{id}"));
    assert_eq!(entries[0]["moderator"], "alice");
}

#[tokio::test]
async fn with_history_off_there_is_nothing_to_delete_and_the_answer_says_so() {
    let moderated = spawn_moderated(|c| c.history_max_events = 0).await;
    let (app, token) = (&moderated.app, moderated.token.as_str());
    let (mut alice, mut bob) = two_chatting(app).await;
    let chat = said_by(&mut alice, &mut bob, "said").await;
    let response = delete_message(app, token, "lobby", &chat["id"]).await;
    assert_eq!(response.status(), 409);
    let reason: Value = response.json().await.unwrap();
    assert!(
        reason["data"]
            .as_str()
            .unwrap()
            .contains("keeps no history")
    );
    let response = purge(app, token, &chat["user"], json!({"minutes": 0.5})).await;
    assert_eq!(response.status(), 409);
    still_chatting(&mut alice, &mut bob, "still here").await;
}
