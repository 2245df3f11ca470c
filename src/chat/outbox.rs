//! `Outbox`: one socket's bounded queue of outgoing frames.
//!
//! The engine pushes without waiting; the socket's task takes everything queued at once, so it
//! can write a burst of frames and flush once. A push to a full queue marks the outbox
//! overflowed and drops the frame: the task then closes the socket with 1008, and nobody else
//! ever waits for a slow reader.

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex, MutexGuard},
};

use tokio::sync::Notify;

use super::protocol::Frame;

#[derive(Debug, Clone)]
pub struct Outbox(Arc<Shared>);

#[derive(Debug)]
struct Shared {
    capacity: usize,
    queue: Mutex<Queue>,
    notify: Notify,
}

#[derive(Debug, Default)]
struct Queue {
    frames: VecDeque<Frame>,
    overflowed: bool,
}

/// Why the outbox will deliver nothing more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Overflowed;

impl Outbox {
    pub fn new(capacity: usize) -> Self {
        Outbox(Arc::new(Shared {
            capacity: capacity.max(1),
            queue: Mutex::new(Queue::default()),
            notify: Notify::new(),
        }))
    }

    /// Queues a frame without waiting. Only the push that overflows the queue returns
    /// `PushError::Overflowed`, so the slow reader is reported once.
    pub fn push(&self, frame: Frame) -> Result<(), PushError> {
        let mut queue = self.lock();
        if queue.overflowed {
            return Err(PushError::AlreadyOverflowed);
        }
        if queue.frames.len() >= self.0.capacity {
            queue.overflowed = true;
            queue.frames.clear();
            drop(queue);
            self.0.notify.notify_one();
            return Err(PushError::Overflowed);
        }
        queue.frames.push_back(frame);
        drop(queue);
        self.0.notify.notify_one();
        Ok(())
    }

    /// Waits until frames are queued and swaps them into `batch` (which must be empty).
    pub async fn next_batch(&self, batch: &mut VecDeque<Frame>) -> Result<(), Overflowed> {
        debug_assert!(batch.is_empty());
        loop {
            {
                let mut queue = self.lock();
                if queue.overflowed {
                    return Err(Overflowed);
                }
                if !queue.frames.is_empty() {
                    std::mem::swap(batch, &mut queue.frames);
                    return Ok(());
                }
            }
            self.0.notify.notified().await;
        }
    }

    /// Resolves once the outbox overflows; raced against a slow write.
    pub async fn overflowed(&self) {
        loop {
            if self.lock().overflowed {
                return;
            }
            self.0.notify.notified().await;
        }
    }

    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.0.queue.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PushError {
    /// This push overflowed the queue: the socket is a slow reader and will be closed.
    #[error("outbound queue overflowed")]
    Overflowed,
    /// An earlier push overflowed it; the socket is on its way out.
    #[error("outbound queue already overflowed")]
    AlreadyOverflowed,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn frame(s: &'static str) -> Frame {
        Frame::from_static(s)
    }

    #[tokio::test]
    async fn frames_come_out_in_order_as_one_batch() {
        let outbox = Outbox::new(8);
        outbox.push(frame("a")).unwrap();
        outbox.push(frame("b")).unwrap();
        let mut batch = VecDeque::new();
        outbox.next_batch(&mut batch).await.unwrap();
        assert_eq!(batch, [frame("a"), frame("b")]);
    }

    #[tokio::test]
    async fn a_waiting_reader_wakes_on_push() {
        let outbox = Outbox::new(8);
        let reader = outbox.clone();
        let task = tokio::spawn(async move {
            let mut batch = VecDeque::new();
            reader.next_batch(&mut batch).await.map(|()| batch)
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        outbox.push(frame("x")).unwrap();
        let batch = tokio::time::timeout(Duration::from_secs(2), task)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(batch, [frame("x")]);
    }

    #[tokio::test]
    async fn overflow_is_reported_once_and_ends_delivery() {
        let outbox = Outbox::new(2);
        outbox.push(frame("a")).unwrap();
        outbox.push(frame("b")).unwrap();
        assert_eq!(outbox.push(frame("c")), Err(PushError::Overflowed));
        assert_eq!(outbox.push(frame("d")), Err(PushError::AlreadyOverflowed));
        let mut batch = VecDeque::new();
        assert_eq!(outbox.next_batch(&mut batch).await, Err(Overflowed));
        tokio::time::timeout(Duration::from_secs(1), outbox.overflowed())
            .await
            .unwrap();
    }
}
