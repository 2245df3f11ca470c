//! Presence over Redis under faults, three instances on one real `redis-server`: a leave that
//! Redis runs late and many times takes one socket out, a join that timed out leaves no
//! ghost, an outage (Redis restarted empty, or from its append-only file) makes no storm of
//! `left` and `join` and still sends the `left` of a socket that closed meanwhile, and the
//! first sign-in and join after Redis returns succeed.

use std::{
    process::Child,
    time::{Duration, Instant},
};

use serde_json::{Value, json};

use super::{Cluster, Redis, another_tab, names, next_chat, spawn_redis_keeping};
use crate::{
    helpers::{Client, TestApp, cookie_pair, spawn_with},
    presence::{churn_freely, close},
};

/// Longer than the engine's script timeout (2 s): calls made meanwhile time out, and Redis
/// runs those it holds once it goes on.
const FREEZE: Duration = Duration::from_secs(3);

/// Redis is away this long, more than the TTL the tests give (1 s).
const OUTAGE: Duration = Duration::from_millis(1500);

/// How long a test waits for the cluster to settle after a fault.
const SETTLE: Duration = Duration::from_secs(20);

/// Every socket's entry in the lobby, where these tests are (`scripts/presence.lua`).
const ENTRIES: &str = "passerby:{lobby}:sockets";

async fn instance(cluster: &Cluster, ttl: Duration) -> TestApp {
    let (url, secret) = (cluster.redis.url(), cluster.secret_file());
    spawn_with(move |c| {
        churn_freely(c);
        c.redis = Some(url);
        c.secret_file = Some(secret);
        c.redis_engine.presence_ttl = ttl;
        c.presence_grace_secs = Duration::ZERO;
    })
    .await
}

async fn three(cluster: &Cluster, ttl: Duration) -> [TestApp; 3] {
    [
        instance(cluster, ttl).await,
        instance(cluster, ttl).await,
        instance(cluster, ttl).await,
    ]
}

/// A connection that waits as long as Redis makes it.
async fn patient_conn(cluster: &Cluster) -> redis::aio::MultiplexedConnection {
    let config = redis::AsyncConnectionConfig::new().set_response_timeout(None);
    redis::Client::open(cluster.redis.url())
        .unwrap()
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .unwrap()
}

/// Asks Redis until `check` holds, or fails after `SETTLE`.
async fn until<T: redis::FromRedisValue + std::fmt::Debug>(
    cluster: &Cluster,
    what: &str,
    cmd: &redis::Cmd,
    check: impl Fn(&T) -> bool,
) {
    let start = Instant::now();
    loop {
        // A new connection each time: Redis may have just come back.
        if let Ok(mut conn) = redis::Client::open(cluster.redis.url())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
        {
            let got: redis::RedisResult<T> = cmd.query_async(&mut conn).await;
            match got {
                Ok(got) if check(&got) => return,
                got => assert!(start.elapsed() < SETTLE, "{what}: {got:?}"),
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until Redis holds exactly `n` socket entries.
async fn entries_become(cluster: &Cluster, n: usize) {
    let mut hlen = redis::cmd("HLEN");
    hlen.arg(ENTRIES);
    until(cluster, "socket entries", &hlen, |got: &usize| *got == n).await;
}

/// Opens a socket and reads its greeting; the socket and the user's JSON.
async fn arrives(app: &TestApp, cookie: &str) -> (Client, Value) {
    let mut client = app.connect(cookie).await;
    client.expect("join").await;
    let list = client.expect("list").await;
    client.expect("history").await;
    (client, list["user"].clone())
}

fn presence_of(events: &[Value], kind: &str, name: &str) -> usize {
    events
        .iter()
        .filter(|e| e["type"] == kind && e["user"]["name"] == name)
        .count()
}

fn whisper(to: &Value, text: &str) -> String {
    json!({"type": "private", "to": to["id"], "data": text}).to_string()
}

/// Whoever `app` lists to a newcomer, sorted.
async fn listed(app: &TestApp, name: &str) -> Vec<String> {
    let cookie = app.sign_in(name).await;
    let mut client = app.connect(&cookie).await;
    client.expect("join").await;
    let list = client.expect("list").await;
    let mut names: Vec<String> = names(&list).into_iter().map(str::to_owned).collect();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tab_closed_during_a_freeze_takes_one_socket_out_and_its_user_stays() {
    let cluster = Cluster::new();
    let [a, b, c] = three(&cluster, Duration::from_secs(1)).await;
    let (mut alice, _) = a.join("alice").await;
    let bob_cookie = b.sign_in("bob").await;
    let (mut bob, bob_user) = arrives(&b, &bob_cookie).await;
    alice.expect("join").await;
    let tab = another_tab(&c, &bob_cookie).await;
    // Redis runs a held copy of a script only if it knows the script already (EVALSHA).
    let (carol, _) = c.join("carol").await;
    close(carol).await;
    entries_become(&cluster, 3).await;
    alice.expect("join").await;
    alice.expect("left").await;

    cluster.redis.freeze();
    // C's leave times out while Redis stands still; Redis runs the copy it holds once it
    // goes on, and C sends it again.
    close(tab).await;
    tokio::time::sleep(FREEZE).await;
    cluster.redis.thaw();
    entries_become(&cluster, 2).await;

    let after = alice.events_within(Duration::from_millis(1500)).await;
    assert_eq!(presence_of(&after, "left", "bob"), 0, "{after:?}");
    assert!(
        after
            .iter()
            .all(|e| e["type"] != "join" && e["type"] != "left"),
        "no instance was taken for dead: {after:?}"
    );
    alice.say(&whisper(&bob_user, "still there?")).await;
    let got = next_chat(&mut bob).await;
    assert_eq!(
        (&got["type"], &got["data"]),
        (&json!("private"), &json!("still there?"))
    );
    assert_eq!(alice.expect("private").await["data"], "still there?");
    assert_eq!(listed(&a, "erin").await, ["alice", "bob", "erin"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_join_that_timed_out_leaves_no_ghost_once_redis_runs_it() {
    let cluster = Cluster::new();
    let [a, b, c] = three(&cluster, Duration::from_secs(1)).await;
    let (mut alice, _) = a.join("alice").await;
    let gus_cookie = b.sign_in("gus").await;
    let (gus, gus_user) = arrives(&b, &gus_cookie).await;
    alice.expect("join").await;
    close(gus).await;
    alice.expect("left").await;

    // Writes (every script) stand still, reads go on: the socket's session check passes,
    // and its join script is held, as in a freeze that begins between the two. A
    // stopped process cannot hold one and answer the other.
    let mut redis = patient_conn(&cluster).await;
    let pause = FREEZE.as_millis() as u64;
    let () = redis::cmd("CLIENT")
        .arg("PAUSE")
        .arg(pause)
        .arg("WRITE")
        .query_async(&mut redis)
        .await
        .unwrap();
    let mut gus = b.connect(&gus_cookie).await;
    let (code, _) = gus.close_code().await.expect("a close frame");
    assert_eq!(code, 1011, "the join timed out");
    // Returns once the pause is over: Redis has taken the held join by then.
    let () = redis::cmd("SET")
        .arg("passerby:test:probe")
        .arg(1)
        .query_async(&mut redis)
        .await
        .unwrap();
    entries_become(&cluster, 1).await;

    assert_eq!(listed(&c, "erin").await, ["alice", "erin"]);
    alice.say(&whisper(&gus_user, "anyone?")).await;
    let mut seen = Vec::new();
    let error = loop {
        let event = alice.next_event().await;
        if event["type"] == "error" {
            break event;
        }
        seen.push(event);
    };
    assert!(
        error["data"].as_str().unwrap().contains("not online"),
        "{error}"
    );
    let (joins, lefts) = (
        presence_of(&seen, "join", "gus"),
        presence_of(&seen, "left", "gus"),
    );
    assert_eq!(
        joins, lefts,
        "every join the late script sent has its left: {seen:?}"
    );
}

/// `redis-server` keeping every write in its append-only file, so a restart loads it.
fn spawn_with_aof(port: u16, dir: &tempfile::TempDir) -> Child {
    spawn_redis_keeping(
        port,
        dir,
        &["--appendonly", "yes", "--appendfsync", "always"],
    )
}

fn cluster_with_aof() -> Cluster {
    Cluster {
        redis: Redis::launch(spawn_with_aof),
        secret: tempfile::tempdir().unwrap(),
    }
}

/// Redis dies with four users on three instances; dave's only tab closes meanwhile.
/// Once it is back, empty or from its file: one `left`, dave's, and nothing else.
async fn an_outage(mut cluster: Cluster, from_file: bool) {
    let [a, b, c] = three(&cluster, Duration::from_secs(1)).await;
    let (mut alice, _) = a.join("alice").await;
    let (_bob, _) = b.join("bob").await;
    let (_carol, _) = c.join("carol").await;
    let (dave, _) = c.join("dave").await;
    for _ in 0..3 {
        alice.expect("join").await;
    }
    entries_become(&cluster, 4).await;

    cluster.redis.kill();
    close(dave).await;
    // Longer than the TTL: every entry Redis kept has expired by its clock.
    tokio::time::sleep(OUTAGE).await;
    if from_file {
        cluster.redis.child = spawn_with_aof(cluster.redis.port, &cluster.redis.dir);
        cluster.redis.wait_until_listening();
    } else {
        cluster.redis.restart();
    }

    let start = Instant::now();
    let mut seen = Vec::new();
    while presence_of(&seen, "left", "dave") == 0 {
        assert!(start.elapsed() < SETTLE, "dave's left never came: {seen:?}");
        seen.extend(alice.events_within(Duration::from_millis(200)).await);
    }
    // Every instance beat a few times since, and a TTL passed: a reaping would show.
    let mut hlen = redis::cmd("HLEN");
    hlen.arg("passerby:{lobby}:users");
    until(&cluster, "users back", &hlen, |n: &usize| *n == 3).await;
    seen.extend(alice.events_within(Duration::from_millis(2500)).await);
    let presence: Vec<&Value> = seen
        .iter()
        .filter(|e| e["type"] == "join" || e["type"] == "left")
        .collect();
    assert_eq!(presence.len(), 1, "only dave's left: {presence:?}");
    assert_eq!(listed(&b, "erin").await, ["alice", "bob", "carol", "erin"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restarted_empty_brings_no_storm_and_the_left_of_a_tab_closed_meanwhile() {
    an_outage(Cluster::new(), false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restarted_from_its_file_brings_no_storm_and_the_left_of_a_tab_closed_meanwhile() {
    an_outage(cluster_with_aof(), true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_join_and_the_first_sign_in_after_redis_returns_succeed() {
    let mut cluster = Cluster::new();
    // A long TTL: no beat uses the dead connections before the requests do.
    let [a, b, _c] = three(&cluster, Duration::from_secs(60)).await;
    let (_alice, _) = a.join("alice").await;
    let carol_cookie = b.sign_in("carol").await;
    cluster.redis.kill();
    cluster.redis.restart();
    let mut carol = b.connect(&carol_cookie).await;
    let first = carol.next_event().await;
    assert_eq!(first["type"], "join", "the first join: {first}");
    carol.expect("list").await;
    carol.expect("history").await;
    let response = a.post_sign_in(&[("name", "dave")]).await;
    assert_eq!(response.status(), 200, "the first sign-in");
    let cookie = cookie_pair(&response).unwrap();
    arrives(&a, &cookie).await;
}
