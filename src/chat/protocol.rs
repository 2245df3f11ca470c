//! The wire protocol: the events the server sends and the commands it accepts.
//!
//! Every event has the seed's shape `{"id","type","user","data"}`, plus `time` (ms since the
//! epoch) and, on presence events, `count` (users online in the room).

use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::room::RoomName;
use crate::{auth::User, ws::frame};

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
        frame::text(|buf| serde_json::to_writer(buf, self).expect("events always serialize"))
    }
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
        frame::text(|buf| serde_json::to_writer(buf, self).expect("events always serialize"))
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
        frame::text(|buf| serde_json::to_writer(buf, self).expect("events always serialize"))
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
        frame::text(|buf| serde_json::to_writer(buf, self).expect("events always serialize"))
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

/// What a client's text frame asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum ClientCommand {
    Chat(String),
    /// A whisper to the user with this id.
    Private {
        to: u64,
        data: String,
    },
    /// An uploaded image's URL, `/uploads/<name>`.
    Image(String),
    /// A page of the events before this id (at least 1), newest first to fill it.
    History {
        before: u64,
    },
}

/// A command we cannot read: an unknown `type`, or fields missing or of the wrong kind. The
/// text is the `error` the client is told, with serde's account of what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad command: {0}")]
pub struct BadCommand(String);

/// A text frame is chat, unless it is a JSON object with a string `type`: then it is a command.
pub fn parse_client_text(text: &str) -> Result<ClientCommand, BadCommand> {
    let Some(command) = as_command(text) else {
        return Ok(ClientCommand::Chat(text.to_owned()));
    };
    #[derive(Deserialize)]
    #[serde(tag = "type", rename_all = "lowercase")]
    enum Wire {
        Chat { data: String },
        Private { to: u64, data: String },
        Image { data: String },
        History { before: u64 },
    }
    match serde_json::from_value::<Wire>(command) {
        Ok(Wire::Chat { data }) => Ok(ClientCommand::Chat(data)),
        Ok(Wire::Private { to, data }) => Ok(ClientCommand::Private { to, data }),
        Ok(Wire::Image { data }) => Ok(ClientCommand::Image(data)),
        Ok(Wire::History { before: 0 }) => Err(BadCommand(
            "history needs `before`, an event id above 0".into(),
        )),
        Ok(Wire::History { before }) => Ok(ClientCommand::History { before }),
        Err(e) => Err(BadCommand(e.to_string())),
    }
}

fn as_command(text: &str) -> Option<serde_json::Value> {
    if !text.trim_start().starts_with('{') {
        return None;
    }
    let value: serde_json::Value = serde_json::from_str(text).ok()?;
    value.get("type")?.is_string().then_some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user() -> User {
        User {
            kind: "游客".into(),
            id: 3,
            name: "a".into(),
            image: 3,
        }
    }

    #[test]
    fn events_have_the_seed_shape() {
        let u = user();
        let frame = ServerEvent {
            id: 9,
            kind: EventKind::Chat,
            user: &u,
            data: EventData::Text("hi"),
            time: 1,
            count: None,
        }
        .to_frame();
        assert_eq!(
            std::str::from_utf8(frame::payload(&frame)).unwrap(),
            r#"{"id":9,"type":"chat","user":{"type":"游客","id":3,"name":"a","image":3},"data":"hi","time":1}"#
        );
    }

    #[test]
    fn list_data_is_an_array_of_users_with_a_count() {
        let u = user();
        let frame = ServerEvent {
            id: 1,
            kind: EventKind::List,
            user: &u,
            data: EventData::Users(&[&u]),
            time: 1,
            count: Some(1),
        }
        .to_frame();
        let v: serde_json::Value = serde_json::from_slice(frame::payload(&frame)).unwrap();
        assert_eq!(v["data"][0]["name"], "a");
        assert_eq!(v["count"], 1);
    }

    #[test]
    fn a_delete_names_one_id_in_id_and_always_lists_them_in_ids() {
        let u = user();
        let one = DeleteEvent {
            id: 9,
            kind: EventKind::Delete,
            user: &u,
            data: DeleteData::new(&[4]),
            time: 1,
        }
        .to_frame();
        let v: serde_json::Value = serde_json::from_slice(frame::payload(&one)).unwrap();
        assert_eq!(v["type"], "delete");
        assert_eq!(v["data"], serde_json::json!({"id": 4, "ids": [4]}));
        let many = DeleteEvent {
            data: DeleteData::new(&[4, 6]),
            id: 10,
            kind: EventKind::Delete,
            user: &u,
            time: 1,
        }
        .to_frame();
        assert!(
            std::str::from_utf8(frame::payload(&many))
                .unwrap()
                .contains(r#""data":{"ids":[4,6]}"#)
        );
        let head = StoredHead::read(std::str::from_utf8(frame::payload(&one)).unwrap()).unwrap();
        assert_eq!(
            (head.kind, head.user.id, head.time),
            (EventKind::Delete, 3, 1)
        );
        assert!(!head.kind.is_message());
    }

    #[test]
    fn plain_text_is_chat() {
        assert_eq!(
            parse_client_text("hello"),
            Ok(ClientCommand::Chat("hello".into()))
        );
    }

    #[test]
    fn json_without_a_string_type_is_chat_too() {
        for text in [r#"{"a":1}"#, r#"{"type":3}"#, "[1,2]", "{not json"] {
            assert_eq!(
                parse_client_text(text),
                Ok(ClientCommand::Chat(text.into()))
            );
        }
    }

    #[test]
    fn chat_command_carries_its_data() {
        assert_eq!(
            parse_client_text(r#"{"type":"chat","data":"hi"}"#),
            Ok(ClientCommand::Chat("hi".into()))
        );
    }

    #[test]
    fn private_and_image_commands_carry_their_fields() {
        assert_eq!(
            parse_client_text(r#"{"type":"private","to":7,"data":"psst"}"#),
            Ok(ClientCommand::Private {
                to: 7,
                data: "psst".into()
            })
        );
        assert_eq!(
            parse_client_text(r#"{"type":"image","data":"/uploads/x.png"}"#),
            Ok(ClientCommand::Image("/uploads/x.png".into()))
        );
        for bad in [
            r#"{"type":"private","data":"no one"}"#,
            r#"{"type":"private","to":"7","data":"a string id"}"#,
            r#"{"type":"private","to":-1,"data":"x"}"#,
            r#"{"type":"private","to":7}"#,
            r#"{"type":"image"}"#,
        ] {
            assert!(parse_client_text(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_private_event_names_sender_and_recipient() {
        let (from, mut to) = (user(), user());
        to.id = 4;
        let frame = PrivateEvent {
            id: 2,
            kind: EventKind::Private,
            user: &from,
            to: &to,
            data: "psst",
            time: 1,
        }
        .to_frame();
        let v: serde_json::Value = serde_json::from_slice(frame::payload(&frame)).unwrap();
        assert_eq!(v["type"], "private");
        assert_eq!(
            (v["user"]["id"].as_u64(), v["to"]["id"].as_u64()),
            (Some(3), Some(4))
        );
    }

    #[test]
    fn a_whisper_elsewhere_keeps_the_sockets_id_and_names_its_origin() {
        let (from, mut to) = (user(), user());
        to.id = 4;
        let stored = PrivateEvent {
            id: 12,
            kind: EventKind::Private,
            user: &from,
            to: &to,
            data: "psst \"id\":1}",
            time: 1,
        }
        .to_frame();
        let tea = RoomName::parse("tea").unwrap();
        let frame = elsewhere(&stored, 5, &tea).unwrap();
        let v: serde_json::Value = serde_json::from_slice(frame::payload(&frame)).unwrap();
        assert_eq!(v["id"], 5);
        assert_eq!(v["origin"], serde_json::json!({"room": "tea", "id": 12}));
        assert_eq!(
            (v["type"].as_str(), v["data"].as_str()),
            (Some("private"), Some("psst \"id\":1}"))
        );
        assert_eq!(v["to"]["id"], 4);
        assert!(elsewhere(&frame::text(|b| b.extend_from_slice(b"[1]")), 5, &tea).is_none());
    }

    #[test]
    fn unknown_or_malformed_commands_are_errors() {
        assert!(
            parse_client_text(r#"{"type":"fly"}"#)
                .unwrap_err()
                .to_string()
                .starts_with("bad command: unknown variant `fly`")
        );
        assert!(
            parse_client_text(r#"{"type":"chat"}"#)
                .unwrap_err()
                .to_string()
                .contains("data")
        );
        assert!(parse_client_text(r#"{"type":"chat","data":5}"#).is_err());
    }

    #[test]
    fn a_history_command_names_an_id_above_zero() {
        assert_eq!(
            parse_client_text(r#"{"type":"history","before":42}"#),
            Ok(ClientCommand::History { before: 42 })
        );
        for bad in [
            r#"{"type":"history"}"#,
            r#"{"type":"history","before":0}"#,
            r#"{"type":"history","before":-3}"#,
            r#"{"type":"history","before":"7"}"#,
            r#"{"type":"history","before":1.5}"#,
        ] {
            assert!(parse_client_text(bad).is_err(), "{bad}");
        }
    }
}
