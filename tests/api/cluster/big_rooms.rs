//! Big rooms over Redis, two instances: each instance sums up the joins and lefts it hears
//! into its own `presence`, by the cluster's count; a `list` is the cluster's first page and
//! `users` pages the rest from Redis through whichever instance the socket is on.

use super::Cluster;
use crate::{
    big_rooms::{big, enters_big, names, next_besides_presence, users_after},
    helpers::{TestApp, spawn_with},
    presence::close,
};

async fn instance(cluster: &Cluster) -> TestApp {
    let (url, secret) = (cluster.redis.url(), cluster.secret_file());
    spawn_with(move |c| {
        big(c, 2, 2);
        c.redis = Some(url);
        c.secret_file = Some(secret);
    })
    .await
}

#[tokio::test]
async fn a_big_room_across_two_instances_sends_presence_and_pages_its_users() {
    let cluster = Cluster::new();
    let (a, b) = (instance(&cluster).await, instance(&cluster).await);
    let (mut alice, _) = a.join("alice").await;
    let (mut bob, _) = b.join("bob").await;
    assert_eq!(
        alice.expect("join").await["data"],
        "bob joined.",
        "small: the seed's join"
    );

    // Carol on a makes the room of the cluster big: both instances send `presence`.
    let (carol, list) = enters_big(&a, "carol").await;
    assert_eq!(list["count"], 3);
    assert_eq!(names(&list["data"]), ["alice", "bob"], "the first page");
    assert!(list["next"].is_u64(), "{list}");
    for client in [&mut alice, &mut bob] {
        let presence = client.expect("presence").await;
        assert_eq!(names(&presence["data"]["joined"]), ["carol"]);
        assert_eq!(presence["data"]["count"], 3);
    }

    // Dave on b: his list and pages come from Redis, the whole cluster's.
    let (mut dave, list) = enters_big(&b, "dave").await;
    assert_eq!(list["count"], 4);
    assert_eq!(names(&list["data"]), ["alice", "bob"]);
    let page = users_after(&mut dave, list["next"].as_u64().unwrap()).await;
    assert_eq!(names(&page["data"]), ["carol", "dave"]);
    assert_eq!(page["count"], 4);
    assert!(page.get("next").is_none(), "{page}");
    assert_eq!(
        names(&alice.expect("presence").await["data"]["joined"]),
        ["dave"]
    );

    close(carol).await;
    for client in [&mut alice, &mut bob] {
        // Each instance has its own clock: b's may sum dave's join up with carol's left.
        let presence = loop {
            let presence = client.expect("presence").await;
            if names(&presence["data"]["left"]) == ["carol"] {
                break presence;
            }
            assert_eq!(names(&presence["data"]["joined"]), ["dave"], "{presence}");
        };
        assert_eq!(presence["data"]["count"], 3);
    }

    bob.say("across").await;
    assert_eq!(next_besides_presence(&mut alice).await["data"], "across");
    assert_eq!(next_besides_presence(&mut dave).await["data"], "across");
}

#[tokio::test]
async fn users_pages_past_history_reads_are_refused_as_busy_and_others_chat_on() {
    let cluster = Cluster::new();
    let (url, secret) = (cluster.redis.url(), cluster.secret_file());
    let a = spawn_with(move |c| {
        big(c, 2, 2);
        c.redis = Some(url);
        c.secret_file = Some(secret);
        c.history_reads = 1;
    })
    .await;
    let (mut alice, _) = a.join("alice").await;
    let (mut bob, _) = a.join("bob").await;
    alice.expect("join").await;

    // Redis stalls: the first page is under way and holds the one read there may be.
    cluster.redis.freeze();
    let ask = serde_json::json!({"type": "users", "after": 0}).to_string();
    bob.say(&ask).await;
    bob.say(&ask).await;
    let busy = bob.expect("error").await;
    assert_eq!(
        busy["data"], "users not read: the server is busy: try again in a moment",
        "{busy}"
    );
    cluster.redis.thaw();
    let first = next_besides_presence(&mut bob).await;
    assert!(
        first["type"] == "users" || first["type"] == "error",
        "the first request is answered either way: {first}"
    );
    bob.say("after the stall").await;
    assert_eq!(
        next_besides_presence(&mut alice).await["data"],
        "after the stall"
    );
    assert_eq!(
        next_besides_presence(&mut bob).await["data"],
        "after the stall"
    );
    let page = users_after(&mut bob, 0).await;
    assert_eq!(names(&page["data"]), ["alice", "bob"]);
}

#[tokio::test]
async fn a_join_over_redis_gets_a_page_of_a_big_room_and_pages_the_rest_on_any_instance() {
    let cluster = Cluster::new();
    let apps = [
        instance(&cluster).await,
        instance(&cluster).await,
        instance(&cluster).await,
    ];
    // Seven users, spread over the three instances; the room is big past two.
    let mut everyone = Vec::new();
    let mut clients = Vec::new();
    for (i, name) in ["u0", "u1", "u2", "u3", "u4", "u5", "u6"]
        .iter()
        .enumerate()
    {
        let cookie = apps[i % 3].sign_in(name).await;
        let mut client = apps[i % 3].connect(&cookie).await;
        let list = loop {
            let event = client.next_event().await;
            if event["type"] == "list" {
                break event;
            }
        };
        client.expect("history").await;
        assert_eq!(list["count"], i + 1, "the cluster's count: {list}");
        everyone.push(*name);
        clients.push(client);
    }

    // The last joiner (on c) got the first page only, and its cursor; any instance pages
    // the rest from Redis, in arrival order, to the end.
    let (mut late, list) = enters_big(&apps[2], "late").await;
    everyone.push("late");
    assert_eq!(list["count"], 8);
    assert_eq!(names(&list["data"]), ["u0", "u1"], "a page, not the room");
    let mut seen: Vec<String> = names(&list["data"]).iter().map(|n| n.to_string()).collect();
    let mut next = list["next"].as_u64().expect("a cursor");
    loop {
        let page = users_after(&mut late, next).await;
        assert_eq!(page["count"], 8);
        let page_names = names(&page["data"]);
        assert!(page_names.len() <= 2, "{page}");
        seen.extend(page_names.iter().map(|n| n.to_string()));
        match page["next"].as_u64() {
            Some(after) => next = after,
            None => break,
        }
    }
    assert_eq!(seen, everyone, "every user once, by arrival");
    let (_, list) = enters_big(&apps[0], "later").await;
    assert_eq!(names(&list["data"]), ["u0", "u1"]);
    assert_eq!(list["count"], 9);
}
