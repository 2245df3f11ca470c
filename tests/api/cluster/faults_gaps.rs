//! Gaps are closed or flagged, never silent, and ids never go back, whatever Redis forgets:
//! three instances on one real `redis-server`, the quiet one (C) reaching it through a proxy
//! that can keep it away (`Proxy::refuse`) or leave its subscription half-open
//! (`Proxy::silence_subscriptions`).

mod lost_data;
mod proxy;

use std::time::Duration;

use redis::aio::MultiplexedConnection;
use serde_json::Value;

use self::proxy::Proxy;
use super::Cluster;
use crate::helpers::{Client, TestApp, WAIT, spawn_with};

/// A check or a ping that never comes within a test: the rule under test acts alone.
const NEVER: Duration = Duration::from_secs(3600);
/// A check or a timeout that comes many times within a test's wait.
const SOON: Duration = Duration::from_millis(200);

/// An instance of `cluster` reaching Redis at `url`, checking positions every `check` and
/// taking its subscription for lost after `silent`.
async fn instance(cluster: &Cluster, url: String, check: Duration, silent: Duration) -> TestApp {
    let secret = cluster.secret_file();
    spawn_with(move |c| configure(c, url, secret, check, silent)).await
}

fn configure(
    c: &mut passerby::config::Config,
    url: String,
    secret: std::path::PathBuf,
    check: Duration,
    silent: Duration,
) {
    c.redis = Some(url);
    c.secret_file = Some(secret);
    c.redis_engine.position_check = check;
    c.redis_engine.subscriber_timeout = silent;
    c.rate_limit = 1e6;
    c.rate_burst = 1e6;
}

async fn redis(cluster: &Cluster) -> MultiplexedConnection {
    redis::Client::open(cluster.redis.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

/// Kills every subscription's connection (`CLIENT KILL TYPE pubsub`) and waits until `back`
/// chat subscriptions are there again (the instances the proxy does not keep away).
async fn lose_subscriptions(redis: &mut MultiplexedConnection, back: usize) {
    let killed: usize = redis::cmd("CLIENT")
        .arg(&["KILL", "TYPE", "pubsub"])
        .query_async(redis)
        .await
        .unwrap();
    assert!(killed >= 3, "every instance's subscriptions: {killed}");
    wait_for(|| {
        let mut redis = redis.clone();
        async move {
            let clients: String = redis::cmd("CLIENT")
                .arg(&["LIST", "TYPE", "pubsub"])
                .query_async(&mut redis)
                .await
                .unwrap();
            let patterns = clients.lines().filter(|l| !l.contains(" psub=0 ")).count();
            patterns == back
        }
    })
    .await;
}

/// Waits until `ready` says so, within the wait.
async fn wait_for<F: Future<Output = bool>>(mut ready: impl FnMut() -> F) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !ready().await {
        assert!(tokio::time::Instant::now() < deadline, "never came");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Says each of `n` texts and waits for its echo: each is in Redis once this returns.
async fn say_each(client: &mut Client, n: usize, prefix: &str) -> Vec<String> {
    let mut sent = Vec::new();
    for i in 0..n {
        let text = format!("{prefix} {i}");
        client.say(&text).await;
        while chat(client, false).await["data"] != text.as_str() {}
        sent.push(text);
    }
    sent
}

/// The next chat on `client`, past presence; a `truncated` only where `truncated` allows it.
async fn chat(client: &mut Client, truncated: bool) -> Value {
    loop {
        let event = client.next_event().await;
        match event["type"].as_str() {
            Some("join" | "left") => continue,
            Some("truncated") if truncated => continue,
            Some("chat") => return event,
            _ => panic!("unexpected event {event}"),
        }
    }
}

/// The next `n` chats' texts, checking that their ids strictly increase.
async fn chats(client: &mut Client, n: usize) -> Vec<String> {
    let mut texts = Vec::new();
    let mut last = 0;
    for _ in 0..n {
        let event = chat(client, false).await;
        let id = event["id"].as_u64().unwrap();
        assert!(id > last, "ids strictly increase: {id} after {last}");
        last = id;
        texts.push(event["data"].as_str().unwrap().to_owned());
    }
    texts
}

/// A, B and C (through a proxy), with `check` and `silent` on C; alice on A and carol on C
/// in the lobby, each having seen the other join.
async fn three(
    cluster: &Cluster,
    check: Duration,
    silent: Duration,
) -> (Proxy, [TestApp; 3], Client, Client) {
    let proxy = Proxy::start(cluster.redis.port).await;
    let a = instance(cluster, cluster.redis.url(), NEVER, NEVER).await;
    let b = instance(cluster, cluster.redis.url(), NEVER, NEVER).await;
    let c = instance(cluster, proxy.url(), check, silent).await;
    let (mut alice, _) = a.join("alice").await;
    let (carol, _) = c.join("carol").await;
    assert_eq!(alice.expect("join").await["user"]["name"], "carol");
    (proxy, [a, b, c], alice, carol)
}

#[tokio::test]
async fn after_a_lost_subscription_the_quiet_instance_gets_every_chat_in_order() {
    let cluster = Cluster::new();
    let (proxy, _apps, mut alice, mut carol) = three(&cluster, NEVER, NEVER).await;
    let mut redis = redis(&cluster).await;
    proxy.refuse(true);
    lose_subscriptions(&mut redis, 2).await;
    let sent = say_each(&mut alice, 20, "missed").await;
    proxy.refuse(false);
    assert_eq!(chats(&mut carol, 20).await, sent);
    let after = say_each(&mut alice, 3, "live").await;
    assert_eq!(chats(&mut carol, 3).await, after, "and live again, once");
}

#[tokio::test]
async fn chats_going_on_through_lost_subscriptions_all_reach_every_instance_in_order() {
    const SENT: usize = 150;
    let cluster = Cluster::new();
    let (_proxy, _apps, alice, mut carol) = three(&cluster, NEVER, NEVER).await;
    let mut redis = redis(&cluster).await;
    let sender = tokio::spawn(async move {
        let mut alice = alice;
        say_each(&mut alice, SENT, "storm").await
    });
    // Every instance loses its subscription three times while alice talks.
    for _ in 0..3 {
        lose_subscriptions(&mut redis, 3).await;
    }
    let sent = sender.await.unwrap();
    assert_eq!(chats(&mut carol, SENT).await, sent);
}

#[tokio::test]
async fn a_join_during_the_resubscribe_window_does_not_make_catch_up_skip() {
    let cluster = Cluster::new();
    let (proxy, [_a, _b, c], mut alice, mut carol) = three(&cluster, NEVER, NEVER).await;
    let mut redis = redis(&cluster).await;
    proxy.refuse(true);
    lose_subscriptions(&mut redis, 2).await;
    let sent = say_each(&mut alice, 10, "missed").await;
    // Dave joins on C meanwhile: his history covers the gap, carol's socket does not.
    let (mut dave, _) = c.join("dave").await;
    proxy.refuse(false);
    assert_eq!(chats(&mut carol, 10).await, sent);
    alice.say("after").await;
    assert_eq!(
        chat(&mut dave, false).await["data"],
        "after",
        "nothing twice"
    );
}

/// Errors Redis answered with `WRONGTYPE` so far.
async fn wrongtype_errors(redis: &mut MultiplexedConnection) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("errorstats")
        .query_async(redis)
        .await
        .unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix("errorstat_WRONGTYPE:count="))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn a_catch_up_that_fails_is_retried_until_it_succeeds() {
    let cluster = Cluster::new();
    let (proxy, _apps, mut alice, mut carol) = three(&cluster, NEVER, NEVER).await;
    let mut redis = redis(&cluster).await;
    proxy.refuse(true);
    lose_subscriptions(&mut redis, 2).await;
    let sent = say_each(&mut alice, 10, "missed").await;
    // The room's stream is unreadable while C catches up the first time.
    let stream = "passerby:{lobby}:stream";
    let before = wrongtype_errors(&mut redis).await;
    let _: () = redis::pipe()
        .cmd("RENAME")
        .arg(stream)
        .arg("kept")
        .cmd("SET")
        .arg(stream)
        .arg("unreadable")
        .query_async(&mut redis)
        .await
        .unwrap();
    proxy.refuse(false);
    wait_for(|| {
        let mut redis = redis.clone();
        async move { wrongtype_errors(&mut redis).await > before }
    })
    .await;
    let _: () = redis::pipe()
        .cmd("DEL")
        .arg(stream)
        .cmd("RENAME")
        .arg("kept")
        .arg(stream)
        .query_async(&mut redis)
        .await
        .unwrap();
    assert_eq!(chats(&mut carol, 10).await, sent);
}

#[tokio::test]
async fn the_position_check_sends_what_a_silent_subscription_missed() {
    let cluster = Cluster::new();
    let (proxy, _apps, mut alice, mut carol) = three(&cluster, SOON, NEVER).await;
    assert!(proxy.silence_subscriptions() >= 1);
    let sent = say_each(&mut alice, 10, "unheard").await;
    assert_eq!(chats(&mut carol, 10).await, sent);
}

#[tokio::test]
async fn a_half_open_subscription_is_detected_and_made_again() {
    let cluster = Cluster::new();
    let (proxy, _apps, mut alice, mut carol) = three(&cluster, NEVER, SOON * 3).await;
    assert!(proxy.silence_subscriptions() >= 1);
    let sent = say_each(&mut alice, 10, "unheard").await;
    assert_eq!(chats(&mut carol, 10).await, sent);
    let after = say_each(&mut alice, 3, "live").await;
    assert_eq!(chats(&mut carol, 3).await, after);
}

#[tokio::test]
async fn five_thousand_missed_events_tell_sockets_truncated_instead_of_closing_them() {
    const MISSED: usize = 5_000;
    let cluster = Cluster::new();
    let (proxy, [_a, _b, c], mut alice, mut carol) = three(&cluster, NEVER, NEVER).await;
    let (mut carol_tab, _) = c.join("carol2").await;
    let mut redis = redis(&cluster).await;
    proxy.refuse(true);
    lose_subscriptions(&mut redis, 2).await;
    // About 2 MiB in all, twice the outbound queue's bound.
    let long = "x".repeat(300);
    for burst in 0..MISSED / 100 {
        for i in 0..100 {
            alice.say(&format!("{burst}.{i} {long}")).await;
        }
        for _ in 0..100 {
            chat(&mut alice, false).await;
        }
    }
    proxy.refuse(false);
    for client in [&mut carol, &mut carol_tab] {
        told(client).await;
    }
    alice.say("still open").await;
    for client in [&mut carol, &mut carol_tab] {
        assert_eq!(chat(client, false).await["data"], "still open");
    }
}

/// The next event past presence, which must be `truncated`.
async fn told(client: &mut Client) -> Value {
    loop {
        let event = client.next_event().await;
        match event["type"].as_str() {
            Some("join" | "left") => continue,
            Some("truncated") => return event,
            _ => panic!("expected truncated, got {event}"),
        }
    }
}
