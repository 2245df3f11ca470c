//! Redis keys, against a real redis-server: every key of a room is under its hash tag, so
//! hashes to one slot (what Redis Cluster needs to run a room's scripts); an idle room's keys
//! expire after `--redis-room-ttl`; `--history-max-age-days` trims the stream; a data set
//! of the layout before the hash tags keeps its rooms and ids.

use std::time::{Duration, Instant};

use redis::Commands;
use serde_json::json;

use super::Cluster;
use crate::{
    helpers::{TestApp, WAIT, spawn_with},
    whispers::{open_in, whisper},
};

/// CRC16/XMODEM of the key's hash tag (or the whole key without one), mod 16384: the slot
/// Redis Cluster gives the key (its specification's `HASH_SLOT`).
fn slot(key: &str) -> u16 {
    let bytes = key.as_bytes();
    let tagged = key.find('{').and_then(|open| {
        let close = key[open + 1..].find('}')? + open + 1;
        (close > open + 1).then(|| &bytes[open + 1..close])
    });
    let mut crc: u16 = 0;
    for &byte in tagged.unwrap_or(bytes) {
        crc ^= u16::from(byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc % 16384
}

#[test]
fn the_slot_is_the_clusters() {
    // The examples in the Redis Cluster specification.
    assert_eq!(slot("123456789"), 12739);
    assert_eq!(slot("foo"), 12182);
    assert_eq!(slot("{user1000}.following"), slot("{user1000}.followers"));
    assert_eq!(slot("foo{bar}{zap}"), slot("bar"));
    assert_eq!(slot("foo{{bar}}zap"), slot("{bar"));
    assert_ne!(
        slot("foo{}{bar}"),
        slot("bar"),
        "an empty tag hashes the whole key"
    );
}

/// The global keys, which cross slots by nature (README, "Keys and Redis Cluster").
const GLOBAL: &[&str] = &[
    "passerby:user:",
    "passerby:user_ids",
    "passerby:floor",
    "passerby:{presence}:",
    "passerby:sessions:",
    "passerby:{moderation}:",
];

async fn instance(
    cluster: &Cluster,
    configure: impl FnOnce(&mut passerby::config::Config),
) -> TestApp {
    let (url, secret) = (cluster.redis.url(), cluster.secret_file());
    spawn_with(move |c| {
        c.redis = Some(url);
        c.secret_file = Some(secret);
        configure(c);
    })
    .await
}

fn keys(cluster: &Cluster, pattern: &str) -> Vec<String> {
    let mut redis = redis::Client::open(cluster.redis.url()).unwrap();
    redis.keys(pattern).unwrap()
}

#[tokio::test]
async fn every_key_of_a_room_hashes_to_the_rooms_slot() {
    let cluster = Cluster::new();
    let a = instance(&cluster, |_| {}).await;
    let (mut alice, alice_user) = a.join("alice").await;
    let (mut bob, _) = a.join("bob").await;
    alice.expect("join").await;
    // A message with a cid, a whisper and a deletion: the keys each makes.
    alice
        .say(&json!({"type": "chat", "data": "tagged", "cid": "c1"}).to_string())
        .await;
    alice.until(|e| e["type"] == "ack").await;
    bob.expect("chat").await;
    bob.say(&whisper(&alice_user, "psst")).await;
    alice.until(|e| e["type"] == "private").await;

    let all = keys(&cluster, "passerby:*");
    let room: Vec<&String> = all
        .iter()
        .filter(|k| !GLOBAL.iter().any(|g| k.starts_with(g)))
        .collect();
    for suffix in [
        "seq", "stream", "presence", "users", "order", "info", "epoch", "sockets", "expiry",
    ] {
        assert!(
            room.contains(&&format!("passerby:{{lobby}}:{suffix}")),
            "{suffix}: {room:?}"
        );
    }
    assert!(room.iter().any(|k| k.contains(":applied:")), "{room:?}");
    assert!(room.iter().any(|k| k.contains(":cid:")), "{room:?}");
    let lobby = slot("lobby");
    for key in &room {
        assert!(key.starts_with("passerby:{lobby}:"), "under the tag: {key}");
        assert_eq!(slot(key), lobby, "{key}");
    }
    assert!(
        keys(&cluster, "passerby:room:*").is_empty(),
        "no old layout"
    );
}

/// The keys of `room` that `--redis-room-ttl` governs (a call's answer and a `cid` expire
/// with `--cid-window-secs`).
fn room_keys(cluster: &Cluster, room: &str) -> Vec<String> {
    keys(cluster, &format!("passerby:{{{room}}}:*"))
        .into_iter()
        .filter(|k| !k.contains(":applied:") && !k.contains(":cid:"))
        .collect()
}

#[tokio::test]
async fn an_idle_rooms_keys_expire_and_a_room_with_sockets_keeps_them() {
    let cluster = Cluster::new();
    let ttl = Duration::from_millis(1500);
    let a = instance(&cluster, |c| {
        c.redis_engine.room_ttl = ttl;
        c.redis_engine.position_check = Duration::from_millis(200);
        c.presence_grace_secs = Duration::ZERO;
    })
    .await;
    let cookie = a.sign_in("alice").await;
    let (mut alice, _) = open_in(&a, &cookie, "quiet").await;
    alice.say("before").await;
    let before = alice.expect("chat").await["id"].as_u64().unwrap();
    let mut redis = redis::Client::open(cluster.redis.url()).unwrap();
    let pttl: i64 = redis.pttl("passerby:{quiet}:seq").unwrap();
    assert!(pttl > 0 && pttl <= 1500, "the room's keys expire: {pttl}");

    // Quiet, but alice is in it: her instance's position checks keep the room alive past
    // several TTLs.
    let until = Instant::now() + ttl * 3;
    while Instant::now() < until {
        let seq: Option<u64> = redis.get("passerby:{quiet}:seq").unwrap();
        assert_eq!(seq, Some(before), "a room with a socket keeps its keys");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Nobody in it: its keys go, all of them.
    alice.ws.close(None).await.unwrap();
    let deadline = Instant::now() + ttl + WAIT;
    while !room_keys(&cluster, "quiet").is_empty() {
        assert!(
            Instant::now() < deadline,
            "{:?}",
            room_keys(&cluster, "quiet")
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Back in it, ids go on above the old ones (the floor), never again from 1.
    let (mut alice, _) = open_in(&a, &cookie, "quiet").await;
    alice.say("after").await;
    let after = alice.expect("chat").await["id"].as_u64().unwrap();
    assert!(after > before, "{after} > {before}");
}

#[tokio::test]
async fn messages_past_the_age_leave_the_redis_stream() {
    let cluster = Cluster::new();
    let a = instance(&cluster, |c| c.history_max_age_days = 1.0).await;
    let (mut alice, alice_user) = a.join("alice").await;
    alice.say("hello").await;
    alice.expect("chat").await;

    // A room with messages of two days ago and of an hour ago, as an older instance wrote.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let mut redis = redis::Client::open(cluster.redis.url()).unwrap();
    let _: () = redis.set("passerby:{aged}:seq", 7).unwrap();
    for (id, text, time) in [
        (5, "two days", now - 2 * 86_400_000),
        (6, "two days too", now - 2 * 86_400_000 + 1),
        (7, "an hour", now - 3_600_000),
    ] {
        let body =
            json!({"id": id, "type": "chat", "user": alice_user, "data": text, "time": time});
        let _: String = redis::cmd("XADD")
            .arg("passerby:{aged}:stream")
            .arg(format!("{id}-0"))
            .arg("v")
            .arg("0 0")
            .arg("b")
            .arg(body.to_string())
            .query(&mut redis)
            .unwrap();
    }
    let cookie = a.sign_in("bob").await;
    let mut bob = a
        .connect_to("/ws?room=aged", &[("Cookie", &cookie)])
        .await
        .unwrap();
    let (history, _) = bob.until(|e| e["type"] == "history").await;
    let texts: Vec<&str> = history["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["data"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["an hour"], "{history}");
    bob.say("now").await;
    bob.expect("chat").await;
    let ids: Vec<(String, Vec<(String, String)>)> = redis::cmd("XRANGE")
        .arg("passerby:{aged}:stream")
        .arg("-")
        .arg("+")
        .query(&mut redis)
        .unwrap();
    assert_eq!(ids.len(), 2, "the hour-old and the new: {ids:?}");
    assert_eq!(ids[0].0, "7-0");
}

#[tokio::test]
async fn a_data_set_of_the_old_layout_keeps_its_rooms_and_ids() {
    let cluster = Cluster::new();
    let mut redis = redis::Client::open(cluster.redis.url()).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let old_user =
        json!({"type": passerby::auth::GUEST_KIND, "id": 3, "name": "carol", "image": 1});
    let _: () = redis.set("passerby:room:lobby:seq", 41).unwrap();
    let _: () = redis
        .set("passerby:room:lobby:epoch", "1700000000.1")
        .unwrap();
    let _: () = redis.set("passerby:user_ids", 3).unwrap();
    let body =
        json!({"id": 41, "type": "chat", "user": old_user, "data": "from before", "time": now});
    let _: String = redis::cmd("XADD")
        .arg("passerby:room:lobby:stream")
        .arg("41-0")
        .arg("v")
        .arg("0 0")
        .arg("b")
        .arg(body.to_string())
        .query(&mut redis)
        .unwrap();

    let a = instance(&cluster, |_| {}).await;
    let cookie = a.sign_in("alice").await;
    let mut alice = a.connect(&cookie).await;
    let history = loop {
        let event = alice.next_event().await;
        assert_ne!(event["type"], "truncated", "the epoch was kept: {event}");
        if event["type"] == "history" {
            break event;
        }
    };
    assert_eq!(history["data"][0]["data"], "from before", "{history}");
    assert_eq!(history["data"][0]["id"], 41);
    alice.say("after").await;
    let said = alice.expect("chat").await;
    assert!(said["id"].as_u64().unwrap() > 41, "{said}");
    assert!(said["user"]["id"].as_u64().unwrap() > 3, "user ids go on");
    assert!(keys(&cluster, "passerby:room:*").is_empty());
    let epoch: String = redis.get("passerby:{lobby}:epoch").unwrap();
    assert_eq!(epoch, "1700000000.1");
}

/// The sockets' entries were kept across rooms before (one hash for all): an instance that
/// starts moves each into its room, so the users of the instances that ran before are reaped
/// like a dead instance's, not kept forever.
#[tokio::test]
async fn entries_of_the_layout_across_rooms_are_moved_into_their_rooms_and_reaped() {
    let cluster = Cluster::new();
    let mut redis = redis::Client::open(cluster.redis.url()).unwrap();
    let ghost = json!({"type": passerby::auth::GUEST_KIND, "id": 9, "name": "ghost", "image": 1});
    let _: () = redis
        .hset("passerby:presence:sockets", "gone-1:4", "lobby 9")
        .unwrap();
    let _: () = redis
        .zadd("passerby:presence:expiry", "gone-1:4", 1)
        .unwrap();
    let _: () = redis.hset("passerby:{lobby}:users", 9, 1).unwrap();
    let _: () = redis.zadd("passerby:{lobby}:order", 9, 1).unwrap();
    let _: () = redis
        .hset("passerby:{lobby}:info", 9, ghost.to_string())
        .unwrap();
    let _: () = redis
        .hset("passerby:{lobby}:left", 9, "\"ghost left\"")
        .unwrap();
    let _: () = redis.set("passerby:user_ids", 9).unwrap();

    let a = instance(&cluster, |c| {
        c.redis_engine.presence_ttl = Duration::from_secs(1);
    })
    .await;
    let (mut alice, _) = a.join("alice").await;
    let (left, _) = alice.until(|e| e["type"] == "left").await;
    assert_eq!(left["user"]["name"], "ghost", "{left}");
    assert!(keys(&cluster, "passerby:presence:*").is_empty());
    let entries: usize = redis.hlen("passerby:{lobby}:sockets").unwrap();
    assert_eq!(entries, 1, "alice's entry alone");
}
