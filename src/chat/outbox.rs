//! `Outbox`: one socket's bounded queue of outgoing frames, and its doorbell.
//!
//! The engine pushes without waiting. The socket's task takes everything queued at once and
//! writes it with one `writev`. A slow reader is a client whose TCP window is full: once
//! `capacity` frames wait behind such a socket, the push marks it overflowed and drops the
//! frame, so nobody ever waits for it. A socket that is merely waiting for its turn on the
//! CPU may hold up to `BURST_FACTOR` times as many. The same doorbell carries the server's
//! other news for the socket: time to ping, or close now.

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex, MutexGuard},
    task::{Context, Waker},
};

use super::protocol::{Chunk, Frame};

/// How many times `capacity` a socket that is still writable may queue.
const BURST_FACTOR: usize = 4;

#[derive(Debug, Clone)]
pub struct Outbox(Arc<Shared>);

#[derive(Debug)]
struct Shared {
    capacity: usize,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    chunks: VecDeque<Chunk>,
    /// Frames in `chunks`.
    frames: usize,
    signal: Option<Signal>,
    tick: bool,
    waker: Option<Waker>,
    /// The socket's last write did not finish: the client is not keeping up.
    write_blocked: bool,
}

/// Why a socket must close. The first signal wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// More than `capacity` frames waited: a slow reader.
    Overflowed,
    Close(u16, &'static str),
}

/// What a socket's task learns when it looks at its outbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct News {
    pub signal: Option<Signal>,
    /// The ping interval elapsed.
    pub tick: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PushError {
    /// This push overflowed the queue: the socket will be closed as a slow reader.
    #[error("outbound queue overflowed")]
    Overflowed,
    /// The socket is closing already.
    #[error("socket is closing")]
    Closing,
}

impl Outbox {
    pub fn new(capacity: usize) -> Self {
        Outbox(Arc::new(Shared {
            capacity: capacity.max(1),
            state: Mutex::new(State::default()),
        }))
    }

    /// Queues a frame without waiting. Only the push that overflows the queue reports
    /// `Overflowed`, so a slow reader is counted once.
    pub fn push(&self, frame: Frame) -> Result<(), PushError> {
        self.push_chunk(&Chunk::from([frame]))
    }

    /// Queues several frames at once: one lock, one reference count and at most one
    /// wake-up for all of them, however many sockets share the chunk.
    pub fn push_chunk(&self, chunk: &Chunk) -> Result<(), PushError> {
        let (result, waker) = {
            let mut state = self.lock();
            if state.signal.is_some() {
                return Err(PushError::Closing);
            }
            let limit = if state.write_blocked {
                self.0.capacity
            } else {
                self.0.capacity * BURST_FACTOR
            };
            if state.frames + chunk.len() > limit {
                state.signal = Some(Signal::Overflowed);
                state.chunks = VecDeque::new();
                state.frames = 0;
                (Err(PushError::Overflowed), state.waker.take())
            } else {
                state.chunks.push_back(chunk.clone());
                state.frames += chunk.len();
                (Ok(()), state.waker.take())
            }
        };
        // Waking outside the lock; later pushes find no waker and stay cheap until the task
        // has looked again.
        if let Some(waker) = waker {
            waker.wake();
        }
        result
    }

    /// Asks the socket to close (shutdown), unless it is closing already.
    pub fn signal(&self, signal: Signal) {
        let waker = {
            let mut state = self.lock();
            state.signal.get_or_insert(signal);
            state.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// The ping interval elapsed.
    pub fn tick(&self) {
        let waker = {
            let mut state = self.lock();
            state.tick = true;
            state.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// `writable`: the socket's queue is flushed. Then queued frames move into `into`;
    /// otherwise they stay and count against the capacity. Returns the news, and arranges for
    /// `cx` to be woken on more.
    pub fn poll_news(&self, cx: &Context<'_>, into: &mut VecDeque<Chunk>, writable: bool) -> News {
        let mut state = self.lock();
        state.write_blocked = !writable;
        if writable && !state.chunks.is_empty() {
            if into.is_empty() {
                std::mem::swap(into, &mut state.chunks);
            } else {
                into.append(&mut state.chunks);
            }
            state.frames = 0;
        }
        if !state
            .waker
            .as_ref()
            .is_some_and(|w| w.will_wake(cx.waker()))
        {
            state.waker = Some(cx.waker().clone());
        }
        News {
            signal: state.signal,
            tick: std::mem::take(&mut state.tick),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.0.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::{future::poll_fn, task::Poll, time::Duration};

    fn frame(s: &'static str) -> Frame {
        Frame::from_static(s.as_bytes())
    }

    /// Waits until the outbox has frames or news, then returns them.
    async fn next(outbox: &Outbox) -> (Vec<Frame>, News) {
        let mut chunks = VecDeque::new();
        poll_fn(|cx| {
            let news = outbox.poll_news(cx, &mut chunks, true);
            if chunks.is_empty() && news.signal.is_none() && !news.tick {
                Poll::Pending
            } else {
                Poll::Ready(news)
            }
        })
        .await;
        let news =
            poll_fn(|cx| Poll::Ready(outbox.poll_news(cx, &mut VecDeque::new(), false))).await;
        let frames = chunks.iter().flat_map(|c| c.iter().cloned()).collect();
        (frames, news)
    }

    #[tokio::test]
    async fn frames_come_out_in_order_as_one_batch() {
        let outbox = Outbox::new(8);
        outbox.push(frame("a")).unwrap();
        outbox.push(frame("b")).unwrap();
        let (frames, _) = next(&outbox).await;
        assert_eq!(frames, [frame("a"), frame("b")]);
    }

    #[tokio::test]
    async fn a_waiting_task_wakes_on_push_tick_and_signal() {
        for poke in [0, 1, 2] {
            let outbox = Outbox::new(8);
            let reader = outbox.clone();
            let task = tokio::spawn(async move { next(&reader).await });
            tokio::time::sleep(Duration::from_millis(20)).await;
            match poke {
                0 => outbox.push(frame("x")).unwrap(),
                1 => outbox.tick(),
                _ => outbox.signal(Signal::Close(1001, "bye")),
            }
            tokio::time::timeout(Duration::from_secs(2), task)
                .await
                .expect("woken")
                .unwrap();
        }
    }

    /// The socket's last flush did not finish.
    fn block(outbox: &Outbox) {
        outbox.poll_news(
            &Context::from_waker(Waker::noop()),
            &mut VecDeque::new(),
            false,
        );
    }

    #[tokio::test]
    async fn overflow_is_reported_once_and_ends_delivery() {
        let outbox = Outbox::new(2);
        block(&outbox);
        outbox.push(frame("a")).unwrap();
        outbox.push(frame("b")).unwrap();
        assert_eq!(outbox.push(frame("c")), Err(PushError::Overflowed));
        assert_eq!(outbox.push(frame("d")), Err(PushError::Closing));
        let (frames, news) = next(&outbox).await;
        assert!(frames.is_empty());
        assert_eq!(news.signal, Some(Signal::Overflowed));
    }

    #[tokio::test]
    async fn frames_left_behind_still_count_against_the_capacity() {
        let outbox = Outbox::new(2);
        outbox.push(frame("a")).unwrap();
        let mut held = VecDeque::new();
        poll_fn(|cx| Poll::Ready(outbox.poll_news(cx, &mut held, false))).await;
        assert!(held.is_empty());
        outbox.push(frame("b")).unwrap();
        assert_eq!(outbox.push(frame("c")), Err(PushError::Overflowed));
    }

    #[tokio::test]
    async fn a_chunk_counts_as_its_frames() {
        let outbox = Outbox::new(3);
        block(&outbox);
        outbox
            .push_chunk(&Chunk::from([frame("a"), frame("b")]))
            .unwrap();
        let two_more = Chunk::from([frame("c"), frame("d")]);
        assert_eq!(outbox.push_chunk(&two_more), Err(PushError::Overflowed));
    }

    #[test]
    fn a_writable_socket_waiting_for_its_turn_may_queue_a_burst() {
        let outbox = Outbox::new(2);
        for _ in 0..2 * BURST_FACTOR {
            outbox.push(frame("a")).unwrap();
        }
        assert_eq!(outbox.push(frame("b")), Err(PushError::Overflowed));
    }

    #[test]
    fn the_first_signal_wins() {
        let outbox = Outbox::new(1);
        block(&outbox);
        outbox.push(frame("a")).unwrap();
        let _ = outbox.push(frame("b"));
        outbox.signal(Signal::Close(1001, "bye"));
        let news = outbox.poll_news(
            &Context::from_waker(Waker::noop()),
            &mut VecDeque::new(),
            true,
        );
        assert_eq!(news.signal, Some(Signal::Overflowed));
    }
}
