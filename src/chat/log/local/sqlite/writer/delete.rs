//! One step of a deletion on the writer thread: what it selects is read and removed, and its
//! `delete` event stored, in one transaction, then delivered like any event.

use super::Writer;
use crate::{
    auth::User,
    chat::{
        EngineError, Visibility,
        log::{
            Event,
            deletion::{DeleteError, Doomed, MISSING, NOT_A_MESSAGE},
        },
        protocol::{DeleteData, DeleteEvent, EventKind, StoredHead, now_ms},
        room::RoomName,
    },
    store::history::NewEvent,
};

impl Writer {
    /// Deletes what `doomed` selects in `room` below `id` and keeps the `delete` event at
    /// `id`. Runs after the commit of everything queued before it, so a message sent just
    /// before it is there to delete; the ids deleted, oldest first.
    pub(super) fn delete(
        &mut self,
        room: &RoomName,
        id: u64,
        doomed: Doomed,
    ) -> Result<Vec<u64>, DeleteError> {
        let found = self
            .store
            .doomed(room.as_str(), id, doomed)
            .map_err(|e| self.failed(room, &e))?;
        let mut ids = Vec::with_capacity(found.len());
        let mut author: Option<User> = None;
        for (found_id, body) in found {
            let head = StoredHead::read(&body);
            let Some(head) = head.filter(|head| head.kind.is_message()) else {
                if let Doomed::Message(id) = doomed {
                    return Err(DeleteError::NotAMessage {
                        room: room.clone(),
                        id,
                        why: NOT_A_MESSAGE,
                    });
                }
                continue;
            };
            author.get_or_insert(head.user);
            ids.push(found_id);
        }
        let Some(author) = author else {
            return match doomed {
                Doomed::Message(id) => Err(DeleteError::NotAMessage {
                    room: room.clone(),
                    id,
                    why: MISSING,
                }),
                Doomed::User { .. } => Ok(ids),
            };
        };
        let time = now_ms();
        let frame = DeleteEvent {
            id,
            kind: EventKind::Delete,
            user: &author,
            data: DeleteData::new(&ids),
            time,
        }
        .to_frame();
        let body =
            std::str::from_utf8(crate::ws::frame::payload(&frame)).expect("events are JSON text");
        let event = NewEvent {
            room: room.as_str(),
            id,
            time,
            visible: Visibility::Room,
            body,
            presence: false,
        };
        self.store
            .replace(room.as_str(), &ids, &event)
            .map_err(|e| self.failed(room, &e))?;
        *self.unpruned.entry(room.clone()).or_default() += 1;
        let event = Event {
            id,
            visible: Visibility::Room,
            frame,
        };
        self.hub.deliver(room, &[event]);
        Ok(ids)
    }

    fn failed(&self, room: &RoomName, e: &rusqlite::Error) -> DeleteError {
        tracing::error!(room = %room, error = %e, "deleting messages failed");
        self.health
            .fail(format!("the history store cannot write: {e}"));
        EngineError::NotStored.into()
    }
}
