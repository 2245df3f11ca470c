//! Redis lost data: a room's keys (an eviction, a `FLUSHALL`), or everything (a restart
//! without persistence) while an instance restarted too. Sockets are told `truncated`, ids
//! never go back and user ids never repeat.

use redis::aio::MultiplexedConnection;
use serde_json::Value;

use super::{
    Cluster, NEVER, Proxy, SOON, chat, configure, instance, redis, say_each, three, told, wait_for,
};
use crate::helpers::{Client, TestApp, spawn_in};

/// Waits until some instance's position check raised `passerby:floor` to `id`: it has
/// looked at the rooms with sockets there since it saw `id`, and knows their epochs.
async fn checked_past(redis: &MultiplexedConnection, id: u64) {
    wait_for(|| {
        let mut redis = redis.clone();
        async move {
            let floor: Option<u64> = redis::cmd("GET")
                .arg("passerby:floor")
                .query_async(&mut redis)
                .await
                .unwrap();
            floor >= Some(id)
        }
    })
    .await;
}

#[tokio::test]
async fn sockets_are_told_truncated_when_redis_lost_their_rooms_stream() {
    let cluster = Cluster::new();
    let (_proxy, _apps, mut alice, mut carol) = three(&cluster, SOON, NEVER).await;
    let redis = redis(&cluster).await;
    alice.say("kept").await;
    let kept = chat(&mut carol, false).await["id"].as_u64().unwrap();
    checked_past(&redis, kept).await;
    // As an eviction or a FLUSHALL would: the room's keys are gone.
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("passerby:{lobby}:*")
        .query_async(&mut redis.clone())
        .await
        .unwrap();
    let _: () = redis::cmd("DEL")
        .arg(&keys)
        .query_async(&mut redis.clone())
        .await
        .unwrap();
    let truncated = told(&mut carol).await;
    assert_eq!(
        truncated["id"], kept,
        "no id of its own: the last the socket had"
    );
    assert_eq!(truncated["user"]["name"], "carol");
    alice.say("after").await;
    let after = chat(&mut carol, false).await;
    assert_eq!(after["data"], "after");
    assert!(
        after["id"].as_u64() > Some(kept),
        "ids never go back: {after}"
    );
}

#[tokio::test]
async fn redis_restarted_empty_while_an_instance_restarts_never_sends_an_id_back() {
    let mut cluster = Cluster::new();
    let proxy = Proxy::start(cluster.redis.port).await;
    let dir = tempfile::tempdir().unwrap();
    let (url, secret) = (cluster.redis.url(), cluster.secret_file());
    let restartable = || {
        let (url, secret) = (url.clone(), secret.clone());
        spawn_in(dir.path().to_owned(), move |c| {
            configure(c, url, secret, NEVER, NEVER)
        })
    };
    let w = restartable().await;
    // X keeps its sockets through the outage; X and B are kept away from the new Redis
    // until W has issued ids in it, so W's floor alone stands between it and a reused id.
    let x = instance(&cluster, proxy.url(), SOON, NEVER).await;
    let _b = instance(&cluster, proxy.url(), NEVER, NEVER).await;
    let (mut alice, _) = w.join("alice").await;
    let (mut bob, _) = x.join("bob").await;
    alice.expect("join").await;
    say_each(&mut alice, 40, "before").await;
    let top = chat_ids(&mut bob, 40).await;
    // Signed in and never seen again: an offline user holds this id.
    let offline = signed_in_id(&w, "dave").await;
    checked_past(&redis(&cluster).await, top).await;
    w.stop().await.unwrap();
    proxy.refuse(true);
    cluster.redis.kill();
    cluster.redis.restart();
    let w = restartable().await;
    let newcomer = signed_in_id(&w, "erin").await;
    assert!(newcomer > offline, "user {newcomer} after {offline}");
    let (mut erin, _) = w.join("erin2").await;
    erin.say("after").await;
    let after = chat(&mut erin, false).await;
    assert!(after["id"].as_u64() > Some(top), "{after} after {top}");
    proxy.refuse(false);
    // Bob's view cannot hold what Redis lost: he is told to rebuild, then goes on above.
    told(&mut bob).await;
    let live = say_each(&mut erin, 3, "live").await;
    for text in live {
        let event = chat(&mut bob, false).await;
        assert_eq!(event["data"], text.as_str());
        assert!(event["id"].as_u64() > Some(top), "{event} after {top}");
    }
}

/// Reads `n` chats; the last one's id.
async fn chat_ids(client: &mut Client, n: usize) -> u64 {
    let mut last = 0;
    for _ in 0..n {
        last = chat(client, false).await["id"].as_u64().unwrap();
    }
    last
}

async fn signed_in_id(app: &TestApp, name: &str) -> u64 {
    let response = app.post_sign_in(&[("name", name)]).await;
    let body: Value = response.json().await.unwrap();
    body["user"]["id"].as_u64().unwrap()
}
