//! One socket as the hub sees it: which events it has had, and what waits for its `history`.

use super::wake::Wakers;
use crate::{
    auth::SessionId,
    chat::{
        log::{Entry, Event},
        outbox::Outbox,
        protocol::{self, Chunk, Frame},
        room::RoomName,
    },
};

#[derive(Debug)]
pub(super) struct Socket {
    user: u64,
    /// The sign-in it came with: a sign-out closes it.
    pub(super) session: SessionId,
    pub(super) outbox: Outbox,
    /// The newest id the socket has had its share of: its `history` covered everything up
    /// to its floor, and nothing at or below this is sent again (a catch-up after a lost
    /// subscription may repeat events). An `error` reply reuses it.
    last: u64,
    /// Until `settle`; boxed, so a settled socket keeps one pointer of it, not three lists.
    joining: Option<Box<Joining>>,
}

/// What waits for a joining socket until it knows its floor.
#[derive(Debug, Default)]
struct Joining {
    /// What the room heard before the socket knew its floor.
    heard: Vec<Event>,
    /// Whispers kept in other rooms, sent once the socket knows its `last`.
    asides: Vec<(Event, RoomName)>,
    /// A big room's `presence` frames, sent once the socket is settled.
    late: Vec<Frame>,
}

impl Socket {
    pub(super) fn pending(user: u64, session: SessionId, outbox: Outbox) -> Socket {
        Socket {
            user,
            session,
            outbox,
            last: 0,
            joining: Some(Box::default()),
        }
    }

    pub(super) fn last(&self) -> u64 {
        self.last
    }

    /// Whether it knows its floor (`settle`); before, what the room hears waits for it.
    pub(super) fn settled(&self) -> bool {
        self.joining.is_none()
    }

    pub(super) fn user(&self) -> u64 {
        self.user
    }

    /// Events up to `id` will not be sent: the socket was told they are gone (`truncated`).
    pub(super) fn skip_to(&mut self, id: u64) {
        self.last = self.last.max(id);
    }

    pub(super) fn settle(&mut self, entry: Entry) {
        self.last = entry.floor;
        // A full outbox marks its socket for closing; its task does the rest.
        let _ = self.outbox.push_chunk(&entry.frames.into_iter().collect());
        let Joining {
            heard,
            asides,
            late,
        } = *self.joining.take().unwrap_or_default();
        let mut wakers = Wakers::default();
        self.deliver(&heard, None, &mut wakers);
        wakers.wake_all();
        for (event, origin) in asides {
            self.aside(&event, &origin);
        }
        for frame in late {
            self.late(frame);
        }
    }

    /// A frame that is no event of the room and carries no id (a big room's `presence`):
    /// after whatever the socket was sent, or once it is settled.
    pub(super) fn late(&mut self, frame: Frame) {
        if let Some(joining) = &mut self.joining {
            joining.late.push(frame);
            return;
        }
        // A full outbox marks its socket for closing; its task does the rest.
        let _ = self.outbox.push(frame);
    }

    /// A whisper kept in `origin`, another room: it carries this socket's `last` (see
    /// `protocol::elsewhere`) and leaves `last` as it was, so this room's ids and its
    /// recovery are untouched.
    pub(super) fn aside(&mut self, event: &Event, origin: &RoomName) {
        if let Some(joining) = &mut self.joining {
            joining.asides.push((event.clone(), origin.clone()));
            return;
        }
        match protocol::elsewhere(&event.frame, self.last, origin) {
            // A full outbox marks its socket for closing; its task does the rest.
            Some(frame) => {
                let _ = self.outbox.push(frame);
            }
            None => tracing::warn!(origin = %origin, id = event.id, "unreadable whisper"),
        }
    }

    /// `shared`: the events' frames as one chunk, when every event is for the whole room.
    /// The socket's task is added to `wakers`, to be woken once the hub's lock is let go.
    pub(super) fn deliver(
        &mut self,
        events: &[Event],
        shared: Option<&Chunk>,
        wakers: &mut Wakers,
    ) {
        let (Some(first), Some(newest)) = (events.first(), events.last()) else {
            return;
        };
        if let Some(joining) = &mut self.joining {
            joining.heard.extend_from_slice(events);
            return;
        }
        if newest.id <= self.last {
            return;
        }
        let pushed = match shared {
            Some(chunk) if first.id > self.last => self.outbox.push_quietly(chunk),
            _ => {
                let own: Chunk = events
                    .iter()
                    .filter(|e| e.id > self.last && e.visible.allows(self.user))
                    .map(|e| e.frame.clone())
                    .collect();
                if own.is_empty() {
                    return;
                }
                self.outbox.push_quietly(&own)
            }
        };
        self.last = newest.id;
        // A full outbox marks its socket for closing; its task does the rest.
        let (_, waker) = pushed;
        wakers.add(waker);
    }
}
