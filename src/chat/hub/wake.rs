//! `Wakers`: the tasks a delivery woke, woken once the hub has let go of its lock.
//!
//! Waking a task schedules it, and may wake a worker thread; done under the hub's lock, each
//! of a room's thousand wake-ups would lengthen the time every other delivery, join and leave
//! waits for that lock.

use std::task::Waker;

#[derive(Default)]
pub(super) struct Wakers(Vec<Waker>);

impl Wakers {
    pub(super) fn with_capacity(n: usize) -> Self {
        Wakers(Vec::with_capacity(n))
    }

    pub(super) fn add(&mut self, waker: Option<Waker>) {
        self.0.extend(waker);
    }

    /// Call after the lock is released.
    pub(super) fn wake_all(self) {
        self.0.into_iter().for_each(Waker::wake);
    }
}
