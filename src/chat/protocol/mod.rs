//! The wire protocol: the events the server sends and the commands it accepts.
//!
//! Every event has the seed's shape `{"id","type","user","data"}`, plus `time` (ms since the
//! epoch) and, on presence events, `count` (users online in the room).

mod ack;
mod command;
pub mod presence;

use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::room::RoomName;
use crate::{auth::User, ws::frame};
pub use ack::{AckData, AckEvent, Cid};
pub use command::{BadCommand, ClientCommand, parse_client_text};

/// One event as a complete WebSocket frame. Cloning it shares the bytes, so a broadcast is
/// serialized and framed once, whatever the number of recipients.
pub type Frame = frame::WireFrame;

/// Frames queued together; see `frame::Chunk`.
pub type Chunk = frame::Chunk;

/// This application's close codes, in the range RFC 6455 leaves to applications (4000–4999).
/// The page reads them: after these it does not reconnect.
/// The protocol's own codes (1001, 1008, ...) are in `ws::close`.
pub mod close {
    /// A moderator removed the user: kicked, or banned (by user or address); the reason says
    /// which, why, and for a ban until when.
    pub const REMOVED: u16 = 4003;
    /// No valid user cookie (the seed's code); the page shows the sign-in view.
    pub const INVALID_USER: u16 = 4001;
    /// The `room` query is not a valid room name; the reason says why.
    pub const INVALID_ROOM: u16 = 4002;
    /// The user already has `--max-sockets-per-user` sockets open (tabs).
    pub const TOO_MANY_SOCKETS: u16 = 4004;
    /// The room would be one too many: the user opened `--room-rate` new rooms this minute,
    /// or this instance holds `--max-rooms`; the reason says which.
    pub const TOO_MANY_ROOMS: u16 = 4005;

    /// A close frame's reason is at most 123 bytes (RFC 6455 5.5.1): cut on a character
    /// boundary.
    pub fn fit_reason(reason: &str) -> &str {
        const MAX: usize = 123;
        if reason.len() <= MAX {
            return reason;
        }
        let end = (0..=MAX)
            .rev()
            .find(|&i| reason.is_char_boundary(i))
            .unwrap_or(0);
        &reason[..end]
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    /// To a new socket: who is online.
    List,
    /// A user's first connection opened.
    Join,
    /// A user's last connection closed.
    Left,
    Chat,
    /// To the sender only: why their frame was refused.
    Error,
    /// A whisper: only to the sender's and the recipient's sockets.
    Private,
    /// An uploaded image, by its `/uploads/<name>` URL.
    Image,
    /// To a new socket, after `list`: earlier events it may see (see `HistoryEvent`).
    History,
    /// A moderator deleted messages of the room (see `DeleteEvent`).
    Delete,
    /// A big room's joins and lefts of one interval (see `presence::PresenceEvent`).
    Presence,
    /// A page of the room's users one socket asked for (see `presence::UsersEvent`).
    Users,
    /// To one socket: events it should have had are gone (Redis lost them, or too many were
    /// missed to send at once); like `error` it takes no id. The client rebuilds from a
    /// fresh join.
    Truncated,
    /// To the sender only: the id its message `cid` was stored under (see `AckEvent`).
    Ack,
}

impl EventKind {
    /// What a moderator may delete: what a user said (chat, images, whispers), never
    /// presence or another `delete`.
    pub fn is_message(self) -> bool {
        matches!(
            self,
            EventKind::Chat | EventKind::Image | EventKind::Private
        )
    }
}

#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum EventData<'a> {
    Text(&'a str),
    Users(&'a [&'a User]),
}

#[derive(Debug, Serialize)]
pub struct ServerEvent<'a> {
    pub id: u64,
    #[serde(rename = "type")]
    pub kind: EventKind,
    pub user: &'a User,
    pub data: EventData<'a>,
    pub time: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<usize>,
}

impl ServerEvent<'_> {
    pub fn to_frame(&self) -> Frame {
        event_frame(self)
    }
}

/// An event serialized once into its text frame: every event type's `to_frame`.
fn event_frame(event: &impl Serialize) -> Frame {
    frame::text(|buf| serde_json::to_writer(buf, event).expect("events always serialize"))
}

/// `error`: the seed's shape (`data` is the English text old clients show), plus a stable
/// `code` and its `params`, from which a page says it in its visitor's language
/// (docs/PROTOCOL.md lists them).
#[derive(Debug, Serialize)]
pub struct ErrorEvent<'a> {
    pub id: u64,
    #[serde(rename = "type")]
    pub kind: EventKind,
    pub user: &'a User,
    pub data: &'a str,
    pub time: u64,
    pub code: &'a str,
    pub params: &'a Value,
    /// The refused message's `cid`, when it had one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cid: Option<&'a Cid>,
}

/// What one socket is told that is no event of its room, in order behind what it is owed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Error {
        code: &'static str,
        /// An object: what the text says, as values a page can put in its own words.
        params: Value,
        text: String,
        cid: Option<Cid>,
    },
    /// Its message `cid` was stored with this id.
    Ack { cid: Cid, id: u64 },
}

impl Reply {
    /// An `error` with its stable code and no params, about the message `cid` if it had one.
    pub fn coded(code: &'static str, text: impl Into<String>, cid: Option<&Cid>) -> Reply {
        Reply::Error {
            code,
            params: Value::Object(serde_json::Map::new()),
            text: text.into(),
            cid: cid.cloned(),
        }
    }

    /// The same `error`, with `params` (an object).
    pub fn with_params(mut self, value: Value) -> Reply {
        if let Reply::Error { params, .. } = &mut self {
            *params = value;
        }
        self
    }
}

/// The stable codes of `error` events; the refusals of a message also use their metrics label
/// (`too_long`, `rate_limited`, `filtered`, `bad_command`, `bad_recipient`, `bad_image`).
pub mod code {
    /// A queue to the store is full: nothing was stored, retry in a moment.
    pub const BUSY: &str = "busy";
    /// Not stored, for certain: retrying cannot duplicate it.
    pub const NOT_SENT: &str = "not_sent";
    /// The whisper's recipient is not online: not stored. Params `id`, `name` (or null).
    pub const NOT_ONLINE: &str = "not_online";
    /// A moderator muted the sender. Params `until` (ms since the epoch), `reason`.
    pub const MUTED: &str = "muted";
    /// The room is read-only or in slow mode. Params `rule`, and `every`, `wait` (s).
    pub const ROOM_RULES: &str = "room_rules";
    /// A page of history could not be read.
    pub const HISTORY_UNAVAILABLE: &str = "history_unavailable";
    /// A page of the room's users could not be read.
    pub const USERS_UNAVAILABLE: &str = "users_unavailable";
}

/// A `private` event: the seed's shape plus `to`, the recipient. `user` is the sender.
#[derive(Debug, Serialize)]
pub struct PrivateEvent<'a> {
    pub id: u64,
    #[serde(rename = "type")]
    pub kind: EventKind,
    pub user: &'a User,
    pub to: &'a User,
    pub data: &'a str,
    pub time: u64,
}

impl PrivateEvent<'_> {
    pub fn to_frame(&self) -> Frame {
        event_frame(self)
    }
}

/// `delete`: messages of the room are gone from history and pages drop their lines. `user`
/// is whose messages they were; `data` always lists them in `ids`, oldest first, and also
/// names the one in `id` when there is exactly one:
/// `{"id":9,"type":"delete","user":…,"data":{"id":4,"ids":[4]},"time":…}`.
#[derive(Debug, Serialize)]
pub struct DeleteEvent<'a> {
    pub id: u64,
    #[serde(rename = "type")]
    pub kind: EventKind,
    pub user: &'a User,
    pub data: DeleteData<'a>,
    pub time: u64,
}

#[derive(Debug, Serialize)]
pub struct DeleteData<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<u64>,
    pub ids: &'a [u64],
}

impl<'a> DeleteData<'a> {
    pub fn new(ids: &'a [u64]) -> Self {
        let id = match ids {
            [one] => Some(*one),
            _ => None,
        };
        DeleteData { id, ids }
    }
}

impl DeleteEvent<'_> {
    pub fn to_frame(&self) -> Frame {
        event_frame(self)
    }
}

/// The head of a stored event: enough to tell whose message it is, what kind and when.
#[derive(Debug, Deserialize)]
pub struct StoredHead {
    #[serde(rename = "type")]
    pub kind: EventKind,
    pub user: User,
    #[serde(default)]
    pub time: u64,
}

impl StoredHead {
    /// `None` if `json` is not an event this server wrote.
    pub fn read(json: &str) -> Option<StoredHead> {
        serde_json::from_str(json).ok()
    }
}

/// `history`: earlier events, oldest first, each exactly as it was sent. `truncated` says that
/// some events the client asked for are not here (pruned, never in this store, or beyond one
/// frame's bounds): it rebuilds its view from these. `more` says older events remain that it
/// may page back to; `before` marks the answer to a page request (`ClientCommand::History`).
#[derive(Debug, Serialize)]
pub struct HistoryEvent<'a> {
    pub id: u64,
    #[serde(rename = "type")]
    pub kind: EventKind,
    pub user: &'a User,
    pub data: &'a [&'a serde_json::value::RawValue],
    pub time: u64,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub more: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub before: Option<u64>,
}

impl HistoryEvent<'_> {
    pub fn to_frame(&self) -> Frame {
        event_frame(self)
    }
}

/// A whisper kept in room `origin`, as a socket in another room gets it: the stored event
/// with `id` replaced by `last`, the id that socket last had, and an `origin` naming the room
/// that keeps it and its id there. Like an `error` it takes none of this room's ids, so ids
/// still never go back on the socket and `?since=` here skips nothing.
/// `{"id":<last>,"type":"private",…,"time":…,"origin":{"room":"<origin>","id":<id>}}`
///
/// Built from the stored bytes, so every engine (Redis's scripts included) gets the same
/// shape; `None` if they are not an event object (never, for frames this server made).
pub fn elsewhere(stored: &Frame, last: u64, origin: &RoomName) -> Option<Frame> {
    let json = frame::payload(stored);
    let after_id = json.strip_prefix(br#"{"id":"#)?;
    let digits = after_id.iter().take_while(|b| b.is_ascii_digit()).count();
    let id = std::str::from_utf8(&after_id[..digits]).ok()?;
    let fields = after_id[digits..].strip_prefix(b",")?.strip_suffix(b"}")?;
    Some(frame::text(|buf| {
        buf.extend_from_slice(format!(r#"{{"id":{last},"#).as_bytes());
        buf.extend_from_slice(fields);
        buf.extend_from_slice(br#","origin":{"room":"#);
        serde_json::to_writer(&mut *buf, origin.as_str()).expect("a room name serializes");
        buf.extend_from_slice(format!(r#","id":{id}}}}}"#).as_bytes());
    }))
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests;
