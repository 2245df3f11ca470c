//! `POST /admin/api/users/{id}/kick`: every socket of the user closes with 4003 and the reason.

use reqwest::Method;
use serde_json::json;

use super::{chat_through, spawn_moderated};
use crate::helpers::two_chatting;

#[tokio::test]
async fn a_kick_closes_every_tab_of_the_user_with_4003_and_others_keep_chatting() {
    let m = spawn_moderated(|_| {}).await;
    let (mut alice, mut bob) = two_chatting(&m.app).await;
    let cookie = m.app.sign_in("mallory").await;
    let mut tab1 = m.app.connect(&cookie).await;
    let join = tab1.expect("join").await;
    let id = join["user"]["id"].as_u64().unwrap();
    let mut tab2 = m.app.connect(&cookie).await;
    tab2.expect("list").await;

    let path = format!("/admin/api/users/{id}/kick");
    let refused = m
        .call(Method::POST, &path, Some("pbm_wrong"), Some(json!({})), &[])
        .await;
    assert_eq!(refused.status(), 401);

    let long = "spam ".repeat(30);
    let (status, body) = m
        .api(Method::POST, &path, Some(json!({ "reason": long })))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"user": id, "closed": 2}));
    for tab in [&mut tab1, &mut tab2] {
        let (code, reason) = tab.close_code().await.expect("a close frame");
        assert_eq!(code, 4003);
        assert!(reason.starts_with("kicked: spam spam"), "{reason}");
        assert!(reason.len() <= 123);
    }
    chat_through(&mut alice, &mut bob, "still here").await;

    let (_, audit) = m.api(Method::GET, "/admin/api/audit", None).await;
    let entry = &audit["entries"][0];
    assert_eq!(entry["action"], "kick");
    assert_eq!(entry["target"], format!("user:{id}"));
    assert_eq!(entry["moderator"], "alice");
    assert!(entry["reason"].as_str().unwrap().starts_with("spam spam"));

    // A kick is not a ban: the user may come back.
    let mut back = m.app.connect(&cookie).await;
    back.expect("join").await;

    let (status, _) = m
        .api(Method::POST, "/admin/api/users/x/kick", Some(json!({})))
        .await;
    assert_eq!(status, 400);
    let (status, _) = m
        .api(Method::POST, &path, Some(json!({"reason": "a\u{7}"})))
        .await;
    assert_eq!(status, 400);
}
