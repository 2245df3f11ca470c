//! The Redis worker's queue is bounded by `--history-queue`: while Redis stalls, a sender
//! is told the server is busy and a joiner is closed with 1013; what was taken arrives, in
//! order, once Redis answers again.

use futures_util::StreamExt;
use serde_json::{Value, json};

use super::Cluster;
use crate::helpers::{Client, TestApp, spawn_with};

const QUEUE: u64 = 4;
const WHISPERS: usize = 20;
const BUSY: &str = "not sent: the server is busy";

async fn instance(cluster: &Cluster) -> TestApp {
    let (url, secret) = (cluster.redis.url(), cluster.secret_file());
    spawn_with(move |c| {
        c.redis = Some(url);
        c.secret_file = Some(secret);
        c.history_queue = QUEUE;
        c.rate_limit = 1e6;
        c.rate_burst = 1e6;
    })
    .await
}

/// Reads `client` until `n` errors came; how many said busy.
async fn errors(client: &mut Client, n: usize) -> usize {
    let mut busy = 0;
    for _ in 0..n {
        let error = loop {
            let event = client.next_event().await;
            if event["type"] == "error" {
                break event;
            }
        };
        let text = error["data"].as_str().unwrap();
        assert!(text.starts_with("not sent"), "{error}");
        busy += usize::from(text.starts_with(BUSY));
    }
    busy
}

fn of_kind<'a>(events: &'a [Value], kind: &'a str) -> impl Iterator<Item = &'a Value> {
    events.iter().filter(move |e| e["type"] == kind)
}

/// Says `text` until it is taken (an `error` means it was not); what was taken, and how many
/// errors that were not `busy` came meanwhile (a call that timed out while Redis stalled).
async fn say_until_taken(client: &mut Client, text: &str) -> (String, usize) {
    let mut other_errors = 0;
    for attempt in 0.. {
        let said = format!("{text} {attempt}");
        client.say(&said).await;
        loop {
            let event = client.next_event().await;
            match event["type"].as_str() {
                Some("chat") if event["data"] == said.as_str() => return (said, other_errors),
                Some("error") => {
                    other_errors += usize::from(!event["data"].as_str().unwrap().starts_with(BUSY));
                    break;
                }
                _ => {}
            }
        }
    }
    unreachable!()
}

#[tokio::test]
async fn a_stalled_redis_fills_the_queue_a_sender_hears_busy_a_joiner_gets_1013_and_what_was_taken_arrives_in_order()
 {
    let cluster = Cluster::new();
    let app = instance(&cluster).await;
    let (mut alice, _) = app.join("alice").await;
    let (mut bob, bob_user) = app.join("bob").await;
    alice.expect("join").await;
    let (mut dave, _) = app.join("dave").await;
    let to = bob_user["id"].as_u64().unwrap();
    // User ids live in Redis: signed in before it stalls.
    let carol = app.sign_in("carol").await;
    let (mut erin, _) = {
        let cookie = app.sign_in("erin").await;
        let mut erin = app
            .connect_to("/ws?room=elsewhere", &[("Cookie", &cookie)])
            .await
            .unwrap();
        erin.expect("join").await;
        let list = erin.expect("list").await;
        erin.expect("history").await;
        (erin, list)
    };

    cluster.redis.freeze();
    // Whispers, not chat: each is its own call to the engine, so each refusal is one
    // `error` and the count of what was taken is exact.
    for n in 0..WHISPERS {
        alice
            .say(&json!({"type": "private", "to": to, "data": format!("w{n}")}).to_string())
            .await;
    }
    // The first QUEUE are taken (one of them waiting on Redis), the rest refused at once.
    // A Redis call that timed out meanwhile is an error too, and frees its place.
    let refused = WHISPERS - usize::try_from(QUEUE).unwrap();
    let busy = errors(&mut alice, refused).await;
    assert!(busy >= 1, "a full queue refuses, it does not grow");
    let timed_out = refused - busy;
    // A chat message is refused the same way.
    alice.say("refused chat").await;
    assert_eq!(errors(&mut alice, 1).await, 1, "a chat hears busy too");
    let mut late = app.connect(&carol).await;
    // A socket that closes now leaves all the same: its `left` is never refused.
    dave.ws.close(None).await.unwrap();
    while dave.ws.next().await.is_some() {}
    // Told to come back by whichever needs Redis first: the sign-in check (which waits for
    // Redis's answer until its timeout) or the full queue.
    let (code, reason) = late.close_code().await.expect("a close frame");
    assert_eq!(code, 1013, "a joiner is told to come back: {reason}");
    assert!(reason.ends_with("try again later"), "{reason}");
    cluster.redis.thaw();

    // Calls held while the joiner waited may have timed out: each told Alice by an error.
    let (after, late_timeouts) = say_until_taken(&mut alice, "after").await;
    let timed_out = timed_out + late_timeouts;
    let before_after = bob.before_chat(&after).await;
    let lefts: Vec<&Value> = of_kind(&before_after, "left").collect();
    assert_eq!(lefts.len(), 1, "dave left once: {before_after:?}");
    assert_eq!(lefts[0]["user"]["name"], "dave");
    let heard: Vec<usize> = of_kind(&before_after, "private")
        .map(|e| {
            let text = e["data"].as_str().unwrap();
            text.strip_prefix('w').unwrap().parse().unwrap()
        })
        .collect();
    assert!(
        heard.windows(2).all(|w| w[0] < w[1]),
        "in the order sent: {heard:?}"
    );
    // Every whisper was either refused with `busy` or delivered; one whose call timed out
    // was answered with an error and may still have reached Redis.
    let taken = WHISPERS - busy;
    assert!(
        heard.len() <= taken && heard.len() + timed_out >= taken,
        "taken {taken} ({timed_out} timed out), delivered {heard:?}"
    );
    assert!(
        taken <= usize::try_from(QUEUE).unwrap() + timed_out,
        "the queue held {taken} at once"
    );

    // Chat resumes: in another room, and for a newcomer.
    say_until_taken(&mut erin, "erin is back").await;
    let mut again = app.connect(&carol).await;
    again.expect("join").await;
    again.expect("list").await;
    again.expect("history").await;
    alice.say("welcome").await;
    assert!(
        of_kind(&again.before_chat("welcome").await, "chat").count() == 0,
        "the newcomer hears chat"
    );
}
