//! What the pages stand on: `GET /admin` (the moderators' page), `GET /admin/session` (is
//! this visitor a moderator?), `GET /admin/api/rooms` (who is online, paged), and a
//! moderator's socket on `/admin/ws`, which a read-only room lets write.

use reqwest::Method;
use serde_json::json;

use super::{moderator, spawn_moderated};
use crate::helpers::{Client, still_chatting};

/// A chat user's socket on `path`, with the moderator cookie too if given.
async fn socket(m: &super::Moderated, name: &str, path: &str, moderator: Option<&str>) -> Client {
    let user = m.app.sign_in(name).await;
    let cookie = match moderator {
        Some(moderator) => format!("{user}; {moderator}"),
        None => user,
    };
    let mut client = m
        .app
        .connect_to(path, &[("Cookie", &cookie)])
        .await
        .expect("socket opens");
    client.expect("join").await;
    client.expect("list").await;
    client.expect("history").await;
    client
}

#[tokio::test]
async fn a_read_only_room_takes_a_moderators_socket_and_refuses_everyone_elses() {
    let m = spawn_moderated(|_| {}).await;
    let (status, _) = m
        .api(
            Method::PUT,
            "/admin/api/rooms/news",
            Some(json!({"read_only": true})),
        )
        .await;
    assert_eq!(status, 200);
    let cookie = m.session_cookie().await;
    let mut warden = socket(&m, "warden", "/admin/ws?room=news", Some(&cookie)).await;
    let mut reader = socket(&m, "reader", "/admin/ws?room=news", None).await;
    warden.expect("join").await;
    let mut forger = socket(
        &m,
        "forger",
        "/admin/ws?room=news",
        Some("moderator=alice|1|00"),
    )
    .await;
    reader.expect("join").await;
    warden.expect("join").await;

    warden.say("announcement").await;
    for client in [&mut warden, &mut reader, &mut forger] {
        assert_eq!(client.expect("chat").await["data"], "announcement");
    }
    for client in [&mut reader, &mut forger] {
        client.say("may I?").await;
        assert_eq!(
            client.expect("error").await["data"],
            "this room is read-only"
        );
    }

    // The moderator removed: a new socket with that cookie is an ordinary user's.
    assert!(moderator(m.dir.path(), &["remove", "alice"]).0);
    let mut former = socket(&m, "former", "/admin/ws?room=news", Some(&cookie)).await;
    former.say("still?").await;
    assert_eq!(
        former.expect("error").await["data"],
        "this room is read-only"
    );

    // Other rooms chat on meanwhile.
    let (mut alice, mut bob) = crate::helpers::two_chatting(&m.app).await;
    still_chatting(&mut alice, &mut bob, "elsewhere").await;
}

#[tokio::test]
async fn the_rooms_list_pages_by_name_with_who_is_online() {
    let m = spawn_moderated(|_| {}).await;
    let refused = m
        .call(Method::GET, "/admin/api/rooms", None, None, &[])
        .await;
    assert_eq!(refused.status(), 401);
    let mut sockets = Vec::new();
    for (name, room) in [
        ("ann", "c-room"),
        ("bea", "a-room"),
        ("cy", "b-room"),
        ("dee", "a-room"),
    ] {
        sockets.push(socket(&m, name, &format!("/ws?room={room}"), None).await);
    }
    let (status, first) = m.api(Method::GET, "/admin/api/rooms?limit=2", None).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["rooms"][0]["room"], "a-room");
    assert_eq!(first["rooms"][0]["online"], 2);
    assert_eq!(first["rooms"][0]["users"][0]["name"], "bea");
    assert_eq!(first["rooms"][0]["users"][1]["name"], "dee");
    assert_eq!(first["rooms"][0]["read_only"], false);
    assert_eq!(first["rooms"][1]["room"], "b-room");
    assert_eq!(first["next"], "b-room");
    let (_, rest) = m
        .api(Method::GET, "/admin/api/rooms?limit=2&after=b-room", None)
        .await;
    assert_eq!(rest["rooms"].as_array().unwrap().len(), 1);
    assert_eq!(rest["rooms"][0]["room"], "c-room");
    assert_eq!(rest["next"], serde_json::Value::Null);
    // A limit past the cap is the cap, not an error.
    let (status, _) = m
        .api(Method::GET, "/admin/api/rooms?limit=100000", None)
        .await;
    assert_eq!(status, 200);
    let (status, _) = m.api(Method::GET, "/admin/api/rooms?limit=x", None).await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn the_page_is_served_in_both_languages_with_no_inline_script() {
    let m = spawn_moderated(|_| {}).await;
    let page = m.call(Method::GET, "/admin", None, None, &[]).await;
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    let html = page.text().await.unwrap();
    assert!(html.contains(r#"<html lang="zh-CN">"#) && html.contains("管理员令牌"));
    assert!(html.contains(r#"id="token-form""#));
    assert_eq!(
        html.matches("<script").count(),
        html.matches("<script src=").count(),
        "no inline script"
    );
    let english = m
        .call(
            Method::GET,
            "/admin",
            None,
            None,
            &[("Accept-Language", "en-US")],
        )
        .await
        .text()
        .await
        .unwrap();
    assert!(english.contains("Moderator token"), "{english}");

    // The probe the chat page makes: 200 for everyone, the name for a moderator.
    let who = |cookie: Option<String>| {
        let m = &m;
        async move {
            let headers: Vec<(&str, &str)> =
                cookie.iter().map(|c| ("Cookie", c.as_str())).collect();
            let response = m
                .call(Method::GET, "/admin/session", None, None, &headers)
                .await;
            assert_eq!(response.status(), 200);
            response.json::<serde_json::Value>().await.unwrap()
        }
    };
    assert_eq!(who(None).await, json!({"moderator": null}));
    let cookie = m.session_cookie().await;
    assert_eq!(
        who(Some(cookie.clone())).await,
        json!({"moderator": "alice"})
    );
    let signed_in = m
        .call(Method::GET, "/admin", None, None, &[("Cookie", &cookie)])
        .await
        .text()
        .await
        .unwrap();
    assert!(signed_in.contains(r#"data-moderator="alice""#));
    assert_eq!(
        who(Some("moderator=alice|1|00".into())).await,
        json!({"moderator": null})
    );
}
