//! With `--redis`: hears the moderation changes every instance publishes and applies the
//! others' here; after a lost subscription, subscribes again and reloads everything from
//! Redis, since a change published meanwhile was missed.
//!
//! While Redis is away the checks go on with the last state heard: a ban made elsewhere then
//! takes effect here once the subscription is back.

use std::{sync::Arc, time::Duration};

use futures_util::StreamExt;
use tokio_util::sync::CancellationToken;

use super::{Moderation, change::Published, store::CHANNEL};
use crate::chat::Engine;

pub(super) async fn subscribe(
    client: &redis::Client,
) -> redis::RedisResult<redis::aio::PubSubStream> {
    let mut pubsub = client.get_async_pubsub().await?;
    pubsub.subscribe(CHANNEL).await?;
    Ok(pubsub.into_on_message())
}

pub(super) async fn keep_subscribed(
    moderation: Arc<Moderation>,
    engine: Arc<Engine>,
    client: redis::Client,
    mut messages: redis::aio::PubSubStream,
    stop: CancellationToken,
) {
    loop {
        loop {
            let message = tokio::select! {
                () = stop.cancelled() => return,
                message = messages.next() => message,
            };
            let Some(message) = message else { break };
            let published: Published = match serde_json::from_slice(message.get_payload_bytes()) {
                Ok(published) => published,
                Err(e) => {
                    tracing::warn!(error = %e, "unreadable moderation change from Redis");
                    continue;
                }
            };
            if published.from != moderation.instance {
                moderation.apply(published.change, &engine);
            }
        }
        tracing::error!("lost the Redis subscription to moderation changes; subscribing again");
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(Duration::from_millis(250)) => {}
            }
            match subscribe(&client).await {
                Ok(stream) => {
                    messages = stream;
                    // Subscribed first, then read: a change made in between is heard twice
                    // rather than not at all, and applying one twice does nothing more.
                    let (moderation, engine) = (moderation.clone(), engine.clone());
                    let reloaded =
                        tokio::task::spawn_blocking(move || moderation.reload(&engine)).await;
                    match reloaded {
                        Ok(Ok(())) => {
                            tracing::info!("moderation reloaded from Redis");
                            break;
                        }
                        // Subscribed but not caught up: try both again.
                        Ok(Err(e)) => {
                            tracing::warn!(error = %e, "could not reload moderation from Redis")
                        }
                        Err(e) => tracing::warn!(error = %e, "moderation reload stopped"),
                    }
                }
                Err(e) => tracing::warn!(error = %e, "cannot subscribe to moderation yet"),
            }
        }
    }
}
