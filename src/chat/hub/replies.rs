//! What the hub sends one socket that is no event of the room (an `error`, an `ack`, a page of
//! history): stamped with the id of the last event that socket had.

use serde_json::json;

use super::{Hub, Unstamped};
use crate::chat::{
    Membership,
    protocol::{AckData, AckEvent, Cid, ErrorEvent, EventKind, Reply, code, now_ms},
};

/// The `error` for a whisper to user `to`, who is not online: named, if seen here lately.
pub fn not_online(hub: &Hub, to: u64, cid: Option<&Cid>) -> Reply {
    let name = hub.name_of(to);
    let text = match &name {
        Some(name) => format!("{name} (user {to}) is not online"),
        None => format!("user {to} is not online"),
    };
    Reply::coded(code::NOT_ONLINE, text, cid).with_params(json!({ "id": to, "name": name }))
}

impl Hub {
    /// An `error` to one socket. It carries the id of the last event that socket was sent:
    /// it is not an event of the room, so it takes no id of its own, and a client that
    /// resumes from it misses nothing.
    pub fn reply_error(&self, member: &Membership, code: &'static str, message: &str) {
        self.reply(member, &Reply::coded(code, message, None));
    }

    /// An `error` or an `ack` to one socket, stamped like `reply_error`.
    pub fn reply(&self, member: &Membership, reply: &Reply) {
        let frame = match reply {
            Reply::Error {
                code,
                params,
                text,
                cid,
            } => Unstamped::new(&ErrorEvent {
                id: 0,
                kind: EventKind::Error,
                user: &member.user,
                data: text,
                time: now_ms(),
                code,
                params,
                cid: cid.as_ref(),
            }),
            Reply::Ack { cid, id } => Unstamped::new(&AckEvent {
                id: 0,
                kind: EventKind::Ack,
                data: AckData { cid, id: *id },
                time: now_ms(),
            }),
        };
        if !self.reply_with(member, frame) {
            tracing::debug!(user = member.user.id, ?reply, "no socket for the reply");
        }
    }

    /// A frame for one socket only that is no event of the room (an `error`, a page of
    /// history), stamped with the id of the last event the socket was sent. It was built
    /// before the lock, so a page of history keeps no other room waiting; the stamp is
    /// under it, so no event can reach the socket between that id and this frame. False if
    /// the socket is not here.
    pub fn reply_with(&self, member: &Membership, frame: Unstamped) -> bool {
        let state = self.lock();
        let Some(socket) = state
            .rooms
            .get(&member.room)
            .and_then(|m| m.sockets.get(&member.socket))
        else {
            return false;
        };
        // A full outbox marks its socket for closing; its task does the rest.
        let _ = socket.outbox.push(frame.stamp(socket.last()));
        true
    }
}
