//! The memory keeper: events go straight to the hub and are kept nowhere.

use std::sync::Arc;

use futures_util::{FutureExt, future::BoxFuture};

use super::{super::Accepted, HistoryFuture, Keeper, Kept, Recall};
use crate::chat::{
    Membership,
    hub::Hub,
    log::Event,
    protocol::{EventKind, HistoryEvent, Reply, now_ms},
    recovery::{self, HistoryPolicy},
    room::RoomName,
};

#[derive(Debug)]
pub struct Memory {
    hub: Arc<Hub>,
}

impl Memory {
    pub fn new(hub: Arc<Hub>) -> Self {
        Memory { hub }
    }
}

impl Keeper for Memory {
    fn keep(&self, room: &RoomName, events: Vec<Kept>, sender: Option<&Membership>) -> Accepted {
        let mut acks = Vec::new();
        let events: Vec<Event> = events
            .into_iter()
            .map(|k| {
                if let Some(cid) = k.cid {
                    acks.push(Reply::Ack {
                        cid,
                        id: k.event.id,
                    });
                }
                k.event
            })
            .collect();
        self.hub.deliver(room, &events);
        // After the events themselves, so the sender has its message when told its id.
        if let Some(sender) = sender {
            for ack in &acks {
                self.hub.reply(sender, ack);
            }
        }
        Ok(())
    }

    /// Nothing is kept: the history is empty, and truncated if the client missed anything.
    fn history(&self, member: &Membership, recall: Recall, join: Option<Kept>) -> HistoryFuture {
        if let Some(join) = join {
            self.hub.deliver(&member.room, &[join.event]);
        }
        let Recall { id, since, through } = recall;
        let catchup = recovery::plan(since, through, through, HistoryPolicy::default());
        let frame = HistoryEvent {
            id,
            kind: EventKind::History,
            user: &member.user,
            data: &[],
            time: now_ms(),
            truncated: catchup.truncated,
            more: false,
            before: None,
        }
        .to_frame();
        futures_util::future::ready(Ok(frame)).boxed()
    }

    fn reply(&self, member: &Membership, reply: Reply) {
        self.hub.reply(member, &reply);
    }

    /// Nothing is kept: every page is empty, the beginning of the conversation.
    fn page(&self, member: &Membership, before: u64) -> Accepted {
        recovery::send_page(&self.hub, member, before, &recovery::Bounded::default());
        Ok(())
    }

    fn flush(&self) -> BoxFuture<'_, ()> {
        futures_util::future::ready(()).boxed()
    }
}
