//! The local log when its store fails, fills or runs out of ids: nothing unstored reaches
//! anyone, senders are told, and the writer recovers.

use super::*;

#[tokio::test]
async fn nothing_reaches_a_socket_before_the_writer_stored_it() {
    let dir = tempfile::tempdir().unwrap();
    let engine = sqlite(dir.path());
    let a = Outbox::new(16);
    let member = join(&engine, "lobby", 1, &a).await;
    engine.flush().await;
    let kinds: Vec<_> = events(&a).iter().map(|e| e["type"].clone()).collect();
    assert_eq!(kinds, ["join", "list", "history"]);
    say(&engine, &member, "hi");
    engine.flush().await;
    let chat = &events(&a)[0];
    let store = HistoryStore::open(dir.path(), retention()).unwrap();
    let kept = store.read("lobby", 0, u64::MAX >> 1, 1, 10).unwrap();
    let kept: Vec<serde_json::Value> = kept
        .iter()
        .map(|b| serde_json::from_str(b).unwrap())
        .collect();
    assert_eq!(
        kept.last().unwrap(),
        chat,
        "the delivered event is the stored one"
    );
}

#[tokio::test]
async fn a_chat_that_cannot_be_stored_is_not_broadcast_and_its_sender_is_told() {
    let dir = tempfile::tempdir().unwrap();
    let engine = sqlite(dir.path());
    let (a, b) = (Outbox::new(16), Outbox::new(16));
    let sender = join(&engine, "lobby", 1, &a).await;
    join(&engine, "lobby", 2, &b).await;
    engine.flush().await;
    let seen = events(&a).last().unwrap()["id"].clone();
    events(&b);
    // Break the store from outside, as a damaged file would.
    let other =
        rusqlite::Connection::open(dir.path().join(crate::store::history::FILE_NAME)).unwrap();
    other.execute_batch("DROP TABLE events").unwrap();
    drop(other);
    say(&engine, &sender, "lost?");
    engine.flush().await;
    let told = events(&a);
    assert_eq!(told.len(), 1);
    assert_eq!(told[0]["type"], "error");
    assert_eq!(
        told[0]["id"], seen,
        "an error carries the last id its socket saw"
    );
    assert!(events(&b).is_empty(), "nobody saw what was not stored");
}

/// Breaks the store from outside, as a damaged file or a full disk would.
fn break_store(dir: &std::path::Path) {
    let other = rusqlite::Connection::open(dir.join(crate::store::history::FILE_NAME)).unwrap();
    other.execute_batch("DROP TABLE events").unwrap();
}

/// Mends it: opening the store creates what is missing.
fn mend_store(dir: &std::path::Path) {
    HistoryStore::open(dir, retention()).unwrap();
}

async fn try_join(
    engine: &Engine,
    room: &str,
    id: u64,
    outbox: &Outbox,
) -> Result<Membership, EngineError> {
    engine
        .join(
            RoomName::parse(room).unwrap(),
            user(id),
            SessionId::from_bytes([id as u8; 16]),
            outbox.clone(),
            None,
        )
        .await
}

#[tokio::test]
async fn a_room_out_of_ids_refuses_instead_of_wrapping() {
    let hub = Arc::new(Hub::default());
    let log = LocalLog::memory(hub.clone(), RoomPolicy::default());
    let room = RoomName::lobby();
    *log.lock().ids(&room, std::time::Instant::now()) = u64::MAX - 4;
    let joiner = |id| Joiner {
        room: room.clone(),
        user: user(id),
        session: SessionId::from_bytes([id as u8; 16]),
        outbox: Outbox::new(16),
        since: None,
    };
    let (member, entry) = log.join(joiner(1)).await.unwrap();
    assert_eq!(
        entry.floor,
        u64::MAX - 1,
        "join, list and history took three ids"
    );
    let refused = log.publish(&member, EventKind::Chat, &["a".into(), "b".into()]);
    assert!(
        matches!(refused, Err(EngineError::IdsExhausted)),
        "{refused:?}"
    );
    log.publish(&member, EventKind::Chat, &["the last".into()])
        .unwrap();
    let refused = log.publish(&member, EventKind::Chat, &["x".into()]);
    assert!(
        matches!(refused, Err(EngineError::IdsExhausted)),
        "{refused:?}"
    );
    let late = log.join(joiner(2)).await;
    assert!(matches!(late, Err(EngineError::IdsExhausted)), "{late:?}");
    assert_eq!(
        hub.online(&room),
        1,
        "the refused joiner is not left in the room"
    );
    assert_eq!(*log.lock().ids(&room, std::time::Instant::now()), u64::MAX);
}

#[tokio::test]
async fn a_join_or_left_that_cannot_be_stored_reaches_nobody_and_health_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let engine = sqlite(dir.path());
    let (a, b, c) = (Outbox::new(16), Outbox::new(16), Outbox::new(16));
    let sender = join(&engine, "lobby", 1, &a).await;
    let leaver = join(&engine, "lobby", 2, &b).await;
    engine.flush().await;
    events(&a);
    assert_eq!(engine.health(), Ok(()));
    break_store(dir.path());
    let refused = try_join(&engine, "lobby", 3, &c).await;
    assert!(
        matches!(refused, Err(EngineError::NotStored)),
        "{refused:?}"
    );
    assert!(
        events(&c).is_empty(),
        "no `join`, `list` or `history` ids shown"
    );
    engine.leave(leaver).await;
    engine.flush().await;
    assert!(
        events(&a).is_empty(),
        "neither the join nor the left went out"
    );
    let reason = engine.health().unwrap_err();
    assert!(reason.contains("cannot write"), "{reason}");

    mend_store(dir.path());
    say(&engine, &sender, "back");
    engine.flush().await;
    let got = events(&a);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0]["data"], "back");
    assert_eq!(engine.health(), Ok(()), "healthy again after a commit");
}

#[tokio::test]
async fn a_panicking_writer_fails_its_batch_restarts_and_reports_it() {
    let dir = tempfile::tempdir().unwrap();
    let engine = sqlite(dir.path());
    let a = Outbox::new(16);
    let sender = join(&engine, "lobby", 1, &a).await;
    engine.flush().await;
    events(&a);
    let panicked = try_join(&engine, sqlite::PANIC_ROOM, 2, &Outbox::new(16)).await;
    assert!(
        matches!(panicked, Err(EngineError::NotStored)),
        "{panicked:?}"
    );
    let reason = engine.health().unwrap_err();
    assert!(reason.contains("panicked"), "{reason}");
    say(&engine, &sender, "still here");
    engine.flush().await;
    assert_eq!(events(&a)[0]["data"], "still here", "the writer runs again");
    assert_eq!(engine.health(), Ok(()));
}

#[tokio::test]
async fn a_full_queue_refuses_at_once_but_takes_every_left() {
    let dir = tempfile::tempdir().unwrap();
    let storage = Storage::open(dir.path(), retention(), HistoryPolicy::default(), 1).unwrap();
    let engine = Engine::sqlite(EventCounters::default(), storage, RoomPolicy::default()).unwrap();
    let a = Outbox::new(64);
    let members = [
        join(&engine, "lobby", 1, &a).await,
        join(&engine, "lobby", 2, &Outbox::new(64)).await,
    ];
    engine.flush().await;
    events(&a);
    // Hold the write lock, so the writer waits on its first batch and the queue fills.
    let mut other =
        rusqlite::Connection::open(dir.path().join(crate::store::history::FILE_NAME)).unwrap();
    let lock = other
        .transaction_with_behavior(rusqlite::TransactionBehavior::Exclusive)
        .unwrap();
    let text = [(ChatText::parse("queued", 10).unwrap(), None)];
    let mut refused = None;
    for _ in 0..100 {
        match engine.chat(&members[0], &text) {
            Ok(()) => tokio::task::yield_now().await,
            Err(e) => {
                refused = Some(e);
                break;
            }
        }
    }
    assert!(matches!(refused, Some(EngineError::Busy)), "{refused:?}");
    let [first, second] = members;
    engine.leave(second).await;
    drop(lock);
    engine.flush().await;
    let got = events(&a);
    assert_eq!(
        got.last().unwrap()["type"],
        "left",
        "a `left` is never refused"
    );
    assert!(got.iter().any(|e| e["data"] == "queued"));
    say(&engine, &first, "after");
    engine.flush().await;
    assert_eq!(events(&a)[0]["data"], "after");
}
