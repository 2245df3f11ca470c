//! RFC 6455 framing: server frames encoded once and shared. Client frames are decoded in
//! `decode`, re-exported here.

use bytes::Bytes;

pub use super::decode::{Decoder, MAX_MESSAGE_BYTES, Skipped};

pub(super) const CONTINUATION: u8 = 0x0;
pub(super) const TEXT: u8 = 0x1;
pub(super) const BINARY: u8 = 0x2;
pub(super) const CLOSE: u8 = 0x8;
pub(super) const PING: u8 = 0x9;
pub(super) const PONG: u8 = 0xA;

/// Room in front of a payload for the longest server header (no mask).
const HEADER_ROOM: usize = 10;

/// A complete server frame, header included. Cloning shares the bytes, so one broadcast is
/// encoded once and written to every socket as is: server frames are never masked.
pub type WireFrame = Bytes;

/// Frames queued together. One chunk of a burst is shared by every socket in a room, so a
/// socket's share costs one reference count, whatever the burst's length.
pub type Chunk = std::sync::Arc<[WireFrame]>;

/// Encodes a text frame whose payload `write` appends to the buffer, without copying it.
pub fn text(write: impl FnOnce(&mut Vec<u8>)) -> WireFrame {
    let mut buf = Vec::with_capacity(256);
    buf.extend_from_slice(&[0; HEADER_ROOM]);
    write(&mut buf);
    let len = buf.len() - HEADER_ROOM;
    let (header, header_len) = header(TEXT, len);
    let start = HEADER_ROOM - header_len;
    buf[start..HEADER_ROOM].copy_from_slice(&header[..header_len]);
    Bytes::from(buf).slice(start..)
}

pub fn ping() -> WireFrame {
    Bytes::from_static(&[0x80 | PING, 0])
}

pub fn pong(payload: &[u8]) -> WireFrame {
    control(PONG, payload)
}

/// A close frame; the reason is cut to fit the 125-byte control frame limit.
pub fn close(code: u16, reason: &str) -> WireFrame {
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    let mut payload = Vec::with_capacity(2 + end);
    payload.extend_from_slice(&code.to_be_bytes());
    payload.extend_from_slice(&reason.as_bytes()[..end]);
    control(CLOSE, &payload)
}

/// The payload of a server frame; for tests and logs.
pub fn payload(frame: &[u8]) -> &[u8] {
    let start = match frame.get(1).map(|b| b & 0x7F) {
        Some(126) => 4,
        Some(127) => 10,
        _ => 2,
    };
    frame.get(start..).unwrap_or_default()
}

fn control(opcode: u8, payload: &[u8]) -> WireFrame {
    debug_assert!(payload.len() <= 125);
    let mut buf = Vec::with_capacity(2 + payload.len());
    buf.push(0x80 | opcode);
    buf.push(payload.len() as u8);
    buf.extend_from_slice(payload);
    Bytes::from(buf)
}

fn header(opcode: u8, len: usize) -> ([u8; HEADER_ROOM], usize) {
    let mut h = [0u8; HEADER_ROOM];
    h[0] = 0x80 | opcode;
    if len < 126 {
        h[1] = len as u8;
        (h, 2)
    } else if len <= usize::from(u16::MAX) {
        h[1] = 126;
        h[2..4].copy_from_slice(&(len as u16).to_be_bytes());
        (h, 4)
    } else {
        h[1] = 127;
        h[2..10].copy_from_slice(&(len as u64).to_be_bytes());
        (h, 10)
    }
}

/// A text frame whose payload's first bytes come last: the rest is written ahead into a
/// buffer with room in front, and `finish` only writes the head and the header into that
/// room, so finishing costs a few bytes whatever the payload's length.
#[derive(Debug)]
pub struct Unfinished {
    buf: Vec<u8>,
    /// Where the payload written ahead starts; the head goes right before it.
    body: usize,
}

impl Unfinished {
    /// Room for a head of up to `head_room` bytes, then what `write` appends.
    pub fn text(head_room: usize, write: impl FnOnce(&mut Vec<u8>)) -> Unfinished {
        let room = HEADER_ROOM + head_room;
        let mut buf = Vec::with_capacity(256.max(room * 2));
        buf.resize(room, 0);
        write(&mut buf);
        Unfinished { buf, body: room }
    }

    /// What was written ahead and is still part of the payload.
    pub fn written(&self) -> &[u8] {
        &self.buf[self.body..]
    }

    /// Leaves the first `n` bytes written ahead out of the payload; the head takes their
    /// place (and their room).
    pub fn skip(&mut self, n: usize) {
        self.body = (self.body + n).min(self.buf.len());
    }

    /// The frame: `head`, then what was written ahead. `head` is cut to the room there is,
    /// which the caller asked for, so it never is.
    pub fn finish(mut self, head: &[u8]) -> WireFrame {
        let head = &head[..head.len().min(self.body - HEADER_ROOM)];
        let payload = self.body - head.len();
        self.buf[payload..self.body].copy_from_slice(head);
        let (header, header_len) = header(TEXT, self.buf.len() - payload);
        let start = payload - header_len;
        self.buf[start..payload].copy_from_slice(&header[..header_len]);
        Bytes::from(self.buf).slice(start..)
    }
}

/// A message from the client. Binary payloads are not kept: this server refuses them.
#[derive(Debug, PartialEq, Eq)]
pub enum Incoming {
    Text(String),
    Binary,
    Ping(Vec<u8>),
    Pong,
    /// The client's close code, if it gave one.
    Close(Option<u16>),
}

/// Why the client's bytes cannot be read; each maps to the close code RFC 6455 gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("message too big")]
    TooBig,
    #[error("invalid UTF-8")]
    InvalidUtf8,
    #[error("protocol error: {0}")]
    Protocol(&'static str),
}

impl FrameError {
    pub fn close_code(self) -> u16 {
        // Renamed: in this module `close` is the function that encodes a close frame.
        use super::close as code;
        match self {
            FrameError::TooBig => code::TOO_BIG,
            FrameError::InvalidUtf8 => code::INVALID_PAYLOAD,
            FrameError::Protocol(_) => code::PROTOCOL,
        }
    }

    pub fn reason(self) -> &'static str {
        match self {
            FrameError::TooBig => "message too big",
            FrameError::InvalidUtf8 => "invalid UTF-8",
            FrameError::Protocol(why) => why,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_frames_encode_with_the_shortest_header() {
        for (len, header_len) in [(5, 2), (125, 2), (126, 4), (65535, 4), (65536, 10)] {
            let frame = text(|b| b.extend(std::iter::repeat_n(b'a', len)));
            assert_eq!(frame.len(), len + header_len, "{len}");
            assert_eq!(frame[0], 0x81);
            assert_eq!(payload(&frame).len(), len);
        }
    }

    #[test]
    fn an_unfinished_frame_finishes_as_the_whole_frame_would_encode() {
        for len in [
            0, 5, 118, 119, 120, 125, 126, 65_530, 65_535, 65_536, 70_000,
        ] {
            for head in [&b"{"[..], b"{\"id\":18446744073709551615"] {
                let tail = vec![b'a'; len];
                let mut unfinished = Unfinished::text(head.len(), |b| {
                    b.extend_from_slice(b"xyz");
                    b.extend_from_slice(&tail);
                });
                unfinished.skip(3);
                assert_eq!(unfinished.written(), &tail[..]);
                let whole = text(|b| {
                    b.extend_from_slice(head);
                    b.extend_from_slice(&tail);
                });
                assert_eq!(unfinished.finish(head), whole, "{len}");
            }
        }
    }

    #[test]
    fn close_frames_carry_the_code_and_a_cut_reason() {
        let frame = close(4001, "Invalid user");
        assert_eq!(&frame[..4], &[0x88, 14, 0x0F, 0xA1]);
        let long = close(1000, &"字".repeat(100));
        assert!(long.len() <= 127);
        assert!(std::str::from_utf8(&payload(&long)[2..]).is_ok());
    }
}
