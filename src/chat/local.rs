//! The embedded engine: every room lives in this process's memory.
//!
//! One short critical section per event assigns the id and serializes the event once. With
//! history off, the same section pushes the shared bytes into each member's outbox. With
//! history on, it hands the event to the writer thread (`writer`), which stores a batch in
//! one transaction and only then fans it out, in id order: whatever a client saw is on disk.

mod writer;

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    sync::{
        Arc, Mutex, MutexGuard,
        atomic::{AtomicU64, Ordering},
        mpsc::Sender,
    },
};

use super::{
    EngineError, Membership, Whisper,
    outbox::Outbox,
    protocol::{
        Chunk, EventData, EventKind, Frame, HistoryEvent, PrivateEvent, ServerEvent, now_ms,
    },
    recovery::{self, HistoryPolicy},
    room::RoomName,
    text::ChatText,
};
use crate::{
    auth::User,
    metrics::EventCounters,
    store::{HistoryStore, history::Visibility},
    upload::UploadName,
};
use writer::Item;

type Rooms = Mutex<HashMap<RoomName, Room>>;

#[derive(Debug, Default)]
pub struct LocalEngine {
    rooms: Arc<Rooms>,
    next_socket: AtomicU64,
    events: EventCounters,
    /// History on: every frame goes through the writer, which stores events before fan-out.
    writer: Option<Sender<Item>>,
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
    /// The room's last id when this socket joined: older events reach it through `history`,
    /// never live, so the two never overlap.
    floor: u64,
}

#[derive(Debug)]
struct Presence {
    user: Arc<User>,
    sockets: u32,
    arrival: u64,
}

/// A room event on its way to its members.
#[derive(Debug)]
struct Broadcast {
    id: u64,
    time: u64,
    kind: EventKind,
    visible: Visibility,
    frame: Frame,
}

impl LocalEngine {
    pub fn counting(events: EventCounters) -> Self {
        LocalEngine {
            events,
            ..LocalEngine::default()
        }
    }

    /// History on: rooms continue their ids from `store`, whose writer thread starts here.
    pub fn with_history(
        events: EventCounters,
        store: HistoryStore,
        policy: HistoryPolicy,
    ) -> anyhow::Result<Self> {
        let mut rooms = HashMap::new();
        for (name, last_id) in store.rooms()? {
            match RoomName::parse(&name) {
                Ok(room) => {
                    rooms.insert(
                        room,
                        Room {
                            last_id,
                            ..Room::default()
                        },
                    );
                }
                Err(e) => tracing::warn!(room = name, error = %e, "skipping a stored room"),
            }
        }
        let rooms = Arc::new(Mutex::new(rooms));
        let writer = writer::spawn(store, rooms.clone(), policy)?;
        Ok(LocalEngine {
            rooms,
            next_socket: AtomicU64::new(0),
            events,
            writer: Some(writer),
        })
    }

    pub fn join(
        &self,
        room_name: RoomName,
        user: Arc<User>,
        outbox: Outbox,
        since: Option<u64>,
    ) -> Result<Membership, EngineError> {
        let socket = self.next_socket.fetch_add(1, Ordering::Relaxed);
        let mut rooms = self.lock();
        let room = rooms.entry(room_name.clone()).or_default();
        let floor = room.last_id;
        room.sockets.insert(
            socket,
            Socket {
                user_id: user.id,
                outbox: outbox.clone(),
                floor,
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
        let membership = Membership {
            room: room_name,
            user,
            socket,
        };
        let joined = first.then(|| {
            let text = format!("{} joined.", membership.user.name);
            self.events.join.inc();
            room.event(
                EventKind::Join,
                &membership.user,
                EventData::Text(&text),
                true,
            )
        });
        let list = {
            let id = room.next_id();
            let users: Vec<&User> = room
                .arrival
                .values()
                .map(|id| &*room.online[id].user)
                .collect();
            let frame = ServerEvent {
                id,
                kind: EventKind::List,
                user: &membership.user,
                data: EventData::Users(&users),
                time: now_ms(),
                count: Some(users.len()),
            }
            .to_frame();
            (id, frame)
        };
        let history_id = room.next_id();
        let sent = match &self.writer {
            None => {
                if let Some(join) = joined {
                    room.fan_out(&join);
                }
                let _ = outbox.push(list.1);
                // Nothing is kept: the history is empty, and truncated if the client missed
                // anything.
                let catchup = recovery::plan(since, floor, floor, HistoryPolicy::default());
                let _ = outbox.push(
                    HistoryEvent {
                        id: history_id,
                        kind: EventKind::History,
                        user: &membership.user,
                        data: &[],
                        time: now_ms(),
                        truncated: catchup.truncated,
                    }
                    .to_frame(),
                );
                Ok(())
            }
            Some(writer) => {
                let send = |item| writer.send(item).map_err(|_| ());
                joined
                    .map_or(Ok(()), |join| send(Item::event(&membership, join, None)))
                    .and_then(|()| send(Item::direct(&membership, list.0, list.1)))
                    .and_then(|()| {
                        send(Item::Catchup {
                            room: membership.room.clone(),
                            socket,
                            user: membership.user.clone(),
                            id: history_id,
                            since,
                            through: floor,
                        })
                    })
            }
        };
        drop(rooms);
        match sent {
            Ok(()) => Ok(membership),
            Err(()) => {
                // The writer is gone: take the socket back out rather than leave it waiting.
                self.remove(&membership);
                Err(writer_gone())
            }
        }
    }

    /// Broadcasts messages from one sender, in order. A burst is framed once, and each socket
    /// takes all of it in one push: fan-out touches every socket once per burst.
    /// Returns the last message's id.
    pub fn chat(&self, member: &Membership, texts: &[ChatText]) -> Result<u64, EngineError> {
        let mut rooms = self.lock();
        let room = rooms
            .get_mut(&member.room)
            .expect("a member's room exists until it leaves");
        let events: Vec<Broadcast> = texts
            .iter()
            .map(|text| {
                room.event(
                    EventKind::Chat,
                    &member.user,
                    EventData::Text(text.as_str()),
                    false,
                )
            })
            .collect();
        let last_id = room.last_id;
        match &self.writer {
            None => room.fan_out_all(&events),
            Some(writer) => {
                for event in events {
                    writer
                        .send(Item::event(member, event, Some(member.socket)))
                        .map_err(|_| writer_gone())?;
                }
            }
        }
        self.events.chat.inc_by(texts.len() as u64);
        Ok(last_id)
    }

    /// Broadcasts an uploaded image to the room.
    pub fn image(&self, member: &Membership, image: &UploadName) -> Result<u64, EngineError> {
        let mut rooms = self.lock();
        let room = rooms
            .get_mut(&member.room)
            .expect("a member's room exists until it leaves");
        let url = image.url();
        let event = room.event(EventKind::Image, &member.user, EventData::Text(&url), false);
        let id = event.id;
        match &self.writer {
            None => room.fan_out(&event),
            Some(writer) => writer
                .send(Item::event(member, event, Some(member.socket)))
                .map_err(|_| writer_gone())?,
        }
        self.events.image.inc();
        Ok(id)
    }

    /// Delivers a whisper to every socket of the sender and of the recipient, in whichever
    /// rooms they are. Each room it reaches gives it that room's next id, so ids still
    /// increase on every socket; it is kept in each such room's history, visible to the two.
    pub fn private(
        &self,
        member: &Membership,
        to: u64,
        text: &ChatText,
    ) -> Result<Whisper, EngineError> {
        let mut rooms = self.lock();
        let recipient = rooms
            .values()
            .find_map(|room| room.online.get(&to))
            .map(|presence| presence.user.clone());
        let Some(recipient) = recipient else {
            drop(rooms);
            self.reply_error(member, &format!("user {to} is not online"));
            return Ok(Whisper::RecipientOffline);
        };
        let from = member.user.id;
        let time = now_ms();
        for (name, room) in rooms.iter_mut() {
            if !(room.online.contains_key(&to) || room.online.contains_key(&from)) {
                continue;
            }
            let id = room.next_id();
            let frame = PrivateEvent {
                id,
                kind: EventKind::Private,
                user: &member.user,
                to: &recipient,
                data: text.as_str(),
                time,
            }
            .to_frame();
            let event = Broadcast {
                id,
                time,
                kind: EventKind::Private,
                visible: Visibility::Pair(from, to),
                frame,
            };
            match &self.writer {
                None => room.fan_out(&event),
                Some(writer) => {
                    let sender = (*name == member.room).then_some(member.socket);
                    writer
                        .send(Item::Event {
                            room: name.clone(),
                            event,
                            user: member.user.clone(),
                            sender,
                        })
                        .map_err(|_| writer_gone())?;
                }
            }
        }
        self.events.private.inc();
        Ok(Whisper::Delivered)
    }

    pub fn reply_error(&self, member: &Membership, message: &str) {
        let mut rooms = self.lock();
        let Some(room) = rooms.get_mut(&member.room) else {
            return;
        };
        let id = room.next_id();
        let frame = ServerEvent {
            id,
            kind: EventKind::Error,
            user: &member.user,
            data: EventData::Text(message),
            time: now_ms(),
            count: None,
        }
        .to_frame();
        match &self.writer {
            // Through the writer, so it cannot overtake an event with a smaller id.
            Some(writer) => {
                if writer.send(Item::direct(member, id, frame)).is_err() {
                    tracing::error!(
                        user = member.user.id,
                        message,
                        "error reply lost: {}",
                        writer_gone()
                    );
                }
            }
            None => {
                if let Some(socket) = room.sockets.get(&member.socket) {
                    let _ = socket.outbox.push(frame);
                }
            }
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
            let event = room.event(EventKind::Left, &member.user, EventData::Text(&text), true);
            self.events.left.inc();
            match &self.writer {
                None => room.fan_out(&event),
                Some(writer) => {
                    if writer.send(Item::event(&member, event, None)).is_err() {
                        tracing::error!(user = member.user.id, "left not sent: {}", writer_gone());
                    }
                }
            }
        }
    }

    /// Resolves once everything handed to the writer so far is stored and delivered.
    pub async fn flush(&self) {
        if let Some(writer) = &self.writer {
            let (tx, rx) = tokio::sync::oneshot::channel();
            if writer.send(Item::Flush(tx)).is_ok() {
                let _ = rx.await;
            }
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

    /// Takes a socket out without a word: it never got its `list`.
    fn remove(&self, member: &Membership) {
        let mut rooms = self.lock();
        if let Some(room) = rooms.get_mut(&member.room)
            && room.sockets.remove(&member.socket).is_some()
            && let Some(presence) = room.online.get_mut(&member.user.id)
        {
            presence.sockets -= 1;
            if presence.sockets == 0 {
                let arrival = presence.arrival;
                room.online.remove(&member.user.id);
                room.arrival.remove(&arrival);
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<RoomName, Room>> {
        lock(&self.rooms)
    }
}

fn lock(rooms: &Rooms) -> MutexGuard<'_, HashMap<RoomName, Room>> {
    rooms.lock().unwrap_or_else(|p| p.into_inner())
}

fn writer_gone() -> EngineError {
    EngineError::Unavailable("the history writer stopped".into())
}

impl Room {
    fn next_id(&mut self) -> u64 {
        self.last_id += 1;
        self.last_id
    }

    /// Gives a room event the room's next id and serializes it, once for every recipient.
    fn event(
        &mut self,
        kind: EventKind,
        user: &User,
        data: EventData<'_>,
        count: bool,
    ) -> Broadcast {
        let id = self.next_id();
        let time = now_ms();
        let frame = ServerEvent {
            id,
            kind,
            user,
            data,
            time,
            count: count.then_some(self.online.len()),
        }
        .to_frame();
        Broadcast {
            id,
            time,
            kind,
            visible: Visibility::Room,
            frame,
        }
    }

    /// Queues the event for every socket in the room that may see it and has not had it in
    /// its history.
    fn fan_out(&self, event: &Broadcast) {
        self.fan_out_all(std::slice::from_ref(event));
    }

    /// Queues events, in order, for every socket that may see them. The frames are shared
    /// as one chunk by every socket that sees them all, which is nearly always every socket.
    fn fan_out_all(&self, events: &[Broadcast]) {
        let Some(last) = events.last() else {
            return;
        };
        let everyone = events.iter().all(|e| e.visible == Visibility::Room);
        let shared: Chunk = events.iter().map(|e| e.frame.clone()).collect();
        for socket in self.sockets.values() {
            // A full outbox marks its socket for closing; its task does the rest.
            if everyone && events[0].id > socket.floor {
                let _ = socket.outbox.push_chunk(&shared);
            } else if last.id > socket.floor {
                let own: Chunk = events
                    .iter()
                    .filter(|e| e.id > socket.floor && e.visible.allows(socket.user_id))
                    .map(|e| e.frame.clone())
                    .collect();
                if !own.is_empty() {
                    let _ = socket.outbox.push_chunk(&own);
                }
            }
        }
    }

    fn push_to(&self, socket: u64, frame: Frame) {
        if let Some(socket) = self.sockets.get(&socket) {
            let _ = socket.outbox.push(frame);
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
        engine
            .join(RoomName::lobby(), user(1), outbox.clone(), None)
            .unwrap();
        let events = drain(&outbox).await;
        let kinds: Vec<_> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
        assert_eq!(kinds, ["join", "list", "history"]);
        assert_eq!(events[0]["data"], "u1 joined.");
        assert_eq!(events[1]["data"][0]["id"], 1);
        assert!(events[0]["id"].as_u64() < events[1]["id"].as_u64());
    }

    #[tokio::test]
    async fn second_tab_of_a_user_neither_joins_nor_duplicates_them() {
        let engine = LocalEngine::default();
        let (a, b) = (Outbox::new(16), Outbox::new(16));
        let first = engine
            .join(RoomName::lobby(), user(1), a.clone(), None)
            .unwrap();
        drain(&a).await;
        let second = engine
            .join(RoomName::lobby(), user(1), b.clone(), None)
            .unwrap();
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
        let m = engine
            .join(RoomName::lobby(), user(1), a.clone(), None)
            .unwrap();
        let last = drain(&a).await.last().unwrap()["id"].as_u64().unwrap();
        engine.leave(m);
        let b = Outbox::new(16);
        engine
            .join(RoomName::lobby(), user(2), b.clone(), None)
            .unwrap();
        assert!(drain(&b).await[0]["id"].as_u64().unwrap() > last);
    }

    #[tokio::test]
    async fn a_broadcast_is_serialized_once_and_its_bytes_shared() {
        let engine = LocalEngine::default();
        let (a, b) = (Outbox::new(16), Outbox::new(16));
        let ma = engine
            .join(RoomName::lobby(), user(1), a.clone(), None)
            .unwrap();
        engine
            .join(RoomName::lobby(), user(2), b.clone(), None)
            .unwrap();
        frames(&a);
        frames(&b);
        engine
            .chat(&ma, &[ChatText::parse("hi", 10).unwrap()])
            .unwrap();
        let (got_a, got_b) = (frames(&a), frames(&b));
        assert_eq!(got_a.len(), 1);
        assert_eq!(got_a[0].as_ptr(), got_b[0].as_ptr());
    }

    #[tokio::test]
    async fn rooms_do_not_hear_each_other() {
        let engine = LocalEngine::default();
        let (a, b) = (Outbox::new(16), Outbox::new(16));
        let ma = engine
            .join(RoomName::lobby(), user(1), a.clone(), None)
            .unwrap();
        engine
            .join(RoomName::parse("other").unwrap(), user(2), b.clone(), None)
            .unwrap();
        drain(&a).await;
        drain(&b).await;
        engine
            .chat(&ma, &[ChatText::parse("hi", 10).unwrap()])
            .unwrap();
        assert_eq!(drain(&a).await.len(), 1);
        assert!(drain(&b).await.is_empty());
    }

    #[tokio::test]
    async fn users_online_counts_a_user_in_two_rooms_once_and_broadcasts_are_counted() {
        let events = EventCounters::default();
        let engine = LocalEngine::counting(events.clone());
        let a = engine
            .join(RoomName::lobby(), user(1), Outbox::new(16), None)
            .unwrap();
        engine
            .join(
                RoomName::parse("other").unwrap(),
                user(1),
                Outbox::new(16),
                None,
            )
            .unwrap();
        engine
            .join(RoomName::lobby(), user(2), Outbox::new(16), None)
            .unwrap();
        assert_eq!(engine.users_online(), 2);
        engine
            .chat(&a, &[ChatText::parse("hi", 10).unwrap()])
            .unwrap();
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
