//! `PUT /admin/api/rooms/{room}`: slow mode lets one message per user per N seconds, and a
//! read-only room takes none; settings survive a restart.

use std::time::Duration;

use reqwest::Method;
use serde_json::json;

use super::spawn_moderated;
use crate::helpers::{WAIT, still_chatting, two_chatting};

#[tokio::test]
async fn slow_mode_spaces_each_users_messages_and_read_only_takes_none() {
    let m = spawn_moderated(|_| {}).await;
    let (mut alice, mut bob) = two_chatting(&m.app).await;
    let refused = m
        .call(
            Method::PUT,
            "/admin/api/rooms/lobby",
            Some("pbm_wrong"),
            Some(json!({"slow_mode_secs": 1})),
            &[],
        )
        .await;
    assert_eq!(refused.status(), 401);
    let (status, body) = m
        .api(
            Method::PUT,
            "/admin/api/rooms/lobby",
            Some(json!({"slow_mode_secs": 3})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"slow_mode_secs": 3, "read_only": false}));

    still_chatting(&mut alice, &mut bob, "one").await;
    alice.say("two").await;
    let error = alice.expect("error").await;
    let text = error["data"].as_str().unwrap();
    assert!(
        text.starts_with("slow mode: one message every 3 s here; wait "),
        "{text}"
    );
    // Per user: bob was quiet, so bob may speak.
    still_chatting(&mut bob, &mut alice, "bob here").await;
    let deadline = tokio::time::Instant::now() + WAIT * 2;
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        alice.say("two").await;
        let event = alice.next_event().await;
        if event["type"] == "chat" {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "slow mode never let go"
        );
    }
    assert_eq!(bob.expect("chat").await["data"], "two");

    let (status, _) = m
        .api(
            Method::PUT,
            "/admin/api/rooms/lobby",
            Some(json!({"read_only": true})),
        )
        .await;
    assert_eq!(status, 200);
    for client in [&mut alice, &mut bob] {
        client.say("anyone?").await;
        assert_eq!(
            client.expect("error").await["data"],
            "this room is read-only"
        );
    }
    let (status, _) = m
        .api(Method::PUT, "/admin/api/rooms/lobby", Some(json!({})))
        .await;
    assert_eq!(status, 200);
    still_chatting(&mut alice, &mut bob, "open again").await;

    let (_, audit) = m.api(Method::GET, "/admin/api/audit", None).await;
    assert_eq!(audit["entries"][0]["action"], "room");
    assert_eq!(audit["entries"][0]["target"], "room:lobby");
    for (path, body) in [
        ("/admin/api/rooms/lobby", json!({"slow_mode_secs": 99999})),
        ("/admin/api/rooms/lobby", json!({"slow_mode_secs": -1})),
        ("/admin/api/rooms/lobby", json!({"loud": true})),
    ] {
        let (status, _) = m.api(Method::PUT, path, Some(body.clone())).await;
        assert!(status == 400 || status == 422, "{body}: {status}");
    }
}

#[tokio::test]
async fn room_settings_survive_a_restart_and_their_number_is_capped() {
    let m = spawn_moderated(|c| c.moderators.max_room_settings = 1).await;
    let (status, _) = m
        .api(
            Method::PUT,
            "/admin/api/rooms/news",
            Some(json!({"read_only": true})),
        )
        .await;
    assert_eq!(status, 200);
    let (status, body) = m
        .api(
            Method::PUT,
            "/admin/api/rooms/other",
            Some(json!({"slow_mode_secs": 5})),
        )
        .await;
    assert_eq!(status, 409);
    assert!(
        body["data"]
            .as_str()
            .unwrap()
            .contains("--max-room-settings")
    );
    let m = m.restart(|_| {}).await;
    let (_, news) = m.api(Method::GET, "/admin/api/rooms/news", None).await;
    assert_eq!(news, json!({"slow_mode_secs": 0, "read_only": true}));
    let (_, other) = m.api(Method::GET, "/admin/api/rooms/other", None).await;
    assert_eq!(other, json!({"slow_mode_secs": 0, "read_only": false}));
}
