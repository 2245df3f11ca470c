//! A Redis subscription kept alive: every message goes to a `Listener`, and after a lost
//! subscription it subscribes again and lets the listener catch up on what was published
//! meanwhile. The chat's events, sign-outs and moderation changes each keep one.

use std::time::Duration;

use futures_util::StreamExt;
use redis::aio::PubSubStream;
use tokio_util::sync::CancellationToken;

/// What to subscribe to.
#[derive(Debug, Clone, Copy)]
pub enum Topic {
    Channel(&'static str),
    Pattern(&'static str),
}

/// What a subscription does with what it hears.
pub trait Listener: Send {
    /// One published message.
    fn heard(&mut self, message: &redis::Msg);

    /// Subscribed again after a loss: read back what was missed. `false` when that failed
    /// and it must subscribe again before trying once more.
    fn caught_up(&mut self) -> impl Future<Output = bool> + Send;
}

pub async fn subscribe(client: &redis::Client, topic: Topic) -> redis::RedisResult<PubSubStream> {
    let mut pubsub = client.get_async_pubsub().await?;
    match topic {
        Topic::Channel(channel) => pubsub.subscribe(channel).await?,
        Topic::Pattern(pattern) => pubsub.psubscribe(pattern).await?,
    }
    Ok(pubsub.into_on_message())
}

/// Hands every message of `messages` to `listener` until `stop`; when the subscription
/// drops, subscribes again (every 250 ms until it can) and lets the listener catch up.
/// `what` names the subscription in the log.
pub async fn keep_subscribed(
    client: redis::Client,
    topic: Topic,
    what: &'static str,
    mut messages: PubSubStream,
    mut listener: impl Listener,
    stop: CancellationToken,
) {
    loop {
        loop {
            let message = tokio::select! {
                () = stop.cancelled() => return,
                message = messages.next() => message,
            };
            let Some(message) = message else { break };
            listener.heard(&message);
        }
        tracing::error!(what, "lost a Redis subscription; subscribing again");
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(Duration::from_millis(250)) => {}
            }
            match subscribe(&client, topic).await {
                // Subscribed first, then caught up: what is published in between is heard
                // twice rather than not at all.
                Ok(stream) => {
                    messages = stream;
                    if listener.caught_up().await {
                        tracing::info!(what, "subscribed to Redis again");
                        break;
                    }
                }
                Err(e) => tracing::warn!(what, error = %e, "cannot subscribe to Redis yet"),
            }
        }
    }
}
