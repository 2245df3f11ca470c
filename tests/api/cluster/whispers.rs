//! Over Redis, a whisper is one stream entry: every instance's hub hands it to the pair's
//! sockets in other rooms, with no script looking at the rooms either of them is in.

use redis::Commands;
use serde_json::json;

use super::Cluster;
use crate::{
    helpers::{TestApp, spawn_with},
    whispers::{expect_asides, many_sockets, open_in, said_in_the_room, whisper_while_chatting},
};

const ROOMS: usize = 40;
const WHISPERS: usize = 20;

async fn instance(cluster: &Cluster) -> TestApp {
    let (url, secret) = (cluster.redis.url(), cluster.secret_file());
    spawn_with(move |c| {
        many_sockets(c);
        c.redis = Some(url);
        c.secret_file = Some(secret);
    })
    .await
}

#[tokio::test]
async fn a_whisper_is_one_stream_entry_and_reaches_each_socket_on_every_instance_once() {
    let cluster = Cluster::new();
    let (a, b) = (instance(&cluster).await, instance(&cluster).await);
    let (alice_cookie, bob_cookie) = (a.sign_in("alice").await, a.sign_in("bob").await);
    let (mut alice, _) = open_in(&a, &alice_cookie, "lobby").await;
    let (mut bob_lobby, _) = open_in(&b, &bob_cookie, "lobby").await;
    let bob_user = alice.expect("join").await["user"].clone();
    let mut bobs = Vec::new();
    for n in 0..ROOMS {
        let app = if n % 2 == 0 { &a } else { &b };
        bobs.push(open_in(app, &bob_cookie, &format!("r{n}")).await);
    }
    let (carol, dave) = (a.sign_in("carol").await, a.sign_in("dave").await);
    let (mut carol, _) = open_in(&a, &carol, "tea").await;
    let (mut dave, _) = open_in(&b, &dave, "tea").await;
    carol.expect("join").await;
    let mut alice = whisper_while_chatting(alice, &bob_user, WHISPERS, &mut carol, &mut dave).await;
    let kept = said_in_the_room(&mut alice, &mut bob_lobby, WHISPERS).await;
    for (bob, last) in &mut bobs {
        assert_eq!(expect_asides(bob, WHISPERS, *last, "lobby").await, kept);
    }

    // One entry per whisper, in the lobby's stream only.
    let mut redis = redis::Client::open(cluster.redis.url())
        .unwrap()
        .get_connection()
        .unwrap();
    let streams: Vec<String> = redis.keys("passerby:{*}:stream").unwrap();
    let mut pairs = Vec::new();
    for stream in streams {
        let entries: redis::streams::StreamRangeReply = redis.xrange_all(&stream).unwrap();
        for entry in entries.ids {
            if entry.get::<String>("v").is_some_and(|v| v != "0 0") {
                pairs.push(stream.clone());
            }
        }
    }
    assert_eq!(pairs, vec!["passerby:{lobby}:stream".to_owned(); WHISPERS]);

    // Recovery in Bob's rooms misses nothing and holds no whisper.
    let (app, since) = (&b, bobs[1].1);
    let mut again = app
        .connect_to(
            &format!("/ws?room=r1&since={since}"),
            &[("Cookie", &bob_cookie)],
        )
        .await
        .unwrap();
    again.expect("list").await;
    let history = again.expect("history").await;
    assert_eq!(history["data"], json!([]), "{history}");
    assert!(history.get("truncated").is_none(), "{history}");
}
