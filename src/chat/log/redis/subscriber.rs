//! The subscription to every room: fans out what Redis publishes to this instance's
//! sockets; after a lost subscription, and every `--redis-position-check`, `gaps` closes
//! or flags what they missed.

use std::{sync::Arc, time::Duration};

use super::{
    gaps::Gaps,
    state::Seen,
    wire::{CHANNEL_PREFIX, CHANNELS, parse_published},
};
use crate::{
    chat::{hub::Hub, room::RoomName},
    pubsub::{Listener, Topic},
};

/// The subscription to every room's channel.
pub(super) const TOPIC: Topic = Topic::Pattern(CHANNELS);

/// Fans out what Redis publishes to this instance's sockets.
pub(super) struct FanOut {
    pub hub: Arc<Hub>,
    pub seen: Arc<Seen>,
    pub gaps: Gaps,
    /// `--redis-position-check`.
    pub check_every: Duration,
}

impl Listener for FanOut {
    fn heard(&mut self, message: &redis::Msg) {
        let channel = message.get_channel_name();
        let Some(room) = channel
            .strip_prefix(CHANNEL_PREFIX)
            .and_then(|r| RoomName::parse(r).ok())
        else {
            return;
        };
        let Some(events) = parse_published(message.get_payload_bytes()) else {
            tracing::warn!(channel, "unreadable message from Redis");
            return;
        };
        for event in &events {
            self.seen.see(&room, event.id);
            self.gaps.heard(&room, event.id);
        }
        // A batch goes out as one chunk per socket.
        self.hub.deliver(&room, &events);
    }

    /// Until it succeeds: a catch-up that failed leaves a gap nobody would notice.
    async fn caught_up(&mut self) -> bool {
        match self.gaps.catch_up().await {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(error = %e, "could not catch up from Redis");
                false
            }
        }
    }

    fn check_every(&self) -> Option<Duration> {
        Some(self.check_every)
    }

    async fn check(&mut self) -> bool {
        match self.gaps.check().await {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(error = %e, "could not check positions in Redis");
                false
            }
        }
    }
}
