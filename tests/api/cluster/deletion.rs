//! Over Redis, a deletion made through one instance reaches the sockets of every instance,
//! and the room's stream, which every instance recovers from, no longer holds the messages.

use serde_json::{Value, json};

use super::{Cluster, moderation::add_moderator_in_redis};
use crate::{
    deletion::{delete_message, deletes, history_ids, purge, said, said_by},
    helpers::{TestApp, greeting, spawn_in},
    whispers::{many_sockets, open_in},
};

/// An instance on a data dir of its own, with a moderator of its own (in the cluster's
/// Redis, where every instance finds them); its token.
async fn instance(cluster: &Cluster, dir: &tempfile::TempDir, name: &str) -> (TestApp, String) {
    let token = add_moderator_in_redis(cluster, name);
    let (url, secret) = (cluster.redis.url(), cluster.secret_file());
    let app = spawn_in(dir.path().to_owned(), move |c| {
        many_sockets(c);
        c.redis = Some(url);
        c.secret_file = Some(secret);
        c.purge_batch = 2;
    })
    .await;
    (app, token)
}

#[tokio::test]
async fn a_delete_through_one_instance_reaches_the_others_and_leaves_their_recovery() {
    let cluster = Cluster::new();
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let (a, a_token) = instance(&cluster, &dirs[0], "mod-a").await;
    let (b, b_token) = instance(&cluster, &dirs[1], "mod-b").await;
    let (alice_cookie, bob_cookie) = (a.sign_in("alice").await, a.sign_in("bob").await);
    let (mut alice, _) = open_in(&a, &alice_cookie, "lobby").await;
    let (mut bob, _) = open_in(&b, &bob_cookie, "lobby").await;
    alice.expect("join").await;
    let kept = said_by(&mut alice, &mut bob, "keep me").await;
    let alice_user = kept["user"].clone();
    let kept = kept["id"].as_u64().unwrap();
    let doomed = said(&mut alice, &mut bob, "delete me").await;

    let response = delete_message(&a, &a_token, "lobby", doomed).await;
    assert_eq!(response.status(), 200);
    let delete = bob.expect("delete").await;
    assert_eq!(delete["data"], json!({"id": doomed, "ids": [doomed]}));
    assert_eq!(delete["user"], alice_user);
    assert_eq!(alice.expect("delete").await, delete);
    assert_eq!(
        delete_message(&b, &b_token, "lobby", doomed).await.status(),
        404
    );

    // B's recovery and a newcomer on B: the delete, not the message.
    let mut resumed = b.connect_since(&b.sign_in("carol").await, kept).await;
    let (ids, deleted) = history_ids(&greeting(&mut resumed).await);
    assert!(!ids.contains(&doomed) && ids.contains(&delete["id"].as_u64().unwrap()));
    assert_eq!(deleted, [doomed]);
    // A deleted message is not a trimmed one: a recovery from the start is still whole.
    let mut from_start = b.connect_since(&b.sign_in("carol3").await, 0).await;
    let whole = greeting(&mut from_start).await;
    assert!(whole.get("truncated").is_none(), "{whole}");
    let mut newcomer = b.connect(&b.sign_in("dave").await).await;
    // A newcomer's history is messages: a `join` to try deleting is Dave's own.
    let join_id = newcomer.expect("join").await["id"].as_u64().unwrap();
    let history = greeting(&mut newcomer).await;
    let (ids, _) = history_ids(&history);
    assert!(ids.contains(&kept) && !ids.contains(&doomed), "{ids:?}");
    for id in [join_id, delete["id"].as_u64().unwrap(), 999_999] {
        let response = delete_message(&a, &a_token, "lobby", id).await;
        assert_eq!(response.status(), 404, "{id}");
    }

    // A purge through B, of every room, reaches A's sockets in batches.
    let (mut alice_tea, _) = open_in(&a, &alice_cookie, "tea").await;
    let (mut bob_tea, _) = open_in(&b, &bob_cookie, "tea").await;
    alice_tea.expect("join").await;
    let mut tea = Vec::new();
    for n in 0..3 {
        tea.push(said(&mut alice_tea, &mut bob_tea, &format!("tea {n}")).await);
    }
    let response = purge(&b, &b_token, &alice_user, json!({})).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["rooms"], json!({"lobby": 1, "tea": 3}));
    // Redis reads each stream backwards, so its batches go newest first.
    let (mut ids, sizes) = deletes(&mut alice_tea, 3).await;
    ids.sort_unstable();
    assert_eq!((ids, sizes), (tea, vec![2, 1]));
    deletes(&mut bob_tea, 3).await;
    assert_eq!(deletes(&mut alice, 1).await.0, [kept]);
    let mut late = a.connect_since(&a.sign_in("erin").await, 0).await;
    let (ids, _) = history_ids(&greeting(&mut late).await);
    assert!(!ids.contains(&kept), "{ids:?}");

    // The last minutes of one room, through A: what alice just said there, not bob's.
    let fresh = said(&mut alice_tea, &mut bob_tea, "fresh").await;
    said(&mut bob_tea, &mut alice_tea, "bob's").await;
    let body = json!({"room": "tea", "minutes": 1});
    let response = purge(&a, &a_token, &alice_user, body).await;
    assert_eq!(
        response.json::<Value>().await.unwrap()["rooms"],
        json!({"tea": 1})
    );
    assert_eq!(deletes(&mut bob_tea, 1).await.0, [fresh]);
}
