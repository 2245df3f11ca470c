//! Refused messages cost the sender: a token from the rate limit each, a budget per socket,
//! errors not repeated for a flood, and log lines sampled per user.

use std::{
    cell::RefCell,
    io::Write,
    sync::{Arc, Mutex, Once},
    time::Duration,
};

use crate::helpers::{Client, TestApp, metric, rejected_messages, spawn_with, two_chatting};

const QUIET: Duration = Duration::from_millis(300);
const BAD: &str = r#"{"type":"nope"}"#;

/// Sends a chat and waits for its echo: everything sent before it has been handled.
async fn handled(client: &mut Client, marker: &str) {
    client.say(marker).await;
    loop {
        let event = client.next_event().await;
        if event["type"] == "chat" && event["data"] == marker {
            return;
        }
    }
}

/// A server whose sockets may have `max_refused` messages refused, and whose users may send
/// `rate` messages a second after a burst of `burst`.
async fn with_budget(max_refused: u32, rate: f64, burst: f64) -> TestApp {
    spawn_with(|c| {
        c.max_refused = max_refused;
        c.rate_limit = rate;
        c.rate_burst = burst;
    })
    .await
}

async fn rejected(app: &TestApp, reason: &str) -> Option<f64> {
    metric(&app.metrics().await, &rejected_messages(reason))
}

#[tokio::test]
async fn a_socket_past_max_refused_is_closed_with_1008_while_others_keep_chatting() {
    let app = with_budget(5, 1000.0, 1000.0).await;
    let (mut alice, mut bob) = two_chatting(&app).await;
    for _ in 0..5 {
        bob.say(BAD).await;
    }
    // Five are within the budget: bob is told why, and may still speak.
    let error = bob.expect("error").await;
    assert!(error["data"].as_str().unwrap().contains("nope"), "{error}");
    bob.say("still here").await;
    assert_eq!(alice.expect("chat").await["data"], "still here");
    bob.say(BAD).await;
    assert_eq!(
        bob.close_code().await,
        Some((1008, "too many refused messages".into()))
    );
    assert_eq!(alice.expect("left").await["data"], "bob is left.");
    alice.say("and the room goes on").await;
    assert_eq!(alice.expect("chat").await["data"], "and the room goes on");
    assert_eq!(rejected(&app, "bad_command").await, Some(6.0));
    assert_eq!(rejected(&app, "too_many_refused").await, Some(1.0));
}

#[tokio::test]
async fn over_the_rate_limit_counts_as_refused_too() {
    let app = with_budget(3, 0.01, 2.0).await;
    let (mut alice, mut bob) = two_chatting(&app).await;
    for n in 0..6 {
        bob.say(&format!("m{n}")).await;
    }
    // Two pass, three are dropped within the budget, the sixth closes the socket.
    assert_eq!(bob.close_code().await.map(|c| c.0), Some(1008));
    let chats: Vec<_> = alice
        .events_within(QUIET)
        .await
        .into_iter()
        .filter(|e| e["type"] == "chat")
        .collect();
    assert_eq!(chats.len(), 2, "{chats:?}");
    assert_eq!(rejected(&app, "rate_limited").await, Some(4.0));
}

#[tokio::test]
async fn refused_messages_take_tokens_from_the_rate_limit() {
    let app = with_budget(100, 0.01, 3.0).await;
    let (mut alice, mut bob) = two_chatting(&app).await;
    bob.say(BAD).await;
    bob.say(&"x".repeat(5000)).await;
    bob.say(r#"{"type":"image","data":"https://evil.example/x.png"}"#)
        .await;
    bob.say("a fine message, too late").await;
    let errors: Vec<String> = bob
        .events_within(QUIET)
        .await
        .into_iter()
        .filter(|e| e["type"] == "error")
        .map(|e| e["data"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        errors.len(),
        4,
        "each different refusal is answered: {errors:?}"
    );
    assert!(errors[3].contains("too many messages"), "{errors:?}");
    assert!(
        alice.events_within(QUIET).await.is_empty(),
        "three refusals spent the burst of three"
    );
    // Alice has her own bucket.
    alice.say("mine").await;
    assert_eq!(alice.expect("chat").await["data"], "mine");
}

#[tokio::test]
async fn a_flood_of_one_mistake_is_answered_once_not_per_message() {
    let app = with_budget(1000, 1000.0, 1000.0).await;
    let (mut bob, _) = app.join("bob").await;
    for _ in 0..50 {
        bob.say(BAD).await;
    }
    bob.say("done").await;
    let mut errors = 0;
    loop {
        let event = bob.next_event().await;
        match event["type"].as_str().unwrap() {
            "error" => errors += 1,
            "chat" => break,
            other => panic!("unexpected {other}"),
        }
    }
    // One per error window (a second); a slow machine may straddle one or two.
    assert!((1..=3).contains(&errors), "{errors} errors for 50 refusals");
    assert_eq!(rejected(&app, "bad_command").await, Some(50.0));
}

/// Log lines written on this thread, the one a `#[tokio::test]` runtime runs the server on.
#[derive(Clone, Default)]
pub struct Captured(Arc<Mutex<Vec<u8>>>);

thread_local! {
    static CAPTURE: RefCell<Option<Captured>> = const { RefCell::new(None) };
}

/// The one global subscriber's writer: this thread's capture, if a test installed one.
///
/// A subscriber scoped to each test (`set_default`) lost lines now and then: tracing caches
/// each call site's interest globally, and a site first reached on a thread with no subscriber
/// while another test installed its own could stay cached as "never".
struct ThisThread;

impl Write for ThisThread {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        CAPTURE.with(|c| {
            if let Some(captured) = &*c.borrow() {
                captured.0.lock().unwrap().extend_from_slice(buf);
            }
        });
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Stops capturing this thread's lines when dropped.
pub struct CaptureGuard;

impl Drop for CaptureGuard {
    fn drop(&mut self) {
        CAPTURE.with(|c| c.borrow_mut().take());
    }
}

impl Captured {
    /// Captures this thread's log lines until the guard is dropped.
    pub fn install() -> (Captured, CaptureGuard) {
        static GLOBAL: Once = Once::new();
        GLOBAL.call_once(|| {
            let subscriber = tracing_subscriber::fmt()
                .with_writer(|| ThisThread)
                .with_ansi(false)
                .finish();
            // Fails only under `TEST_LOG`, whose logger then has the lines instead.
            let _ = tracing::subscriber::set_global_default(subscriber);
        });
        let captured = Captured::default();
        CAPTURE.with(|c| *c.borrow_mut() = Some(captured.clone()));
        (captured, CaptureGuard)
    }

    /// The `count` of each line that contains every one of `parts`.
    pub fn counts(&self, parts: &[&str]) -> Vec<u64> {
        let text = String::from_utf8(self.0.lock().unwrap().clone()).unwrap();
        text.lines()
            .filter(|l| parts.iter().all(|p| l.contains(p)))
            .map(|l| {
                let count = l.split(' ').find_map(|w| w.strip_prefix("count="));
                count.expect("a count").parse().unwrap()
            })
            .collect()
    }

    /// The `count` of each `rejected` line for `user`.
    fn rejection_counts(&self, user: u64) -> Vec<u64> {
        self.counts(&[" rejected ", &format!(" user={user} ")])
    }
}

#[tokio::test]
async fn rejection_logs_are_one_line_per_user_per_interval_with_the_count() {
    let (captured, _guard) = Captured::install();
    let interval = Duration::from_millis(500);
    let app = spawn_with(|c| {
        c.max_refused = 1000;
        c.rate_limit = 1000.0;
        c.rate_burst = 1000.0;
        c.log_sample_interval = interval;
    })
    .await;
    let (mut bob, bob_user) = app.join("bob").await;
    let bob_id = bob_user["id"].as_u64().unwrap();
    for _ in 0..100 {
        bob.say(BAD).await;
    }
    handled(&mut bob, "first flood handled").await;
    let first = captured.rejection_counts(bob_id);
    assert!(!first.is_empty(), "the first refusal is logged at once");
    assert_eq!(first[0], 1);
    tokio::time::sleep(interval).await;
    for _ in 0..10 {
        bob.say(BAD).await;
    }
    handled(&mut bob, "second flood handled").await;
    let counts = captured.rejection_counts(bob_id);
    assert!(counts.len() >= 2, "a line after the interval: {counts:?}");
    assert!(
        counts.len() <= 6,
        "110 refusals in about a second, {} lines: {counts:?}",
        counts.len()
    );
    // Whatever was counted and not yet written waits for the next line: none is lost.
    let written: u64 = counts.iter().sum();
    assert!(
        written <= 110 && written > counts.len() as u64,
        "{counts:?}"
    );
}
