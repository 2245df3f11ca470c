//! `LocalLog`: ids and presence kept in this process, for an instance that is the whole chat.
//!
//! One short critical section per event assigns the room's next id, serializes the event
//! once and hands it to the `Keeper`, still in id order: `memory` delivers it to the hub at
//! once, `sqlite` stores it on the writer thread first. Presence comes from the hub, read
//! under the same lock, so a `join` and a `left` of one user can never swap places.
//!
//! A whisper is one event of the sender's room (its next id, `Visibility::Pair`), stored
//! once; the hub carries it to the two users' sockets in other rooms (see `chat::hub`).

mod cids;
mod delete;
mod events;
mod keeper;
mod memory;
#[cfg(test)]
mod rooms_tests;
mod sqlite;
#[cfg(test)]
mod tests;

use std::{
    fmt,
    sync::{Arc, Mutex, MutexGuard},
    time::Instant,
};

use futures_util::{FutureExt, future::BoxFuture};

use super::{Accepted, DeleteError, Deleted, Deletion, Entry, EventLog, Joiner, Said};
use crate::{
    auth::User,
    chat::{
        EngineError, Membership, Whisper,
        hub::{Arrival, Departure, Hub, not_online},
        protocol::{Cid, EventData, EventKind, Frame, Reply, now_ms, presence::ListEvent},
        room::RoomName,
        rooms::{RoomPolicy, Rooms},
        text::ChatText,
    },
};
use cids::RecentCids;
use events::{kept, presence_counted, take_ids, whisper};
pub use keeper::{HistoryFuture, Keeper, Kept, Recall};
use memory::Memory;
use sqlite::Sqlite;
pub use sqlite::Storage;

pub struct LocalLog<K> {
    hub: Arc<Hub>,
    /// Each room's last id. A room outlives its sockets for a while, and its ids never go
    /// back when it leaves memory and comes again (see `chat::rooms`).
    rooms: Mutex<Rooms>,
    /// Taken under `rooms`, never alone: a `cid` is checked and remembered with its id.
    cids: Mutex<RecentCids>,
    keeper: K,
}

impl<K> fmt::Debug for LocalLog<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalLog").finish_non_exhaustive()
    }
}

impl LocalLog<Memory> {
    pub fn memory(hub: Arc<Hub>, rooms: RoomPolicy) -> Self {
        LocalLog {
            keeper: Memory::new(hub.clone()),
            hub,
            rooms: Mutex::new(Rooms::new(rooms)),
            cids: Mutex::new(RecentCids::new(rooms.cid_window)),
        }
    }
}

impl LocalLog<Sqlite> {
    /// Rooms continue their ids from `store`, whose writer thread starts here. A room is
    /// read from `reservations` when it is first used, not loaded at start.
    pub fn sqlite(hub: Arc<Hub>, storage: Storage, rooms: RoomPolicy) -> anyhow::Result<Self> {
        Ok(LocalLog {
            keeper: Sqlite::spawn(hub.clone(), storage)?,
            hub,
            rooms: Mutex::new(Rooms::new(rooms)),
            cids: Mutex::new(RecentCids::new(rooms.cid_window)),
        })
    }
}

impl<K: Keeper> LocalLog<K> {
    fn lock(&self) -> MutexGuard<'_, Rooms> {
        self.rooms.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Rooms in memory now.
    #[cfg(test)]
    pub fn rooms_in_memory(&self) -> usize {
        self.lock().len()
    }

    fn lock_cids(&self) -> MutexGuard<'_, RecentCids> {
        self.cids.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A `join` or `left`: for the whole room, with its count of users here.
    fn presence(&self, id: u64, kind: EventKind, room: &RoomName, user: &User) -> Kept {
        presence_counted(id, kind, user, self.hub.online(room))
    }
}

impl<K: Keeper> EventLog for LocalLog<K> {
    fn join(&self, joiner: Joiner) -> BoxFuture<'_, Result<(Membership, Entry), EngineError>> {
        let mut rooms = self.lock();
        let hub = &self.hub;
        let admitted = rooms.admit(
            &joiner.room,
            joiner.user.id,
            Instant::now(),
            || self.keeper.reserved(&joiner.room),
            |room| hub.online(room) == 0,
        );
        let last_id = match admitted {
            Ok(last_id) => last_id,
            Err(e) => return futures_util::future::ready(Err(e)).boxed(),
        };
        let (member, arrival) =
            self.hub
                .attach(joiner.room, joiner.user, joiner.session, joiner.outbox);
        let through = *last_id;
        let first = arrival == Arrival::First;
        // `join` if it brings the user in, `list`, `history`.
        let first_id = match take_ids(last_id, if first { 3 } else { 2 }) {
            Ok(id) => id,
            Err(e) => {
                self.hub.detach(&member);
                return futures_util::future::ready(Err(e)).boxed();
            }
        };
        let joined =
            first.then(|| self.presence(first_id, EventKind::Join, &member.room, &member.user));
        let mut frames: Vec<Frame> = joined.iter().map(|j| j.event.frame.clone()).collect();
        // The whole room, or in a big one its first page and where the rest begins.
        let (users, count, next) = self.hub.first_page(&member.room);
        let users: Vec<&User> = users.iter().map(|u| &**u).collect();
        frames.push(
            ListEvent {
                id: *last_id - 1,
                kind: EventKind::List,
                user: &member.user,
                data: &users,
                time: now_ms(),
                count,
                next,
            }
            .to_frame(),
        );
        let floor = *last_id;
        let is_joined = joined.is_some();
        let recall = Recall {
            id: floor,
            since: joiner.since,
            through,
        };
        let history = self.keeper.history(&member, recall, joined);
        drop(rooms);
        let hub = self.hub.clone();
        async move {
            match history.await {
                Ok(history) => {
                    frames.push(history);
                    Ok((
                        member,
                        Entry {
                            frames,
                            floor,
                            joined: is_joined,
                            count,
                        },
                    ))
                }
                Err(e) => {
                    // Taken back out without a word: it never got its `list`.
                    hub.detach(&member);
                    Err(e)
                }
            }
        }
        .boxed()
    }

    /// Messages whose `cid` is already stored are not stored again: their sender gets the
    /// same `ack`, behind this batch.
    fn publish(&self, member: &Membership, kind: EventKind, data: &[Said<'_>]) -> Accepted {
        let mut rooms = self.lock();
        let now = Instant::now();
        let mut cids = self.lock_cids();
        let (fresh, again) = cids.split(&member.room, member.user.id, data, now);
        if !fresh.is_empty() {
            let last_id = rooms.ids(&member.room, now);
            let first = take_ids(last_id, fresh.len() as u64)?;
            // `first + n` stays within what `take_ids` checked; a `first..` range would not.
            let events = (0..)
                .zip(&fresh)
                .map(|(n, said)| {
                    let id = first + n;
                    if let Some(cid) = said.cid {
                        cids.remember(&member.room, member.user.id, cid, id, now);
                    }
                    Kept {
                        cid: said.cid.cloned(),
                        ..kept(id, kind, &member.user, EventData::Text(said.text), None)
                    }
                })
                .collect();
            self.keeper.keep(&member.room, events, Some(member))?;
        }
        drop(cids);
        drop(rooms);
        for ack in again {
            self.keeper.reply(member, ack);
        }
        Ok(())
    }

    /// One event, kept in the sender's room with that room's next id and visible to the two.
    /// The hub gives it to their sockets there in the room's order, and aside to their
    /// sockets in other rooms without one of those rooms' ids; so a whisper costs the same
    /// however many rooms either of them is in.
    fn private(
        &self,
        member: &Membership,
        to: u64,
        text: &ChatText,
        cid: Option<&Cid>,
    ) -> Accepted<Whisper> {
        let mut rooms = self.lock();
        let now = Instant::now();
        let mut cids = self.lock_cids();
        if let Some(cid) = cid
            && let Some(id) = cids.get(&member.room, member.user.id, cid, now)
        {
            drop((cids, rooms));
            let cid = cid.clone();
            self.keeper.reply(member, Reply::Ack { cid, id });
            return Ok(Whisper::Delivered);
        }
        let Some(recipient) = self.hub.user(to) else {
            drop((cids, rooms));
            let reply = not_online(&self.hub, to, cid);
            self.reply(member, reply);
            return Ok(Whisper::RecipientOffline);
        };
        let last_id = rooms.ids(&member.room, now);
        let id = take_ids(last_id, 1)?;
        if let Some(cid) = cid {
            cids.remember(&member.room, member.user.id, cid, id, now);
        }
        let mut event = whisper(id, &member.user, &recipient, text.as_str());
        event.cid = cid.cloned();
        self.keeper.keep(&member.room, vec![event], Some(member))?;
        Ok(Whisper::Delivered)
    }

    fn reply(&self, member: &Membership, reply: Reply) {
        self.keeper.reply(member, reply);
    }

    fn page(&self, member: &Membership, before: u64) -> Accepted {
        self.keeper.page(member, before)
    }

    /// The hub holds the whole room: a page is a short look under its lock.
    fn users(&self, member: &Membership, after: u64) -> Accepted {
        self.hub.reply_users(member, after);
        Ok(())
    }

    fn leave(&self, member: Membership) -> bool {
        let mut rooms = self.lock();
        if self.hub.detach(&member) != Some(Departure::Last) {
            return false;
        }
        let last_id = rooms.ids(&member.room, Instant::now());
        // The keepers take a `left` past any bound, so it is lost only if the room ran out
        // of ids or the writer is gone; either is logged here and shows on `/healthz`.
        let sent = take_ids(last_id, 1).and_then(|id| {
            let left = self.presence(id, EventKind::Left, &member.room, &member.user);
            self.keeper.keep(&member.room, vec![left], None)
        });
        if let Err(e) = sent {
            tracing::error!(user = member.user.id, room = %member.room, error = %e, "left not sent");
        }
        true
    }

    /// Under the log's lock, like `join`: a reload's `attach` and this never interleave.
    fn linger(&self, member: Membership) -> Option<Departure> {
        let _rooms = self.lock();
        self.hub.detach_lingering(&member)
    }

    fn depart(&self, room: &RoomName, users: &[Arc<User>]) -> usize {
        let mut rooms = self.lock();
        let gone: Vec<&Arc<User>> = users
            .iter()
            .filter(|user| self.hub.depart(room, user.id) == Some(Departure::Last))
            .collect();
        if gone.is_empty() {
            return 0;
        }
        let last_id = rooms.ids(room, Instant::now());
        let sent = take_ids(last_id, gone.len() as u64).and_then(|first| {
            // Each `left` counts the users still here after it, as one at a time would.
            let after = self.hub.online(room);
            let lefts = (0..)
                .zip(&gone)
                .map(|(n, user)| {
                    let count = after + (gone.len() - 1 - n as usize);
                    presence_counted(first + n, EventKind::Left, user, count)
                })
                .collect();
            self.keeper.keep(room, lefts, None)
        });
        if let Err(e) = sent {
            tracing::error!(room = %room, users = gone.len(), error = %e, "left not sent");
        }
        gone.len()
    }

    fn delete(&self, what: Deletion) -> BoxFuture<'_, Result<Deleted, DeleteError>> {
        self.delete_messages(what).boxed()
    }

    fn flush(&self) -> BoxFuture<'_, ()> {
        self.keeper.flush()
    }

    fn health(&self) -> Result<(), String> {
        self.keeper.health()
    }

    fn tick(&self) {
        let hub = &self.hub;
        self.lock()
            .tick(Instant::now(), |room| hub.online(room) == 0);
    }
}
