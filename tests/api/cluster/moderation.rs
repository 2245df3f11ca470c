//! Over Redis, moderation is the cluster's: a moderator added with `--redis` works on every
//! instance, and a ban, mute, room setting or kick made through one instance takes effect on
//! the sockets of all (what Redis keeps, and losing it: `moderation_store.rs`).

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};

use super::Cluster;
use crate::{
    helpers::{Client, TestApp, WAIT, cookie_pair},
    moderation::{chat_through, moderator},
};

/// `passerby moderator ARGS… --redis URL` on a data dir nobody uses: (ok, stdout, stderr).
fn moderator_in_redis(url: &str, args: &[&str]) -> (bool, String, String) {
    let unused = tempfile::tempdir().unwrap();
    let mut args = args.to_vec();
    args.extend(["--redis", url]);
    let out = moderator(unused.path(), &args);
    let kept: Vec<_> = std::fs::read_dir(unused.path()).unwrap().collect();
    assert!(kept.is_empty(), "nothing is kept in the data dir: {kept:?}");
    out
}

/// Adds a moderator in the cluster's Redis with the real command; their token.
pub(super) fn add_moderator_in_redis(cluster: &Cluster, name: &str) -> String {
    let (ok, stdout, stderr) = moderator_in_redis(&cluster.redis.url(), &["add", name]);
    assert!(ok, "moderator add {name} --redis failed: {stderr}");
    stdout.trim().to_owned()
}

pub(super) async fn api(
    app: &TestApp,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = app.http.request(method, app.url(path)).bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("API request");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

pub(super) async fn user_id(client: &mut Client) -> u64 {
    client.expect("join").await["user"]["id"].as_u64().unwrap()
}

/// Bob on A and carol on B, chatting across the instances.
async fn bystanders(a: &TestApp, b: &TestApp) -> (Client, Client) {
    let (mut bob, _) = a.join("bob").await;
    let (carol, _) = b.join("carol").await;
    bob.expect("join").await;
    (bob, carol)
}

#[tokio::test]
async fn a_moderator_added_with_redis_works_on_every_instance_until_removed() {
    let cluster = Cluster::new();
    let token = add_moderator_in_redis(&cluster, "alice");
    let url = cluster.redis.url();
    let (ok, _, stderr) = moderator_in_redis(&url, &["add", "alice"]);
    assert!(!ok && stderr.contains("exists already"), "{stderr}");
    let (a, b) = (cluster.instance().await, cluster.instance().await);
    for app in [&a, &b] {
        let (status, me) = api(app, &token, Method::GET, "/admin/api/me", None).await;
        assert_eq!(status, 200, "{me}");
    }
    let (_, listed, _) = moderator_in_redis(&url, &["list"]);
    assert!(listed.starts_with("alice\tadded 20"), "{listed}");

    let (ok, _, _) = moderator_in_redis(&url, &["remove", "alice"]);
    assert!(ok);
    for app in [&a, &b] {
        let (status, _) = api(app, &token, Method::GET, "/admin/api/me", None).await;
        assert_eq!(status, 401);
    }
}

#[tokio::test]
async fn a_ban_through_a_closes_the_users_socket_on_b_at_once_and_b_refuses_them() {
    let cluster = Cluster::new();
    let token = add_moderator_in_redis(&cluster, "alice");
    let (a, b) = (cluster.instance().await, cluster.instance().await);
    let (mut bob, mut carol) = bystanders(&a, &b).await;
    let cookie = b.sign_in("mallory").await;
    let mut on_b = b.connect(&cookie).await;
    let mallory = user_id(&mut on_b).await;

    let start = Instant::now();
    let body = json!({"user": mallory, "reason": "spam"});
    let (status, ban) = api(&a, &token, Method::POST, "/admin/api/bans", Some(body)).await;
    assert_eq!(status, 200, "{ban}");
    let closed = on_b.close_code().await.expect("a close frame");
    assert_eq!(closed, (4003, "banned until lifted: spam".to_owned()));
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "took {:?}",
        start.elapsed()
    );

    let again = b.http.post(b.url("/wsin")).header("Cookie", &cookie);
    let again = again.form(&[("name", "again")]).send().await.unwrap();
    assert_eq!(again.status(), 403, "B refuses the sign-in");
    let refused = b.connect(&cookie).await.close_code().await;
    assert_eq!(refused.expect("a close frame").0, 4003, "and the socket");
    chat_through(&mut bob, &mut carol, "across instances, unaffected").await;

    // An address range, through A, closes what B has open from it (behind B's trusted proxy).
    let from = [("X-Forwarded-For", "203.0.113.9")];
    let signed = b.http.post(b.url("/wsin")).header(from[0].0, from[0].1);
    let signed = signed.form(&[("name", "ranger")]).send().await.unwrap();
    let ranger = cookie_pair(&signed).expect("signed in");
    let mut ranged = b
        .connect_to("/ws", &[("Cookie", &ranger), from[0]])
        .await
        .unwrap();
    ranged.expect("join").await;
    let body = json!({"address": "203.0.113.0/24", "reason": "flood"});
    let (status, _) = api(&a, &token, Method::POST, "/admin/api/bans", Some(body)).await;
    assert_eq!(status, 200);
    let (code, reason) = ranged.close_code().await.expect("a close frame");
    assert_eq!(code, 4003);
    assert!(reason.ends_with(": flood"), "{reason}");

    // Lifted through B: A lets mallory back in.
    let path = format!("/admin/api/bans/{}", ban["id"]);
    assert_eq!(api(&b, &token, Method::DELETE, &path, None).await.0, 200);
    a.connect(&cookie).await.expect("join").await;
}

#[tokio::test]
async fn a_mute_and_a_read_only_room_set_through_a_apply_on_b() {
    let cluster = Cluster::new();
    let token = add_moderator_in_redis(&cluster, "alice");
    let (a, b) = (cluster.instance().await, cluster.instance().await);
    let (mut bob, mut carol) = bystanders(&a, &b).await;
    let (mut dave, _) = b.join("dave").await;
    let dave_id = user_id(&mut bob).await;
    carol.expect("join").await;

    let path = format!("/admin/api/users/{dave_id}/mute");
    let body = json!({"minutes": 5, "reason": "calm down"});
    assert_eq!(
        api(&a, &token, Method::POST, &path, Some(body)).await.0,
        200
    );
    // The change crosses Redis on its own time: dave's next message after it is refused.
    let refused = say_until(&mut dave, "error").await;
    let text = refused["data"].as_str().unwrap();
    assert!(
        text.starts_with("you are muted until 20") && text.ends_with(": calm down"),
        "{text}"
    );
    carol.say("muted is not everyone").await;
    hears(&mut bob, "muted is not everyone").await;
    assert_eq!(api(&a, &token, Method::DELETE, &path, None).await.0, 200);
    say_until(&mut dave, "chat").await;

    let body = json!({"read_only": true});
    let (status, _) = api(
        &a,
        &token,
        Method::PUT,
        "/admin/api/rooms/lobby",
        Some(body),
    )
    .await;
    assert_eq!(status, 200);
    let refused = say_until(&mut carol, "error").await;
    assert_eq!(refused["data"], "this room is read-only");
    let (status, _) = api(
        &b,
        &token,
        Method::PUT,
        "/admin/api/rooms/lobby",
        Some(json!({})),
    )
    .await;
    assert_eq!(status, 200);
    let (_, on_a) = api(&a, &token, Method::GET, "/admin/api/rooms/lobby", None).await;
    assert_eq!(on_a, json!({"slow_mode_secs": 0, "read_only": false}));
}

/// Waits for a chat saying `text`, whatever else comes first.
async fn hears(client: &mut Client, text: &str) {
    while !(client.expect("chat").await["data"] == text) {}
}

/// Says something bad every 50 ms until the answer is an event of `kind` (another message that
/// got through is skipped); that event.
async fn say_until(client: &mut Client, kind: &str) -> Value {
    let start = Instant::now();
    loop {
        assert!(start.elapsed() < WAIT, "no {kind} within {WAIT:?}");
        client.say("anyone bad?").await;
        for event in client.events_within(Duration::from_millis(50)).await {
            if event["type"] == kind {
                return event;
            }
        }
    }
}

#[tokio::test]
async fn a_word_filter_set_through_a_applies_on_b_and_survives_a_restart() {
    let cluster = Cluster::new();
    let token = add_moderator_in_redis(&cluster, "alice");
    let (a, b) = (cluster.instance().await, cluster.instance().await);
    let (mut bob, mut carol) = bystanders(&a, &b).await;
    let body = json!({"words": ["bad"], "mode": "reject"});
    let (status, _) = api(
        &a,
        &token,
        Method::PUT,
        "/admin/api/word-filter",
        Some(body),
    )
    .await;
    assert_eq!(status, 200);
    let refused = say_until(&mut carol, "error").await;
    assert!(
        refused["data"].as_str().unwrap().starts_with("not sent"),
        "{refused}"
    );
    carol.say("fine words").await;
    hears(&mut bob, "fine words").await;
    a.stop().await.unwrap();
    b.stop().await.unwrap();

    let b = cluster.instance().await;
    let (_, read) = api(&b, &token, Method::GET, "/admin/api/word-filter", None).await;
    assert_eq!(read, json!({"words": ["bad"], "mode": "reject"}));
}

#[tokio::test]
async fn a_kick_through_a_closes_every_socket_of_the_user_on_b_and_b_shows_it_in_the_audit() {
    let cluster = Cluster::new();
    let token = add_moderator_in_redis(&cluster, "alice");
    let (a, b) = (cluster.instance().await, cluster.instance().await);
    let (mut bob, mut carol) = bystanders(&a, &b).await;
    let cookie = a.sign_in("mallory").await;
    let mut on_b = b.connect(&cookie).await;
    let mallory = user_id(&mut on_b).await;
    let mut also_on_b = b.connect(&cookie).await;
    also_on_b.expect("list").await;

    let path = format!("/admin/api/users/{mallory}/kick");
    let body = json!({"reason": "cool off"});
    let (status, kicked) = api(&a, &token, Method::POST, &path, Some(body)).await;
    assert_eq!((status, &kicked["closed"]), (200, &json!(0)), "none on A");
    for tab in [&mut on_b, &mut also_on_b] {
        let closed = tab.close_code().await.expect("a close frame");
        assert_eq!(closed, (4003, "kicked: cool off".to_owned()));
    }
    chat_through(&mut bob, &mut carol, "still here").await;
    b.connect(&cookie).await.expect("join").await;

    let (status, audit) = api(&b, &token, Method::GET, "/admin/api/audit", None).await;
    assert_eq!(status, 200);
    let entry = &audit["entries"][0];
    assert_eq!(entry["action"], "kick");
    assert_eq!(entry["target"], format!("user:{mallory}"));
    assert_eq!(entry["moderator"], "alice");
    assert_eq!(entry["reason"], "cool off");
}
