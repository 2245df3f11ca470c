//! What a join queues at once fits its socket's bytes bound: the largest `history` a
//! newcomer may get, and a recovery too long for one frame, which is trimmed, not closed.

use crate::helpers::spawn_with;

#[tokio::test]
async fn the_largest_join_fits_the_least_bytes_bound_the_server_accepts() {
    const ON_JOIN: usize = 10;
    let least = passerby::chat::outbox::largest_join(ON_JOIN, 2000);
    let app = spawn_with(|c| {
        c.history_on_join = ON_JOIN;
        c.outbound_queue_bytes = least;
        c.rate_limit = 1e6;
        c.rate_burst = 1e6;
    })
    .await;
    // The worst text there is: every character a control character, six bytes in JSON.
    let worst = "\u{1}".repeat(2000);
    let (mut sender, _) = app.join("sender").await;
    for _ in 0..ON_JOIN {
        sender.say(&worst).await;
    }
    for _ in 0..ON_JOIN {
        assert_eq!(sender.expect("chat").await["data"], worst.as_str());
    }
    let cookie = app.sign_in("newcomer").await;
    let mut newcomer = app.connect(&cookie).await;
    newcomer.expect("join").await;
    newcomer.expect("list").await;
    let history = newcomer.expect("history").await;
    let events = history["data"].as_array().unwrap();
    assert_eq!(events.len(), ON_JOIN);
    assert!(events.iter().all(|e| e["data"] == worst.as_str()));
    // Not closed: it chats.
    newcomer.say("hello").await;
    assert_eq!(newcomer.expect("chat").await["data"], "hello");

    // One byte less is refused at start, with the least it takes.
    let tmp = tempfile::tempdir().unwrap();
    let mut config = passerby::config::Config::with_data_dir(tmp.path());
    config.bind = "127.0.0.1:0".parse().unwrap();
    config.history_on_join = ON_JOIN;
    config.outbound_queue_bytes = least - 1;
    let refused = passerby::startup::App::build(config).await.err().unwrap();
    assert!(
        refused.to_string().contains(&format!(
            "--outbound-queue-bytes must hold what a join queues at once: at least {least}"
        )),
        "{refused}"
    );
}

#[tokio::test]
async fn a_recovery_longer_than_the_bytes_bound_gets_the_newest_that_fit_and_is_truncated() {
    const CHARS: usize = 200;
    let least = passerby::chat::outbox::largest_join(1, CHARS);
    let app = spawn_with(|c| {
        c.history_on_join = 1;
        c.max_message_chars = CHARS;
        c.outbound_queue_bytes = least;
        c.rate_limit = 1e6;
        c.rate_burst = 1e6;
    })
    .await;
    let (mut sender, _) = app.join("sender").await;
    let text = "x".repeat(CHARS);
    // Far more than the budget beside the join and the list (a few KiB).
    for i in 0..40 {
        sender.say(&format!("{i:02}{text}")[..CHARS]).await;
    }
    for _ in 0..40 {
        sender.expect("chat").await;
    }
    let cookie = app.sign_in("back").await;
    let mut back = app.connect_since(&cookie, 0).await;
    back.expect("join").await;
    back.expect("list").await;
    let history = back.expect("history").await;
    assert_eq!(history["truncated"], true, "the client must rebuild");
    let events = history["data"].as_array().unwrap();
    assert!(!events.is_empty() && events.len() < 40, "{}", events.len());
    let newest = events.last().unwrap()["data"].as_str().unwrap();
    assert!(
        newest.starts_with("39"),
        "the newest ones are kept: {newest}"
    );
    // Not closed as a slow reader: it chats.
    back.say("hello").await;
    assert_eq!(back.expect("chat").await["data"], "hello");
}
