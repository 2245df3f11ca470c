//! The history writer: one thread that owns the store, commits in groups, then delivers.
//!
//! It takes whatever has queued up, stores the batch's events in one transaction (group
//! commit: the events that arrived during the previous commit share the next one), and only
//! then delivers the batch in order through the hub. A supervisor around its loop starts it
//! again after a panic, failing the batch it held (see the module above for the rules).

mod delete;
mod prune;

use std::{
    collections::{HashMap, VecDeque},
    panic::{self, AssertUnwindSafe},
    sync::Arc,
    time::{Duration, Instant},
};

use super::{
    Item,
    queue::{Health, Queue, Taken},
    reader::{Catchup, Reader, catchup_frame},
};
use crate::{
    chat::{
        EngineError, Membership,
        hub::Hub,
        log::{Event, local::Kept},
        protocol::{EventKind, Reply, code},
        recovery::HistoryPolicy,
        room::RoomName,
    },
    store::{HistoryStore, history::NewEvent},
};
use prune::{AGE_PRUNE_AT_MOST_EVERY, AGE_PRUNE_EVERY};

/// Ids are reserved on disk this many at a time, so handing out an id that is never stored
/// (`list`, `history`) rarely costs a write, and ids never go back after a restart.
const ID_BLOCK: u64 = 1024;

/// The most items one transaction takes; the rest wait for the next.
const MAX_BATCH: usize = 4096;

/// What a sender is told when its batch was not stored.
const NOT_STORED: &str = "not sent: the server could not store it";

/// A test build panics on a batch holding an event of this room, to check the supervisor.
#[cfg(test)]
pub(in crate::chat::log::local) const PANIC_ROOM: &str = "writer-panic";

pub(super) fn spawn(
    hub: Arc<Hub>,
    store: HistoryStore,
    policy: HistoryPolicy,
    queue: Arc<Queue>,
    health: Arc<Health>,
    reader: Reader,
) -> anyhow::Result<()> {
    let prune_every = store.retention().max_age.map_or(AGE_PRUNE_EVERY, |age| {
        (age / 8).clamp(AGE_PRUNE_AT_MOST_EVERY, AGE_PRUNE_EVERY)
    });
    let mut writer = Writer {
        store,
        reader,
        hub,
        policy,
        health,
        // Learned as rooms are written: a room's first commit here raises its row, which
        // keeps the higher of the two, so no room needs loading at start.
        reserved: HashMap::new(),
        unpruned: HashMap::new(),
        batch: VecDeque::new(),
        prune_every,
        next_age_prune: Instant::now(),
    };
    std::thread::Builder::new()
        .name("history-writer".into())
        .spawn(move || writer.supervise(&queue))?;
    Ok(())
}

struct Writer {
    store: HistoryStore,
    /// Where joiners' histories are read once committed.
    reader: Reader,
    hub: Arc<Hub>,
    policy: HistoryPolicy,
    health: Arc<Health>,
    /// Each room's id reservation on disk.
    reserved: HashMap<String, u64>,
    /// Events stored per room since it was last pruned.
    unpruned: HashMap<RoomName, u64>,
    /// The batch in hand; what a panic leaves in it is failed, not lost.
    batch: VecDeque<Item>,
    prune_every: Duration,
    next_age_prune: Instant,
}

impl Item {
    /// The room and the highest id this item uses, if it uses one.
    fn id(&self) -> Option<(&RoomName, u64)> {
        match self {
            Item::Events { room, events, .. } => Some((room, events.last()?.event.id)),
            Item::Catchup { room, recall, .. } => Some((room, recall.id)),
            Item::Delete { room, id, .. } => Some((room, *id)),
            Item::Reply { .. } | Item::Flush(_) => None,
        }
    }

    /// The events this item stores.
    fn kept(&self) -> &[Kept] {
        match self {
            Item::Events { events, .. } => events,
            Item::Catchup { join, .. } => join.as_slice(),
            Item::Reply { .. } | Item::Delete { .. } | Item::Flush(_) => &[],
        }
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("unknown")
}

impl Writer {
    /// Runs the loop until the log is gone. After a panic the batch in hand is failed, the
    /// store marked unhealthy until a commit succeeds, and the loop starts again: the
    /// connection is still good (SQLite rolled back the transaction the panic left open).
    fn supervise(&mut self, queue: &Queue) {
        loop {
            match panic::catch_unwind(AssertUnwindSafe(|| self.run(queue))) {
                Ok(()) => break,
                Err(panic) => {
                    let what = panic_message(&*panic);
                    tracing::error!(panic = what, "the history writer panicked; restarting it");
                    self.health.fail(format!(
                        "the history writer panicked ({what}) and restarted"
                    ));
                    let failed = panic::catch_unwind(AssertUnwindSafe(|| {
                        while let Some(item) = self.batch.pop_front() {
                            self.refuse(item);
                        }
                    }));
                    if failed.is_err() {
                        self.batch.clear();
                    }
                }
            }
        }
        // Nothing more will be taken; a push from now on fails at once.
        for item in queue.stop() {
            self.refuse(item);
        }
    }

    /// Takes, stores and delivers batches until the log is gone, pruning by age when due.
    fn run(&mut self, queue: &Queue) {
        loop {
            if Instant::now() >= self.next_age_prune {
                self.prune_by_age();
                self.next_age_prune = Instant::now() + self.prune_every;
            }
            match queue.take(MAX_BATCH, self.next_age_prune) {
                Taken::Items(batch) => {
                    self.batch = batch;
                    let stored = self.commit();
                    self.deliver(stored);
                    self.prune_full_rooms();
                }
                Taken::Idle => {}
                Taken::Closed => return,
            }
        }
    }

    /// Stores the batch's events and raises the id reservations it needs, in one transaction.
    fn commit(&mut self) -> bool {
        let mut events = Vec::new();
        let mut highest: HashMap<&str, u64> = HashMap::new();
        for item in &self.batch {
            if let Some((room, id)) = item.id() {
                let high = highest.entry(room.as_str()).or_default();
                *high = (*high).max(id);
                #[cfg(test)]
                if room.as_str() == PANIC_ROOM {
                    panic!("a test asked the writer to panic");
                }
            }
            let room = match item {
                Item::Events { room, .. } | Item::Catchup { room, .. } => room.as_str(),
                Item::Reply { .. } | Item::Delete { .. } | Item::Flush(_) => continue,
            };
            events.extend(item.kept().iter().map(|k| {
                NewEvent {
                    room,
                    id: k.event.id,
                    time: k.time,
                    visible: k.event.visible,
                    body: std::str::from_utf8(crate::ws::frame::payload(&k.event.frame))
                        .expect("events are JSON text"),
                    presence: matches!(k.kind, EventKind::Join | EventKind::Left),
                }
            }));
        }
        // Saturating: an id near the top of the range reserves what is left; the store
        // refuses ids it cannot hold, so nothing wraps.
        let reservations: Vec<(&str, u64)> = highest
            .into_iter()
            .filter(|(room, id)| self.reserved.get(*room).is_none_or(|r| id > r))
            .map(|(room, id)| (room, id.saturating_add(ID_BLOCK)))
            .collect();
        if events.is_empty() && reservations.is_empty() {
            return true;
        }
        match self.store.append(&events, &reservations) {
            Ok(()) => {
                for (room, until) in reservations {
                    self.reserved.insert(room.to_owned(), until);
                }
                self.health.ok();
                true
            }
            Err(e) => {
                tracing::error!(error = %e, events = events.len(), "storing history failed");
                self.health
                    .fail(format!("the history store cannot write: {e}"));
                false
            }
        }
    }

    /// Delivers the batch in order; if it was not stored, nothing of it goes out (see
    /// `refuse`), presence included.
    fn deliver(&mut self, stored: bool) {
        // Consecutive events of one room go out together, one chunk per socket.
        let mut run: Vec<Event> = Vec::new();
        let mut run_room: Option<RoomName> = None;
        // Acks go out once the events they name were delivered.
        let mut acks: Vec<(Membership, Reply)> = Vec::new();
        while let Some(item) = self.batch.pop_front() {
            match item {
                Item::Events {
                    room,
                    events,
                    sender,
                } if stored => {
                    if run_room.as_ref() != Some(&room) {
                        self.flush_run(run_room.take(), &mut run);
                    }
                    *self.unpruned.entry(room.clone()).or_default() += events.len() as u64;
                    run_room = Some(room);
                    run.extend(events.into_iter().map(|k: Kept| {
                        if let (Some(cid), Some(sender)) = (k.cid, &sender) {
                            let id = k.event.id;
                            acks.push((sender.clone(), Reply::Ack { cid, id }));
                        }
                        k.event
                    }));
                }
                Item::Catchup {
                    room,
                    user,
                    recall,
                    join,
                    done,
                } if stored => {
                    self.flush_run(run_room.take(), &mut run);
                    if let Some(join) = join {
                        *self.unpruned.entry(room.clone()).or_default() += 1;
                        self.hub.deliver(&room, &[join.event]);
                    }
                    // Read beside the writer, after the commit that covers it; if the reader
                    // cannot take it now, here.
                    let catchup = Catchup {
                        room,
                        user,
                        recall,
                        done,
                    };
                    if let Err(catchup) = self.reader.catchup(catchup) {
                        let frame = catchup_frame(&self.store, self.policy, &catchup);
                        let _ = catchup.done.send(Ok(frame));
                    }
                }
                Item::Delete {
                    room,
                    id,
                    doomed,
                    done,
                } if stored => {
                    // After the commit of everything queued before it: a message sent just
                    // before its deletion is on disk to delete.
                    self.flush_run(run_room.take(), &mut run);
                    let _ = done.send(self.delete(&room, id, doomed));
                }
                item => {
                    self.flush_run(run_room.take(), &mut run);
                    self.send_acks(&mut acks);
                    self.refuse(item);
                }
            }
        }
        self.flush_run(run_room, &mut run);
        self.send_acks(&mut acks);
    }

    fn send_acks(&self, acks: &mut Vec<(Membership, Reply)>) {
        for (sender, ack) in acks.drain(..) {
            self.hub.reply(&sender, &ack);
        }
    }

    /// Answers an item that will not be stored: its sender gets an `error`, a joiner fails
    /// (closed with 1013). A `left` has nobody to tell: it is logged, and `/healthz` already
    /// says why. Replies and flushes need no storage and go on as usual.
    fn refuse(&self, item: Item) {
        match item {
            Item::Events {
                room,
                events,
                sender,
            } => match sender {
                // One `error` per message that had a `cid`, so its client knows which.
                Some(sender) => {
                    let mut cids: Vec<_> = events.iter().filter_map(|k| k.cid.as_ref()).collect();
                    if cids.is_empty() {
                        self.hub
                            .reply(&sender, &Reply::coded(code::NOT_SENT, NOT_STORED, None));
                    }
                    for cid in cids.drain(..) {
                        let refused = Reply::coded(code::NOT_SENT, NOT_STORED, Some(cid));
                        self.hub.reply(&sender, &refused);
                    }
                }
                None => {
                    tracing::error!(room = %room, events = events.len(), "presence not stored, not sent")
                }
            },
            Item::Catchup { done, .. } => {
                let _ = done.send(Err(EngineError::NotStored));
            }
            Item::Delete { done, .. } => {
                let _ = done.send(Err(EngineError::NotStored.into()));
            }
            Item::Reply { member, reply } => self.hub.reply(&member, &reply),
            Item::Flush(done) => {
                let _ = done.send(());
            }
        }
    }

    fn flush_run(&self, room: Option<RoomName>, run: &mut Vec<Event>) {
        if let Some(room) = room {
            self.hub.deliver(&room, run);
        }
        run.clear();
    }
}
