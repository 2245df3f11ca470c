//! With `--redis`: hears the moderation changes every instance publishes and applies the
//! others' here; after a lost subscription, subscribes again and reloads everything from
//! Redis, since a change published meanwhile was missed.
//!
//! While Redis is away the checks go on with the last state heard: a ban made elsewhere then
//! takes effect here once the subscription is back.

use std::sync::Arc;

use anyhow::Context;
use tokio_util::sync::CancellationToken;

use super::{Moderation, change::Published, store::CHANNEL};
use crate::{
    chat::Engine,
    pubsub::{self, Listener, Topic},
};

pub(super) const TOPIC: Topic = Topic::Channel(CHANNEL);

impl Moderation {
    /// With Redis: subscribes to the other instances' changes (before the server serves, so
    /// none made from then on is missed) and applies them until `stop`.
    pub async fn listen(
        self: &Arc<Self>,
        engine: Arc<Engine>,
        stop: CancellationToken,
    ) -> anyhow::Result<()> {
        let Some(client) = self.redis.clone() else {
            return Ok(());
        };
        let messages = pubsub::subscribe(&client, TOPIC)
            .await
            .context("subscribing to moderation changes in Redis")?;
        let changes = Changes {
            moderation: self.clone(),
            engine,
        };
        tokio::spawn(pubsub::keep_subscribed(
            client,
            TOPIC,
            "moderation changes",
            messages,
            changes,
            stop,
        ));
        Ok(())
    }
}

/// Applies the other instances' changes here; after a lost subscription, reloads everything.
pub(super) struct Changes {
    pub moderation: Arc<Moderation>,
    pub engine: Arc<Engine>,
}

impl Listener for Changes {
    fn heard(&mut self, message: &redis::Msg) {
        let published: Published = match serde_json::from_slice(message.get_payload_bytes()) {
            Ok(published) => published,
            Err(e) => {
                tracing::warn!(error = %e, "unreadable moderation change from Redis");
                return;
            }
        };
        if published.from != self.moderation.instance {
            self.moderation.apply(published.change, &self.engine);
        }
    }

    /// Applying a change twice does nothing more, so one heard again after the reload is
    /// harmless; a reload that failed leaves this instance behind, so it subscribes again.
    async fn caught_up(&mut self) -> bool {
        // The first call after Redis returns may find the old connection dead: the reload
        // is tried once more before subscribing again.
        for _ in 0..RELOAD_TRIES {
            if self.reload().await {
                return true;
            }
        }
        false
    }
}

/// Reloads tried before subscribing again.
const RELOAD_TRIES: usize = 2;

impl Changes {
    async fn reload(&self) -> bool {
        let (moderation, engine) = (self.moderation.clone(), self.engine.clone());
        match tokio::task::spawn_blocking(move || moderation.reload(&engine)).await {
            Ok(Ok(())) => {
                tracing::info!("moderation reloaded from Redis");
                true
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "could not reload moderation from Redis");
                false
            }
            Err(e) => {
                tracing::warn!(error = %e, "moderation reload stopped");
                false
            }
        }
    }
}
