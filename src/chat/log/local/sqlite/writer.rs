//! The history writer: one thread that owns the store, commits in groups, then delivers.
//!
//! It takes whatever has queued up, stores the batch's events in one transaction (group
//! commit: the events that arrived during the previous commit share the next one), and only
//! then delivers the batch in order through the hub.

use std::{
    collections::HashMap,
    sync::{
        Arc,
        mpsc::{self, Receiver, RecvTimeoutError, Sender},
    },
    time::Duration,
};

use serde_json::value::RawValue;

use super::Item;
use crate::{
    auth::User,
    chat::{
        hub::Hub,
        log::{
            Event,
            local::{Kept, Recall},
        },
        protocol::{EventKind, Frame, HistoryEvent, now_ms},
        recovery::{self, HistoryPolicy},
        room::RoomName,
    },
    store::{HistoryStore, history::NewEvent},
};

/// Ids are reserved on disk this many at a time, so handing out an id that is never stored
/// (`list`, `history`) rarely costs a write, and ids never go back after a restart.
const ID_BLOCK: u64 = 1024;

/// The most items one transaction takes; the rest wait for the next.
const MAX_BATCH: usize = 4096;

/// How often old events are pruned by age.
const AGE_PRUNE_EVERY: Duration = Duration::from_secs(600);

/// The channel is unbounded: sockets never wait on it. What bounds it is the rate limit per
/// user and the commit time; a batch takes everything that queued meanwhile.
pub(super) fn spawn(
    hub: Arc<Hub>,
    store: HistoryStore,
    policy: HistoryPolicy,
) -> anyhow::Result<Sender<Item>> {
    let reserved: HashMap<String, u64> = store.rooms()?.into_iter().collect();
    let (tx, rx) = mpsc::channel();
    let mut writer = Writer {
        store,
        hub,
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
    hub: Arc<Hub>,
    policy: HistoryPolicy,
    /// Each room's id reservation on disk.
    reserved: HashMap<String, u64>,
    /// Events stored per room since it was last pruned.
    unpruned: HashMap<RoomName, u64>,
}

impl Item {
    /// The room and the highest id this item uses, if it uses one.
    fn id(&self) -> Option<(&RoomName, u64)> {
        match self {
            Item::Events { room, events, .. } => Some((room, events.last()?.event.id)),
            Item::Catchup { room, recall, .. } => Some((room, recall.id)),
            Item::Reply { .. } | Item::Flush(_) => None,
        }
    }
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
            if let Item::Events {
                room, events: kept, ..
            } = item
            {
                events.extend(kept.iter().map(|k| {
                    NewEvent {
                        room: room.as_str(),
                        id: k.event.id,
                        time: k.time,
                        visible: k.event.visible,
                        body: std::str::from_utf8(crate::ws::frame::payload(&k.event.frame))
                            .expect("events are JSON text"),
                    }
                }));
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
        let mut run: Vec<Event> = Vec::new();
        let mut run_room: Option<RoomName> = None;
        for item in batch.drain(..) {
            match item {
                Item::Events {
                    room,
                    events,
                    sender,
                } => {
                    let presence = events
                        .iter()
                        .all(|k| matches!(k.kind, EventKind::Join | EventKind::Left));
                    if !(stored || presence) {
                        self.flush_run(run_room.take(), &mut run);
                        if let Some(sender) = sender {
                            self.hub
                                .reply_error(&sender, "not sent: the server could not store it");
                        }
                        continue;
                    }
                    if run_room.as_ref() != Some(&room) {
                        self.flush_run(run_room.take(), &mut run);
                    }
                    if stored {
                        *self.unpruned.entry(room.clone()).or_default() += events.len() as u64;
                    }
                    run_room = Some(room);
                    run.extend(events.into_iter().map(|k: Kept| k.event));
                }
                Item::Reply { member, message } => {
                    self.flush_run(run_room.take(), &mut run);
                    self.hub.reply_error(&member, &message);
                }
                Item::Catchup {
                    room,
                    user,
                    recall,
                    done,
                } => {
                    self.flush_run(run_room.take(), &mut run);
                    let _ = done.send(self.history(&room, &user, recall));
                }
                Item::Flush(done) => {
                    self.flush_run(run_room.take(), &mut run);
                    let _ = done.send(());
                }
            }
        }
        self.flush_run(run_room, &mut run);
    }

    fn flush_run(&self, room: Option<RoomName>, run: &mut Vec<Event>) {
        if let Some(room) = room {
            self.hub.deliver(&room, run);
        }
        run.clear();
    }

    /// The `history` event for a socket that joined when the room's last id was `through`.
    fn history(&self, room: &RoomName, user: &User, recall: Recall) -> Frame {
        let Recall { id, since, through } = recall;
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
