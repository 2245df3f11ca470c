//! Sends under faults, three instances on one `redis-server`: each message a client tags
//! with a `cid` is either acknowledged (stored once, delivered once) or refused with an
//! error that means it was not stored; a full queue answers `busy` at once; a flooded room
//! does not hold up a quiet one.

use std::{collections::BTreeMap, time::Duration};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use super::Cluster;
use crate::helpers::{Client, TestApp, WAIT, spawn_with};

/// An instance of the cluster with the chat rate limit lifted and `extra` flags.
async fn instance(cluster: &Cluster, extra: impl FnOnce(&mut passerby::config::Config)) -> TestApp {
    let (url, secret) = (cluster.redis.url(), cluster.secret_file());
    spawn_with(move |c| {
        c.redis = Some(url);
        c.secret_file = Some(secret);
        c.rate_limit = 1e6;
        c.rate_burst = 1e6;
        extra(c);
    })
    .await
}

fn chat(text: &str, cid: &str) -> String {
    json!({"type": "chat", "data": text, "cid": cid}).to_string()
}

/// What became of a message: its id, or the `error` that refused it.
type Answer = Result<u64, Value>;

/// Reads `client` until each of `cids` was answered (an `ack` or an `error` naming it);
/// every other event is returned too. A second answer for a cid fails.
async fn answers(client: &mut Client, cids: &[String]) -> (BTreeMap<String, Answer>, Vec<Value>) {
    let mut answered = BTreeMap::new();
    let mut others = Vec::new();
    while answered.len() < cids.len() {
        let event = client.next_event().await;
        let (cid, answer) = match event["type"].as_str() {
            Some("ack") => (
                &event["data"]["cid"],
                Ok(event["data"]["id"].as_u64().unwrap()),
            ),
            Some("error") if event.get("cid").is_some() => (&event["cid"], Err(event.clone())),
            _ => {
                others.push(event);
                continue;
            }
        };
        let cid = cid.as_str().unwrap().to_owned();
        assert!(cids.contains(&cid), "{event}");
        assert!(
            answered.insert(cid, answer).is_none(),
            "answered twice: {event}"
        );
    }
    (answered, others)
}

/// Pings and reads to the pong: the server read every frame sent before. Events read
/// meanwhile are returned.
async fn read_up_to_here(client: &mut Client) -> Vec<Value> {
    client
        .ws
        .send(Message::Ping(b"here".to_vec().into()))
        .await
        .unwrap();
    let mut events = Vec::new();
    loop {
        let message = tokio::time::timeout(WAIT, client.ws.next())
            .await
            .expect("a pong within the wait")
            .expect("socket open")
            .expect("a frame");
        match message {
            Message::Pong(_) => return events,
            Message::Text(text) => events.push(serde_json::from_str(&text).unwrap()),
            _ => {}
        }
    }
}

/// A socket that got its `history`, opened again until one does: the first request after a
/// freeze may still fail on a connection Redis dropped meanwhile, which is not what this file
/// tests.
async fn connect_once_back(app: &TestApp, cookie: &str) -> (Client, Value) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let mut client = app.connect(cookie).await;
        loop {
            match tokio::time::timeout(WAIT, client.ws.next()).await {
                Ok(Some(Ok(Message::Text(text)))) => {
                    let event: Value = serde_json::from_str(&text).unwrap();
                    if event["type"] == "history" {
                        return (client, event);
                    }
                }
                Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => {}
                other => {
                    assert!(
                        tokio::time::Instant::now() < deadline,
                        "never back: {other:?}"
                    );
                    break;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn texts(events: &[Value], text: &str) -> usize {
    events.iter().filter(|e| e["data"] == text).count()
}

/// Longer than the engine's Redis response timeout (2 s): calls made during the freeze time
/// out, and the engine must not take that for an answer.
const FREEZE: Duration = Duration::from_millis(2500);

#[tokio::test]
async fn during_a_freeze_each_message_is_acked_and_delivered_once_or_refused_and_never_stored() {
    let cluster = Cluster::new();
    let a = instance(&cluster, |_| {}).await;
    let b = instance(&cluster, |_| {}).await;
    let c = instance(&cluster, |_| {}).await;
    let (mut alice, _) = a.join("alice").await;
    let (mut bob, _) = b.join("bob").await;
    let (mut carol, _) = c.join("carol").await;
    const N: usize = 8;
    let cids: Vec<String> = (0..N).map(|n| format!("f{n}")).collect();
    let text = |cid: &str| format!("frozen {cid}");
    let dave = c.sign_in("dave").await;

    cluster.redis.freeze();
    for cid in &cids {
        alice.say(&chat(&text(cid), cid)).await;
        bob.say(&chat(&text(&format!("b{cid}")), cid)).await;
    }
    read_up_to_here(&mut alice).await;
    tokio::time::sleep(FREEZE).await;
    cluster.redis.thaw();

    let (from_alice, mut heard_by_alice) = answers(&mut alice, &cids).await;
    let (from_bob, _) = answers(&mut bob, &cids).await;
    alice.say(&chat("thawed", "end")).await;
    heard_by_alice.extend(alice.before_chat("thawed").await);
    let heard_by_carol = carol.before_chat("thawed").await;
    // What Redis kept, whatever pub/sub carried: a newcomer's history.
    let (_dave, history) = connect_once_back(&c, &dave).await;
    let kept = history["data"].as_array().unwrap().clone();
    for heard in [&heard_by_alice, &heard_by_carol, &kept] {
        for (prefix, answers) in [("", &from_alice), ("b", &from_bob)] {
            for (cid, answer) in answers {
                let said = text(&format!("{prefix}{cid}"));
                let copies: Vec<&Value> = heard.iter().filter(|e| e["data"] == said).collect();
                match answer {
                    Ok(id) => {
                        assert_eq!(copies.len(), 1, "{said} acked, delivered once: {heard:?}");
                        assert_eq!(copies[0]["id"], *id, "{said}: the acked id");
                    }
                    Err(error) => {
                        assert!(
                            matches!(error["code"].as_str(), Some("not_sent" | "busy")),
                            "{error}"
                        );
                        assert!(copies.is_empty(), "{said} was refused yet stored: {error}");
                    }
                }
            }
        }
    }
}

#[tokio::test]
async fn a_retry_with_the_same_cid_after_a_reconnect_to_another_instance_is_stored_once() {
    let cluster = Cluster::new();
    let a = instance(&cluster, |_| {}).await;
    let b = instance(&cluster, |_| {}).await;
    let c = instance(&cluster, |_| {}).await;
    let cookie = a.sign_in("alice").await;
    let mut alice = a.connect(&cookie).await;
    alice.expect("join").await;
    let (mut carol, _) = c.join("carol").await;

    // Answered: the retry through B gets the same ack.
    alice.say(&chat("hello", "r1")).await;
    let (first, _) = answers(&mut alice, &["r1".to_owned()]).await;
    let id = first["r1"].clone().expect("acked");

    // Unanswered: sent while Redis is frozen, the socket gone before any answer.
    cluster.redis.freeze();
    alice.say(&chat("in the dark", "r2")).await;
    read_up_to_here(&mut alice).await;
    drop(alice);
    tokio::time::sleep(FREEZE).await;
    cluster.redis.thaw();

    let (mut alice, _) = connect_once_back(&b, &cookie).await;
    alice.say(&chat("hello", "r1")).await;
    alice.say(&chat("in the dark", "r2")).await;
    let (again, _) = answers(&mut alice, &["r1".to_owned(), "r2".to_owned()]).await;
    assert_eq!(again["r1"], Ok(id), "the same id for the same cid");
    let dark = again["r2"]
        .clone()
        .expect("stored, by one of the two sends");
    alice.say("the end").await;
    let heard = carol.before_chat("the end").await;
    assert_eq!(texts(&heard, "hello"), 1, "{heard:?}");
    let copies: Vec<&Value> = heard
        .iter()
        .filter(|e| e["data"] == "in the dark")
        .collect();
    assert_eq!(copies.len(), 1, "stored once: {heard:?}");
    assert_eq!(copies[0]["id"], dark);
}

#[tokio::test]
async fn with_redis_stalled_a_full_queue_answers_busy_at_once_and_what_it_took_is_acked() {
    const QUEUE: usize = 4;
    const SENT: usize = 12;
    let cluster = Cluster::new();
    let a = instance(&cluster, |c| c.history_queue = QUEUE as u64).await;
    let b = instance(&cluster, |_| {}).await;
    let (mut alice, _) = a.join("alice").await;
    let (mut bob, bob_user) = b.join("bob").await;
    alice.expect("join").await;
    let to = bob_user["id"].as_u64().unwrap();
    let cids: Vec<String> = (0..SENT).map(|n| format!("q{n}")).collect();

    cluster.redis.freeze();
    let mut busy = Vec::new();
    for cid in &cids {
        // Whispers: each goes to the engine as it is read (chat waits for the end of the
        // socket's turn), so its refusal comes before the pong.
        let whisper =
            json!({"type": "private", "to": to, "data": format!("queued {cid}"), "cid": cid});
        alice.say(&whisper.to_string()).await;
        for event in read_up_to_here(&mut alice).await {
            assert_eq!(
                event["type"], "error",
                "nothing but refusals while frozen: {event}"
            );
            assert_eq!(event["code"], "busy", "{event}");
            busy.push(event["cid"].as_str().unwrap().to_owned());
        }
    }
    // Each refusal came while Redis was still stopped: the queue refused, it did not wait.
    let unanswered: Vec<String> = cids.iter().filter(|c| !busy.contains(c)).cloned().collect();
    assert!(unanswered.len() <= QUEUE, "the queue held {unanswered:?}");
    assert!(!busy.is_empty());
    cluster.redis.thaw();

    let (taken, _) = answers(&mut alice, &unanswered).await;
    alice.say(&chat("after", "end")).await;
    let heard = bob.before_chat("after").await;
    for (cid, answer) in &taken {
        assert!(answer.is_ok(), "{cid}: {answer:?}");
        assert_eq!(texts(&heard, &format!("queued {cid}")), 1, "{heard:?}");
    }
    for cid in &busy {
        assert_eq!(
            texts(&heard, &format!("queued {cid}")),
            0,
            "{cid} refused, never stored"
        );
    }
}

#[tokio::test]
async fn a_flooded_room_does_not_hold_up_a_quiet_room_on_the_same_instance() {
    const FLOOD: usize = 300;
    let cluster = Cluster::new();
    // One lane, one message per call: the flood needs FLOOD calls, and only taking turns
    // between rooms lets the quiet room's message through before they are done.
    let a = instance(&cluster, |c| {
        c.redis_engine.lanes = 1;
        c.redis_engine.batch = 1;
    })
    .await;
    let b = instance(&cluster, |_| {}).await;
    let (mut flooder, _) = a.join("flooder").await;
    let watcher_cookie = b.sign_in("watcher").await;
    let mut watcher = b.connect(&watcher_cookie).await;
    watcher.expect("join").await;
    let list = watcher.expect("list").await;
    watcher.expect("history").await;
    let watcher_id = list["user"]["id"].as_u64().unwrap();
    let quiet_cookie = a.sign_in("quiet").await;
    let mut quiet = a
        .connect_to("/ws?room=quiet", &[("Cookie", &quiet_cookie)])
        .await
        .unwrap();
    quiet.expect("join").await;
    quiet.expect("list").await;
    quiet.expect("history").await;

    // Everything queued on A while Redis is stopped: the flood first, then the quiet room's
    // whisper to the watcher, who sits in the flooded room and so hears both in one order.
    cluster.redis.freeze();
    for n in 0..FLOOD {
        flooder.say(&format!("flood {n}")).await;
    }
    // A page request hands the socket's pending chat to the engine as it is read, so once
    // the pong is back the whole flood is queued.
    flooder
        .say(&json!({"type": "history", "before": 1}).to_string())
        .await;
    read_up_to_here(&mut flooder).await;
    let whisper = json!({"type": "private", "to": watcher_id, "data": "quiet hello"});
    quiet.say(&whisper.to_string()).await;
    read_up_to_here(&mut quiet).await;
    cluster.redis.thaw();

    let mut floods_before = 0;
    loop {
        let event = watcher.next_event().await;
        if event["type"] == "private" {
            assert_eq!(event["data"], "quiet hello");
            break;
        }
        floods_before += usize::from(event["type"] == "chat");
    }
    assert!(
        floods_before < FLOOD,
        "the quiet room's message waited for the whole flood ({floods_before})"
    );
    // The flood arrives whole and in order all the same.
    let mut next = floods_before;
    while next < FLOOD {
        let event = watcher.next_event().await;
        if event["type"] == "chat" {
            assert_eq!(event["data"], format!("flood {next}"));
            next += 1;
        }
    }
}
