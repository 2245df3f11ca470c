//! Bans by user and by address range: no sign-in, no socket, no upload, and open sockets
//! close at once; timed bans expire; bans survive a restart; their number is capped.

use std::time::Duration;

use reqwest::{
    Method,
    multipart::{Form, Part},
};
use serde_json::{Value, json};

use super::{Moderated, chat_through, spawn_moderated};
use crate::helpers::{Client, WAIT, cookie_pair, two_chatting};

const PROXY: &str = "127.0.0.1/32";

async fn sign_in_from(m: &Moderated, addr: &str, cookie: Option<&str>) -> reqwest::Response {
    let mut request = m
        .app
        .http
        .post(m.app.url("/wsin"))
        .form(&[("name", "guest")])
        .header("X-Forwarded-For", addr);
    if let Some(cookie) = cookie {
        request = request.header("Cookie", cookie);
    }
    request.send().await.unwrap()
}

async fn connect_from(m: &Moderated, cookie: &str, addr: &str) -> Client {
    m.app
        .connect_to("/ws", &[("Cookie", cookie), ("X-Forwarded-For", addr)])
        .await
        .unwrap()
}

async fn upload(m: &Moderated, cookie: &str) -> reqwest::Response {
    let form = Form::new().part("file", Part::bytes(b"not even an image".to_vec()));
    m.app
        .http
        .post(m.app.url("/upload"))
        .header("Cookie", cookie)
        .multipart(form)
        .send()
        .await
        .unwrap()
}

async fn ban(m: &Moderated, body: Value) -> Value {
    let (status, ban) = m.api(Method::POST, "/admin/api/bans", Some(body)).await;
    assert_eq!(status, 200, "{ban}");
    ban
}

#[tokio::test]
async fn a_user_ban_closes_their_sockets_and_refuses_sign_in_sockets_and_uploads() {
    let m = spawn_moderated(|_| {}).await;
    let (mut alice, mut bob) = two_chatting(&m.app).await;
    let cookie = m.app.sign_in("mallory").await;
    let mut open = m.app.connect(&cookie).await;
    let id = open.expect("join").await["user"]["id"].as_u64().unwrap();

    let refused = m
        .call(
            Method::POST,
            "/admin/api/bans",
            Some("pbm_wrong"),
            Some(json!({ "user": id })),
            &[],
        )
        .await;
    assert_eq!(refused.status(), 401);
    let banned = ban(&m, json!({ "user": id, "reason": "spam" })).await;
    assert_eq!(banned["user"], id);
    assert_eq!(banned["until"], Value::Null);
    assert_eq!(banned["moderator"], "alice");
    let ban_id = banned["id"].as_i64().unwrap();

    let (code, reason) = open.close_code().await.expect("closed at once");
    assert_eq!((code, reason.as_str()), (4003, "banned until lifted: spam"));
    let (code, reason) = m.app.connect(&cookie).await.close_code().await.unwrap();
    assert_eq!((code, reason.as_str()), (4003, "banned until lifted: spam"));
    let response = m
        .app
        .http
        .post(m.app.url("/wsin"))
        .header("Cookie", &cookie);
    let response = response.form(&[("name", "again")]).send().await.unwrap();
    assert_eq!(response.status(), 403);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["data"], "banned until lifted: spam");
    let response = upload(&m, &cookie).await;
    assert_eq!(response.status(), 403);
    chat_through(&mut alice, &mut bob, "still here").await;

    let (status, list) = m.api(Method::GET, "/admin/api/bans", None).await;
    assert_eq!(status, 200);
    assert_eq!(list["bans"][0]["id"], ban_id);
    let path = format!("/admin/api/bans/{ban_id}");
    let (status, lifted) = m.api(Method::DELETE, &path, None).await;
    assert_eq!((status, &lifted["id"]), (200, &json!(ban_id)));
    let (status, _) = m.api(Method::DELETE, &path, None).await;
    assert_eq!(status, 404);
    m.app.connect(&cookie).await.expect("join").await;

    let (_, audit) = m.api(Method::GET, "/admin/api/audit", None).await;
    let actions: Vec<&str> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["unban", "ban"]);
    assert_eq!(audit["entries"][1]["target"], format!("user:{id}"));
    assert_eq!(audit["entries"][0]["target"], format!("ban:{ban_id}"));
}

#[tokio::test]
async fn address_bans_take_ipv4_and_ipv6_ranges_behind_a_trusted_proxy() {
    let m = spawn_moderated(|c| c.trusted_proxies = vec![PROXY.parse().unwrap()]).await;
    let (mut alice, mut bob) = two_chatting(&m.app).await;
    let v4 = cookie_pair(&sign_in_from(&m, "203.0.113.9", None).await).unwrap();
    let mut v4_socket = connect_from(&m, &v4, "203.0.113.9").await;
    v4_socket.expect("join").await;
    let v6 = cookie_pair(&sign_in_from(&m, "2001:db8:abcd:12::5", None).await).unwrap();
    let mut v6_socket = connect_from(&m, &v6, "2001:db8:abcd:12::5").await;
    v6_socket.expect("join").await;

    let banned = ban(
        &m,
        json!({ "address": "203.0.113.77/24", "reason": "flood", "minutes": 60 }),
    )
    .await;
    assert_eq!(banned["address"], "203.0.113.0/24", "host bits dropped");
    let (code, reason) = v4_socket.close_code().await.unwrap();
    assert_eq!(code, 4003);
    assert!(reason.starts_with("banned until 20"), "{reason}");
    assert!(reason.ends_with(": flood"), "{reason}");
    let refused = sign_in_from(&m, "203.0.113.200", None).await;
    assert_eq!(refused.status(), 403);
    let body: Value = refused.json().await.unwrap();
    assert!(body["data"].as_str().unwrap().contains("flood"), "{body}");
    assert_eq!(sign_in_from(&m, "203.0.114.1", None).await.status(), 200);
    // The proxy's own address is not the client's: it is not banned by its headers' claims.
    let from_proxy = m.app.post_sign_in(&[("name", "local")]).await;
    assert_eq!(from_proxy.status(), 200);

    ban(&m, json!({ "address": "2001:db8:abcd::/48" })).await;
    assert_eq!(v6_socket.close_code().await.unwrap().0, 4003);
    let refused = sign_in_from(&m, "2001:db8:abcd:ffff::1", None).await;
    assert_eq!(refused.status(), 403);
    assert_eq!(
        sign_in_from(&m, "2001:db8:abce::1", None).await.status(),
        200
    );
    let (code, _) = connect_from(&m, &v6, "2001:db8:abcd:1::9")
        .await
        .close_code()
        .await
        .unwrap();
    assert_eq!(code, 4003, "a new socket from the range is refused");
    chat_through(&mut alice, &mut bob, "still here").await;

    for bad in [
        json!({ "address": "not-an-address" }),
        json!({ "address": "203.0.113.0/33" }),
        json!({ "user": 1, "address": "203.0.113.1" }),
        json!({}),
        json!({ "user": 1, "minutes": 0 }),
        json!({ "user": 1, "minutes": -5 }),
        json!({ "user": 1, "until": 5 }),
    ] {
        let (status, body) = m
            .api(Method::POST, "/admin/api/bans", Some(bad.clone()))
            .await;
        assert!(status == 400 || status == 422, "{bad} got {status} {body}");
    }
}

#[tokio::test]
async fn timed_bans_expire_the_cap_answers_409_and_bans_survive_a_restart() {
    let proxy = |c: &mut passerby::config::Config| {
        c.trusted_proxies = vec![PROXY.parse().unwrap()];
        c.moderators.max_bans = 2;
    };
    let m = spawn_moderated(proxy).await;
    let cookie = m.app.sign_in("mallory").await;
    // Three seconds: a fraction of a minute, so the test sees it end.
    ban(&m, json!({ "address": "198.51.100.1", "minutes": 0.05 })).await;
    ban(
        &m,
        json!({ "address": "192.0.2.0/24", "reason": "for good" }),
    )
    .await;
    let (status, body) = m
        .api(Method::POST, "/admin/api/bans", Some(json!({ "user": 9 })))
        .await;
    assert_eq!(status, 409);
    assert!(
        body["data"].as_str().unwrap().contains("--max-bans"),
        "{body}"
    );

    assert_eq!(sign_in_from(&m, "198.51.100.1", None).await.status(), 403);
    let (code, _) = connect_from(&m, &cookie, "198.51.100.1")
        .await
        .close_code()
        .await
        .unwrap();
    assert_eq!(code, 4003);
    let deadline = tokio::time::Instant::now() + WAIT * 2;
    loop {
        let status = sign_in_from(&m, "198.51.100.1", None).await.status();
        if status == 200 {
            break;
        }
        assert_eq!(status, 403);
        assert!(
            tokio::time::Instant::now() < deadline,
            "the ban never ended"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    connect_from(&m, &cookie, "198.51.100.1")
        .await
        .expect("join")
        .await;
    ban(&m, json!({ "user": 9 })).await;

    let m = m.restart(proxy).await;
    let (_, list) = m.api(Method::GET, "/admin/api/bans", None).await;
    let bans = list["bans"].as_array().unwrap();
    assert_eq!(bans.len(), 2, "{list}");
    assert_eq!(bans[0]["user"], 9);
    assert_eq!(bans[1]["address"], "192.0.2.0/24");
    let refused = sign_in_from(&m, "192.0.2.50", None).await;
    assert_eq!(refused.status(), 403);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["data"], "banned until lifted: for good");
}

#[tokio::test]
async fn the_ban_list_is_paged() {
    let m = spawn_moderated(|_| {}).await;
    for user in 1..=3 {
        ban(&m, json!({ "user": user })).await;
    }
    let (_, first) = m.api(Method::GET, "/admin/api/bans?limit=2", None).await;
    let users: Vec<u64> = first["bans"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["user"].as_u64().unwrap())
        .collect();
    assert_eq!(users, [3, 2], "newest first");
    let next = first["next"].as_i64().unwrap();
    let (_, second) = m
        .api(
            Method::GET,
            &format!("/admin/api/bans?limit=2&before={next}"),
            None,
        )
        .await;
    assert_eq!(second["bans"][0]["user"], 1);
    assert!(second.get("next").is_none());
}
