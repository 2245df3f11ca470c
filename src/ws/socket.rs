//! `WsSocket`: one server-side WebSocket over any async byte stream.
//!
//! It owns no buffer while idle: the decoder holds only a message in progress, the read
//! buffer only bytes left over after a message, and writes go out with `writev` straight
//! from the queued, shared frames. A flood of pings costs one pending pong, the latest.

use std::{
    collections::VecDeque,
    future::poll_fn,
    io::{self, IoSlice},
    mem::MaybeUninit,
    pin::Pin,
    task::{Context, Poll, ready},
};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::frame::{self, Chunk, Decoder, FrameError, Incoming, Skipped, WireFrame};

type BoxFuture<'a> = Pin<Box<dyn std::future::Future<Output = ()> + Send + 'a>>;

/// Bytes asked of the kernel per read.
const READ_CHUNK: usize = 4096;
/// Frames handed to one `writev`: a room's burst of up to this many goes in one call.
const MAX_IOVECS: usize = 256;
/// Chunks an empty write queue may keep room for: a few turns' worth, 256 bytes.
const KEEP_QUEUED: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error(transparent)]
    Frame(#[from] FrameError),
    #[error(transparent)]
    Io(#[from] io::Error),
}

pub struct WsSocket<T> {
    io: T,
    /// Bytes read after the end of a message, at most one read chunk: the decoder takes every
    /// other byte as it arrives.
    read_buf: Vec<u8>,
    read_pos: usize,
    decoder: Decoder,
    writes: VecDeque<Chunk>,
    /// The answer to the latest ping, not yet queued: a later ping replaces it (RFC 6455
    /// 5.5.3), so a client that pings and never reads cannot grow our queue.
    pong: Option<WireFrame>,
    /// Where writing resumes in the first chunk: a frame index, and bytes of that frame
    /// already written (a frame once started must go out whole).
    head_frame: usize,
    head_offset: usize,
    written: u64,
}

impl<T: AsyncRead + AsyncWrite + Unpin> WsSocket<T> {
    /// A socket refusing client messages over `max_message_bytes` (see `frame::MAX_MESSAGE_BYTES`
    /// for the default).
    pub fn new(io: T, max_message_bytes: usize) -> Self {
        WsSocket {
            io,
            read_buf: Vec::new(),
            read_pos: 0,
            decoder: Decoder::new(max_message_bytes),
            writes: VecDeque::new(),
            pong: None,
            head_frame: 0,
            head_offset: 0,
            written: 0,
        }
    }

    /// The next message. `Ready(None)` when the peer has closed the TCP connection. After an
    /// error, the same error again.
    pub fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Incoming, ReadError>>> {
        loop {
            if self.read_pos < self.read_buf.len() {
                let (used, decoded) = self.decoder.decode(&self.read_buf[self.read_pos..]);
                self.read_pos += used;
                if self.read_pos == self.read_buf.len() {
                    // Nothing left over: give the buffer back, idle sockets hold none.
                    self.read_buf = Vec::new();
                    self.read_pos = 0;
                }
                if let Some(ready) = Self::ready(decoded) {
                    return Poll::Ready(Some(ready));
                }
            } else if let Some(e) = self.decoder.error() {
                return Poll::Ready(Some(Err(e.into())));
            }
            // Read into the stack: an idle poll costs no allocation, and the decoder takes
            // the bytes from there.
            let mut chunk = [MaybeUninit::<u8>::uninit(); READ_CHUNK];
            let mut buf = ReadBuf::uninit(&mut chunk);
            match ready!(Pin::new(&mut self.io).poll_read(cx, &mut buf)) {
                Err(e) => return Poll::Ready(Some(Err(e.into()))),
                Ok(()) if buf.filled().is_empty() => return Poll::Ready(None),
                Ok(()) => {}
            }
            let filled = buf.filled();
            let (used, decoded) = self.decoder.decode(filled);
            if let Some(ready) = Self::ready(decoded) {
                if used < filled.len() {
                    // Only bytes after a message are kept, for the next call.
                    self.read_buf = filled[used..].to_vec();
                    self.read_pos = 0;
                }
                return Poll::Ready(Some(ready));
            }
        }
    }

    fn ready(decoded: Result<Option<Incoming>, FrameError>) -> Option<Result<Incoming, ReadError>> {
        match decoded {
            Ok(None) => None,
            Ok(Some(message)) => Some(Ok(message)),
            Err(e) => Some(Err(e.into())),
        }
    }

    pub async fn next(&mut self) -> Option<Result<Incoming, ReadError>> {
        poll_fn(|cx| self.poll_next(cx)).await
    }

    /// Queues a frame to be written by the next flush.
    pub fn queue(&mut self, frame: WireFrame) {
        self.writes.push_back(Chunk::from([frame]));
    }

    /// The queue, for moving chunks in without copying.
    pub fn queue_mut(&mut self) -> &mut VecDeque<Chunk> {
        &mut self.writes
    }

    /// Answers a ping, replacing an answer to an earlier one that has not gone out yet.
    pub fn pong(&mut self, payload: &[u8]) {
        self.pong = Some(frame::pong(payload));
    }

    pub fn has_queued(&self) -> bool {
        !self.writes.is_empty() || self.pong.is_some()
    }

    /// Bytes queued and not yet written. Walks the queue: for a once-per-tick look, not per write.
    pub fn unwritten(&self) -> u64 {
        let mut frames = self.writes.iter().flat_map(|chunk| chunk.iter());
        let head = frames
            .by_ref()
            .nth(self.head_frame)
            .map_or(0, |f| f.len() - self.head_offset);
        let rest: usize = frames.map(|f| f.len()).sum();
        let pong = self.pong.as_ref().map_or(0, |p| p.len());
        (head + rest + pong) as u64
    }

    /// Bytes written so far; a write that makes no progress leaves it unchanged.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Drops queued frames, except one already partly on the wire.
    pub fn discard_queued(&mut self) {
        let started = (self.head_offset > 0)
            .then(|| {
                self.writes
                    .front()
                    .map(|chunk| chunk[self.head_frame].clone())
            })
            .flatten();
        self.writes.clear();
        self.pong = None;
        self.head_frame = 0;
        if let Some(frame) = started {
            self.writes.push_back(Chunk::from([frame]));
        }
    }

    /// Writes every queued frame, several per system call.
    pub fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            // Each time round: a pong waiting for the end of a partly written frame goes next.
            self.queue_pong();
            if self.writes.is_empty() {
                break;
            }
            let mut slices = [IoSlice::new(&[]); MAX_IOVECS];
            let mut count = 0;
            let mut skip = (self.head_frame, self.head_offset);
            'fill: for chunk in &self.writes {
                for frame in &chunk[skip.0..] {
                    if count == MAX_IOVECS {
                        break 'fill;
                    }
                    slices[count] = IoSlice::new(&frame[skip.1..]);
                    count += 1;
                    skip.1 = 0;
                }
                skip.0 = 0;
            }
            let mut n = ready!(Pin::new(&mut self.io).poll_write_vectored(cx, &slices[..count]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.written += n as u64;
            while n > 0 {
                let chunk = self
                    .writes
                    .front()
                    .expect("written bytes came from a chunk");
                let left = chunk[self.head_frame].len() - self.head_offset;
                if left > n {
                    self.head_offset += n;
                    break;
                }
                n -= left;
                self.head_offset = 0;
                self.head_frame += 1;
                if self.head_frame == chunk.len() {
                    self.writes.pop_front();
                    self.head_frame = 0;
                }
            }
        }
        // A burst's queue is given back once written: the outbox swaps its queue with this
        // one, so an idle socket would otherwise hold two burst-sized queues for good (16
        // bytes a chunk: 8 KiB after a room's worth of joins).
        if self.writes.capacity() > KEEP_QUEUED {
            self.writes = VecDeque::new();
        }
        Pin::new(&mut self.io).poll_flush(cx)
    }

    /// Moves the pending pong to the front of the queue, ahead of the events, once no frame
    /// is partly written (a frame once started must go out whole).
    fn queue_pong(&mut self) {
        if self.head_offset != 0 {
            return;
        }
        let Some(pong) = self.pong.take() else { return };
        if self.head_frame > 0 {
            // Between two frames of a shared chunk: the rest becomes a chunk of its own.
            let rest: Chunk = self
                .writes
                .pop_front()
                .map(|chunk| chunk[self.head_frame..].iter().cloned().collect())
                .unwrap_or_else(|| Chunk::from([]));
            self.writes.push_front(rest);
            self.head_frame = 0;
        }
        self.writes.push_front(Chunk::from([pong]));
    }

    pub async fn flush(&mut self) -> io::Result<()> {
        poll_fn(|cx| self.poll_flush(cx)).await
    }

    /// Sends a close frame after what is queued, then waits for the client's close frame (or
    /// the end of the connection), giving up after `grace`. Boxed, so the timers of a closing
    /// socket do not weigh on every open socket's task.
    pub fn close(&mut self, code: u16, reason: &str, grace: std::time::Duration) -> BoxFuture<'_>
    where
        T: Send,
    {
        let frame = frame::close(code, reason);
        Box::pin(self.close_with(frame, grace))
    }

    async fn close_with(&mut self, close: WireFrame, grace: std::time::Duration) {
        // From here on the client's frames are skipped, not decoded or kept: all we wait for
        // is its close frame.
        self.decoder.stop();
        self.queue(close);
        let _ = tokio::time::timeout(grace, async {
            if self.flush().await.is_ok() {
                poll_fn(|cx| self.poll_skip_to_close(cx)).await;
            }
        })
        .await;
        let _ = tokio::time::timeout(grace, tokio::io::AsyncWriteExt::shutdown(&mut self.io)).await;
    }

    /// Discards what the client sends until its close frame has gone by or the connection
    /// ends; memory stays at one read chunk, on the stack.
    fn poll_skip_to_close(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let left = std::mem::take(&mut self.read_buf);
        let from = std::mem::take(&mut self.read_pos);
        if self.decoder.skip(left.get(from..).unwrap_or_default()).1 == Skipped::Closed {
            return Poll::Ready(());
        }
        loop {
            let mut chunk = [MaybeUninit::<u8>::uninit(); READ_CHUNK];
            let mut buf = ReadBuf::uninit(&mut chunk);
            match ready!(Pin::new(&mut self.io).poll_read(cx, &mut buf)) {
                Ok(()) if !buf.filled().is_empty() => {
                    if self.decoder.skip(buf.filled()).1 == Skipped::Closed {
                        return Poll::Ready(());
                    }
                }
                _ => return Poll::Ready(()),
            }
        }
    }

    /// Answers a client's close frame with its own code, as RFC 6455 asks.
    pub fn answer_close(&mut self, code: Option<u16>, grace: std::time::Duration) -> BoxFuture<'_>
    where
        T: Send,
    {
        self.queue(match code {
            Some(code) => frame::close(code, ""),
            None => WireFrame::from_static(&[0x88, 0]),
        });
        Box::pin(async move {
            let _ = tokio::time::timeout(grace, async {
                let _ = self.flush().await;
                let _ = tokio::io::AsyncWriteExt::shutdown(&mut self.io).await;
            })
            .await;
        })
    }
}

#[cfg(test)]
mod tests;
