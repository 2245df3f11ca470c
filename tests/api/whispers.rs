//! A whisper is one stored event, and costs the same however many rooms its two users are in:
//! every socket of both gets it once, ids never go back on any socket, every room's recovery
//! stays whole, and a chat elsewhere goes on meanwhile.

use passerby::config::Config;
use serde_json::{Value, json};

use crate::helpers::{Client, TestApp, spawn_in};

/// Rooms the recipient holds a silent socket in.
const ROOMS: usize = 200;
/// Whispers sent while another room chats.
const WHISPERS: usize = 60;
const ROUND_TRIPS: usize = 5;

/// Room for a user's socket in every test room, and a rate limit a whisper loop stays under.
pub fn many_sockets(c: &mut Config) {
    c.max_sockets_per_user = ROOMS + 8;
    c.max_connections_per_address = 4 * ROOMS;
    c.rate_limit = 1000.0;
    c.rate_burst = 1000.0;
    // Opening a socket in each of them is a burst of sockets and of new rooms.
    c.socket_burst = 4.0 * ROOMS as f64;
    c.socket_address_burst = 4.0 * ROOMS as f64;
    c.room_rate = 4.0 * ROOMS as f64;
}

pub fn whisper(to: &Value, text: &str) -> String {
    json!({"type": "private", "to": to["id"], "data": text}).to_string()
}

/// A socket in `room` that has had its first frames; with the id its `history` took.
pub async fn open_in(app: &TestApp, cookie: &str, room: &str) -> (Client, u64) {
    let mut client = app
        .connect_to(&format!("/ws?room={room}"), &[("Cookie", cookie)])
        .await
        .expect("socket opens");
    loop {
        let event = client.next_event().await;
        if event["type"] == "history" {
            return (client, event["id"].as_u64().unwrap());
        }
    }
}

/// Reads `n` whispers on a socket outside the room that keeps them: each aside, carrying
/// the id this socket last had (`last`) and the room and id it is kept under, in order.
pub async fn expect_asides(client: &mut Client, n: usize, last: u64, origin: &str) -> Vec<u64> {
    let mut ids = Vec::new();
    for _ in 0..n {
        let event = client.expect("private").await;
        assert_eq!(event["id"], last, "an aside takes none of this room's ids");
        assert_eq!(event["origin"]["room"], origin, "{event}");
        ids.push(event["origin"]["id"].as_u64().unwrap());
    }
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "in order: {ids:?}");
    ids
}

/// Carol and Dave chat a few rounds in their room; each line reaches both.
async fn chat_rounds(carol: &mut Client, dave: &mut Client, label: &str) {
    for n in 0..ROUND_TRIPS {
        let text = format!("{label} {n}");
        carol.say(&text).await;
        assert_eq!(dave.expect("chat").await["data"], text);
        assert_eq!(carol.expect("chat").await["data"], text);
    }
}

/// Alice whispers `n` times to Bob while Carol and Dave chat in another room; Alice back.
/// How much the whispers slow the other room is the benchmark's to measure (`--abuse
/// --attacks whispers`), beside a run without them: a timed test here would only measure
/// how busy the machine is.
pub async fn whisper_while_chatting(
    mut alice: Client,
    bob: &Value,
    n: usize,
    carol: &mut Client,
    dave: &mut Client,
) -> Client {
    let bob = bob.clone();
    let whispering = tokio::spawn(async move {
        for i in 0..n {
            alice.say(&whisper(&bob, &format!("w{i}"))).await;
        }
        alice
    });
    chat_rounds(carol, dave, "tea").await;
    whispering.await.unwrap()
}

/// The `n` whispers on Alice's and Bob's sockets in the room they were said in: each with that
/// room's id, the same for both, in order, and no `origin`. Their ids.
pub async fn said_in_the_room(alice: &mut Client, bob: &mut Client, n: usize) -> Vec<u64> {
    let mut kept = Vec::new();
    for i in 0..n {
        let to_alice = alice.expect("private").await;
        let to_bob = bob.expect("private").await;
        assert_eq!(
            (&to_alice["data"], &to_bob["id"]),
            (&json!(format!("w{i}")), &to_alice["id"])
        );
        assert!(to_alice.get("origin").is_none(), "{to_alice}");
        kept.push(to_alice["id"].as_u64().unwrap());
    }
    assert!(kept.windows(2).all(|w| w[0] < w[1]), "{kept:?}");
    kept
}

#[tokio::test]
async fn a_whisper_to_someone_in_many_rooms_is_stored_once_and_reaches_each_socket_once() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_in(dir.path().to_owned(), many_sockets).await;
    let (alice_cookie, bob_cookie) = (app.sign_in("alice").await, app.sign_in("bob").await);
    let (mut alice, _) = open_in(&app, &alice_cookie, "lobby").await;
    let (mut bob_lobby, _) = open_in(&app, &bob_cookie, "lobby").await;
    let bob_user = alice.expect("join").await["user"].clone();
    // Alice's other tab shares a room with one of Bob's.
    let (mut alice_r0, alice_r0_last) = open_in(&app, &alice_cookie, "r0").await;
    let mut bobs = Vec::new();
    for n in 0..ROOMS {
        bobs.push(open_in(&app, &bob_cookie, &format!("r{n}")).await);
    }
    let alice_r0_last = alice_r0_last.max(alice_r0.expect("join").await["id"].as_u64().unwrap());
    let (carol_cookie, dave_cookie) = (app.sign_in("carol").await, app.sign_in("dave").await);
    let (mut carol, _) = open_in(&app, &carol_cookie, "tea").await;
    let (mut dave, _) = open_in(&app, &dave_cookie, "tea").await;
    carol.expect("join").await;
    let mut alice = whisper_while_chatting(alice, &bob_user, WHISPERS, &mut carol, &mut dave).await;
    // The room it was said in gives it its own ids, in order, to both of them.
    let kept = said_in_the_room(&mut alice, &mut bob_lobby, WHISPERS).await;
    // Every other socket of both has each once, aside, with its own room's last id.
    assert_eq!(
        expect_asides(&mut alice_r0, WHISPERS, alice_r0_last, "lobby").await,
        kept
    );
    for (bob, last) in &mut bobs {
        assert_eq!(expect_asides(bob, WHISPERS, *last, "lobby").await, kept);
    }

    // One stored event per whisper, in the room it was said in.
    let store = rusqlite::Connection::open(dir.path().join("history.sqlite3")).unwrap();
    let (stored, rooms): (i64, i64) = store
        .query_row(
            "SELECT count(*), count(DISTINCT room) FROM events WHERE visible_a IS NOT NULL",
            [],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .unwrap();
    assert_eq!((stored, rooms), (WHISPERS as i64, 1));

    // In Bob's rooms ids go on from where the socket was, and their recovery misses nothing.
    let (r0, r0_last) = &mut bobs[0];
    alice_r0.say("after").await;
    let after = r0.expect("chat").await["id"].as_u64().unwrap();
    assert_eq!(after, *r0_last + 1, "the whispers took none of r0's ids");
    let mut again = app
        .connect_to(
            &format!("/ws?room=r7&since={}", bobs[7].1),
            &[("Cookie", &bob_cookie)],
        )
        .await
        .unwrap();
    again.expect("list").await;
    let history = again.expect("history").await;
    assert_eq!(
        (
            history["data"].as_array().unwrap().len(),
            history.get("truncated")
        ),
        (0, None)
    );
    // In the lobby, Alice's recovery holds every whisper, each once.
    let mut lobby = app
        .connect_to("/ws?since=0", &[("Cookie", &alice_cookie)])
        .await
        .unwrap();
    lobby.expect("list").await;
    let history = lobby.expect("history").await;
    let whispers: Vec<u64> = history["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "private")
        .map(|e| e["id"].as_u64().unwrap())
        .collect();
    assert_eq!(whispers, kept);
}
