//! The chat over a real Redis Cluster (`RedisCluster`): messages, presence, whispers and
//! recovery cross two instances in rooms whose slots live on different nodes.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{chat_texts, redis_cluster::RedisCluster};
use crate::{
    deletion::purge,
    helpers::{Client, TestApp, WAIT, cookie_pair},
    server::ServerProcess,
    whispers::open_in,
};

/// Two room names whose keys sit on different nodes of the cluster.
fn rooms_apart(cluster: &RedisCluster) -> (String, String) {
    let node = |room: &str| cluster.node_of(&format!("passerby:{{{room}}}:seq"));
    let first = "lobby".to_owned();
    let other = (0..100)
        .map(|n| format!("r{n}"))
        .find(|room| node(room) != node(&first))
        .expect("a room on another node");
    (first, other)
}

/// Signs in through `app`: the cookie and the user's id.
async fn signed_in(app: &TestApp, name: &str) -> (String, u64) {
    let response = app.post_sign_in(&[("name", name)]).await;
    assert_eq!(response.status(), 200);
    let cookie = cookie_pair(&response).expect("the cookie");
    let reply: Value = response.json().await.unwrap();
    (cookie, reply["user"]["id"].as_u64().expect("an id"))
}

/// A socket in `room`, past its `list` and `history`.
async fn in_room(app: &TestApp, name: &str, room: &str) -> (Client, u64) {
    let (cookie, id) = signed_in(app, name).await;
    let (client, _) = open_in(app, &cookie, room).await;
    (client, id)
}

/// The next chat line, past presence.
async fn next_line(client: &mut Client) -> Value {
    loop {
        let event = client.next_event().await;
        if event["type"] == "chat" {
            return event;
        }
    }
}

#[tokio::test]
async fn redis_cluster_chat_crosses_instances_in_rooms_on_different_nodes() {
    let cluster = RedisCluster::start();
    let (x, y) = rooms_apart(&cluster);
    let (a, b) = (cluster.instance().await, cluster.instance().await);
    let (mut alice, _) = in_room(&a, "alice", &x).await;
    let (mut bob, _) = in_room(&b, "bob", &x).await;
    let (mut carol, _) = in_room(&a, "carol", &y).await;
    let (mut dave, _) = in_room(&b, "dave", &y).await;

    alice.say(&format!("hello {x}")).await;
    dave.say(&format!("hello {y}")).await;
    let (on_a, on_b) = (next_line(&mut alice).await, next_line(&mut bob).await);
    assert_eq!(on_b["data"], format!("hello {x}"));
    assert_eq!(on_a["id"], on_b["id"], "one id for the room");
    assert_eq!(next_line(&mut carol).await["data"], format!("hello {y}"));
    assert_eq!(next_line(&mut dave).await["data"], format!("hello {y}"));
    bob.say("back").await;
    assert_eq!(next_line(&mut alice).await["data"], "back");
    for room in [&x, &y] {
        let key = format!("passerby:{{{room}}}:seq");
        assert!(cluster.exists(&key), "{key} on its node");
    }
}

#[tokio::test]
async fn redis_cluster_list_join_and_left_cross_instances() {
    let cluster = RedisCluster::start();
    let (_, y) = rooms_apart(&cluster);
    let (a, b) = (cluster.instance().await, cluster.instance().await);
    let (alice_cookie, _) = signed_in(&a, "alice").await;
    let mut alice = a
        .connect_to(&format!("/ws?room={y}"), &[("Cookie", &alice_cookie)])
        .await
        .unwrap();
    alice.expect("join").await;
    alice.expect("list").await;
    alice.expect("history").await;
    let (bob_cookie, _) = signed_in(&b, "bob").await;
    let mut bob = b
        .connect_to(&format!("/ws?room={y}"), &[("Cookie", &bob_cookie)])
        .await
        .unwrap();
    let joined = bob.expect("join").await;
    assert_eq!(joined["count"], 2, "{joined}");
    let list = bob.expect("list").await;
    let mut names: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["name"].as_str().unwrap())
        .collect();
    names.sort_unstable();
    assert_eq!(names, ["alice", "bob"], "B lists the user on A");
    assert_eq!(alice.expect("join").await["user"]["name"], "bob");
    bob.ws.close(None).await.unwrap();
    let left = alice.expect("left").await;
    assert_eq!(left["user"]["name"], "bob");
    assert_eq!(left["count"], 1);
}

#[tokio::test]
async fn redis_cluster_a_whisper_crosses_instances_and_rooms_on_different_nodes() {
    let cluster = RedisCluster::start();
    let (x, y) = rooms_apart(&cluster);
    let (a, b) = (cluster.instance().await, cluster.instance().await);
    let (mut alice, _) = in_room(&a, "alice", &x).await;
    let (mut bob, bob_id) = in_room(&b, "bob", &y).await;
    let whisper = json!({"type": "private", "to": bob_id, "data": "psst"});
    alice.say(&whisper.to_string()).await;
    let got = bob.expect("private").await;
    assert_eq!(got["data"], "psst", "{got}");
    assert_eq!(got["to"]["id"], bob_id);
    assert_eq!(got["origin"]["room"], x.as_str(), "{got}");
    let mine = alice.expect("private").await;
    assert_eq!(mine["data"], "psst");
}

#[tokio::test]
async fn redis_cluster_a_client_recovers_on_another_instance_what_it_missed() {
    let cluster = RedisCluster::start();
    let (_, y) = rooms_apart(&cluster);
    let (a, b) = (cluster.instance().await, cluster.instance().await);
    let (mut alice, _) = in_room(&a, "alice", &y).await;
    let (bob_cookie, _) = signed_in(&a, "bob").await;
    let (mut bob, _) = open_in(&a, &bob_cookie, &y).await;
    alice.say("before").await;
    let seen = next_line(&mut bob).await["id"].as_u64().unwrap();
    bob.ws.close(None).await.unwrap();
    next_line(&mut alice).await;
    for text in ["one", "two", "three"] {
        alice.say(text).await;
        next_line(&mut alice).await;
    }
    let mut bob = b
        .connect_to(
            &format!("/ws?room={y}&since={seen}"),
            &[("Cookie", &bob_cookie)],
        )
        .await
        .unwrap();
    let (history, _) = bob.until(|e| e["type"] == "history").await;
    assert!(history.get("truncated").is_none(), "{history}");
    assert_eq!(chat_texts(&history), ["one", "two", "three"]);
}

/// A killed instance's users are reaped even in a room no live instance has a socket in
/// (the rooms that hold entries are listed under their own slot), so a whisper to them is
/// refused and a newcomer there does not list them.
#[tokio::test]
async fn redis_cluster_a_killed_instance_leaves_no_ghost_in_a_room_nobody_else_is_in() {
    let cluster = RedisCluster::start();
    let (x, y) = rooms_apart(&cluster);
    let a = cluster.instance().await;
    let (url, secret) = (cluster.url(), cluster.secret_file());
    let mut process = ServerProcess::start(&[
        "--redis",
        &url,
        "--redis-cluster",
        "--redis-presence-ttl",
        "1",
        "--secret-file",
        secret.to_str().unwrap(),
    ]);
    let p = TestApp::external(process.addr);
    let (mut alice, _) = in_room(&a, "alice", &x).await;
    let (mut bob, bob_id) = in_room(&p, "bob", &y).await;
    let whisper = json!({"type": "private", "to": bob_id, "data": "psst"}).to_string();
    alice.say(&whisper).await;
    assert_eq!(bob.expect("private").await["data"], "psst");
    process.kill();
    let refused = Instant::now();
    loop {
        assert!(refused.elapsed() < WAIT, "bob is still taken for online");
        alice.say(&whisper).await;
        let answer = alice
            .until(|e| e["type"] == "error" || e["type"] == "private")
            .await
            .0;
        if answer["type"] == "error" {
            assert_eq!(answer["code"], "not_online", "{answer}");
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (carol_cookie, _) = signed_in(&a, "carol").await;
    let mut carol = a
        .connect_to(&format!("/ws?room={y}"), &[("Cookie", &carol_cookie)])
        .await
        .unwrap();
    carol.expect("join").await;
    let list = carol.expect("list").await;
    assert_eq!(list["count"], 1, "bob was reaped: {list}");
}

/// A purge of a user everywhere finds the rooms on every node (a scan of each primary).
#[tokio::test]
async fn redis_cluster_a_purge_everywhere_reaches_rooms_on_every_node() {
    let cluster = RedisCluster::start();
    let (x, y) = rooms_apart(&cluster);
    let (ok, token, stderr) = cluster.moderator(&["add", "mod"]);
    assert!(ok, "{stderr}");
    let a = cluster.instance().await;
    let (cookie, _) = signed_in(&a, "alice").await;
    let (mut in_x, _) = open_in(&a, &cookie, &x).await;
    let (mut in_y, _) = open_in(&a, &cookie, &y).await;
    in_x.say("in x").await;
    in_y.say("in y").await;
    let said = next_line(&mut in_x).await;
    next_line(&mut in_y).await;
    let response = purge(&a, token.trim(), &said["user"], json!({})).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["rooms"],
        json!({ x.as_str(): 1, y.as_str(): 1 }),
        "{body}"
    );
}

/// Subscriptions go through the first node named that answers, and after a lost one the
/// next try goes to the next node: a dead node first in `--redis` holds nothing up.
#[tokio::test]
async fn redis_cluster_subscriptions_go_through_a_node_that_answers() {
    let cluster = RedisCluster::start();
    let dead = format!("redis://127.0.0.1:{}", crate::helpers::free_port());
    let url = format!("{dead},{}", cluster.url());
    let (a, b) = (
        cluster.instance_at(url.clone()).await,
        cluster.instance_at(url).await,
    );
    let (mut alice, _) = in_room(&a, "alice", "lobby").await;
    let (mut bob, _) = in_room(&b, "bob", "lobby").await;
    alice.say("through the live node").await;
    assert_eq!(next_line(&mut bob).await["data"], "through the live node");
    next_line(&mut alice).await;
    let first = cluster.ports[0];
    let chat_subscribers = || {
        let clients = cluster.cli(first, &["client", "list", "type", "pubsub"]);
        clients.lines().filter(|l| l.contains(" psub=1")).count()
    };
    assert_eq!(
        chat_subscribers(),
        2,
        "each instance's chat subscription on the live node"
    );
    // Lost: the next try is the dead node, then the live one again.
    cluster.cli(first, &["client", "kill", "type", "pubsub"]);
    let start = Instant::now();
    loop {
        assert!(start.elapsed() < WAIT, "subscribed again");
        if chat_subscribers() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bob.say("after the loss").await;
    assert_eq!(next_line(&mut alice).await["data"], "after the loss");
}
