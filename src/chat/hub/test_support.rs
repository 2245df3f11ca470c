//! What the hub's unit tests build again and again: users, events, settled sockets, and
//! reading back what an outbox was given.

use std::{
    collections::VecDeque,
    sync::Arc,
    task::{Context, Waker},
};

use serde_json::Value;

use super::Hub;
use crate::{
    auth::{SessionId, User, UserName},
    chat::{
        Membership,
        log::{Entry, Event, Visibility},
        outbox::Outbox,
        protocol::{EventData, EventKind, Frame, ServerEvent},
        room::RoomName,
    },
    ws::frame,
};

pub fn user(id: u64) -> Arc<User> {
    Arc::new(User::guest(id, UserName::parse(&format!("u{id}")).unwrap()))
}

pub fn sid(user: u64) -> SessionId {
    SessionId::from_bytes([user as u8; 16])
}

/// An event `kind` by user `who`, with the room's `count` if it is presence.
pub fn event_by(id: u64, kind: EventKind, who: u64, count: Option<usize>) -> Event {
    let frame = ServerEvent {
        id,
        kind,
        user: &user(who),
        data: EventData::Text("x"),
        time: 0,
        count,
    }
    .to_frame();
    Event {
        id,
        visible: Visibility::Room,
        frame,
    }
}

/// A chat by user 1 that everyone in the room sees.
pub fn chat(id: u64) -> Event {
    event_by(id, EventKind::Chat, 1, None)
}

/// A socket of user `id` attached to `room` and, with a `floor`, settled there as a join
/// that brought nothing along would settle it.
pub fn attached(hub: &Hub, room: &RoomName, id: u64, floor: Option<u64>) -> (Membership, Outbox) {
    let outbox = Outbox::new(64);
    let (member, _) = hub.attach(room.clone(), user(id), sid(id), outbox.clone());
    if let Some(floor) = floor {
        let entry = Entry {
            frames: Vec::new(),
            floor,
            joined: false,
            count: 0,
        };
        hub.settle(&member, entry);
    }
    (member, outbox)
}

/// The frames given to `outbox` since it was last read.
pub fn frames(outbox: &Outbox) -> Vec<Frame> {
    let mut batch = VecDeque::new();
    outbox.poll_news(&Context::from_waker(Waker::noop()), &mut batch, true);
    batch.iter().flat_map(|c| c.iter().cloned()).collect()
}

/// The same, as JSON.
pub fn events(outbox: &Outbox) -> Vec<Value> {
    frames(outbox)
        .iter()
        .map(|f| serde_json::from_slice(frame::payload(f)).unwrap())
        .collect()
}
