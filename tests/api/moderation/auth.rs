//! Who may call `/admin/api/*`: a bearer token, or the cookie `POST /admin/session` sets; a
//! wrong or removed one gets 401, and an address that keeps failing gets 429.

use reqwest::Method;
use serde_json::json;

use super::{add_moderator, moderator, spawn_moderated};
use crate::helpers::cookie_pair;

#[tokio::test]
async fn a_token_opens_the_api_and_a_missing_wrong_or_removed_one_gets_401() {
    let m = spawn_moderated(|_| {}).await;
    let me = |token: Option<String>| {
        let m = &m;
        async move {
            let response = m
                .call(Method::GET, "/admin/api/me", token.as_deref(), None, &[])
                .await;
            (response.status().as_u16(), response.text().await.unwrap())
        }
    };
    let (status, body) = me(Some(m.token.clone())).await;
    assert_eq!((status, body.as_str()), (200, r#"{"moderator":"alice"}"#));
    assert_eq!(me(None).await.0, 401);
    assert_eq!(me(Some(format!("{}x", m.token))).await.0, 401);
    assert_eq!(me(Some(String::new())).await.0, 401);
    // Basic credentials, or the token without the scheme, are not a bearer token.
    let basic = m
        .call(
            Method::GET,
            "/admin/api/me",
            None,
            None,
            &[("Authorization", &m.token)],
        )
        .await;
    assert_eq!(basic.status(), 401);

    // Removed while the server runs: the next call is refused.
    let bob = add_moderator(m.dir.path(), "bob");
    assert_eq!(me(Some(bob.clone())).await.0, 200);
    assert!(moderator(m.dir.path(), &["remove", "bob"]).0);
    let (status, body) = me(Some(bob)).await;
    assert_eq!(status, 401);
    assert!(body.contains("wrong or removed moderator token"), "{body}");
    assert_eq!(me(Some(m.token.clone())).await.0, 200, "alice still works");
}

#[tokio::test]
async fn the_session_cookie_is_strict_lasts_hours_and_dies_with_its_moderator() {
    let m = spawn_moderated(|c| c.moderators.moderator_session_hours = 3).await;
    let wrong = m.open_session("pbm_nope").await;
    assert_eq!(wrong.status(), 401);
    assert!(cookie_pair(&wrong).is_none());

    let bob = add_moderator(m.dir.path(), "bob");
    let signed_in = m.open_session(&bob).await;
    assert_eq!(signed_in.status(), 200);
    let set = signed_in.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    for attribute in [
        "HttpOnly",
        "SameSite=Strict",
        "Path=/admin",
        "Max-Age=10800",
    ] {
        assert!(set.contains(attribute), "{attribute} missing: {set}");
    }
    let cookie = cookie_pair(&signed_in).unwrap();
    assert!(cookie.starts_with("moderator="));
    assert!(
        !cookie.contains(&bob),
        "the cookie does not carry the token"
    );
    let body: serde_json::Value = signed_in.json().await.unwrap();
    assert_eq!(body["moderator"], "bob");

    let with_cookie = |cookie: String| {
        let m = &m;
        async move {
            m.call(
                Method::GET,
                "/admin/api/me",
                None,
                None,
                &[("Cookie", &cookie)],
            )
            .await
            .status()
            .as_u16()
        }
    };
    assert_eq!(with_cookie(cookie.clone()).await, 200);
    // The same value unsigned, or edited, is refused.
    let value = cookie.trim_start_matches("moderator=");
    let unsigned = value.get(44..).unwrap_or_default();
    assert_eq!(with_cookie(format!("moderator={unsigned}")).await, 401);
    let edited = cookie.replace("bob", "alice");
    assert_eq!(with_cookie(edited).await, 401);

    assert!(moderator(m.dir.path(), &["remove", "bob"]).0);
    assert_eq!(
        with_cookie(cookie.clone()).await,
        401,
        "removed: the cookie dies"
    );
    // Added again with a new token, the old cookie still does not come back.
    add_moderator(m.dir.path(), "bob");
    assert_eq!(with_cookie(cookie).await, 401);
}

#[tokio::test]
async fn failed_attempts_from_one_address_get_429_and_other_addresses_do_not() {
    let m = spawn_moderated(|c| {
        c.moderators.moderator_auth_failures = 3.0;
        c.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    })
    .await;
    let from = |addr: &'static str, token: String| {
        let m = &m;
        async move {
            m.call(
                Method::GET,
                "/admin/api/me",
                Some(&token),
                None,
                &[("X-Forwarded-For", addr)],
            )
            .await
        }
    };
    for _ in 0..3 {
        assert_eq!(from("198.51.100.7", "pbm_guess".into()).await.status(), 401);
    }
    let refused = from("198.51.100.7", m.token.clone()).await;
    assert_eq!(refused.status(), 429, "even the right token waits");
    let retry: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    let session = m
        .call(
            Method::POST,
            "/admin/session",
            None,
            Some(json!({"token": m.token})),
            &[("X-Forwarded-For", "198.51.100.7")],
        )
        .await;
    assert_eq!(session.status(), 429, "the page's sign-in shares the limit");
    assert_eq!(from("198.51.100.8", m.token.clone()).await.status(), 200);
}

#[tokio::test]
async fn bodies_past_the_cap_get_413_and_bad_json_400() {
    let m = spawn_moderated(|_| {}).await;
    let big = json!({ "token": "x".repeat(8 * 1024) });
    let response = m
        .call(Method::POST, "/admin/session", None, Some(big), &[])
        .await;
    assert_eq!(response.status(), 413);
    let response = m
        .app
        .http
        .post(m.app.url("/admin/session"))
        .header("content-type", "application/json")
        .body("{")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
}

#[tokio::test]
async fn every_api_call_refuses_a_missing_wrong_or_removed_token() {
    // Eighteen failures in a row: lifted above them, or the limit would answer 429 first.
    let m = spawn_moderated(|c| c.moderators.moderator_auth_failures = 100.0).await;
    let removed = add_moderator(m.dir.path(), "bob");
    assert!(moderator(m.dir.path(), &["remove", "bob"]).0);
    let calls = [
        (Method::GET, "/admin/api/me", None),
        (Method::GET, "/admin/api/audit", None),
        (Method::GET, "/admin/api/bans", None),
        (Method::POST, "/admin/api/bans", Some(json!({"user": 1}))),
        (Method::DELETE, "/admin/api/bans/1", None),
        (Method::POST, "/admin/api/users/1/kick", Some(json!({}))),
        (
            Method::POST,
            "/admin/api/users/1/mute",
            Some(json!({"minutes": 1})),
        ),
        (Method::DELETE, "/admin/api/users/1/mute", None),
        (Method::GET, "/admin/api/mutes", None),
    ];
    for (method, path, body) in calls {
        for token in [None, Some("pbm_wrong"), Some(removed.as_str())] {
            let response = m.call(method.clone(), path, token, body.clone(), &[]).await;
            assert_eq!(response.status(), 401, "{method} {path} with {token:?}");
        }
    }
    // Nothing was done: no ban was made, and the audit log is empty.
    let (_, bans) = m.api(Method::GET, "/admin/api/bans", None).await;
    assert_eq!(bans["bans"], json!([]));
    let (_, audit) = m.api(Method::GET, "/admin/api/audit", None).await;
    assert_eq!(audit["entries"], json!([]));
}
