//! What passerby keeps in a real Redis Cluster (`RedisCluster`), through the library alone:
//! the moderation store's scripts each land on the one node of the `{moderation}` tag and
//! publish to every node, the `passerby moderator` commands take `--redis-cluster`, and two
//! id sources over one cluster never hand out the same id.

use std::{collections::HashSet, sync::Arc, time::Duration};

use passerby::{
    moderation::{
        bans::{BanTarget, NewBan},
        mutes::Mute,
        name::ModeratorName,
        open_store,
        rooms::RoomSettings,
        store::CHANNEL,
        token::TokenHash,
        words::{FilterMode, FilterSpec},
    },
    redis_conn::RedisTarget,
    store::{Floor, IdSource},
};

use super::redis_cluster::RedisCluster;

/// Every key of the store, under the tag.
const KEYS: &[&str] = &[
    "moderators",
    "moderators:added",
    "bans",
    "bans:until",
    "bans:next",
    "mutes",
    "mutes:until",
    "rooms",
    "word-filter",
    "audit",
    "audit:next",
];

#[tokio::test]
async fn redis_cluster_the_moderation_store_writes_on_one_node_and_publishes_to_every_node() {
    let cluster = RedisCluster::start();
    let target = RedisTarget::new(&cluster.url(), true);
    let unused = tempfile::tempdir().unwrap();
    let store = open_store(unused.path(), Some(&target)).unwrap();
    let home = cluster.node_of("passerby:{moderation}:bans");
    // Heard on a node that does not hold the keys, as an instance subscribed there would.
    let away = *cluster.ports.iter().find(|&&p| p != home).unwrap();
    let client = redis::Client::open(format!("redis://127.0.0.1:{away}")).unwrap();
    let mut pubsub = client.get_connection().unwrap();
    let mut pubsub = pubsub.as_pubsub();
    pubsub.subscribe(CHANNEL).unwrap();
    pubsub
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();

    let alice = ModeratorName::parse("alice").unwrap();
    store.add_moderator(&alice, &TokenHash::of("t"), 1).unwrap();
    assert!(store.add_moderator(&alice, &TokenHash::of("u"), 2).is_err());
    let now = passerby::moderation::time::now_ms();
    let ban = |target, until| NewBan {
        target,
        reason: "spam".into(),
        moderator: "alice".into(),
        created: now,
        until,
    };
    let ended = store.add_ban(&ban(BanTarget::User(1), Some(now))).unwrap();
    let kept = store.add_ban(&ban(BanTarget::User(2), None)).unwrap();
    assert_eq!((ended.id, kept.id), (1, 2));
    let heard: String = pubsub.get_message().unwrap().get_payload().unwrap();
    assert!(heard.contains("spam"), "{heard}");
    let bans = store.bans(now + 1).unwrap();
    assert_eq!(bans.iter().map(|b| b.id).collect::<Vec<_>>(), [2]);
    let mute = Mute {
        user: 3,
        reason: "calm".into(),
        moderator: "alice".into(),
        created: now,
        until: now + 60_000,
    };
    store.put_mute(&mute).unwrap();
    assert_eq!(store.mutes(now).unwrap().len(), 1);
    let slow = RoomSettings {
        slow_mode_secs: 5,
        read_only: true,
    };
    store.put_room_settings("lobby", slow).unwrap();
    assert_eq!(store.room_settings().unwrap().len(), 1);
    let filter = FilterSpec {
        words: vec!["darn".into()],
        mode: FilterMode::Reject,
    };
    store.put_word_filter(&filter).unwrap();
    assert_eq!(store.word_filter().unwrap().unwrap().words, ["darn"]);
    let entry = passerby::moderation::audit::NewAudit {
        time: now,
        moderator: "alice",
        action: "ban",
        target: "user 2",
        reason: Some("spam"),
    };
    assert_eq!(store.audit(&entry, 10).unwrap(), 1);
    assert_eq!(store.audit_page(None, 10).unwrap().len(), 1);
    for key in KEYS {
        let key = format!("passerby:{{moderation}}:{key}");
        assert_eq!(cluster.node_of(&key), home, "{key}");
        assert!(cluster.exists(&key), "{key}");
    }

    assert!(store.remove_ban(2).unwrap());
    assert!(!store.remove_ban(2).unwrap());
    assert!(store.remove_mute(3).unwrap());
    store
        .put_room_settings("lobby", RoomSettings::default())
        .unwrap();
    assert!(store.room_settings().unwrap().is_empty());
    assert!(store.remove_moderator(&alice).unwrap());
    assert!(store.moderators().unwrap().is_empty());
}

#[tokio::test]
async fn redis_cluster_moderator_commands_take_redis_cluster() {
    let cluster = RedisCluster::start();
    let (ok, token, stderr) = cluster.moderator(&["add", "alice"]);
    assert!(ok, "{stderr}");
    assert!(!token.trim().is_empty());
    let (ok, _, stderr) = cluster.moderator(&["add", "alice"]);
    assert!(!ok && stderr.contains("exists already"), "{stderr}");
    let (ok, listed, _) = cluster.moderator(&["list"]);
    assert!(ok && listed.starts_with("alice\tadded 20"), "{listed}");
    assert!(cluster.exists("passerby:{moderation}:moderators"));
    let (ok, _, stderr) = cluster.moderator(&["remove", "alice"]);
    assert!(ok, "{stderr}");
    let (ok, listed, _) = cluster.moderator(&["list"]);
    assert!(ok && listed.is_empty(), "{listed}");
}

#[tokio::test]
async fn redis_cluster_two_id_sources_never_hand_out_the_same_id() {
    let cluster = RedisCluster::start();
    let target = RedisTarget::new(&cluster.url(), true);
    let (one, two) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = IdSource::redis(&target, Arc::new(Floor::open(one.path()).unwrap()))
        .await
        .unwrap();
    let b = IdSource::redis(&target, Arc::new(Floor::open(two.path()).unwrap()))
        .await
        .unwrap();
    let mut ids = HashSet::new();
    for _ in 0..20 {
        let (x, y) = tokio::join!(a.allocate(), b.allocate());
        for id in [x.unwrap(), y.unwrap()] {
            assert!(ids.insert(id), "id {id} handed out twice");
        }
    }
    assert!(cluster.exists("passerby:user_ids"));
}
