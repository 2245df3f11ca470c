//! `POST /admin/api/users/{id}/mute`: the muted user still reads, but each message, whisper
//! and image gets an `error` saying until when; the mute ends on its own and survives a
//! restart.

use std::time::Duration;

use reqwest::Method;
use serde_json::json;

use super::{chat_through, spawn_moderated};
use crate::{
    helpers::{WAIT, two_chatting},
    upload::{PNG, uploaded},
};

#[tokio::test]
async fn a_muted_user_reads_but_every_message_whisper_and_image_gets_an_error_until_it_ends() {
    let m = spawn_moderated(|_| {}).await;
    let (mut alice, mut bob) = two_chatting(&m.app).await;
    let (mut carol, carol_user) = m.app.join("carol").await;
    let carol_id = carol_user["id"].as_u64().unwrap();
    for client in [&mut alice, &mut bob] {
        client.expect("join").await;
    }
    let image = uploaded(&m.app, &m.app.sign_in("uploader").await, PNG).await;

    let path = format!("/admin/api/users/{carol_id}/mute");
    let refused = m
        .call(
            Method::POST,
            &path,
            Some("pbm_wrong"),
            Some(json!({"minutes": 1})),
            &[],
        )
        .await;
    assert_eq!(refused.status(), 401);
    // Four seconds: a fraction of a minute, so the test sees it end.
    let (status, mute) = m
        .api(
            Method::POST,
            &path,
            Some(json!({"minutes": 0.07, "reason": "calm down"})),
        )
        .await;
    assert_eq!(status, 200, "{mute}");
    assert_eq!(mute["user"], carol_id);

    carol.say("hello?").await;
    let error = carol.expect("error").await;
    let text = error["data"].as_str().unwrap();
    assert!(text.starts_with("you are muted until 20"), "{text}");
    assert!(text.ends_with(": calm down"), "{text}");
    let whisper = json!({"type": "private", "to": 1, "data": "psst"}).to_string();
    carol.say(&whisper).await;
    assert_eq!(carol.expect("error").await["data"], text);
    carol
        .say(&json!({"type": "image", "data": image}).to_string())
        .await;
    assert_eq!(carol.expect("error").await["data"], text);
    // Others chat on, and carol reads them.
    chat_through(&mut alice, &mut bob, "we can talk").await;
    assert_eq!(carol.expect("chat").await["data"], "we can talk");

    let (_, list) = m.api(Method::GET, "/admin/api/mutes", None).await;
    assert_eq!(list["mutes"][0]["user"], carol_id);

    // It ends on its own: carol tries every 200 ms until her line goes through.
    let deadline = tokio::time::Instant::now() + WAIT * 2;
    loop {
        carol.say("back").await;
        let event = carol.next_event().await;
        if event["type"] == "chat" {
            assert_eq!(event["data"], "back");
            break;
        }
        assert_eq!(event["type"], "error", "{event}");
        assert!(
            tokio::time::Instant::now() < deadline,
            "the mute never ended"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(alice.expect("chat").await["data"], "back");
    let (_, audit) = m.api(Method::GET, "/admin/api/audit", None).await;
    assert_eq!(audit["entries"][0]["action"], "mute");
    assert_eq!(audit["entries"][0]["target"], format!("user:{carol_id}"));
}

#[tokio::test]
async fn a_mute_survives_a_restart_and_can_be_lifted() {
    let m = spawn_moderated(|_| {}).await;
    let (mut carol, user) = m.app.join("carol").await;
    let id = user["id"].as_u64().unwrap();
    let path = format!("/admin/api/users/{id}/mute");
    let (status, _) = m
        .api(Method::POST, &path, Some(json!({"minutes": 60})))
        .await;
    assert_eq!(status, 200);
    carol.say("x").await;
    let error = carol.expect("error").await;
    assert!(
        error["data"]
            .as_str()
            .unwrap()
            .starts_with("you are muted until")
    );
    for bad in [json!({}), json!({"minutes": 0}), json!({"minutes": 1e12})] {
        let (status, _) = m.api(Method::POST, &path, Some(bad)).await;
        assert!(status == 400 || status == 422, "{status}");
    }

    drop(carol);
    let m = m.restart(|_| {}).await;
    let (_, list) = m.api(Method::GET, "/admin/api/mutes", None).await;
    assert_eq!(list["mutes"][0]["user"], id, "{list}");
    let (status, _) = m.api(Method::DELETE, &path, None).await;
    assert_eq!(status, 200);
    let (status, _) = m.api(Method::DELETE, &path, None).await;
    assert_eq!(status, 404);
    let (_, list) = m.api(Method::GET, "/admin/api/mutes", None).await;
    assert_eq!(list["mutes"], json!([]));
}
