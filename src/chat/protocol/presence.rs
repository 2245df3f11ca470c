//! Big rooms on the wire: `list` with a first page and a cursor, the `users` page a client
//! asks for with `{"type":"users","after":<cursor>}`, and `presence`, the joins and lefts of
//! one interval summed up; and reading a `join` or `left` frame back (any engine's).
//!
//! A room of at most `--big-room` users sees the seed's `list`, `join` and `left` exactly;
//! these shapes are for the rooms above it (see docs/PROTOCOL.md, "Big rooms").

use serde::{Deserialize, Serialize};

use super::{EventKind, Frame, event_frame};
use crate::{auth::User, ws::frame};

/// `list`: `ServerEvent`'s fields in its order, and `next` when more users follow the page
/// (only in a big room). Without `next` it is byte for byte the seed's `list`.
#[derive(Debug, Serialize)]
pub struct ListEvent<'a> {
    pub id: u64,
    #[serde(rename = "type")]
    pub kind: EventKind,
    pub user: &'a User,
    pub data: &'a [&'a User],
    pub time: u64,
    pub count: usize,
    /// The cursor to ask for the users after this page with.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<u64>,
}

impl ListEvent<'_> {
    pub fn to_frame(&self) -> Frame {
        event_frame(self)
    }
}

/// `users`: a page of the room's users for one socket, after the cursor it asked with
/// (echoed in `after`), in the order they came. Not an event of the room: its `id` is the
/// last one its socket had, like an `error`'s.
#[derive(Debug, Serialize)]
pub struct UsersEvent<'a> {
    pub id: u64,
    #[serde(rename = "type")]
    pub kind: EventKind,
    pub user: &'a User,
    pub data: &'a [&'a User],
    pub time: u64,
    pub count: usize,
    pub after: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<u64>,
}

/// `presence`: who joined and who left a big room since the last one, and how many are in
/// it now. It sums up `join` and `left` events, which keep their ids and their place in
/// history; it is no event of its own, so it has no `id` (nor a `user`): one frame shared
/// by every socket of the room, and a client's `since` is untouched by it.
#[derive(Debug, Serialize)]
pub struct PresenceEvent<'a> {
    #[serde(rename = "type")]
    pub kind: EventKind,
    pub data: PresenceData<'a>,
    pub time: u64,
}

#[derive(Debug, Serialize)]
pub struct PresenceData<'a> {
    pub joined: &'a [&'a User],
    pub left: &'a [&'a User],
    pub count: usize,
    /// More users came or went than the lists carry (each is cut to `--list-page`): a client
    /// that shows the whole list asks for it again.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub more: bool,
}

impl PresenceEvent<'_> {
    pub fn to_frame(&self) -> Frame {
        event_frame(self)
    }
}

/// A `join` or `left` frame read back: who, which, and the room's count after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Presence {
    pub joined: bool,
    pub user: User,
    pub count: usize,
}

/// `Some` if `frame` is a `join` or `left` (built by this server or by a Redis script, both
/// in the seed's key order: `{"id":…,"type":"join",…`). Anything else costs a prefix check.
pub fn read_presence(frame: &Frame) -> Option<Presence> {
    let json = frame::payload(frame);
    let after_id = json.strip_prefix(br#"{"id":"#)?;
    let digits = after_id.iter().take_while(|b| b.is_ascii_digit()).count();
    let rest = &after_id[digits..];
    if !(rest.starts_with(br#","type":"join""#) || rest.starts_with(br#","type":"left""#)) {
        return None;
    }
    #[derive(Deserialize)]
    struct Head {
        #[serde(rename = "type")]
        kind: EventKind,
        user: User,
        #[serde(default)]
        count: usize,
    }
    let head: Head = serde_json::from_slice(json).ok()?;
    Some(Presence {
        joined: head.kind == EventKind::Join,
        user: head.user,
        count: head.count,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::protocol::{EventData, ServerEvent};

    fn user(id: u64) -> User {
        User {
            kind: "游客".into(),
            id,
            name: format!("u{id}"),
            image: (id % 10) as u8,
        }
    }

    #[test]
    fn a_list_without_next_is_the_seeds_list_byte_for_byte() {
        let (me, other) = (user(1), user(2));
        let users = [&me, &other];
        let seed = ServerEvent {
            id: 4,
            kind: EventKind::List,
            user: &me,
            data: EventData::Users(&users),
            time: 9,
            count: Some(2),
        }
        .to_frame();
        let list = ListEvent {
            id: 4,
            kind: EventKind::List,
            user: &me,
            data: &users,
            time: 9,
            count: 2,
            next: None,
        };
        assert_eq!(list.to_frame(), seed);
        let paged = ListEvent {
            next: Some(3),
            count: 5,
            ..list
        };
        assert!(
            frame::payload(&paged.to_frame()).ends_with(br#","count":5,"next":3}"#),
            "the cursor comes last"
        );
    }

    #[test]
    fn join_and_left_frames_read_back_and_nothing_else_does() {
        let who = user(7);
        let event = |kind, count| {
            ServerEvent {
                id: 12,
                kind,
                user: &who,
                data: EventData::Text("u7 joined."),
                time: 1,
                count,
            }
            .to_frame()
        };
        assert_eq!(
            read_presence(&event(EventKind::Join, Some(3))),
            Some(Presence {
                joined: true,
                user: who.clone(),
                count: 3
            })
        );
        let left = read_presence(&event(EventKind::Left, Some(2))).unwrap();
        assert!(!left.joined && left.count == 2);
        assert_eq!(read_presence(&event(EventKind::Chat, None)), None);
        // A chat whose text looks like a join is still a chat: the type is read, not the text.
        let sly = ServerEvent {
            id: 1,
            kind: EventKind::Chat,
            user: &who,
            data: EventData::Text(r#"{"id":1,"type":"join""#),
            time: 1,
            count: None,
        }
        .to_frame();
        assert_eq!(read_presence(&sly), None);
    }

    #[test]
    fn a_presence_has_no_id_and_says_more_only_when_cut() {
        let (a, b) = (user(1), user(2));
        let frame = PresenceEvent {
            kind: EventKind::Presence,
            data: PresenceData {
                joined: &[&a],
                left: &[&b],
                count: 300,
                more: false,
            },
            time: 5,
        }
        .to_frame();
        let json: serde_json::Value = serde_json::from_slice(frame::payload(&frame)).unwrap();
        assert_eq!(json["type"], "presence");
        assert!(json.get("id").is_none() && json["data"].get("more").is_none());
        assert_eq!(json["data"]["joined"][0]["id"], 1);
        assert_eq!(json["data"]["left"][0]["id"], 2);
        assert_eq!(json["data"]["count"], 300);
    }
}
