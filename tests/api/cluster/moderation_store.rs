//! Over Redis, what moderation keeps: everything in force and the audit log survive a restart
//! of every instance, the audit stream is capped and paged from anywhere; and losing Redis: a
//! ban made while an instance was not subscribed still reaches it, and the API answers 503
//! while Redis is down.

use reqwest::Method;
use serde_json::{Value, json};

use super::{
    Cluster,
    moderation::{add_moderator_in_redis, api, user_id},
};
use crate::helpers::greeting;

#[tokio::test]
async fn bans_mutes_rooms_and_the_audit_survive_a_restart_of_every_instance() {
    let cluster = Cluster::new();
    let token = add_moderator_in_redis(&cluster, "alice");
    let (a, b) = (cluster.instance().await, cluster.instance().await);
    let banned = a.sign_in("mallory").await;
    let mut socket = a.connect(&banned).await;
    let mallory = user_id(&mut socket).await;
    let muted = a.sign_in("dave").await;
    let mut socket = a.connect(&muted).await;
    let dave = user_id(&mut socket).await;
    drop(socket);
    let calls = [
        (
            Method::POST,
            "/admin/api/bans".to_owned(),
            json!({"user": mallory}),
        ),
        (
            Method::POST,
            format!("/admin/api/users/{dave}/mute"),
            json!({"minutes": 5}),
        ),
        (
            Method::PUT,
            "/admin/api/rooms/quiet".to_owned(),
            json!({"slow_mode_secs": 60}),
        ),
    ];
    for (method, path, body) in calls {
        assert_eq!(
            api(&a, &token, method, &path, Some(body)).await.0,
            200,
            "{path}"
        );
    }
    a.stop().await.unwrap();
    b.stop().await.unwrap();

    let (a, b) = (cluster.instance().await, cluster.instance().await);
    let refused = b.connect(&banned).await.close_code().await;
    assert_eq!(refused.expect("a close frame").0, 4003);
    let mut dave_again = b.connect(&muted).await;
    greeting(&mut dave_again).await;
    dave_again.say("back").await;
    let error = dave_again.expect("error").await;
    assert!(
        error["data"].as_str().unwrap().starts_with("you are muted"),
        "{error}"
    );
    let (_, quiet) = api(&b, &token, Method::GET, "/admin/api/rooms/quiet", None).await;
    assert_eq!(quiet["slow_mode_secs"], 60);
    let (_, bans) = api(&a, &token, Method::GET, "/admin/api/bans", None).await;
    assert_eq!(bans["bans"][0]["user"], mallory);
    let (_, audit) = api(&b, &token, Method::GET, "/admin/api/audit", None).await;
    let actions: Vec<&str> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["room", "mute", "ban"]);
}

#[tokio::test]
async fn a_ban_made_while_b_lost_its_subscription_still_closes_bs_socket() {
    let cluster = Cluster::new();
    let token = add_moderator_in_redis(&cluster, "alice");
    let (a, b) = (cluster.instance().await, cluster.instance().await);
    let cookie = b.sign_in("mallory").await;
    let mut on_b = b.connect(&cookie).await;
    let mallory = user_id(&mut on_b).await;

    // Every subscriber is dropped; the ban is published before B is back, so only B's
    // reload of what Redis holds can close the socket.
    let client = redis::Client::open(cluster.redis.url()).unwrap();
    let mut conn = client.get_connection().unwrap();
    let killed: u32 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("pubsub")
        .query(&mut conn)
        .unwrap();
    assert!(killed > 0);
    let body = json!({"user": mallory, "reason": "while away"});
    let (status, _) = api(&a, &token, Method::POST, "/admin/api/bans", Some(body)).await;
    assert_eq!(status, 200);
    let closed = on_b.close_code().await.expect("a close frame");
    assert_eq!(closed, (4003, "banned until lifted: while away".to_owned()));
}

#[tokio::test]
async fn with_redis_down_moderator_writes_answer_503() {
    let mut cluster = Cluster::new();
    let token = add_moderator_in_redis(&cluster, "alice");
    let a = cluster.instance().await;
    cluster.redis.kill();
    let body = json!({"user": 1, "reason": "spam"});
    let (status, answer) = api(&a, &token, Method::POST, "/admin/api/bans", Some(body)).await;
    assert_eq!(status, 503, "{answer}");
}

#[tokio::test]
async fn the_audit_stream_keeps_the_newest_audit_max_entries_read_a_page_at_a_time_anywhere() {
    let cluster = Cluster::new();
    let token = add_moderator_in_redis(&cluster, "alice");
    let instance = || {
        let (url, secret) = (cluster.redis.url(), cluster.secret_file());
        crate::helpers::spawn_with(move |c| {
            c.redis = Some(url);
            c.secret_file = Some(secret);
            c.moderators.audit_max_entries = 3;
        })
    };
    let (a, b) = (instance().await, instance().await);
    for (n, app) in [&a, &b, &a, &b].into_iter().enumerate() {
        let body = json!({"slow_mode_secs": n + 1});
        let (status, _) = api(
            app,
            &token,
            Method::PUT,
            "/admin/api/rooms/lobby",
            Some(body),
        )
        .await;
        assert_eq!(status, 200);
    }
    let reasons = |page: &Value| -> Vec<String> {
        page["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["reason"].as_str().unwrap().to_owned())
            .collect()
    };
    let (_, first) = api(&a, &token, Method::GET, "/admin/api/audit?limit=2", None).await;
    assert_eq!(
        reasons(&first),
        [
            "slow_mode_secs=4 read_only=false",
            "slow_mode_secs=3 read_only=false"
        ]
    );
    let next = first["next"].as_i64().expect("a next page");
    let path = format!("/admin/api/audit?limit=2&before={next}");
    let (_, second) = api(&b, &token, Method::GET, &path, None).await;
    assert_eq!(
        reasons(&second),
        ["slow_mode_secs=2 read_only=false"],
        "the first is gone"
    );
    assert!(second.get("next").is_none());
}
