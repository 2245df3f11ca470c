//! What the hub sends one socket that is no event of the room (an `error`, an `ack`, a page of
//! history): stamped with the id of the last event that socket had.

use super::{Hub, Unstamped};
use crate::chat::{
    Membership,
    protocol::{AckData, AckEvent, ErrorEvent, EventKind, Reply, now_ms},
};

impl Hub {
    /// An `error` to one socket. It carries the id of the last event that socket was sent:
    /// it is not an event of the room, so it takes no id of its own, and a client that
    /// resumes from it misses nothing.
    pub fn reply_error(&self, member: &Membership, message: &str) {
        self.reply(member, &Reply::error(message));
    }

    /// An `error` or an `ack` to one socket, stamped like `reply_error`.
    pub fn reply(&self, member: &Membership, reply: &Reply) {
        let frame = match reply {
            Reply::Error { code, text, cid } => Unstamped::new(&ErrorEvent {
                id: 0,
                kind: EventKind::Error,
                user: &member.user,
                data: text,
                time: now_ms(),
                code: *code,
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
