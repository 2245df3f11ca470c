//! The local log through `Engine`: in memory, and with SQLite behind it (`store`: what a
//! failing, full or exhausted store does).

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
        .chat(member, &[(ChatText::parse(text, 10).unwrap(), None)])
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

mod store;
