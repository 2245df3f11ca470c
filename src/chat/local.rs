//! The embedded engine: every room lives in this process's memory.
//!
//! One short critical section per event assigns the id, serializes the event once and pushes
//! the shared bytes into each member's outbox, so every socket sees events in id order.

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    sync::{
        Arc, Mutex, MutexGuard,
        atomic::{AtomicU64, Ordering},
    },
};

use super::{
    Membership, Whisper,
    outbox::Outbox,
    protocol::{Chunk, EventData, EventKind, Frame, PrivateEvent, ServerEvent, now_ms},
    room::RoomName,
    text::ChatText,
};
use crate::{auth::User, metrics::EventCounters, upload::UploadName};

#[derive(Debug, Default)]
pub struct LocalEngine {
    rooms: Mutex<HashMap<RoomName, Room>>,
    next_socket: AtomicU64,
    events: EventCounters,
}

/// A room. It outlives its last member so its id sequence never restarts.
#[derive(Debug, Default)]
struct Room {
    last_id: u64,
    sockets: HashMap<u64, Socket>,
    online: HashMap<u64, Presence>,
    /// Online users in the order they came, for `list`.
    arrival: BTreeMap<u64, u64>,
    next_arrival: u64,
}

#[derive(Debug)]
struct Socket {
    user_id: u64,
    outbox: Outbox,
}

#[derive(Debug)]
struct Presence {
    user: Arc<User>,
    sockets: u32,
    arrival: u64,
}

impl LocalEngine {
    pub fn counting(events: EventCounters) -> Self {
        LocalEngine {
            events,
            ..LocalEngine::default()
        }
    }

    pub fn join(&self, room_name: RoomName, user: Arc<User>, outbox: Outbox) -> Membership {
        let socket = self.next_socket.fetch_add(1, Ordering::Relaxed);
        let mut rooms = self.lock();
        let room = rooms.entry(room_name.clone()).or_default();
        room.sockets.insert(
            socket,
            Socket {
                user_id: user.id,
                outbox: outbox.clone(),
            },
        );
        let first = match room.online.get_mut(&user.id) {
            Some(presence) => {
                presence.sockets += 1;
                false
            }
            None => {
                let arrival = room.next_arrival;
                room.next_arrival += 1;
                room.arrival.insert(arrival, user.id);
                room.online.insert(
                    user.id,
                    Presence {
                        user: user.clone(),
                        sockets: 1,
                        arrival,
                    },
                );
                true
            }
        };
        if first {
            let text = format!("{} joined.", user.name);
            room.broadcast(EventKind::Join, &user, EventData::Text(&text), true);
            self.events.join.inc();
        }
        let list = {
            let users: Vec<&User> = room
                .arrival
                .values()
                .map(|id| &*room.online[id].user)
                .collect();
            room.last_id += 1;
            ServerEvent {
                id: room.last_id,
                kind: EventKind::List,
                user: &user,
                data: EventData::Users(&users),
                time: now_ms(),
                count: Some(users.len()),
            }
            .to_frame()
        };
        let _ = outbox.push(list);
        Membership {
            room: room_name,
            user,
            socket,
        }
    }

    /// Broadcasts messages from one sender. A burst is framed once and each socket takes
    /// all of it in one push, so fan-out touches every socket once per burst, not per message.
    pub fn chat(&self, member: &Membership, texts: &[ChatText]) {
        let mut rooms = self.lock();
        let room = rooms
            .get_mut(&member.room)
            .expect("a member's room exists until it leaves");
        let frames: Chunk = texts
            .iter()
            .map(|text| {
                room.frame(
                    EventKind::Chat,
                    &member.user,
                    EventData::Text(text.as_str()),
                    false,
                )
            })
            .collect();
        room.fan_out(&frames);
        self.events.chat.inc_by(texts.len() as u64);
    }

    pub fn image(&self, member: &Membership, image: &UploadName) -> u64 {
        let mut rooms = self.lock();
        let room = rooms
            .get_mut(&member.room)
            .expect("a member's room exists until it leaves");
        let url = image.url();
        let id = room.broadcast(EventKind::Image, &member.user, EventData::Text(&url), false);
        self.events.image.inc();
        id
    }

    /// Delivers a whisper to every socket of the sender and of the recipient, in whichever
    /// rooms they are. Each room it reaches gives it that room's next id, so ids still
    /// increase on every socket; the frame is serialized once per room.
    pub fn private(&self, member: &Membership, to: u64, text: &ChatText) -> Whisper {
        let mut rooms = self.lock();
        let recipient = rooms
            .values()
            .find_map(|room| room.online.get(&to))
            .map(|presence| presence.user.clone());
        let Some(recipient) = recipient else {
            drop(rooms);
            self.reply_error(member, &format!("user {to} is not online"));
            return Whisper::RecipientOffline;
        };
        let from = member.user.id;
        let time = now_ms();
        for room in rooms.values_mut() {
            if !(room.online.contains_key(&to) || room.online.contains_key(&from)) {
                continue;
            }
            room.last_id += 1;
            let frame = PrivateEvent {
                id: room.last_id,
                kind: EventKind::Private,
                user: &member.user,
                to: &recipient,
                data: text.as_str(),
                time,
            }
            .to_frame();
            for socket in room.sockets.values() {
                if socket.user_id == to || socket.user_id == from {
                    let _ = socket.outbox.push(frame.clone());
                }
            }
        }
        self.events.private.inc();
        Whisper::Delivered
    }

    pub fn reply_error(&self, member: &Membership, message: &str) {
        let mut rooms = self.lock();
        let Some(room) = rooms.get_mut(&member.room) else {
            return;
        };
        room.last_id += 1;
        let frame = ServerEvent {
            id: room.last_id,
            kind: EventKind::Error,
            user: &member.user,
            data: EventData::Text(message),
            time: now_ms(),
            count: None,
        }
        .to_frame();
        if let Some(socket) = room.sockets.get(&member.socket) {
            let _ = socket.outbox.push(frame);
        }
    }

    pub fn leave(&self, member: Membership) {
        let mut rooms = self.lock();
        let Some(room) = rooms.get_mut(&member.room) else {
            return;
        };
        let Some(socket) = room.sockets.remove(&member.socket) else {
            return;
        };
        let Some(presence) = room.online.get_mut(&socket.user_id) else {
            return;
        };
        presence.sockets -= 1;
        if presence.sockets == 0 {
            let arrival = presence.arrival;
            room.online.remove(&socket.user_id);
            room.arrival.remove(&arrival);
            let text = format!("{} is left.", member.user.name);
            room.broadcast(EventKind::Left, &member.user, EventData::Text(&text), true);
            self.events.left.inc();
        }
    }

    pub fn for_each_outbox(&self, f: impl Fn(&Outbox)) {
        for room in self.lock().values() {
            room.sockets.values().for_each(|socket| f(&socket.outbox));
        }
    }

    pub fn online(&self, room: &RoomName) -> usize {
        self.lock().get(room).map_or(0, |r| r.online.len())
    }

    /// Distinct users online in any room; for `/metrics`, so only counted when scraped.
    pub fn users_online(&self) -> usize {
        let rooms = self.lock();
        let mut users = HashSet::new();
        for room in rooms.values() {
            users.extend(room.online.keys().copied());
        }
        users.len()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<RoomName, Room>> {
        self.rooms.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Room {
    /// Gives the event the room's next id and queues it for every socket in the room.
    fn broadcast(&mut self, kind: EventKind, user: &User, data: EventData<'_>, count: bool) -> u64 {
        let frame = self.frame(kind, user, data, count);
        self.fan_out(&Chunk::from([frame]));
        self.last_id
    }

    /// Serializes an event with the room's next id.
    fn frame(&mut self, kind: EventKind, user: &User, data: EventData<'_>, count: bool) -> Frame {
        self.last_id += 1;
        ServerEvent {
            id: self.last_id,
            kind,
            user,
            data,
            time: now_ms(),
            count: count.then_some(self.online.len()),
        }
        .to_frame()
    }

    fn fan_out(&self, chunk: &Chunk) {
        for socket in self.sockets.values() {
            // A full outbox marks its socket for closing; its task does the rest.
            let _ = socket.outbox.push_chunk(chunk);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::{
        collections::VecDeque,
        task::{Context, Waker},
    };

    use super::*;
    use crate::{auth::UserName, ws::frame};

    fn user(id: u64) -> Arc<User> {
        Arc::new(User::guest(id, UserName::parse(&format!("u{id}")).unwrap()))
    }

    fn frames(outbox: &Outbox) -> Vec<Frame> {
        let mut batch = VecDeque::new();
        outbox.poll_news(&Context::from_waker(Waker::noop()), &mut batch, true);
        batch.iter().flat_map(|c| c.iter().cloned()).collect()
    }

    async fn drain(outbox: &Outbox) -> Vec<serde_json::Value> {
        frames(outbox)
            .iter()
            .map(|f| serde_json::from_slice(frame::payload(f)).unwrap())
            .collect()
    }

    #[tokio::test]
    async fn first_socket_joins_and_gets_the_list() {
        let engine = LocalEngine::default();
        let outbox = Outbox::new(16);
        engine.join(RoomName::lobby(), user(1), outbox.clone());
        let events = drain(&outbox).await;
        let kinds: Vec<_> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
        assert_eq!(kinds, ["join", "list"]);
        assert_eq!(events[0]["data"], "u1 joined.");
        assert_eq!(events[1]["data"][0]["id"], 1);
        assert!(events[0]["id"].as_u64() < events[1]["id"].as_u64());
    }

    #[tokio::test]
    async fn second_tab_of_a_user_neither_joins_nor_duplicates_them() {
        let engine = LocalEngine::default();
        let (a, b) = (Outbox::new(16), Outbox::new(16));
        let first = engine.join(RoomName::lobby(), user(1), a.clone());
        drain(&a).await;
        let second = engine.join(RoomName::lobby(), user(1), b.clone());
        assert!(drain(&a).await.is_empty());
        let list = &drain(&b).await[0];
        assert_eq!(list["data"].as_array().unwrap().len(), 1);
        engine.leave(second);
        assert!(drain(&a).await.is_empty(), "one tab closing is not leaving");
        engine.leave(first);
        assert_eq!(engine.online(&RoomName::lobby()), 0);
    }

    #[tokio::test]
    async fn ids_keep_increasing_after_a_room_empties() {
        let engine = LocalEngine::default();
        let a = Outbox::new(16);
        let m = engine.join(RoomName::lobby(), user(1), a.clone());
        let last = drain(&a).await.last().unwrap()["id"].as_u64().unwrap();
        engine.leave(m);
        let b = Outbox::new(16);
        engine.join(RoomName::lobby(), user(2), b.clone());
        assert!(drain(&b).await[0]["id"].as_u64().unwrap() > last);
    }

    #[tokio::test]
    async fn a_broadcast_is_serialized_once_and_its_bytes_shared() {
        let engine = LocalEngine::default();
        let (a, b) = (Outbox::new(16), Outbox::new(16));
        let ma = engine.join(RoomName::lobby(), user(1), a.clone());
        engine.join(RoomName::lobby(), user(2), b.clone());
        frames(&a);
        frames(&b);
        engine.chat(&ma, &[ChatText::parse("hi", 10).unwrap()]);
        let (got_a, got_b) = (frames(&a), frames(&b));
        assert_eq!(got_a.len(), 1);
        assert_eq!(got_a[0].as_ptr(), got_b[0].as_ptr());
    }

    #[tokio::test]
    async fn rooms_do_not_hear_each_other() {
        let engine = LocalEngine::default();
        let (a, b) = (Outbox::new(16), Outbox::new(16));
        let ma = engine.join(RoomName::lobby(), user(1), a.clone());
        engine.join(RoomName::parse("other").unwrap(), user(2), b.clone());
        drain(&a).await;
        drain(&b).await;
        engine.chat(&ma, &[ChatText::parse("hi", 10).unwrap()]);
        assert_eq!(drain(&a).await.len(), 1);
        assert!(drain(&b).await.is_empty());
    }

    #[tokio::test]
    async fn a_whisper_reaches_every_socket_of_both_people_and_nobody_else() {
        let engine = LocalEngine::default();
        let other = RoomName::parse("other").unwrap();
        let (a, a2, b, b2, c) = (
            Outbox::new(16),
            Outbox::new(16),
            Outbox::new(16),
            Outbox::new(16),
            Outbox::new(16),
        );
        let ma = engine.join(RoomName::lobby(), user(1), a.clone());
        engine.join(other.clone(), user(1), a2.clone());
        engine.join(RoomName::lobby(), user(2), b.clone());
        engine.join(other.clone(), user(2), b2.clone());
        engine.join(RoomName::lobby(), user(3), c.clone());
        for outbox in [&a, &a2, &b, &b2, &c] {
            drain(outbox).await;
        }
        let text = ChatText::parse("psst", 10).unwrap();
        assert_eq!(engine.private(&ma, 2, &text), Whisper::Delivered);
        let mut lobby_id = 0;
        for outbox in [&a, &a2, &b, &b2] {
            let events = drain(outbox).await;
            assert_eq!(events.len(), 1);
            assert_eq!(events[0]["type"], "private");
            assert_eq!(events[0]["user"]["id"], 1);
            assert_eq!(events[0]["to"]["id"], 2);
            assert_eq!(events[0]["data"], "psst");
            if std::ptr::eq(outbox, &b) {
                lobby_id = events[0]["id"].as_u64().unwrap();
            }
        }
        assert!(drain(&c).await.is_empty(), "a third person hears nothing");
        // The whisper took the lobby's next id, so the next lobby chat comes right after it.
        engine.chat(&ma, std::slice::from_ref(&text));
        assert_eq!(drain(&c).await[0]["id"].as_u64(), Some(lobby_id + 1));
    }

    #[tokio::test]
    async fn a_whisper_to_someone_offline_is_an_error_to_the_sender_only() {
        let engine = LocalEngine::default();
        let (a, a2) = (Outbox::new(16), Outbox::new(16));
        let ma = engine.join(RoomName::lobby(), user(1), a.clone());
        engine.join(RoomName::lobby(), user(1), a2.clone());
        drain(&a).await;
        drain(&a2).await;
        let text = ChatText::parse("psst", 10).unwrap();
        assert_eq!(engine.private(&ma, 9, &text), Whisper::RecipientOffline);
        let events = drain(&a).await;
        assert_eq!(events[0]["type"], "error");
        assert_eq!(events[0]["data"], "user 9 is not online");
        assert!(drain(&a2).await.is_empty());
    }

    #[tokio::test]
    async fn users_online_counts_a_user_in_two_rooms_once_and_broadcasts_are_counted() {
        let events = EventCounters::default();
        let engine = LocalEngine::counting(events.clone());
        let a = engine.join(RoomName::lobby(), user(1), Outbox::new(16));
        engine.join(RoomName::parse("other").unwrap(), user(1), Outbox::new(16));
        engine.join(RoomName::lobby(), user(2), Outbox::new(16));
        assert_eq!(engine.users_online(), 2);
        engine.chat(&a, &[ChatText::parse("hi", 10).unwrap()]);
        engine.leave(a);
        assert_eq!(
            engine.users_online(),
            2,
            "user 1 is still in the other room"
        );
        assert_eq!(
            (events.join.get(), events.chat.get(), events.left.get()),
            (3, 1, 1)
        );
    }
}
