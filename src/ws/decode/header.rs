//! A client frame's header, read a part at a time, and the checks its first two bytes allow.

use super::{MAX_CONTROL, Payload};
use crate::ws::frame::{BINARY, CLOSE, CONTINUATION, FrameError, PING, PONG, TEXT};

/// A frame header being read: 2 bytes, then 0, 2 or 8 of length, then 4 of mask.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Header {
    pub(super) bytes: [u8; 14],
    pub(super) have: usize,
    /// The checks passed so far: 0 none, 1 the first two bytes, 2 the length too.
    pub(super) checked: u8,
}

impl Header {
    /// Takes header bytes from `input` up to the end of the current part; returns how many.
    pub(super) fn fill(&mut self, input: &[u8]) -> usize {
        let want = if self.have < 2 { 2 } else { self.total() };
        let take = want.saturating_sub(self.have).min(input.len());
        self.bytes[self.have..self.have + take].copy_from_slice(&input[..take]);
        self.have += take;
        take
    }

    pub(super) fn len_bytes(&self) -> usize {
        match self.bytes[1] & 0x7F {
            126 => 2,
            127 => 8,
            _ => 0,
        }
    }

    pub(super) fn total(&self) -> usize {
        2 + self.len_bytes() + if self.bytes[1] & 0x80 != 0 { 4 } else { 0 }
    }

    /// The payload length, once read; `None` for a 64-bit length with its top bit set.
    pub(super) fn len(&self) -> Option<u64> {
        let b = &self.bytes;
        let len = match self.len_bytes() {
            2 => u64::from(u16::from_be_bytes([b[2], b[3]])),
            8 => u64::from_be_bytes([b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9]]),
            _ => u64::from(b[1] & 0x7F),
        };
        (len >> 63 == 0).then_some(len)
    }

    /// Whether the length took the shortest field that holds it, as RFC 6455 5.2 requires:
    /// a 16-bit field for 126 or more, a 64-bit one past 65535.
    pub(super) fn is_minimal(&self) -> bool {
        match (self.len_bytes(), self.len()) {
            (2, Some(len)) => len >= 126,
            (8, Some(len)) => len > 0xFFFF,
            _ => true,
        }
    }

    pub(super) fn payload(&self) -> Payload {
        let at = 2 + self.len_bytes();
        let mut mask = [0; 4];
        if self.bytes[1] & 0x80 != 0 {
            mask.copy_from_slice(&self.bytes[at..at + 4]);
        }
        Payload {
            fin: self.bytes[0] & 0x80 != 0,
            opcode: self.bytes[0] & 0x0F,
            mask,
            read: 0,
            len: self.len().unwrap_or(0),
        }
    }
}

/// The checks the first two bytes allow, so a bad frame is refused before its payload.
pub(super) fn check_start(b0: u8, b1: u8, in_message: bool) -> Result<(), FrameError> {
    if b0 & 0x70 != 0 {
        return Err(FrameError::Protocol("reserved bits set"));
    }
    let fin = b0 & 0x80 != 0;
    match b0 & 0x0F {
        TEXT | BINARY if in_message => {
            return Err(FrameError::Protocol("new message inside a fragmented one"));
        }
        CONTINUATION if !in_message => {
            return Err(FrameError::Protocol("continuation without a message"));
        }
        TEXT | BINARY | CONTINUATION => {}
        CLOSE | PING | PONG if !fin || usize::from(b1 & 0x7F) > MAX_CONTROL => {
            return Err(FrameError::Protocol("bad control frame"));
        }
        CLOSE | PING | PONG => {}
        _ => return Err(FrameError::Protocol("unknown opcode")),
    }
    if b1 & 0x80 == 0 {
        return Err(FrameError::Protocol("client frames must be masked"));
    }
    Ok(())
}
