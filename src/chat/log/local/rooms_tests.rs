//! Rooms leaving the local log's memory and coming back: their ids never go back, and a
//! restart loads no room until someone uses it.

use std::{sync::Arc, time::Duration};

use super::{EventLog, Joiner, Keeper, LocalLog, Storage};
use crate::{
    auth::{SessionId, User, UserName},
    chat::{
        EngineError, Membership,
        hub::Hub,
        outbox::Outbox,
        protocol::EventKind,
        room::RoomName,
        rooms::{Reserved, RoomPolicy},
    },
    store::history::Retention,
};

/// One room in memory at most: a second one makes every empty room go at once, so these
/// tests need no clock.
const ONE_ROOM: RoomPolicy = RoomPolicy {
    idle: Duration::from_secs(3600),
    max_rooms: 1,
    per_minute: 60.0,
    cid_window: Duration::from_secs(600),
};

fn joiner(room: &str, id: u64) -> Joiner {
    Joiner {
        room: RoomName::parse(room).unwrap(),
        user: Arc::new(User::guest(id, UserName::parse(&format!("u{id}")).unwrap())),
        session: SessionId::from_bytes([id as u8; 16]),
        outbox: Outbox::new(64),
        since: None,
    }
}

/// Joins, says something and leaves; the room's last id before it left.
async fn visit(log: &impl EventLog, room: &str, user: u64) -> Result<u64, EngineError> {
    let (member, entry): (Membership, _) = log.join(joiner(room, user)).await?;
    log.publish(&member, EventKind::Chat, &["hello".into()])?;
    log.leave(member);
    Ok(entry.floor)
}

fn sqlite(dir: &std::path::Path, rooms: RoomPolicy) -> LocalLog<super::Sqlite> {
    let retention = Retention {
        max_events: 100,
        max_age: None,
    };
    let storage = Storage::open(dir, retention, super::tests::policy(), 64).unwrap();
    LocalLog::sqlite(Arc::new(Hub::default()), storage, rooms).unwrap()
}

async fn ids_go_on_after_eviction(log: &impl EventLog, in_memory: impl Fn() -> usize) {
    let first = visit(log, "a", 1).await.unwrap();
    visit(log, "b", 1).await.unwrap();
    assert_eq!(in_memory(), 1, "a made way for b");
    let again = visit(log, "a", 1).await.unwrap();
    // a took join, list, history, chat and left (5 ids) after `first`.
    assert!(again >= first + 5, "ids went back: {again} after {first}");
}

#[tokio::test]
async fn a_room_let_go_keeps_its_ids_increasing_in_memory() {
    let log = LocalLog::memory(Arc::new(Hub::default()), ONE_ROOM);
    ids_go_on_after_eviction(&log, || log.rooms_in_memory()).await;
}

#[tokio::test]
async fn a_room_let_go_keeps_its_ids_increasing_with_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let log = sqlite(dir.path(), ONE_ROOM);
    ids_go_on_after_eviction(&log, || log.rooms_in_memory()).await;
}

#[tokio::test]
async fn a_restart_loads_no_room_until_it_is_used_and_continues_its_ids() {
    let dir = tempfile::tempdir().unwrap();
    let mut last = 0;
    {
        let log = sqlite(dir.path(), RoomPolicy::default());
        for room in ["a", "b", "c", "d"] {
            last = visit(&log, room, 1).await.unwrap();
        }
        log.flush().await;
        assert_eq!(log.rooms_in_memory(), 4);
    }
    let log = sqlite(dir.path(), RoomPolicy::default());
    assert_eq!(log.rooms_in_memory(), 0, "nothing loaded at start");
    let again = visit(&log, "d", 1).await.unwrap();
    assert!(again > last + 2, "ids went back: {again} after {last}");
    assert_eq!(log.rooms_in_memory(), 1);
}

#[tokio::test]
async fn a_stored_room_is_not_a_new_one_for_the_room_rate() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = sqlite(dir.path(), RoomPolicy::default());
        visit(&log, "old", 1).await.unwrap();
        log.flush().await;
    }
    let one_a_minute = RoomPolicy {
        per_minute: 1.0,
        ..RoomPolicy::default()
    };
    let log = sqlite(dir.path(), one_a_minute);
    visit(&log, "new", 1).await.unwrap();
    let refused = visit(&log, "newer", 1).await;
    assert!(matches!(refused, Err(EngineError::RoomRate)), "{refused:?}");
    visit(&log, "old", 1)
        .await
        .expect("a room with history is not created");
    assert_eq!(
        log.keeper
            .reserved(&RoomName::parse("newer").unwrap())
            .unwrap(),
        Reserved::default(),
        "the refused room was never written"
    );
}
