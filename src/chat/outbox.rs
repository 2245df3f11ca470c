//! `Outbox`: one socket's bounded queue of outgoing frames, and its doorbell.
//!
//! The engine pushes without waiting. The socket's task takes everything queued at once and
//! writes it with one `writev`. Two bounds keep a socket from holding memory for long:
//! - bytes, always: once more than `max_bytes` of frames wait (shared frames count in full
//!   here, since this socket must write them all), the push marks it overflowed and drops the
//!   frame, so nobody ever waits for it;
//! - frames, while its last write did not finish (its TCP window is full, a slow reader):
//!   more than `capacity` frames overflow it too. A socket that is still writable, merely
//!   waiting for its turn on the CPU, is held to the bytes bound only: a burst of small
//!   frames, such as a `left` for each of thousands of users dropped at once (~150 bytes
//!   each), must not close a healthy reader.
//!
//! The same doorbell carries the server's other news for the socket: time to ping, or close now.

use std::{
    borrow::Cow,
    collections::VecDeque,
    sync::{Arc, Mutex, MutexGuard},
    task::{Context, Waker},
};

use super::protocol::{Chunk, Frame};

/// `--outbound-queue-bytes`' default, Centrifugo's client queue. At the default flags a
/// join's first chunk is at most 675 KiB (`largest_join(50, 2000)`): it fits, with room to spare.
pub const DEFAULT_MAX_BYTES: usize = 1024 * 1024;

/// Envelope of one event in a `history`, generously: two users (a `private`) with the longest
/// names escaped, an id, a time, the keys and the comma.
const EVENT_ENVELOPE: usize = 512;
/// The most bytes one character of text takes in JSON: a control character, `\u0001`.
const ESCAPED_CHAR: usize = 6;
/// Room beside the `history` for the `join` and the `list` queued with it: a list of some 500
/// users with the longest names.
const JOIN_AND_LIST: usize = 64 * 1024;

/// The most bytes of events a `history` may carry under a bytes bound of `max_bytes`: what
/// is left beside the `join`, the `list` and the history's own envelope.
pub fn history_budget(max_bytes: usize) -> usize {
    max_bytes.saturating_sub(JOIN_AND_LIST + EVENT_ENVELOPE)
}

/// The most a join queues at once: a `history` of `history_on_join` events, each carrying the
/// longest text made of characters that escape to six bytes, with the `join` and the `list`.
/// The bytes bound must hold it, or a newcomer would be closed before it read anything.
pub fn largest_join(history_on_join: usize, max_message_chars: usize) -> usize {
    max_message_chars
        .saturating_mul(ESCAPED_CHAR)
        .saturating_add(EVENT_ENVELOPE)
        .saturating_mul(history_on_join)
        .saturating_add(EVENT_ENVELOPE)
        .saturating_add(JOIN_AND_LIST)
}

#[derive(Debug, Clone)]
pub struct Outbox(Arc<Shared>);

#[derive(Debug)]
struct Shared {
    capacity: usize,
    max_bytes: usize,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    chunks: VecDeque<Chunk>,
    /// Frames in `chunks`.
    frames: usize,
    /// Bytes of the frames in `chunks`.
    bytes: usize,
    signal: Option<Signal>,
    tick: bool,
    waker: Option<Waker>,
    /// The socket's last write did not finish: the client is not keeping up.
    write_blocked: bool,
}

/// Why a socket must close. The first signal wins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signal {
    /// More than `max_bytes`, or than `capacity` frames while blocked, waited: a slow reader.
    Overflowed,
    /// A close code and reason; owned when it says why a moderator removed the user.
    Close(u16, Cow<'static, str>),
}

/// What a socket's task learns when it looks at its outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
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
    /// An outbox of `capacity` frames and the default bytes bound.
    pub fn new(capacity: usize) -> Self {
        Self::bounded(capacity, DEFAULT_MAX_BYTES)
    }

    /// At most `max_bytes` waiting, and `capacity` frames while the socket's writes are blocked.
    pub fn bounded(capacity: usize, max_bytes: usize) -> Self {
        Outbox(Arc::new(Shared {
            capacity: capacity.max(1),
            max_bytes: max_bytes.max(1),
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
        let (result, waker) = self.push_quietly(chunk);
        // Waking outside the lock; later pushes find no waker and stay cheap until the task
        // has looked again.
        if let Some(waker) = waker {
            waker.wake();
        }
        result
    }

    /// `push_chunk` that hands back the task's waker instead of waking it: the hub wakes a
    /// room's sockets once it has let go of its lock (`hub::wake`).
    pub fn push_quietly(&self, chunk: &Chunk) -> (Result<(), PushError>, Option<Waker>) {
        let mut state = self.lock();
        if state.signal.is_some() {
            return (Err(PushError::Closing), None);
        }
        let bytes = chunk_bytes(chunk);
        let too_many = state.write_blocked && state.frames + chunk.len() > self.0.capacity;
        if too_many || state.bytes.saturating_add(bytes) > self.0.max_bytes {
            state.signal = Some(Signal::Overflowed);
            state.chunks = VecDeque::new();
            state.frames = 0;
            state.bytes = 0;
            (Err(PushError::Overflowed), state.waker.take())
        } else {
            state.chunks.push_back(chunk.clone());
            state.frames += chunk.len();
            state.bytes += bytes;
            (Ok(()), state.waker.take())
        }
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
            state.bytes = 0;
        }
        if !state
            .waker
            .as_ref()
            .is_some_and(|w| w.will_wake(cx.waker()))
        {
            state.waker = Some(cx.waker().clone());
        }
        News {
            signal: state.signal.clone(),
            tick: std::mem::take(&mut state.tick),
        }
    }

    /// Bytes waiting here, not yet handed to the socket.
    pub fn queued_bytes(&self) -> usize {
        self.lock().bytes
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.0.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn chunk_bytes(chunk: &Chunk) -> usize {
    chunk.iter().map(|frame| frame.len()).sum()
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
                _ => outbox.signal(Signal::Close(1001, "bye".into())),
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
        // A thousand times its frame capacity, as a mass leave sends: bytes bound it, not frames.
        let outbox = Outbox::bounded(2, 2000);
        for _ in 0..2000 {
            outbox.push(frame("a")).unwrap();
        }
        assert_eq!(outbox.queued_bytes(), 2000);
        assert_eq!(outbox.push(frame("b")), Err(PushError::Overflowed));
    }

    #[test]
    fn bytes_overflow_a_socket_below_its_frame_capacity() {
        for blocked in [false, true] {
            let outbox = Outbox::bounded(100, 10);
            if blocked {
                block(&outbox);
            }
            outbox.push(frame("0123456789")).unwrap();
            assert_eq!(outbox.push(frame("x")), Err(PushError::Overflowed));
        }
    }

    #[test]
    fn a_frame_shared_by_many_sockets_counts_in_full_in_each() {
        let (a, b) = (Outbox::bounded(100, 15), Outbox::bounded(100, 15));
        let shared = Chunk::from([frame("0123456789")]);
        for outbox in [&a, &b] {
            outbox.push_chunk(&shared).unwrap();
            assert_eq!(outbox.push_chunk(&shared), Err(PushError::Overflowed));
        }
    }

    #[tokio::test]
    async fn bytes_handed_to_the_socket_no_longer_count() {
        let outbox = Outbox::bounded(100, 10);
        outbox.push(frame("0123456789")).unwrap();
        assert_eq!(next(&outbox).await.0.len(), 1);
        assert_eq!(outbox.queued_bytes(), 0);
        outbox.push(frame("0123456789")).unwrap();
    }

    #[test]
    fn the_default_bytes_bound_holds_the_largest_join() {
        let largest = largest_join(50, 2000);
        assert_eq!(largest, 626_112 + 65_536);
        assert!(largest < DEFAULT_MAX_BYTES);
    }

    #[test]
    fn the_first_signal_wins() {
        let outbox = Outbox::new(1);
        block(&outbox);
        outbox.push(frame("a")).unwrap();
        let _ = outbox.push(frame("b"));
        outbox.signal(Signal::Close(1001, "bye".into()));
        let news = outbox.poll_news(
            &Context::from_waker(Waker::noop()),
            &mut VecDeque::new(),
            true,
        );
        assert_eq!(news.signal, Some(Signal::Overflowed));
    }
}
