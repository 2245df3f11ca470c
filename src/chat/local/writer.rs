//! The history writer: one thread that owns the store, commits in groups, then delivers.
//!
//! Sockets hand it items without waiting, in each room's id order (they send while holding
//! the rooms lock). It takes whatever has queued up, stores the batch's events in one
//! transaction (group commit: the events that arrived during the previous commit share the
//! next one), and only then delivers the batch in order. Every frame of an engine with history
//! passes through here, so a socket's frames always arrive in id order.

use std::{
    collections::HashMap,
    sync::{
        Arc,
        mpsc::{self, Receiver, RecvTimeoutError, Sender},
    },
    time::Duration,
};

use serde_json::value::RawValue;

use super::{Broadcast, Membership, Rooms, lock};
use crate::{
    auth::User,
    chat::{
        protocol::{EventData, EventKind, Frame, HistoryEvent, ServerEvent, now_ms},
        recovery::{self, HistoryPolicy},
        room::RoomName,
    },
    store::{HistoryStore, history::NewEvent},
};

/// Ids are reserved on disk this many at a time, so handing out an id that is never stored
/// (`list`, `error`, `history`) rarely costs a write, and ids never go back after a restart.
const ID_BLOCK: u64 = 1024;

/// The most items one transaction takes; the rest wait for the next.
const MAX_BATCH: usize = 4096;

/// How often old events are pruned by age.
const AGE_PRUNE_EVERY: Duration = Duration::from_secs(600);

#[derive(Debug)]
pub enum Item {
    /// A room event: stored, then fanned out.
    Event {
        room: RoomName,
        event: Broadcast,
        user: Arc<User>,
        /// The socket that sent it, told if it cannot be stored.
        sender: Option<u64>,
    },
    /// A frame for one socket that is not kept (`list`, `error`).
    Direct {
        room: RoomName,
        socket: u64,
        id: u64,
        frame: Frame,
    },
    /// A new socket's `history`: stored events up to `through`, read once all are committed.
    Catchup {
        room: RoomName,
        socket: u64,
        user: Arc<User>,
        id: u64,
        since: Option<u64>,
        through: u64,
    },
    /// Answered once everything before it is stored and delivered.
    Flush(tokio::sync::oneshot::Sender<()>),
}

impl Item {
    pub fn event(member: &Membership, event: Broadcast, sender: Option<u64>) -> Item {
        Item::Event {
            room: member.room.clone(),
            event,
            user: member.user.clone(),
            sender,
        }
    }

    pub fn direct(member: &Membership, id: u64, frame: Frame) -> Item {
        Item::Direct {
            room: member.room.clone(),
            socket: member.socket,
            id,
            frame,
        }
    }

    /// The room and the id this item uses, if it uses one.
    fn id(&self) -> Option<(&RoomName, u64)> {
        match self {
            Item::Event { room, event, .. } => Some((room, event.id)),
            Item::Direct { room, id, .. } | Item::Catchup { room, id, .. } => Some((room, *id)),
            Item::Flush(_) => None,
        }
    }
}

pub fn spawn(
    store: HistoryStore,
    rooms: Arc<Rooms>,
    policy: HistoryPolicy,
) -> anyhow::Result<Sender<Item>> {
    let reserved: HashMap<String, u64> = store.rooms()?.into_iter().collect();
    let (tx, rx) = mpsc::channel();
    let mut writer = Writer {
        store,
        rooms,
        policy,
        reserved,
        unpruned: HashMap::new(),
    };
    std::thread::Builder::new()
        .name("history-writer".into())
        .spawn(move || writer.run(&rx))?;
    Ok(tx)
}

struct Writer {
    store: HistoryStore,
    rooms: Arc<Rooms>,
    policy: HistoryPolicy,
    /// Each room's id reservation on disk.
    reserved: HashMap<String, u64>,
    /// Events stored per room since it was last pruned.
    unpruned: HashMap<RoomName, u64>,
}

impl Writer {
    /// Runs until every sender is gone, having stored and delivered everything sent.
    fn run(&mut self, rx: &Receiver<Item>) {
        self.prune_by_age();
        let mut batch = Vec::new();
        loop {
            match rx.recv_timeout(AGE_PRUNE_EVERY) {
                Ok(item) => batch.push(item),
                Err(RecvTimeoutError::Timeout) => {
                    self.prune_by_age();
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => return,
            }
            batch.extend(rx.try_iter().take(MAX_BATCH - 1));
            let stored = self.commit(&batch);
            self.deliver(&mut batch, stored);
            self.prune_full_rooms();
        }
    }

    /// Stores the batch's events and raises the id reservations it needs, in one transaction.
    fn commit(&mut self, batch: &[Item]) -> bool {
        let mut events = Vec::new();
        let mut highest: HashMap<&str, u64> = HashMap::new();
        for item in batch {
            if let Some((room, id)) = item.id() {
                let high = highest.entry(room.as_str()).or_default();
                *high = (*high).max(id);
            }
            if let Item::Event { room, event, .. } = item {
                events.push(NewEvent {
                    room: room.as_str(),
                    id: event.id,
                    time: event.time,
                    visible: event.visible,
                    body: std::str::from_utf8(crate::ws::frame::payload(&event.frame))
                        .expect("events are JSON text"),
                });
            }
        }
        let reservations: Vec<(&str, u64)> = highest
            .into_iter()
            .filter(|(room, id)| self.reserved.get(*room).is_none_or(|r| id > r))
            .map(|(room, id)| (room, id + ID_BLOCK))
            .collect();
        if events.is_empty() && reservations.is_empty() {
            return true;
        }
        match self.store.append(&events, &reservations) {
            Ok(()) => {
                for (room, until) in reservations {
                    self.reserved.insert(room.to_owned(), until);
                }
                true
            }
            Err(e) => {
                tracing::error!(error = %e, events = events.len(), "storing history failed");
                false
            }
        }
    }

    /// Delivers the batch in order. Chat that could not be stored is not broadcast: its
    /// sender gets an `error` instead. Presence goes out regardless, since the online lists
    /// must stay true; the failure is logged.
    fn deliver(&mut self, batch: &mut Vec<Item>, stored: bool) {
        // Consecutive events of one room go out together, one chunk per socket.
        let mut run: Vec<Broadcast> = Vec::new();
        let mut run_room: Option<RoomName> = None;
        for item in batch.drain(..) {
            match item {
                Item::Event { room, event, .. }
                    if stored || matches!(event.kind, EventKind::Join | EventKind::Left) =>
                {
                    if run_room.as_ref() != Some(&room) {
                        self.fan_out(run_room.take(), &mut run);
                    }
                    if stored {
                        *self.unpruned.entry(room.clone()).or_default() += 1;
                    }
                    run_room = Some(room);
                    run.push(event);
                    continue;
                }
                _ => self.fan_out(run_room.take(), &mut run),
            }
            match item {
                Item::Event {
                    room,
                    event,
                    user,
                    sender,
                } => {
                    let rooms = lock(&self.rooms);
                    let Some(members) = rooms.get(&room) else {
                        continue;
                    };
                    if let Some(socket) = sender {
                        // The message's id was never delivered, so the error may take it.
                        let frame = ServerEvent {
                            id: event.id,
                            kind: EventKind::Error,
                            user: &user,
                            data: EventData::Text("not sent: the server could not store it"),
                            time: now_ms(),
                            count: None,
                        }
                        .to_frame();
                        members.push_to(socket, frame);
                    }
                }
                Item::Direct {
                    room,
                    socket,
                    frame,
                    ..
                } => {
                    if let Some(members) = lock(&self.rooms).get(&room) {
                        members.push_to(socket, frame);
                    }
                }
                Item::Catchup {
                    room,
                    socket,
                    user,
                    id,
                    since,
                    through,
                } => {
                    // Read without the rooms lock: sockets keep chatting meanwhile, and their
                    // frames queue behind this one in the channel.
                    let frame = self.history(&room, &user, id, since, through);
                    if let Some(members) = lock(&self.rooms).get(&room) {
                        members.push_to(socket, frame);
                    }
                }
                Item::Flush(done) => {
                    let _ = done.send(());
                }
            }
        }
        self.fan_out(run_room, &mut run);
    }

    fn fan_out(&self, room: Option<RoomName>, run: &mut Vec<Broadcast>) {
        if let Some(room) = room
            && let Some(members) = lock(&self.rooms).get(&room)
        {
            members.fan_out_all(run);
        }
        run.clear();
    }

    /// The `history` event for a socket that joined when the room's last id was `through`.
    fn history(
        &self,
        room: &RoomName,
        user: &User,
        id: u64,
        since: Option<u64>,
        through: u64,
    ) -> Frame {
        let read = self.store.pruned_through(room.as_str()).and_then(|pruned| {
            let catchup = recovery::plan(since, through, pruned, self.policy);
            let bodies = self.store.read(
                room.as_str(),
                catchup.after,
                through,
                user.id,
                catchup.limit,
            )?;
            Ok((bodies, catchup.truncated))
        });
        let (bodies, truncated) = read.unwrap_or_else(|e| {
            tracing::error!(error = %e, room = %room, user = user.id, "reading history failed");
            (Vec::new(), true)
        });
        let raw: Vec<Box<RawValue>> = bodies
            .into_iter()
            .filter_map(|body| RawValue::from_string(body).ok())
            .collect();
        let data: Vec<&RawValue> = raw.iter().map(AsRef::as_ref).collect();
        HistoryEvent {
            id,
            kind: EventKind::History,
            user,
            data: &data,
            time: now_ms(),
            truncated,
        }
        .to_frame()
    }

    /// Prunes a room once it has stored an eighth of its limit since the last time: a range
    /// delete now and then instead of one per event.
    fn prune_full_rooms(&mut self) {
        let every = (self.store.retention().max_events / 8).max(1);
        let due: Vec<RoomName> = self
            .unpruned
            .iter()
            .filter(|(_, n)| **n >= every)
            .map(|(room, _)| room.clone())
            .collect();
        for room in due {
            self.unpruned.remove(&room);
            if let Err(e) = self.store.prune_room(room.as_str()) {
                tracing::error!(error = %e, room = %room, "pruning history failed");
            }
        }
    }

    fn prune_by_age(&mut self) {
        match self.store.prune_by_age(now_ms()) {
            Ok(0) => {}
            Ok(n) => tracing::info!(events = n, "pruned old history"),
            Err(e) => tracing::error!(error = %e, "pruning old history failed"),
        }
    }
}

/// The writer's channel is unbounded: sockets never wait on it. What bounds it is the rate
/// limit per user and the commit time; a batch takes everything that queued meanwhile.
#[cfg(test)]
mod tests {
    use std::{
        collections::VecDeque,
        task::{Context, Waker},
    };

    use super::*;
    use crate::{
        auth::UserName,
        chat::{local::LocalEngine, outbox::Outbox, text::ChatText},
        metrics::EventCounters,
        store::history::Retention,
        ws::frame,
    };

    fn user(id: u64) -> Arc<User> {
        Arc::new(User::guest(id, UserName::parse(&format!("u{id}")).unwrap()))
    }

    fn engine(dir: &std::path::Path) -> LocalEngine {
        let store = HistoryStore::open(
            dir,
            Retention {
                max_events: 100,
                max_age: None,
            },
        )
        .unwrap();
        LocalEngine::with_history(
            EventCounters::default(),
            store,
            HistoryPolicy {
                on_join: 50,
                max: 100,
            },
        )
        .unwrap()
    }

    fn events(outbox: &Outbox) -> Vec<serde_json::Value> {
        let mut batch = VecDeque::new();
        outbox.poll_news(&Context::from_waker(Waker::noop()), &mut batch, true);
        batch
            .iter()
            .flat_map(|c| c.iter())
            .map(|f| serde_json::from_slice(frame::payload(f)).unwrap())
            .collect()
    }

    #[tokio::test]
    async fn nothing_reaches_a_socket_before_the_writer_stored_it() {
        let dir = tempfile::tempdir().unwrap();
        let engine = engine(dir.path());
        let a = Outbox::new(16);
        let member = engine
            .join(RoomName::lobby(), user(1), a.clone(), None)
            .unwrap();
        engine.flush().await;
        let kinds: Vec<_> = events(&a).iter().map(|e| e["type"].clone()).collect();
        assert_eq!(kinds, ["join", "list", "history"]);
        engine
            .chat(&member, &[ChatText::parse("hi", 10).unwrap()])
            .unwrap();
        engine.flush().await;
        let chat = &events(&a)[0];
        let store = HistoryStore::open(
            dir.path(),
            Retention {
                max_events: 100,
                max_age: None,
            },
        )
        .unwrap();
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
        let engine = engine(dir.path());
        let (a, b) = (Outbox::new(16), Outbox::new(16));
        let sender = engine
            .join(RoomName::lobby(), user(1), a.clone(), None)
            .unwrap();
        engine
            .join(RoomName::lobby(), user(2), b.clone(), None)
            .unwrap();
        engine.flush().await;
        events(&a);
        events(&b);
        // Break the store from outside, as a damaged file would.
        let other =
            rusqlite::Connection::open(dir.path().join(crate::store::history::FILE_NAME)).unwrap();
        other.execute_batch("DROP TABLE events").unwrap();
        drop(other);
        let id = engine
            .chat(&sender, &[ChatText::parse("lost?", 10).unwrap()])
            .unwrap();
        engine.flush().await;
        let told = events(&a);
        assert_eq!(told.len(), 1);
        assert_eq!(told[0]["type"], "error");
        assert_eq!(told[0]["id"], id);
        assert!(events(&b).is_empty(), "nobody saw what was not stored");
    }
}
