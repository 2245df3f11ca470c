//! RFC 6455 framing: server frames encoded once and shared, client frames decoded in place.

use bytes::Bytes;

/// The largest frame, and the largest message after reassembly, a client may send.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;

const CONTINUATION: u8 = 0x0;
const TEXT: u8 = 0x1;
const BINARY: u8 = 0x2;
const CLOSE: u8 = 0x8;
const PING: u8 = 0x9;
const PONG: u8 = 0xA;

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

/// A message from the client.
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
        match self {
            FrameError::TooBig => 1009,
            FrameError::InvalidUtf8 => 1007,
            FrameError::Protocol(_) => 1002,
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

/// Reassembles client messages. It holds only a fragmented message in progress, if any.
#[derive(Debug, Default)]
pub struct Decoder {
    partial: Option<(u8, Vec<u8>)>,
}

impl Decoder {
    /// Decodes one frame from the front of `buf`, unmasking it in place. `Ok(None)`: more
    /// bytes are needed. `Ok(Some((used, message)))`: `used` bytes were one frame, which
    /// completed `message` or was a fragment (`None`).
    pub fn decode(
        &mut self,
        buf: &mut [u8],
    ) -> Result<Option<(usize, Option<Incoming>)>, FrameError> {
        let [b0, b1, ..] = *buf else {
            return Ok(None);
        };
        if b0 & 0x70 != 0 {
            return Err(FrameError::Protocol("reserved bits set"));
        }
        if b1 & 0x80 == 0 {
            return Err(FrameError::Protocol("client frames must be masked"));
        }
        let fin = b0 & 0x80 != 0;
        let opcode = b0 & 0x0F;
        let (len, mut at) = match b1 & 0x7F {
            126 => match buf.get(2..4) {
                Some(b) => (u64::from(u16::from_be_bytes([b[0], b[1]])), 4),
                None => return Ok(None),
            },
            127 => match buf.get(2..10) {
                Some(b) => (u64::from_be_bytes(b.try_into().expect("8 bytes")), 10),
                None => return Ok(None),
            },
            n => (u64::from(n), 2),
        };
        let is_control = opcode & 0x8 != 0;
        if is_control && (!fin || len > 125) {
            return Err(FrameError::Protocol("bad control frame"));
        }
        let so_far = self.partial.as_ref().map_or(0, |(_, data)| data.len());
        if len > (MAX_MESSAGE_BYTES - so_far.min(MAX_MESSAGE_BYTES)) as u64 {
            return Err(FrameError::TooBig);
        }
        let len = len as usize;
        let Some(mask) = buf.get(at..at + 4) else {
            return Ok(None);
        };
        let mask: [u8; 4] = mask.try_into().expect("4 bytes");
        at += 4;
        let Some(data) = buf.get_mut(at..at + len) else {
            return Ok(None);
        };
        for (i, byte) in data.iter_mut().enumerate() {
            *byte ^= mask[i & 3];
        }
        let data = &*data;
        let used = at + len;
        let message = match opcode {
            TEXT | BINARY if self.partial.is_some() => {
                return Err(FrameError::Protocol("new message inside a fragmented one"));
            }
            TEXT | BINARY if fin => Some(finish(opcode, data.to_vec())?),
            TEXT | BINARY => {
                self.partial = Some((opcode, data.to_vec()));
                None
            }
            CONTINUATION => {
                let Some((_, buffer)) = self.partial.as_mut() else {
                    return Err(FrameError::Protocol("continuation without a message"));
                };
                buffer.extend_from_slice(data);
                if fin {
                    let (opcode, buffer) = self.partial.take().expect("checked above");
                    Some(finish(opcode, buffer)?)
                } else {
                    None
                }
            }
            CLOSE => Some(Incoming::Close(close_code(data)?)),
            PING => Some(Incoming::Ping(data.to_vec())),
            PONG => Some(Incoming::Pong),
            _ => return Err(FrameError::Protocol("unknown opcode")),
        };
        Ok(Some((used, message)))
    }
}

fn finish(opcode: u8, data: Vec<u8>) -> Result<Incoming, FrameError> {
    if opcode == BINARY {
        return Ok(Incoming::Binary);
    }
    String::from_utf8(data)
        .map(Incoming::Text)
        .map_err(|_| FrameError::InvalidUtf8)
}

fn close_code(data: &[u8]) -> Result<Option<u16>, FrameError> {
    match data {
        [] => Ok(None),
        [_] => Err(FrameError::Protocol("truncated close code")),
        [hi, lo, reason @ ..] => {
            let code = u16::from_be_bytes([*hi, *lo]);
            let valid = matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999);
            if !valid {
                return Err(FrameError::Protocol("invalid close code"));
            }
            std::str::from_utf8(reason).map_err(|_| FrameError::InvalidUtf8)?;
            Ok(Some(code))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A masked client frame, as a browser would send it.
    fn client(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mask = [0x12, 0x34, 0x56, 0x78];
        let mut out = vec![(u8::from(fin) << 7) | opcode];
        match payload.len() {
            n if n < 126 => out.push(0x80 | n as u8),
            n if n <= 65535 => {
                out.push(0x80 | 126);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                out.push(0x80 | 127);
                out.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        out.extend_from_slice(&mask);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        out
    }

    fn decode_all(bytes: &mut [u8]) -> Result<Vec<Incoming>, FrameError> {
        let mut decoder = Decoder::default();
        let mut at = 0;
        let mut out = Vec::new();
        while at < bytes.len() {
            let (used, message) = decoder.decode(&mut bytes[at..])?.expect("complete frames");
            at += used;
            out.extend(message);
        }
        Ok(out)
    }

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
    fn close_frames_carry_the_code_and_a_cut_reason() {
        let frame = close(4001, "Invalid user");
        assert_eq!(&frame[..4], &[0x88, 14, 0x0F, 0xA1]);
        let long = close(1000, &"字".repeat(100));
        assert!(long.len() <= 127);
        assert!(std::str::from_utf8(&payload(&long)[2..]).is_ok());
    }

    #[test]
    fn a_masked_text_frame_decodes() {
        let mut bytes = client(true, TEXT, "你好".as_bytes());
        assert_eq!(
            decode_all(&mut bytes),
            Ok(vec![Incoming::Text("你好".into())])
        );
    }

    #[test]
    fn partial_input_asks_for_more() {
        let bytes = client(true, TEXT, b"hello");
        let mut decoder = Decoder::default();
        for cut in 0..bytes.len() {
            let mut prefix = bytes[..cut].to_vec();
            assert_eq!(decoder.decode(&mut prefix), Ok(None), "{cut}");
        }
    }

    #[test]
    fn fragments_reassemble_around_control_frames() {
        let mut bytes = client(false, TEXT, b"hel");
        bytes.extend(client(true, PING, b"p"));
        bytes.extend(client(true, CONTINUATION, b"lo"));
        assert_eq!(
            decode_all(&mut bytes),
            Ok(vec![
                Incoming::Ping(b"p".to_vec()),
                Incoming::Text("hello".into())
            ])
        );
    }

    #[test]
    fn sizes_over_the_limit_are_too_big_before_the_payload_arrives() {
        let bytes = client(true, TEXT, &vec![b'a'; MAX_MESSAGE_BYTES + 1]);
        let mut header_only = bytes[..14].to_vec();
        assert_eq!(
            Decoder::default().decode(&mut header_only),
            Err(FrameError::TooBig)
        );
        let mut fragments = client(false, TEXT, &vec![b'a'; MAX_MESSAGE_BYTES]);
        fragments.extend(client(true, CONTINUATION, b"a"));
        assert_eq!(decode_all(&mut fragments), Err(FrameError::TooBig));
        let mut exact = client(true, TEXT, &vec![b'a'; MAX_MESSAGE_BYTES]);
        assert!(decode_all(&mut exact).is_ok());
    }

    #[test]
    fn invalid_utf8_is_reported_even_across_fragments() {
        let mut bytes = client(false, TEXT, &[0xE4, 0xBD]);
        bytes.extend(client(true, CONTINUATION, &[0xFF]));
        assert_eq!(decode_all(&mut bytes), Err(FrameError::InvalidUtf8));
    }

    #[test]
    fn protocol_violations_are_refused() {
        let unmasked = vec![0x81, 0x01, b'a'];
        let mut rsv = client(true, TEXT, b"a");
        rsv[0] |= 0x40;
        let fragmented_ping = client(false, PING, b"");
        let long_ping = client(true, PING, &[0; 126]);
        let stray_continuation = client(true, CONTINUATION, b"a");
        let unknown = client(true, 0x3, b"");
        let mut interleaved = client(false, TEXT, b"a");
        interleaved.extend(client(true, TEXT, b"b"));
        let bad_code = client(true, CLOSE, &1005u16.to_be_bytes());
        let one_byte_close = client(true, CLOSE, &[3]);
        for mut bytes in [
            unmasked,
            rsv,
            fragmented_ping,
            long_ping,
            stray_continuation,
            unknown,
            interleaved,
            bad_code,
            one_byte_close,
        ] {
            let err = decode_all(&mut bytes).unwrap_err();
            assert_eq!(err.close_code(), 1002, "{err:?}");
        }
    }

    #[test]
    fn close_frames_decode_with_or_without_a_code() {
        let mut bytes = client(true, CLOSE, b"");
        bytes.extend(client(true, CLOSE, &[0x03, 0xE8, b'b', b'y', b'e']));
        assert_eq!(
            decode_all(&mut bytes),
            Ok(vec![Incoming::Close(None), Incoming::Close(Some(1000))])
        );
    }

    #[test]
    fn binary_is_recognised_and_pong_ignored() {
        let mut bytes = client(true, BINARY, &[1, 2, 3]);
        bytes.extend(client(true, PONG, b""));
        assert_eq!(
            decode_all(&mut bytes),
            Ok(vec![Incoming::Binary, Incoming::Pong])
        );
    }
}
