//! `Activity`: one connection's clock. It knows whether a request is in flight, since when the
//! connection has been idle and when the next request's head began, and says when to close it.
//!
//! hyper's own `header_read_timeout` starts whenever the connection waits for a head, idle
//! time included, so it would cut every idle keep-alive connection at the header timeout.
//! Here the header clock starts at the head's first byte (or at accept, for a connection that
//! has said nothing yet), and the idle clock when the last response was sent.

use std::{
    io,
    pin::Pin,
    sync::{
        Mutex, PoisonError,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    task::{Context, Poll},
    time::{Duration, Instant},
};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::tally::Slot;

/// No head under way (milliseconds fields use 0 for "none", so times are stored plus one).
const NONE: u64 = 0;

#[derive(Debug)]
pub struct Activity {
    born: Instant,
    in_flight: AtomicUsize,
    /// When the first byte of the next head arrived, in ms since `born` plus one; `NONE` if
    /// nothing has arrived since the last response.
    head_started: AtomicU64,
    /// When the last response was sent, in ms since `born`.
    idle_since: AtomicU64,
    /// A place counted for the real client behind a proxy, kept for an upgraded socket's life.
    kept: Mutex<Option<Slot<std::net::IpAddr>>>,
}

/// What the connection's clock says now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing due: look again at this instant.
    Until(Instant),
    /// A head took longer than the header timeout: drop the connection.
    HeadTooSlow,
    /// Idle longer than the keep-alive timeout: close it between requests.
    Idle,
}

impl Activity {
    /// A fresh connection is waiting for its first head, so the header clock runs from accept.
    pub fn new() -> Self {
        Activity {
            born: Instant::now(),
            in_flight: AtomicUsize::new(0),
            head_started: AtomicU64::new(1),
            idle_since: AtomicU64::new(0),
            kept: Mutex::new(None),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.born.elapsed().as_millis()).unwrap_or(u64::MAX - 1)
    }

    fn at(&self, ms: u64) -> Instant {
        self.born + Duration::from_millis(ms)
    }

    /// Bytes arrived. With no request in flight they begin the next head.
    fn read(&self) {
        if self.in_flight.load(Ordering::Relaxed) == 0
            && self.head_started.load(Ordering::Relaxed) == NONE
        {
            self.head_started
                .store(self.now_ms() + 1, Ordering::Relaxed);
        }
    }

    /// A head arrived whole and its request starts; the guard ends it when its response is sent.
    pub fn request_started(self: &std::sync::Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.head_started.store(NONE, Ordering::Relaxed);
        InFlight(self.clone())
    }

    /// Keeps `slot` as long as the connection's IO lives: after an upgrade, the socket's life.
    pub fn keep(&self, slot: Slot<std::net::IpAddr>) {
        *self.kept.lock().unwrap_or_else(PoisonError::into_inner) = Some(slot);
    }

    pub fn verdict(&self, header_timeout: Duration, keep_alive: Duration) -> Verdict {
        let now = Instant::now();
        if self.in_flight.load(Ordering::Relaxed) > 0 {
            // A request's own time is not ours to bound here; look again later.
            return Verdict::Until(now + header_timeout.min(keep_alive));
        }
        let head = self.head_started.load(Ordering::Relaxed);
        if head != NONE {
            let due = self.at(head - 1) + header_timeout;
            return if now >= due {
                Verdict::HeadTooSlow
            } else {
                Verdict::Until(due)
            };
        }
        let due = self.at(self.idle_since.load(Ordering::Relaxed)) + keep_alive;
        if now >= due {
            Verdict::Idle
        } else {
            Verdict::Until(due)
        }
    }
}

/// A request in flight, until its response body has been sent (or dropped).
#[derive(Debug)]
pub struct InFlight(std::sync::Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let activity = &self.0;
        activity
            .idle_since
            .store(activity.now_ms(), Ordering::Relaxed);
        activity.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The connection's IO, telling its `Activity` when bytes arrive. It also owns the places the
/// connection was admitted with, so they are given back when the socket closes, whether hyper
/// or an upgraded WebSocket holds it last.
#[derive(Debug)]
pub struct Watched<T, A> {
    pub io: T,
    pub activity: std::sync::Arc<Activity>,
    pub _admission: A,
}

impl<T: AsyncRead + Unpin, A: Unpin> AsyncRead for Watched<T, A> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.io).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.read();
        }
        polled
    }
}

impl<T: AsyncWrite + Unpin, A: Unpin> AsyncWrite for Watched<T, A> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        // The WebSocket writer relies on `writev` to send one shared broadcast buffer.
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    const HEADER: Duration = Duration::from_secs(10);
    const IDLE: Duration = Duration::from_secs(75);

    #[test]
    fn a_fresh_connection_runs_the_header_clock_and_a_request_stops_it() {
        let activity = Arc::new(Activity::new());
        match activity.verdict(HEADER, IDLE) {
            Verdict::Until(due) => assert!(due <= Instant::now() + HEADER),
            other => panic!("{other:?}"),
        }
        let request = activity.request_started();
        activity.read(); // body bytes do not start a head
        assert!(matches!(activity.verdict(HEADER, IDLE), Verdict::Until(_)));
        drop(request);
        // Idle now: the keep-alive clock, not the header clock.
        match activity.verdict(HEADER, IDLE) {
            Verdict::Until(due) => assert!(due > Instant::now() + HEADER),
            other => panic!("{other:?}"),
        }
        activity.read();
        match activity.verdict(HEADER, IDLE) {
            Verdict::Until(due) => assert!(due <= Instant::now() + HEADER),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn past_their_deadlines_a_slow_head_and_an_idle_connection_are_called() {
        let activity = Activity::new();
        let zero = Duration::ZERO;
        assert_eq!(activity.verdict(zero, IDLE), Verdict::HeadTooSlow);
        activity.head_started.store(NONE, Ordering::Relaxed);
        assert_eq!(activity.verdict(HEADER, zero), Verdict::Idle);
    }
}
