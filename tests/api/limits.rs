//! Bad input and bad peers: each has a defined answer.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::{
    Bytes, Message,
    protocol::frame::{
        Frame,
        coding::{Data, OpCode},
    },
};

use crate::helpers::{spawn_app, spawn_with, two_chatting};

const QUIET: Duration = Duration::from_millis(300);

#[tokio::test]
async fn an_overlong_message_gets_an_error_and_is_not_broadcast() {
    let app = spawn_with(|c| c.max_message_chars = 10).await;
    let (mut alice, mut bob) = two_chatting(&app).await;
    bob.say(&"字".repeat(11)).await;
    let error = bob.expect("error").await;
    assert!(error["data"].as_str().unwrap().contains("10"), "{error}");
    assert!(alice.events_within(QUIET).await.is_empty());
    bob.say(&"字".repeat(10)).await;
    assert_eq!(alice.expect("chat").await["data"], "字".repeat(10));
}

#[tokio::test]
async fn the_default_limit_is_2000_characters() {
    let app = spawn_app().await;
    let (mut alice, _) = app.join("alice").await;
    alice.say(&"a".repeat(2000)).await;
    alice.expect("chat").await;
    alice.say(&"a".repeat(2001)).await;
    alice.expect("error").await;
}

#[tokio::test]
async fn a_frame_over_64_kib_is_closed_with_1009() {
    let app = spawn_app().await;
    let (mut alice, mut bob) = two_chatting(&app).await;
    bob.say(&"x".repeat(64 * 1024 + 1)).await;
    assert_eq!(bob.close_code().await.map(|c| c.0), Some(1009));
    assert_eq!(alice.expect("left").await["data"], "bob is left.");
}

#[tokio::test]
async fn a_binary_frame_is_closed_with_1003() {
    let app = spawn_app().await;
    let (mut alice, _) = app.join("alice").await;
    alice
        .ws
        .send(Message::binary(vec![1u8, 2, 3]))
        .await
        .unwrap();
    assert_eq!(alice.close_code().await.map(|c| c.0), Some(1003));
}

#[tokio::test]
async fn invalid_utf8_is_closed_with_1007() {
    let app = spawn_app().await;
    let (mut alice, _) = app.join("alice").await;
    let frame = Frame::message(
        Bytes::from_static(b"ok \xff\xfe"),
        OpCode::Data(Data::Text),
        true,
    );
    alice.ws.send(Message::Frame(frame)).await.unwrap();
    assert_eq!(alice.close_code().await.map(|c| c.0), Some(1007));
}

#[tokio::test]
async fn a_flood_is_limited_and_the_excess_dropped_not_queued() {
    let app = spawn_app().await; // 10 per second, burst 10
    let (mut alice, mut bob) = two_chatting(&app).await;
    for n in 0..30 {
        bob.say(&format!("m{n}")).await;
    }
    let seen = alice.events_within(Duration::from_millis(1500)).await;
    let chats = seen.iter().filter(|e| e["type"] == "chat").count();
    assert!(
        (10..=12).contains(&chats),
        "{chats} of 30 passed a 10/s, burst-10 limit"
    );
    let to_bob = bob.events_within(Duration::from_millis(100)).await;
    let errors: Vec<_> = to_bob.iter().filter(|e| e["type"] == "error").collect();
    assert_eq!(
        errors.len(),
        1,
        "one error per flood, not one per dropped frame"
    );
    assert!(errors[0]["data"].as_str().unwrap().contains("too many"));
    // After a pause the user may speak again: nothing was queued behind the limit.
    tokio::time::sleep(Duration::from_millis(300)).await;
    bob.say("after the pause").await;
    assert_eq!(alice.expect("chat").await["data"], "after the pause");
}

#[tokio::test]
async fn the_rate_limit_is_per_user_across_tabs() {
    let app = spawn_with(|c| {
        c.rate_limit = 1.0;
        c.rate_burst = 2.0;
    })
    .await;
    let cookie = app.sign_in("bob").await;
    let mut tab1 = app.connect(&cookie).await;
    tab1.expect("join").await;
    tab1.expect("list").await;
    tab1.expect("history").await;
    let mut tab2 = app.connect(&cookie).await;
    tab2.expect("list").await;
    tab2.expect("history").await;
    tab1.say("one").await;
    tab2.say("two").await;
    tab2.say("three").await;
    let events = tab2.events_within(QUIET).await;
    let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["chat", "chat", "error"]);
}

#[tokio::test]
async fn the_server_pings_and_drops_a_silent_client() {
    let app = spawn_with(|c| c.ping_interval = Duration::from_millis(200)).await;
    let (mut alice, _) = app.join("alice").await;
    let (silent, _) = app.join("silent").await;
    alice.expect("join").await;
    // `silent` never reads again, so it never answers a ping; alice reads and so answers.
    let left = alice.expect("left").await;
    assert_eq!(left["data"], "silent is left.");
    drop(silent);
    // alice kept answering pings, so she is still connected.
    alice.say("alive").await;
    alice.expect("chat").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_reader_is_closed_with_1008_and_nobody_waits_for_it() {
    let app = spawn_with(|c| {
        c.outbound_queue = 200;
        c.rate_limit = 1e6;
        c.rate_burst = 1e6;
    })
    .await;
    let (mut fast, _) = app.join("fast").await;
    let (slow, _) = app.join("slow").await;
    fast.expect("join").await;
    let (sender, _) = app.join("sender").await;
    fast.expect("join").await;
    let (kicked_tx, kicked_rx) = tokio::sync::oneshot::channel::<()>();
    // `slow` reads nothing until the server has dropped it, then reads its close frame.
    let slow_closed = tokio::spawn(async move {
        let mut slow = slow;
        kicked_rx.await.unwrap();
        slow.close_code().await
    });
    // Big messages fill the slow reader's TCP buffers, then its queue. The sender reads its
    // own echoes, so it is not a slow reader itself; and it stays at most `WINDOW` messages
    // ahead of `fast`, so `fast` is not one either: unpaced, a release build writes faster
    // than this test's `fast` reads, and the server rightly closes `fast` too. Were the
    // server to wait for `slow`, `fast` would starve and the wait below would time out.
    const WINDOW: usize = 50;
    let text = "慢".repeat(1900);
    let total = 3000;
    let (seen_tx, mut seen) = tokio::sync::watch::channel(0usize);
    let (mut sink, mut stream) = sender.ws.split();
    let drain = tokio::spawn(async move { while let Some(Ok(_)) = stream.next().await {} });
    let send = tokio::spawn(async move {
        for n in 0..total {
            while n >= *seen.borrow_and_update() + WINDOW {
                seen.changed().await.unwrap();
            }
            sink.send(Message::text(text.as_str())).await.unwrap();
        }
        sink
    });
    let mut chats = 0;
    let mut kicked = Some(kicked_tx);
    while chats < total || kicked.is_some() {
        let event = fast.next_event().await;
        match event["type"].as_str().unwrap() {
            "chat" => {
                chats += 1;
                seen_tx.send_replace(chats);
            }
            "left" => {
                assert_eq!(event["data"], "slow is left.");
                kicked.take().expect("one left").send(()).unwrap();
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(chats, total, "the fast reader lost nothing");
    assert_eq!(slow_closed.await.unwrap().map(|c| c.0), Some(1008));
    drop(send.await.unwrap());
    drain.abort();
    assert_eq!(
        app.metric_becomes("passerby_slow_reader_disconnects_total", 1.0)
            .await,
        Some(1.0)
    );
}
