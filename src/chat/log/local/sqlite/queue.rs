//! The writer's queue, bounded in events, and the writer's health: what the log's side and
//! the writer's side share.
//!
//! The log pushes while holding its lock, so a push never waits: it is a short critical
//! section that either takes the item or refuses it at once (`EngineError::Busy`).

use std::{
    collections::VecDeque,
    sync::{Condvar, Mutex, MutexGuard},
    time::Instant,
};

use super::Item;
use crate::chat::EngineError;

/// Whether an item may be refused when the queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Admit {
    /// Refused past the bound: the sender or joiner is told and may retry.
    Bounded,
    /// Taken past the bound. Only for what nobody could be told about (a `left`, whose
    /// socket is gone) or what is bounded elsewhere (a flush at shutdown): each member
    /// leaves once, and members only got in while there was room.
    Always,
}

/// What the writer finds when it comes for work.
#[derive(Debug)]
pub(super) enum Taken {
    Items(VecDeque<Item>),
    /// Nothing came before the deadline.
    Idle,
    /// The log is gone and everything it queued was taken.
    Closed,
}

#[derive(Debug)]
pub(super) struct Queue {
    state: Mutex<State>,
    ready: Condvar,
    /// Events (not items: one item may carry a burst) the queue holds at most.
    capacity: usize,
}

#[derive(Debug, Default)]
struct State {
    items: VecDeque<Item>,
    events: usize,
    /// The log is gone: the writer finishes what is queued and stops.
    closed: bool,
    /// The writer is gone: nothing more will be taken.
    stopped: bool,
}

impl Queue {
    pub fn new(capacity: usize) -> Self {
        Queue {
            state: Mutex::default(),
            ready: Condvar::new(),
            capacity: capacity.max(1),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues `item`, or refuses it without waiting.
    pub fn push(&self, item: Item, admit: Admit) -> Result<(), EngineError> {
        self.offer(item, admit).map_err(|refused| refused.0)
    }

    /// `push`, handing a refused item back.
    pub fn offer(&self, item: Item, admit: Admit) -> Result<(), Box<(EngineError, Item)>> {
        let mut state = self.lock();
        if state.stopped {
            return Err(Box::new((EngineError::WriterGone, item)));
        }
        let weight = item.weight();
        // An empty queue takes any one item, so a burst larger than the bound is not
        // refused for ever.
        if admit == Admit::Bounded
            && state.events > 0
            && state.events.saturating_add(weight) > self.capacity
        {
            return Err(Box::new((EngineError::Busy, item)));
        }
        state.events = state.events.saturating_add(weight);
        state.items.push_back(item);
        drop(state);
        self.ready.notify_one();
        Ok(())
    }

    /// Up to `max` items, waiting until `deadline` for the first.
    pub fn take(&self, max: usize, deadline: Instant) -> Taken {
        let mut state = self.lock();
        while state.items.is_empty() {
            if state.closed {
                return Taken::Closed;
            }
            let Some(wait) = deadline.checked_duration_since(Instant::now()) else {
                return Taken::Idle;
            };
            state = self
                .ready
                .wait_timeout(state, wait)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        let n = state.items.len().min(max);
        let batch: VecDeque<Item> = state.items.drain(..n).collect();
        let weight: usize = batch.iter().map(Item::weight).sum();
        state.events = state.events.saturating_sub(weight);
        Taken::Items(batch)
    }

    /// The log is gone: the writer stops once the queue is empty.
    pub fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_all();
    }

    pub fn stopped(&self) -> bool {
        self.lock().stopped
    }

    /// The writer is gone: pushes fail from now on; what is queued is handed back.
    pub fn stop(&self) -> VecDeque<Item> {
        let mut state = self.lock();
        state.stopped = true;
        state.events = 0;
        std::mem::take(&mut state.items)
    }
}

/// Whether the store can write, as the writer last found out.
#[derive(Debug, Default)]
pub(super) struct Health(Mutex<Option<String>>);

impl Health {
    fn lock(&self) -> MutexGuard<'_, Option<String>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn get(&self) -> Result<(), String> {
        self.lock().clone().map_or(Ok(()), Err)
    }

    pub fn fail(&self, reason: String) {
        *self.lock() = Some(reason);
    }

    pub fn ok(&self) {
        *self.lock() = None;
    }
}
