//! The local log through `Engine`: in memory, and with SQLite behind it.

use std::{
    collections::VecDeque,
    sync::Arc,
    task::{Context, Waker},
};

use super::{EventLog, Joiner, LocalLog, Storage, sqlite};
use crate::{
    auth::{SessionId, User, UserName},
    chat::{
        Engine, EngineError, Membership,
        hub::Hub,
        outbox::Outbox,
        protocol::{EventKind, Frame},
        recovery::HistoryPolicy,
        room::RoomName,
        rooms::RoomPolicy,
        text::ChatText,
    },
    metrics::EventCounters,
    store::{HistoryStore, history::Retention},
    ws::frame,
};

fn user(id: u64) -> Arc<User> {
    Arc::new(User::guest(id, UserName::parse(&format!("u{id}")).unwrap()))
}

fn frames(outbox: &Outbox) -> Vec<Frame> {
    let mut batch = VecDeque::new();
    outbox.poll_news(&Context::from_waker(Waker::noop()), &mut batch, true);
    batch.iter().flat_map(|c| c.iter().cloned()).collect()
}

fn events(outbox: &Outbox) -> Vec<serde_json::Value> {
    frames(outbox)
        .iter()
        .map(|f| serde_json::from_slice(frame::payload(f)).unwrap())
        .collect()
}

async fn join(engine: &Engine, room: &str, id: u64, outbox: &Outbox) -> Membership {
    let room = RoomName::parse(room).unwrap();
    engine
        .join(
            room,
            user(id),
            SessionId::from_bytes([id as u8; 16]),
            outbox.clone(),
            None,
        )
        .await
        .unwrap()
}

fn say(engine: &Engine, member: &Membership, text: &str) {
    engine
        .chat(member, &[ChatText::parse(text, 10).unwrap()])
        .unwrap();
}

fn memory() -> Engine {
    Engine::memory(EventCounters::default(), RoomPolicy::default())
}

fn sqlite(dir: &std::path::Path) -> Engine {
    let storage = Storage::open(dir, retention(), policy(), 4096).unwrap();
    Engine::sqlite(EventCounters::default(), storage, RoomPolicy::default()).unwrap()
}

pub(super) fn policy() -> HistoryPolicy {
    HistoryPolicy {
        on_join: 50,
        page: 100,
        max_bytes: 1 << 20,
        reads: 64,
    }
}

fn retention() -> Retention {
    Retention {
        max_events: 100,
        max_age: None,
    }
}

#[tokio::test]
async fn first_socket_joins_and_gets_the_list() {
    let engine = memory();
    let outbox = Outbox::new(16);
    join(&engine, "lobby", 1, &outbox).await;
    let events = events(&outbox);
    let kinds: Vec<_> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["join", "list", "history"]);
    assert_eq!(events[0]["data"], "u1 joined.");
    assert_eq!(events[1]["data"][0]["id"], 1);
    assert!(events[0]["id"].as_u64() < events[1]["id"].as_u64());
}

#[tokio::test]
async fn second_tab_of_a_user_neither_joins_nor_duplicates_them() {
    let engine = memory();
    let (a, b) = (Outbox::new(16), Outbox::new(16));
    let first = join(&engine, "lobby", 1, &a).await;
    events(&a);
    let second = join(&engine, "lobby", 1, &b).await;
    assert!(events(&a).is_empty());
    let list = &events(&b)[0];
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    engine.leave(second).await;
    assert!(events(&a).is_empty(), "one tab closing is not leaving");
    engine.leave(first).await;
    assert_eq!(engine.online(&RoomName::lobby()), 0);
}

#[tokio::test]
async fn ids_keep_increasing_after_a_room_empties() {
    let engine = memory();
    let a = Outbox::new(16);
    let m = join(&engine, "lobby", 1, &a).await;
    let last = events(&a).last().unwrap()["id"].as_u64().unwrap();
    engine.leave(m).await;
    let b = Outbox::new(16);
    join(&engine, "lobby", 2, &b).await;
    assert!(events(&b)[0]["id"].as_u64().unwrap() > last);
}

#[tokio::test]
async fn a_broadcast_is_serialized_once_and_its_bytes_shared() {
    let engine = memory();
    let (a, b) = (Outbox::new(16), Outbox::new(16));
    let ma = join(&engine, "lobby", 1, &a).await;
    join(&engine, "lobby", 2, &b).await;
    frames(&a);
    frames(&b);
    say(&engine, &ma, "hi");
    let (got_a, got_b) = (frames(&a), frames(&b));
    assert_eq!(got_a.len(), 1);
    assert_eq!(got_a[0].as_ptr(), got_b[0].as_ptr());
}

#[tokio::test]
async fn rooms_do_not_hear_each_other() {
    let engine = memory();
    let (a, b) = (Outbox::new(16), Outbox::new(16));
    let ma = join(&engine, "lobby", 1, &a).await;
    join(&engine, "other", 2, &b).await;
    events(&a);
    events(&b);
    say(&engine, &ma, "hi");
    assert_eq!(events(&a).len(), 1);
    assert!(events(&b).is_empty());
}

#[tokio::test]
async fn users_online_counts_a_user_in_two_rooms_once_and_broadcasts_are_counted() {
    let counters = EventCounters::default();
    let engine = Engine::memory(counters.clone(), RoomPolicy::default());
    let outbox = Outbox::new(16);
    let a = join(&engine, "lobby", 1, &outbox).await;
    join(&engine, "other", 1, &outbox).await;
    join(&engine, "lobby", 2, &outbox).await;
    assert_eq!(engine.users_online(), 2);
    say(&engine, &a, "hi");
    engine.leave(a).await;
    assert_eq!(
        engine.users_online(),
        2,
        "user 1 is still in the other room"
    );
    assert_eq!(
        (
            counters.join.get(),
            counters.chat.get(),
            counters.left.get()
        ),
        (3, 1, 1)
    );
}

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
    let refused = log.publish(&member, EventKind::Chat, &["a", "b"]);
    assert!(
        matches!(refused, Err(EngineError::IdsExhausted)),
        "{refused:?}"
    );
    log.publish(&member, EventKind::Chat, &["the last"])
        .unwrap();
    let refused = log.publish(&member, EventKind::Chat, &["x"]);
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
    let text = [ChatText::parse("queued", 10).unwrap()];
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
