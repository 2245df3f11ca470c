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
        let presence = client.expect("presence").await;
        assert_eq!(names(&presence["data"]["left"]), ["carol"], "{presence}");
        assert_eq!(presence["data"]["count"], 3);
    }

    bob.say("across").await;
    assert_eq!(next_besides_presence(&mut alice).await["data"], "across");
    assert_eq!(next_besides_presence(&mut dave).await["data"], "across");
}
