//! Presence over Redis: the grace holds across instances (a user who reloads into another
//! instance makes no `left`/`join`, and leaving for good is one `left`), and `join`/`left`
//! live in a stream of their own, so a newcomer's history is messages.

use std::time::{Duration, Instant};

use redis::Commands;

use super::Cluster;
use crate::{
    helpers::{TestApp, greeting, spawn_with},
    presence::{churn_freely, close, comes_back, kinds},
};

async fn instance(cluster: &Cluster, grace: Duration) -> TestApp {
    let (url, secret) = (cluster.redis.url(), cluster.secret_file());
    spawn_with(move |c| {
        churn_freely(c);
        c.redis = Some(url);
        c.secret_file = Some(secret);
        c.presence_grace_secs = grace;
        c.history_max_presence = 4;
    })
    .await
}

#[tokio::test]
async fn a_reload_into_another_instance_makes_no_left_or_join_and_leaving_is_one_left() {
    let cluster = Cluster::new();
    // Generous on the instance left first: the reload must land within it.
    let grace_a = Duration::from_secs(3);
    let a = instance(&cluster, grace_a).await;
    let b = instance(&cluster, Duration::from_millis(300)).await;
    let (mut alice, _) = a.join("alice").await;
    let bob_cookie = a.sign_in("bob").await;
    let mut bob = a.connect(&bob_cookie).await;
    greeting(&mut bob).await;
    assert_eq!(alice.expect("join").await["data"], "bob joined.");

    let left_a = Instant::now();
    close(bob).await;
    let (mut bob, list) = comes_back(&b, &bob_cookie).await;
    assert!(
        left_a.elapsed() < grace_a,
        "the reload took longer than the grace"
    );
    assert_eq!(list["data"].as_array().unwrap().len(), 2, "{list}");
    bob.say("back through b").await;
    let next = alice.next_event().await;
    assert_eq!(next["type"], "chat", "no left, no join: {next}");

    // For good: once both instances let go, exactly one `left`.
    close(bob).await;
    let left = alice.expect("left").await;
    assert_eq!(left["data"], "bob is left.");
    assert_eq!(left["count"], 1);
    assert!(
        left_a.elapsed() >= grace_a,
        "a's socket held bob until its grace ended"
    );
    alice.say("alone").await;
    assert_eq!(alice.next_event().await["data"], "alone", "one left only");
}

#[tokio::test]
async fn after_a_churn_a_newcomer_sees_the_messages_and_presence_has_its_own_stream() {
    let cluster = Cluster::new();
    let app = instance(&cluster, Duration::ZERO).await;
    let (mut alice, _) = app.join("alice").await;
    let bob_cookie = app.sign_in("bob").await;
    for round in 0..25 {
        let mut bob = app.connect(&bob_cookie).await;
        greeting(&mut bob).await;
        if round % 5 == 0 {
            alice.say(&format!("real {round}")).await;
        }
        close(bob).await;
    }
    alice.say("last").await;
    while alice.next_event().await["data"] != "last" {}

    let carol_cookie = app.sign_in("carol").await;
    let mut carol = app.connect(&carol_cookie).await;
    let history = greeting(&mut carol).await;
    assert_eq!(kinds(&history), ["chat"; 6], "{history}");

    let mut redis = redis::Client::open(cluster.redis.url()).unwrap();
    let messages: usize = redis.xlen("passerby:{lobby}:stream").unwrap();
    let presence: usize = redis.xlen("passerby:{lobby}:presence").unwrap();
    assert_eq!(messages, 6, "the messages' stream holds messages only");
    assert_eq!(presence, 4, "presence is bounded apart");

    // A recovery replays the presence still kept, in id order.
    let mut again = app.connect_since(&carol_cookie, 0).await;
    let recovery = greeting(&mut again).await;
    let ids: Vec<u64> = recovery["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_u64().unwrap())
        .collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{recovery}");
    let kinds = kinds(&recovery);
    assert_eq!(kinds.iter().filter(|k| **k == "chat").count(), 6);
    assert!(kinds.contains(&"left"), "{recovery}");
}
