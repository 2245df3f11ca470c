//! A Redis subscription kept alive: every message goes to a `Listener`, and after a lost
//! subscription it subscribes again and lets the listener catch up on what was published
//! meanwhile. The chat's events, sign-outs and moderation changes each keep one.
//!
//! A connection can die without closing (a half-open TCP connection after a network fault or
//! a Redis frozen past a timeout): nothing arrives, and nothing says so. So the subscription
//! is pinged on its own connection, and one that does not answer within `Liveness::silent`
//! is dropped and made again, like one that closed. A listener may also be asked, every so
//! often, to check that it missed nothing (`Listener::check`), on the same task as the
//! messages, so the two never race.

use std::time::Duration;

use futures_util::StreamExt;
use redis::aio::{PubSubSink, PubSubStream};
use tokio::time::{Instant, MissedTickBehavior};
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

    /// How often `check` runs; `None`, never.
    fn check_every(&self) -> Option<Duration> {
        None
    }

    /// A periodic look at what the subscription may have missed. `false` when it could not
    /// look: the next one tries again.
    fn check(&mut self) -> impl Future<Output = bool> + Send {
        async { true }
    }
}

/// How long a subscription may stay silent.
#[derive(Debug, Clone, Copy)]
pub struct Liveness {
    /// A subscription (or a ping on it) not answered within this is dropped and made again.
    pub silent: Duration,
}

impl Liveness {
    /// A ping every third of the timeout: one slow answer does not drop a live connection.
    fn ping_every(self) -> Duration {
        (self.silent / 3).max(Duration::from_millis(10))
    }
}

impl Default for Liveness {
    fn default() -> Self {
        Liveness {
            silent: Duration::from_secs(15),
        }
    }
}

/// A live subscription: its messages, and the sink its pings go through.
pub struct Subscription {
    sink: PubSubSink,
    messages: PubSubStream,
}

/// Subscribes through the first of `nodes` that answers (a cluster's nodes each hear every
/// channel).
pub async fn subscribe(nodes: &[redis::Client], topic: Topic) -> redis::RedisResult<Subscription> {
    let mut last = None;
    for client in nodes {
        match subscribe_within(client, topic, Liveness::default()).await {
            Ok(subscription) => return Ok(subscription),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(silent))
}

/// Subscribes, or fails if Redis does not answer within `liveness.silent`: a frozen Redis
/// accepts the connection and then says nothing.
async fn subscribe_within(
    client: &redis::Client,
    topic: Topic,
    liveness: Liveness,
) -> redis::RedisResult<Subscription> {
    let subscribing = async {
        let (mut sink, messages) = client.get_async_pubsub().await?.split();
        match topic {
            Topic::Channel(channel) => sink.subscribe(channel).await?,
            Topic::Pattern(pattern) => sink.psubscribe(pattern).await?,
        }
        Ok(Subscription { sink, messages })
    };
    tokio::time::timeout(liveness.silent, subscribing)
        .await
        .unwrap_or_else(|_| Err(silent()))
}

fn silent() -> redis::RedisError {
    redis::RedisError::from(std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        "Redis did not answer on the subscription",
    ))
}

/// Hands every message of `subscription` to `listener` until `stop`, with the default
/// liveness; see `keep_subscribed_with`.
pub async fn keep_subscribed(
    nodes: Vec<redis::Client>,
    topic: Topic,
    what: &'static str,
    subscription: Subscription,
    listener: impl Listener,
    stop: CancellationToken,
) {
    keep_subscribed_with(
        nodes,
        topic,
        what,
        subscription,
        listener,
        stop,
        Liveness::default(),
    )
    .await;
}

/// Hands every message of `subscription` to `listener` until `stop`; when the subscription
/// drops or stays silent past `liveness`, subscribes again (every 250 ms until it can) and
/// lets the listener catch up, until it has. Each try goes to the next of `nodes`, so a
/// cluster's subscriptions move off a node that died or froze. `what` names the
/// subscription in the log.
pub async fn keep_subscribed_with(
    nodes: Vec<redis::Client>,
    topic: Topic,
    what: &'static str,
    mut subscription: Subscription,
    mut listener: impl Listener,
    stop: CancellationToken,
    liveness: Liveness,
) {
    let mut checks = listener.check_every().map(|every| {
        let mut checks = tokio::time::interval_at(Instant::now() + every, every);
        checks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        checks
    });
    let mut next = 0;
    loop {
        let lost = listen(
            &mut subscription,
            &mut listener,
            &mut checks,
            &stop,
            liveness,
        )
        .await;
        let Some(why) = lost else { return };
        tracing::error!(what, why, "lost a Redis subscription; subscribing again");
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(Duration::from_millis(250)) => {}
            }
            let Some(client) = nodes.get(next % nodes.len().max(1)) else {
                return;
            };
            next += 1;
            match subscribe_within(client, topic, liveness).await {
                // Subscribed first, then caught up: what is published in between is heard
                // twice rather than not at all.
                Ok(again) => {
                    subscription = again;
                    if listener.caught_up().await {
                        tracing::info!(what, "subscribed to Redis again");
                        break;
                    }
                    tracing::warn!(what, "catching up failed; subscribing again to retry");
                }
                Err(e) => tracing::warn!(what, error = %e, "cannot subscribe to Redis yet"),
            }
        }
    }
}

/// Hears `subscription` until it is lost (why) or `stop` (`None`). Pings it on a task of its
/// own, so a ping waiting for its answer holds up no message.
async fn listen(
    subscription: &mut Subscription,
    listener: &mut impl Listener,
    checks: &mut Option<tokio::time::Interval>,
    stop: &CancellationToken,
    liveness: Liveness,
) -> Option<&'static str> {
    let (silent_tx, mut silent_rx) = tokio::sync::oneshot::channel();
    let pinger = tokio::spawn(ping(subscription.sink.clone(), liveness, silent_tx));
    let _pinger = AbortOnDrop(pinger);
    loop {
        tokio::select! {
            () = stop.cancelled() => return None,
            message = subscription.messages.next() => match message {
                Some(message) => listener.heard(&message),
                None => return Some("the connection closed"),
            },
            _ = &mut silent_rx => return Some("no answer to a ping"),
            () = next_check(checks) => {
                listener.check().await;
            }
        }
    }
}

/// The next check's tick; never, without checks.
async fn next_check(checks: &mut Option<tokio::time::Interval>) {
    match checks {
        Some(checks) => {
            checks.tick().await;
        }
        None => std::future::pending().await,
    }
}

/// Pings through `sink` every third of `liveness.silent`; says so on `silent` when a ping
/// fails or goes unanswered that long.
async fn ping(mut sink: PubSubSink, liveness: Liveness, silent: tokio::sync::oneshot::Sender<()>) {
    let mut ticks = tokio::time::interval(liveness.ping_every());
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let answered = tokio::time::timeout(liveness.silent, sink.ping::<redis::Value>()).await;
        if !matches!(answered, Ok(Ok(_))) {
            let _ = silent.send(());
            return;
        }
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
