//! The subscription to every room: fans out what Redis publishes to this instance's
//! sockets, and after a lost subscription catches up from the streams.

use std::{collections::BTreeSet, sync::Arc};

use redis::{aio::ConnectionManager, streams::StreamRangeReply};

use super::{
    state::Seen,
    wire::{
        CHANNEL_PREFIX, CHANNELS, entry_id, parse_published, parse_visibility, presence_key,
        stream_key, text_frame,
    },
};
use crate::{
    chat::{hub::Hub, log::Event, room::RoomName},
    pubsub::{Listener, Topic},
};

/// The subscription to every room's channel.
pub(super) const TOPIC: Topic = Topic::Pattern(CHANNELS);

/// Fans out what Redis publishes to this instance's sockets.
pub(super) struct FanOut {
    pub conn: ConnectionManager,
    pub hub: Arc<Hub>,
    pub seen: Arc<Seen>,
}

impl Listener for FanOut {
    fn heard(&mut self, message: &redis::Msg) {
        fan_out(
            &self.hub,
            &self.seen,
            message.get_channel_name(),
            message.get_payload_bytes(),
        );
    }

    async fn caught_up(&mut self) -> bool {
        if let Err(e) = catch_up(&mut self.conn, &self.hub, &self.seen).await {
            tracing::warn!(error = %e, "could not catch up from Redis");
        }
        true
    }
}

fn fan_out(hub: &Hub, seen: &Seen, channel: &str, payload: &[u8]) {
    let Some(room) = channel
        .strip_prefix(CHANNEL_PREFIX)
        .and_then(|r| RoomName::parse(r).ok())
    else {
        return;
    };
    let Some(events) = parse_published(payload) else {
        tracing::warn!(channel, "unreadable message from Redis");
        return;
    };
    // A batch goes out as one chunk per socket.
    for event in &events {
        seen.see(&room, event.id);
    }
    hub.deliver(&room, &events);
}

/// After a lost subscription: what was published meanwhile, from the streams, so live
/// sockets see no gap. Only rooms with a socket here are read: a whisper kept in another room
/// meanwhile does not reach this instance's sockets aside (it stays in its room's history).
async fn catch_up(conn: &mut ConnectionManager, hub: &Hub, seen: &Seen) -> redis::RedisResult<()> {
    let rooms: BTreeSet<RoomName> = hub.presence().into_iter().map(|(r, _, _)| r).collect();
    for room in rooms {
        let after = seen.get(&room);
        // Messages and presence, kept apart, merged back into id order.
        let mut missed = Vec::new();
        for key in [stream_key(&room), presence_key(&room)] {
            let reply: StreamRangeReply = redis::cmd("XRANGE")
                .arg(key)
                .arg(format!("{}-0", after + 1))
                .arg("+")
                .query_async(conn)
                .await?;
            missed.extend(reply.ids.iter().filter_map(|entry| {
                let visible = entry
                    .get::<String>("v")
                    .and_then(|v| parse_visibility(&v))?;
                let body = entry.get::<String>("b")?;
                Some(Event {
                    id: entry_id(&entry.id)?,
                    visible,
                    frame: text_frame(body.as_bytes()),
                })
            }));
        }
        missed.sort_by_key(|event| event.id);
        for event in missed {
            deliver(hub, seen, &room, event);
        }
    }
    Ok(())
}

/// Hands one event Redis carried to this instance's sockets in its room.
fn deliver(hub: &Hub, seen: &Seen, room: &RoomName, event: Event) {
    seen.see(room, event.id);
    hub.deliver(room, &[event]);
}
