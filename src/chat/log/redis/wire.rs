//! What crosses the wire to Redis: the scripts, the pieces of an event a script assembles,
//! the stream keys and entries, and the messages Redis publishes.

use std::sync::Arc;

use redis::{Script, ScriptInvocation};

use super::keys::room_key;
use crate::{
    auth::User,
    chat::{
        log::{Event, Visibility},
        protocol::{EventKind, Frame},
        room::RoomName,
    },
    store::Floor,
    ws::frame,
};

pub(super) const CHANNELS: &str = "passerby:room:*";
pub(super) const CHANNEL_PREFIX: &str = "passerby:room:";

const PRELUDE: &str = include_str!("scripts/prelude.lua");
const PRESENCE: &str = include_str!("scripts/presence.lua");

/// The scripts, each with the shared prelude (`scripts/prelude.lua`) in front, and the
/// presence ones with `scripts/presence.lua` after it.
pub(super) struct Scripts {
    pub join: Script,
    pub leave: Script,
    pub beat: Script,
    pub restore: Script,
    /// Messages of one room in one call: chat, images and whispers (`emit.lua`).
    pub emit: Script,
    pub delete: Script,
    /// Read by `gaps` only; it raises what any script would.
    pub position: Script,
    /// The presence keys that cross rooms (`pulse.lua`), a counter raised to the floor
    /// (`raise.lua`) and where a user is (`user_rooms.lua`): each its own slot.
    pub pulse: Script,
    pub raise: Script,
    pub user_rooms: Script,
    /// Every room script's last three arguments (`prelude.lua`, see `Scripts::tail`): the
    /// floor for room ids, the age past which messages go, in ms (0 keeps them), and how
    /// long an idle room's keys live, in ms.
    pub floor: Arc<Floor>,
    pub max_age: u64,
    pub room_ttl: u64,
}

impl Scripts {
    pub fn load(
        floor: Arc<Floor>,
        max_age: Option<std::time::Duration>,
        room_ttl: std::time::Duration,
    ) -> Scripts {
        let ms = |d: std::time::Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        let with_prelude = |body: &str| Script::new(&format!("{PRELUDE}\n{body}"));
        let presence = |body: &str| Script::new(&format!("{PRELUDE}\n{PRESENCE}\n{body}"));
        Scripts {
            join: presence(include_str!("scripts/join.lua")),
            leave: presence(include_str!("scripts/leave.lua")),
            beat: presence(include_str!("scripts/beat.lua")),
            restore: presence(include_str!("scripts/restore.lua")),
            emit: with_prelude(include_str!("scripts/emit.lua")),
            delete: with_prelude(include_str!("scripts/delete.lua")),
            position: with_prelude(include_str!("scripts/position.lua")),
            pulse: Script::new(include_str!("scripts/pulse.lua")),
            raise: Script::new(include_str!("scripts/raise.lua")),
            user_rooms: Script::new(include_str!("scripts/user_rooms.lua")),
            floor,
            max_age: max_age.map_or(0, ms),
            room_ttl: ms(room_ttl).max(1),
        }
    }

    /// A room script's invocation, its room's seq key first (a cluster sends it there).
    pub fn room_call<'a>(&'a self, script: &'a Script, room: &RoomName) -> ScriptInvocation<'a> {
        let mut invocation = script.prepare_invoke();
        invocation.key(room_key(room, "seq"));
        invocation
    }

    /// Ends a room script's arguments with the prelude's three.
    pub fn tail(&self, invocation: &mut ScriptInvocation<'_>) {
        invocation
            .arg(self.floor.values().rooms)
            .arg(self.max_age)
            .arg(self.room_ttl);
    }
}

/// An event as a script receives it: each piece already JSON, escaped by serde, so the
/// script only places them, in the order of `protocol::ServerEvent`, around the id, time
/// and count it adds (see `prelude.lua`).
#[derive(Debug, Clone)]
pub(super) struct Pieces {
    /// The event's `type`, a JSON string.
    pub kind: String,
    /// The sender, a JSON object.
    pub user: String,
    /// The text, a JSON string.
    pub data: String,
}

impl Pieces {
    pub fn new(kind: EventKind, user: &User, text: &str) -> Pieces {
        Pieces {
            kind: json(&kind),
            user: user_json(user),
            data: json(text),
        }
    }
}

pub(super) fn user_json(user: &User) -> String {
    json(user)
}

/// A user's `join` and `left` texts as JSON strings; a script adds the rest, since only
/// Redis knows whether this socket is the user's first or last in the cluster.
pub(super) fn presence_texts(user: &User) -> (String, String) {
    (
        json(&format!("{} joined.", user.name)),
        json(&format!("{} is left.", user.name)),
    )
}

fn json(value: &(impl serde::Serialize + ?Sized)) -> String {
    serde_json::to_string(value).expect("users, kinds and texts serialize")
}

pub(super) fn text_frame(json: &[u8]) -> Frame {
    frame::text(|buf| buf.extend_from_slice(json))
}

/// The room's messages (chat, images, whispers): its history.
pub(super) fn stream_key(room: &RoomName) -> String {
    super::keys::room_key(room, "stream")
}

/// The room's `join` and `left`, under their own bound: replayed by a recovery only.
pub(super) fn presence_key(room: &RoomName) -> String {
    super::keys::room_key(room, "presence")
}

/// A stream entry's room id (entries are `<id>-0`).
pub(super) fn entry_id(entry: &str) -> Option<u64> {
    entry.split('-').next()?.parse().ok()
}

/// A stream entry's or a message's visibility: `0 0` for the room, else the pair.
pub(super) fn parse_visibility(v: &str) -> Option<Visibility> {
    let (a, b) = v.split_once(' ')?;
    let (a, b) = (a.parse().ok()?, b.parse().ok()?);
    Some(if (a, b) == (0, 0) {
        Visibility::Room
    } else {
        Visibility::Pair(a, b)
    })
}

/// A published message: one event per line, each `<id> <a> <b> <json>`, where `a b` is `0 0`
/// or the pair who may see it. Lines cannot clash with the JSON: serde escapes a newline in
/// a string, and writes none between fields. `None` if any line is unreadable.
pub(super) fn parse_published(payload: &[u8]) -> Option<Vec<Event>> {
    payload.split(|&b| b == b'\n').map(parse_event).collect()
}

fn parse_event(payload: &[u8]) -> Option<Event> {
    let mut parts = payload.splitn(4, |&b| b == b' ');
    let mut number = || -> Option<u64> { std::str::from_utf8(parts.next()?).ok()?.parse().ok() };
    let (id, a, b) = (number()?, number()?, number()?);
    let visible = if (a, b) == (0, 0) {
        Visibility::Room
    } else {
        Visibility::Pair(a, b)
    };
    Some(Event {
        id,
        visible,
        frame: text_frame(parts.next()?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        auth::UserName,
        chat::protocol::{EventData, PrivateEvent, ServerEvent},
    };

    /// What `emit` in `prelude.lua` does with the pieces, written again here to pin it to
    /// serde's output for the same event.
    fn assemble(p: &Pieces, id: u64, to: Option<&str>, time: u64, count: Option<u64>) -> String {
        let mut json = format!("{{\"id\":{id},\"type\":{},\"user\":{}", p.kind, p.user);
        if let Some(to) = to {
            json += &format!(",\"to\":{to}");
        }
        json += &format!(",\"data\":{},\"time\":{time}", p.data);
        if let Some(count) = count {
            json += &format!(",\"count\":{count}");
        }
        json + "}"
    }

    /// Built directly: serialization must match whatever a name holds.
    fn tricky_user() -> User {
        User {
            name: "a\"to\":0, \\ é 😀 </b>".to_owned(),
            ..User::guest(7, UserName::parse("a").unwrap())
        }
    }

    const TRICKY: &str = "say \"time\":0} </script> \\ \u{1} ünï 😀 \u{2028}";

    #[test]
    fn a_scripted_event_matches_serdes_bytes_for_the_same_event() {
        let user = tricky_user();
        let pieces = Pieces::new(EventKind::Chat, &user, TRICKY);
        let serde = serde_json::to_string(&ServerEvent {
            id: 12,
            kind: EventKind::Chat,
            user: &user,
            data: EventData::Text(TRICKY),
            time: 1_700_000_000_123,
            count: None,
        })
        .unwrap();
        assert_eq!(assemble(&pieces, 12, None, 1_700_000_000_123, None), serde);
    }

    #[test]
    fn a_scripted_presence_event_matches_serdes_bytes_with_its_count() {
        let user = tricky_user();
        let (joined, left) = presence_texts(&user);
        for (kind, data, text) in [
            (EventKind::Join, joined, format!("{} joined.", user.name)),
            (EventKind::Left, left, format!("{} is left.", user.name)),
        ] {
            let pieces = Pieces {
                data,
                ..Pieces::new(kind, &user, "")
            };
            let serde = serde_json::to_string(&ServerEvent {
                id: 3,
                kind,
                user: &user,
                data: EventData::Text(&text),
                time: 5,
                count: Some(2),
            })
            .unwrap();
            assert_eq!(assemble(&pieces, 3, None, 5, Some(2)), serde);
        }
    }

    #[test]
    fn a_scripted_whisper_matches_serdes_bytes_with_its_recipient() {
        let (user, to) = (tricky_user(), User::guest(9, UserName::parse("b").unwrap()));
        let pieces = Pieces::new(EventKind::Private, &user, TRICKY);
        let serde = serde_json::to_string(&PrivateEvent {
            id: 4,
            kind: EventKind::Private,
            user: &user,
            to: &to,
            data: TRICKY,
            time: 6,
        })
        .unwrap();
        let to = user_json(&to);
        assert_eq!(assemble(&pieces, 4, Some(&to), 6, None), serde);
    }

    #[test]
    fn the_scripts_name_presence_events_as_serde_does() {
        let scripts = [
            PRELUDE,
            PRESENCE,
            include_str!("scripts/join.lua"),
            include_str!("scripts/restore.lua"),
        ]
        .concat();
        for kind in [EventKind::Join, EventKind::Left] {
            let named = format!("'{}'", json(&kind));
            assert!(scripts.contains(&named), "{named}");
        }
    }

    #[test]
    fn published_messages_carry_id_visibility_and_the_event() {
        let events = parse_published(b"12 3 4 {\"id\":12}").unwrap();
        let event = &events[0];
        assert_eq!(event.id, 12);
        assert_eq!(event.visible, Visibility::Pair(3, 4));
        assert_eq!(frame::payload(&event.frame), b"{\"id\":12}");
        assert_eq!(
            parse_published(b"5 0 0 {}").unwrap()[0].visible,
            Visibility::Room
        );
        assert!(parse_published(b"x 0 0 {}").is_none());
    }

    #[test]
    fn a_published_batch_is_one_event_per_line_in_order() {
        let user = tricky_user();
        let pieces = Pieces::new(EventKind::Chat, &user, "two\nlines");
        let one = assemble(&pieces, 7, None, 1, None);
        let two = assemble(&pieces, 8, None, 1, None);
        let payload = format!("7 0 0 {one}\n8 1 2 {two}");
        let events = parse_published(payload.as_bytes()).unwrap();
        let ids: Vec<u64> = events.iter().map(|e| e.id).collect();
        assert_eq!(ids, [7, 8]);
        assert_eq!(frame::payload(&events[1].frame), two.as_bytes());
        assert_eq!(events[1].visible, Visibility::Pair(1, 2));
        assert!(parse_published(format!("{payload}\nbad").as_bytes()).is_none());
    }
}
