//! Sessions: each sign-in is one, `GET /wsout` revokes it on the server (its sockets close
//! with 4001, its cookie opens nothing), and a cookie older than `--cookie-days` is refused.

use std::{
    path::Path,
    sync::Arc,
    time::{Duration, Instant},
};

use passerby::{
    auth::{self, Session, SessionId, User, UserName},
    config::Config,
};
use serde_json::Value;

use crate::{
    helpers::{Client, TestApp, spawn_in},
    upload::{PNG, file, upload, uploaded},
};

/// The most a sign-out may take to close the session's other tabs.
const CLOSED_WITHIN: Duration = Duration::from_secs(1);

fn lifted(c: &mut Config) {
    c.rate_limit = 1000.0;
    c.rate_burst = 1000.0;
}

/// A `Cookie` header for a session signed with the key in `data_dir`, as the server would
/// sign it: how a test holds a second session of one user, or an old one.
pub fn crafted_cookie(secret: &Path, session: &Session) -> String {
    let key = auth::load_or_create_key(secret).unwrap();
    signed_pair(&key, &session.encode())
}

fn signed_pair(key: &axum_extra::extract::cookie::Key, value: &str) -> String {
    let mut jar = cookie::CookieJar::new();
    jar.signed_mut(key)
        .add(cookie::Cookie::new(auth::COOKIE_NAME, value.to_owned()));
    let signed = jar.get(auth::COOKIE_NAME).unwrap().value().to_owned();
    cookie::Cookie::new(auth::COOKIE_NAME, signed)
        .encoded()
        .to_string()
}

fn session_of(user: &Value, issued: u64) -> Session {
    let name = UserName::parse(user["name"].as_str().unwrap()).unwrap();
    Session {
        user: Arc::new(User::guest(user["id"].as_u64().unwrap(), name)),
        id: SessionId::generate().unwrap(),
        issued,
    }
}

/// Signs out from our own page, as the page's script does.
pub async fn sign_out(app: &TestApp, cookie: &str) -> reqwest::Response {
    app.http
        .get(app.url("/wsout"))
        .header("cookie", cookie)
        .header("sec-fetch-site", "same-origin")
        .send()
        .await
        .unwrap()
}

async fn upload_status(app: &TestApp, cookie: &str) -> (u16, Value) {
    upload(app, Some(cookie), file(PNG, "a.png", "image/png")).await
}

/// Whom the page greets: the signed-in name, or "" for the sign-in form.
async fn greeted_as(app: &TestApp, cookie: &str) -> String {
    let page = app.page(cookie).await;
    let (_, rest) = page.split_once("data-signed-in=\"").expect("the page");
    rest.split('"').next().unwrap().to_owned()
}

/// The socket's close within `CLOSED_WITHIN`.
async fn closed_soon(client: &mut Client, since: Instant) -> (u16, String) {
    let closed = client.close_code().await.expect("a close frame");
    assert!(
        since.elapsed() < CLOSED_WITHIN,
        "took {:?}",
        since.elapsed()
    );
    closed
}

/// The next event that is not presence.
pub async fn next_chat(client: &mut Client) -> Value {
    loop {
        let event = client.next_event().await;
        if !matches!(
            event["type"].as_str(),
            Some("join" | "left" | "list" | "history")
        ) {
            return event;
        }
    }
}

/// `a` says something and both see it, whoever came and went meanwhile.
pub async fn chatting(a: &mut Client, b: &mut Client, text: &str) {
    a.say(text).await;
    assert_eq!(next_chat(b).await["data"], text);
    assert_eq!(next_chat(a).await["data"], text);
}

/// A socket opened with `cookie` is closed with 4001 and this reason.
async fn refused(app: &TestApp, cookie: &str) -> String {
    let mut client = app.connect(cookie).await;
    let (code, reason) = client.close_code().await.expect("a close frame");
    assert_eq!(code, 4001, "{reason}");
    reason
}

#[tokio::test]
async fn signing_out_closes_that_sessions_tabs_and_nothing_else() {
    let tmp = tempfile::tempdir().unwrap();
    let app = spawn_in(tmp.path().to_owned(), lifted).await;
    let cookie = app.sign_in("alice").await;
    let other_sign_in = app.sign_in("alice").await;
    assert_ne!(cookie, other_sign_in, "two sign-ins, two sessions");
    let mut tab = app.connect(&cookie).await;
    let alice = tab.expect("join").await["user"].clone();
    tab.expect("list").await;
    tab.expect("history").await;
    let mut other_tab = app
        .connect_to("/ws?room=tea", &[("Cookie", &cookie)])
        .await
        .unwrap();
    other_tab.expect("join").await;
    // The same user in another browser: another session of the same id.
    let secret = tmp.path().join("secret.key");
    let elsewhere = crafted_cookie(&secret, &session_of(&alice, auth::unix_now()));
    let mut browser = app.connect(&elsewhere).await;
    browser.expect("list").await;
    browser.expect("history").await;
    let (mut bob, _) = app.join("bob").await;
    let (mut second, _) = app.join("carol").await;
    assert!(!uploaded(&app, &cookie, PNG).await.is_empty());
    assert_eq!(greeted_as(&app, &cookie).await, "alice");

    let start = Instant::now();
    let response = sign_out(&app, &cookie).await;
    assert_eq!(response.status(), 200);
    for socket in [&mut tab, &mut other_tab] {
        assert_eq!(
            closed_soon(socket, start).await,
            (4001, "signed out".to_owned())
        );
    }
    // Its other browser and everyone else chat on.
    browser.say("still here").await;
    for client in [&mut bob, &mut second, &mut browser] {
        let chat = next_chat(client).await;
        assert_eq!(chat["data"], "still here");
        assert_eq!(chat["user"]["id"], alice["id"]);
    }
    chatting(&mut bob, &mut second, "and us").await;

    // The cookie, even kept by hand, opens nothing more.
    assert_eq!(refused(&app, &cookie).await, "signed out");
    let (status, reply) = upload_status(&app, &cookie).await;
    assert_eq!(status, 401, "{reply}");
    assert!(
        reply["data"].as_str().unwrap().contains("signed out"),
        "{reply}"
    );
    assert_eq!(greeted_as(&app, &cookie).await, "");
    assert_eq!(greeted_as(&app, &elsewhere).await, "alice");
    // Signing out again is harmless.
    assert_eq!(sign_out(&app, &cookie).await.status(), 200);
}

#[tokio::test]
async fn a_sign_out_survives_a_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let first = spawn_in(tmp.path().to_owned(), |_| {}).await;
    let gone = first.sign_in("gone").await;
    let kept = first.sign_in("kept").await;
    assert_eq!(sign_out(&first, &gone).await.status(), 200);
    first.stop().await.unwrap();
    let second = spawn_in(tmp.path().to_owned(), |_| {}).await;
    assert_eq!(refused(&second, &gone).await, "signed out");
    let mut client = second.connect(&kept).await;
    assert_eq!(client.expect("join").await["user"]["name"], "kept");
}

#[tokio::test]
async fn a_cookie_older_than_cookie_days_or_from_before_sessions_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let app = spawn_in(tmp.path().to_owned(), |c| c.cookie_days = 2).await;
    let (mut bob, _) = app.join("bob").await;
    let secret = tmp.path().join("secret.key");
    let alice = serde_json::json!({"id": 424242, "name": "alice"});
    let day = 86_400;
    let now = auth::unix_now();
    let young = crafted_cookie(&secret, &session_of(&alice, now - 2 * day + 60));
    let old = crafted_cookie(&secret, &session_of(&alice, now - 2 * day - 60));
    let mut client = app.connect(&young).await;
    assert_eq!(client.expect("join").await["user"]["id"], 424242);
    client.expect("list").await;
    assert_eq!(greeted_as(&app, &young).await, "alice");

    assert_eq!(refused(&app, &old).await, "sign-in expired");
    let (status, reply) = upload_status(&app, &old).await;
    assert_eq!(status, 401, "{reply}");
    assert!(reply["data"].as_str().unwrap().contains("older"), "{reply}");
    assert_eq!(greeted_as(&app, &old).await, "");

    // Signed with the right key, but the seed's payload: no session id, no issue time.
    let key = auth::load_or_create_key(&secret).unwrap();
    let user = User::guest(424242, UserName::parse("alice").unwrap());
    let seed = signed_pair(&key, &user.encode());
    assert_eq!(refused(&app, &seed).await, "Invalid user");
    assert_eq!(greeted_as(&app, &seed).await, "");
    assert_eq!(upload_status(&app, &seed).await.0, 401);

    client.say("meanwhile").await;
    assert_eq!(next_chat(&mut bob).await["data"], "meanwhile");
}

#[tokio::test]
async fn past_max_revoked_sessions_a_sign_out_is_refused_with_503_and_nothing_is_forgotten() {
    let tmp = tempfile::tempdir().unwrap();
    let app = spawn_in(tmp.path().to_owned(), |c| {
        c.max_revoked_sessions = 2;
        lifted(c);
    })
    .await;
    let (mut bob, _) = app.join("bob").await;
    let (mut carol, _) = app.join("carol").await;
    let mut out = Vec::new();
    for name in ["a", "b"] {
        let cookie = app.sign_in(name).await;
        assert_eq!(sign_out(&app, &cookie).await.status(), 200);
        out.push(cookie);
    }
    let third = app.sign_in("c").await;
    let response = sign_out(&app, &third).await;
    assert_eq!(response.status(), 503);
    let set = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        set.contains("Max-Age=0"),
        "the browser still forgets it: {set}"
    );
    let body: Value = response.json().await.unwrap();
    assert!(
        body["data"].as_str().unwrap().contains("as many sign-outs"),
        "{body}"
    );
    // The earlier sign-outs hold; the refused one stays valid, as the answer said.
    for cookie in &out {
        assert_eq!(refused(&app, cookie).await, "signed out");
    }
    let mut client = app.connect(&third).await;
    client.expect("join").await;
    chatting(&mut bob, &mut carol, "unaffected").await;
}

#[tokio::test]
async fn a_socket_still_open_when_its_cookie_expires_is_closed_at_the_next_ping() {
    let tmp = tempfile::tempdir().unwrap();
    let app = spawn_in(tmp.path().to_owned(), |c| {
        c.cookie_days = 1;
        c.ping_interval = Duration::from_millis(200);
    })
    .await;
    let secret = tmp.path().join("secret.key");
    let alice = serde_json::json!({"id": 424242, "name": "alice"});
    // Some 3 to 4 seconds of life left: it opens, then its cookie runs out while it is open.
    let issued = auth::unix_now() - 86_400 + 4;
    let mut client = app
        .connect(&crafted_cookie(&secret, &session_of(&alice, issued)))
        .await;
    client.expect("join").await;
    assert_eq!(
        client.close_code().await.expect("a close frame"),
        (4001, "sign-in expired".to_owned())
    );
    assert!(auth::unix_now() >= issued + 86_400, "not before it expired");
}
