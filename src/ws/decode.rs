//! Client frames decoded as a stream: a state machine fed whatever bytes arrived, which checks
//! each header as soon as it is read and unmasks payload bytes straight into the message.
//!
//! Why streaming: a frame never has to sit whole in a read buffer, so what one socket holds is
//! the message in progress (at most the limit) and one read chunk, and a bad frame is refused
//! from its header, or from its first bad byte, not after its payload arrived.

mod header;

use header::{Header, check_start};

use super::{
    close,
    frame::{BINARY, CLOSE, CONTINUATION, FrameError, Incoming, PING, PONG, TEXT},
};

/// The default for `--max-ws-message-bytes`: the largest message, after reassembly.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// The largest control frame payload (RFC 6455 5.5).
const MAX_CONTROL: usize = 125;

/// What skipping found, once the decoder has stopped decoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skipped {
    /// The client's close frame went by (or was the frame that failed): the handshake is done.
    Closed,
    /// No close frame yet: more bytes are needed.
    More,
}

/// Reassembles client messages from bytes as they arrive.
#[derive(Debug)]
pub struct Decoder {
    limit: usize,
    phase: Phase,
    /// The data message in progress, from its first frame to its final fragment.
    message: Option<Partial>,
    /// The payload of the control frame being read.
    control: Vec<u8>,
    /// Set at the first error, or when the socket stops listening: nothing is decoded again.
    stopped: Option<Stop>,
    /// The client's close frame was read, valid or not.
    peer_closed: bool,
}

#[derive(Debug)]
enum Phase {
    Header(Header),
    Payload(Payload),
}

#[derive(Debug, Clone, Copy)]
pub(super) struct Payload {
    pub(super) fin: bool,
    pub(super) opcode: u8,
    pub(super) mask: [u8; 4],
    /// Payload bytes read so far, which is also where the mask stands.
    pub(super) read: u64,
    pub(super) len: u64,
}

#[derive(Debug)]
struct Partial {
    text: bool,
    /// Bytes of the message so far, counted for both kinds; only text is kept.
    len: usize,
    data: Vec<u8>,
    /// `data[..valid]` is known to be whole UTF-8 characters.
    valid: usize,
}

#[derive(Debug, Clone, Copy)]
struct Stop {
    error: Option<FrameError>,
    framing: Framing,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// Frame boundaries are still known: later frames can be skipped one by one.
    Intact,
    /// The client's close frame was read.
    PeerClosed,
    /// A header that cannot be a frame: bytes can only be discarded.
    Lost,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder::new(MAX_MESSAGE_BYTES)
    }
}

impl Decoder {
    /// A decoder refusing messages over `limit` bytes (data frames only: control frames
    /// between fragments do not count).
    pub fn new(limit: usize) -> Self {
        Decoder {
            limit,
            phase: Phase::Header(Header::default()),
            message: None,
            control: Vec::new(),
            stopped: None,
            peer_closed: false,
        }
    }

    /// Decodes from the front of `input` until a message completes or the input runs out.
    /// Returns the bytes used, and the message if one completed. An error is final: it is
    /// returned again for any later input, which is not looked at.
    pub fn decode(&mut self, input: &[u8]) -> (usize, Result<Option<Incoming>, FrameError>) {
        if let Some(stop) = self.stopped {
            return (0, Err(stop.error.unwrap_or(FrameError::Protocol("closed"))));
        }
        let mut at = 0;
        let result = self.run(input, &mut at, false);
        if let Err(error) = result {
            self.fail(error);
        }
        (at, result)
    }

    /// The error that stopped the decoder, if one did.
    pub fn error(&self) -> Option<FrameError> {
        self.stopped.and_then(|s| s.error)
    }

    /// Bytes held for the message in progress and the control frame being read.
    pub fn held(&self) -> usize {
        self.message.as_ref().map_or(0, |m| m.data.capacity()) + self.control.capacity()
    }

    /// Stops decoding for good (we are closing): what is held is freed, and from now on
    /// `skip` looks only for the client's close frame.
    pub fn stop(&mut self) {
        self.stopped.get_or_insert(Stop {
            error: None,
            framing: Framing::Intact,
        });
        self.release();
    }

    /// After `stop` or an error: consumes frames without decoding or keeping them, until the
    /// client's close frame has gone by. Returns the bytes used.
    pub fn skip(&mut self, input: &[u8]) -> (usize, Skipped) {
        self.stop();
        let Some(stop) = self.stopped.as_mut() else {
            return (input.len(), Skipped::More);
        };
        match stop.framing {
            Framing::PeerClosed => return (0, Skipped::Closed),
            Framing::Lost => return (input.len(), Skipped::More),
            Framing::Intact => {}
        }
        let mut at = 0;
        loop {
            let opcode = match self.run(input, &mut at, true) {
                Ok(Some(Incoming::Close(_))) => CLOSE,
                Ok(_) if at < input.len() => continue,
                Ok(_) => return (at, Skipped::More),
                Err(_) => 0xFF,
            };
            let framing = if opcode == CLOSE {
                Framing::PeerClosed
            } else {
                Framing::Lost
            };
            if let Some(stop) = self.stopped.as_mut() {
                stop.framing = framing;
            }
            return match framing {
                Framing::PeerClosed => (at, Skipped::Closed),
                _ => (input.len(), Skipped::More),
            };
        }
    }

    fn fail(&mut self, error: FrameError) {
        let framing = match self.phase {
            // A refused close frame is still the client's close.
            _ if self.peer_closed => Framing::PeerClosed,
            Phase::Header(h) if h.checked == 2 && h.len().is_none() => Framing::Lost,
            _ => Framing::Intact,
        };
        self.stopped = Some(Stop {
            error: Some(error),
            framing,
        });
        self.release();
    }

    fn release(&mut self) {
        self.message = None;
        self.control = Vec::new();
    }

    /// The state machine. `skipping`: no checks, nothing kept, and a completed close frame is
    /// reported as `Close(None)` whatever it held.
    fn run(
        &mut self,
        input: &[u8],
        at: &mut usize,
        skipping: bool,
    ) -> Result<Option<Incoming>, FrameError> {
        loop {
            match &mut self.phase {
                Phase::Header(header) => {
                    *at += header.fill(&input[*at..]);
                    if header.have < 2 {
                        return Ok(None);
                    }
                    if header.checked == 0 {
                        header.checked = 1;
                        if !skipping {
                            check_start(header.bytes[0], header.bytes[1], self.message.is_some())?;
                        }
                    }
                    // The first two bytes tell how long the rest of the header is.
                    *at += header.fill(&input[*at..]);
                    if header.have < 2 + header.len_bytes() {
                        return Ok(None);
                    }
                    if header.checked == 1 {
                        header.checked = 2;
                        let len = header
                            .len()
                            .ok_or(FrameError::Protocol("frame length out of range"))?;
                        if !skipping {
                            if !header.is_minimal() {
                                return Err(FrameError::Protocol("frame length not minimal"));
                            }
                            let so_far = self.message.as_ref().map_or(0, |m| m.len);
                            let data = header.bytes[0] & 0x08 == 0;
                            if data && len > (self.limit.saturating_sub(so_far)) as u64 {
                                return Err(FrameError::TooBig);
                            }
                        }
                    }
                    if header.have < header.total() {
                        return Ok(None);
                    }
                    let payload = header.payload();
                    self.phase = Phase::Payload(payload);
                    if !skipping {
                        self.start_frame(payload);
                    }
                }
                Phase::Payload(payload) => {
                    let left = payload.len - payload.read;
                    let take = usize::try_from(left)
                        .map_or(input.len() - *at, |left| left.min(input.len() - *at));
                    let bytes = &input[*at..*at + take];
                    *at += take;
                    let payload = *payload;
                    if let Phase::Payload(p) = &mut self.phase {
                        p.read += take as u64;
                    }
                    if !skipping {
                        self.take_payload(payload, bytes)?;
                    }
                    if payload.read + (take as u64) < payload.len {
                        return Ok(None);
                    }
                    self.phase = Phase::Header(Header::default());
                    if skipping {
                        if payload.opcode == CLOSE {
                            return Ok(Some(Incoming::Close(None)));
                        }
                        continue;
                    }
                    if let Some(message) = self.end_frame(payload)? {
                        return Ok(Some(message));
                    }
                }
            }
            if *at == input.len() && matches!(self.phase, Phase::Header(h) if h.have == 0) {
                return Ok(None);
            }
        }
    }

    fn start_frame(&mut self, frame: Payload) {
        match frame.opcode {
            TEXT | BINARY => {
                self.message = Some(Partial {
                    text: frame.opcode == TEXT,
                    len: 0,
                    data: Vec::new(),
                    valid: 0,
                });
            }
            CONTINUATION => {}
            _ => self.control.clear(),
        }
    }

    fn take_payload(&mut self, frame: Payload, bytes: &[u8]) -> Result<(), FrameError> {
        let offset = frame.read as usize;
        if frame.opcode & 0x08 != 0 {
            unmask_into(&mut self.control, bytes, frame.mask, offset, MAX_CONTROL);
            return Ok(());
        }
        let Some(message) = self.message.as_mut() else {
            return Err(FrameError::Protocol("continuation without a message"));
        };
        message.len += bytes.len();
        if !message.text {
            return Ok(());
        }
        unmask_into(&mut message.data, bytes, frame.mask, offset, self.limit);
        // Only the bytes after the last whole character need a look.
        match std::str::from_utf8(&message.data[message.valid..]) {
            Ok(_) => message.valid = message.data.len(),
            Err(e) if e.error_len().is_none() => message.valid += e.valid_up_to(),
            Err(_) => return Err(FrameError::InvalidUtf8),
        }
        Ok(())
    }

    fn end_frame(&mut self, frame: Payload) -> Result<Option<Incoming>, FrameError> {
        match frame.opcode {
            // The control buffer goes with the message: an idle socket holds none.
            PING => Ok(Some(Incoming::Ping(std::mem::take(&mut self.control)))),
            PONG => {
                self.control = Vec::new();
                Ok(Some(Incoming::Pong))
            }
            CLOSE => {
                self.peer_closed = true;
                let code = close_code(&std::mem::take(&mut self.control))?;
                Ok(Some(Incoming::Close(code)))
            }
            _ if !frame.fin => Ok(None),
            _ => {
                let Some(message) = self.message.take() else {
                    return Err(FrameError::Protocol("continuation without a message"));
                };
                if !message.text {
                    return Ok(Some(Incoming::Binary));
                }
                if message.valid != message.data.len() {
                    return Err(FrameError::InvalidUtf8);
                }
                String::from_utf8(message.data)
                    .map(|text| Some(Incoming::Text(text)))
                    .map_err(|_| FrameError::InvalidUtf8)
            }
        }
    }
}

/// Appends `bytes` unmasked; `offset` is where in the payload they start. The buffer grows by
/// doubling, but never past `cap`, so a message of the limit holds no more than the limit.
fn unmask_into(buf: &mut Vec<u8>, bytes: &[u8], mask: [u8; 4], offset: usize, cap: usize) {
    let need = buf.len() + bytes.len();
    if need > buf.capacity() {
        let want = (buf.capacity() * 2).max(64).min(cap).max(need);
        buf.reserve_exact(want - buf.len());
    }
    buf.extend(
        bytes
            .iter()
            .enumerate()
            .map(|(i, b)| b ^ mask[(offset + i) & 3]),
    );
}

fn close_code(data: &[u8]) -> Result<Option<u16>, FrameError> {
    match data {
        [] => Ok(None),
        [_] => Err(FrameError::Protocol("truncated close code")),
        [hi, lo, reason @ ..] => {
            let code = u16::from_be_bytes([*hi, *lo]);
            if !close::may_be_sent(code) {
                return Err(FrameError::Protocol("invalid close code"));
            }
            std::str::from_utf8(reason).map_err(|_| FrameError::InvalidUtf8)?;
            Ok(Some(code))
        }
    }
}

#[cfg(test)]
mod proptests;
#[cfg(test)]
pub(super) mod tests;
