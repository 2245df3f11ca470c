//! The local log's events as they are made: ids taken in order and checked, and each event
//! serialized once, with its id, for every recipient.

use super::Kept;
use crate::{
    auth::User,
    chat::{
        EngineError,
        log::{Event, Visibility},
        protocol::{EventData, EventKind, PrivateEvent, ServerEvent, now_ms},
    },
};

/// Takes the room's next `n` ids and returns the first. Checked: ids that wrapped would
/// repeat ones clients already hold, so a room that runs out refuses instead.
pub(super) fn take_ids(last_id: &mut u64, n: u64) -> Result<u64, EngineError> {
    let last = last_id.checked_add(n).ok_or(EngineError::IdsExhausted)?;
    let first = *last_id + 1;
    *last_id = last;
    Ok(first)
}

/// A `join` or `left` with the count of users it leaves in the room.
pub(super) fn presence_counted(id: u64, kind: EventKind, user: &User, count: usize) -> Kept {
    let text = match kind {
        EventKind::Join => format!("{} joined.", user.name),
        _ => format!("{} is left.", user.name),
    };
    kept(id, kind, user, EventData::Text(&text), Some(count))
}

/// A room event with its id, serialized once for every recipient.
pub(super) fn kept(
    id: u64,
    kind: EventKind,
    user: &User,
    data: EventData<'_>,
    count: Option<usize>,
) -> Kept {
    let time = now_ms();
    let frame = ServerEvent {
        id,
        kind,
        user,
        data,
        time,
        count,
    }
    .to_frame();
    Kept {
        event: Event {
            id,
            visible: Visibility::Room,
            frame,
        },
        time,
        kind,
        cid: None,
    }
}

/// A whisper of `user` to `to`: an event of the sender's room, visible to the two.
pub(super) fn whisper(id: u64, user: &User, to: &User, text: &str) -> Kept {
    let time = now_ms();
    let frame = PrivateEvent {
        id,
        kind: EventKind::Private,
        user,
        to,
        data: text,
        time,
    }
    .to_frame();
    Kept {
        event: Event {
            id,
            visible: Visibility::Pair(user.id, to.id),
            frame,
        },
        time,
        kind: EventKind::Private,
        cid: None,
    }
}
