//! One socket's life: join, read frames, write queued events, ping, leave.
//!
//! The loop is generic over `Stream + Sink` so it does not care whether the socket came from
//! axum or a test harness.

use std::{collections::VecDeque, net::IpAddr, sync::Arc, time::Duration};

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes};
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use tokio::time::{Instant, MissedTickBehavior};
use tokio_tungstenite::tungstenite;
use tokio_util::sync::CancellationToken;

use super::{
    Engine, Membership,
    limit::RateLimiter,
    outbox::Outbox,
    protocol::{ClientCommand, Frame, parse_client_text},
    room::RoomName,
    text::{ChatText, TextError},
};
use crate::{
    auth::User,
    metrics::{Metrics, Reject},
};

/// Close codes this server sends.
pub mod close {
    pub const GOING_AWAY: u16 = 1001;
    pub const UNSUPPORTED: u16 = 1003;
    pub const INVALID_PAYLOAD: u16 = 1007;
    pub const POLICY: u16 = 1008;
    pub const TOO_BIG: u16 = 1009;
    pub const INTERNAL: u16 = 1011;
    pub const PROTOCOL: u16 = 1002;
    /// The seed's code for a missing or invalid user cookie.
    pub const INVALID_USER: u16 = 4001;
    pub const INVALID_ROOM: u16 = 4002;
}

/// A client that stops reading blocks our writes; both ways of noticing count as slow readers.
const WRITE_TIMED_OUT: &str = "write timed out";

/// How long a closing socket may take to answer our close frame.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// What every connection shares.
#[derive(Debug, Clone)]
pub struct Settings {
    pub ping_interval: Duration,
    pub max_message_chars: usize,
    pub outbound_queue: usize,
}

#[derive(Debug)]
pub struct Shared {
    pub engine: Arc<Engine>,
    pub limiter: Arc<RateLimiter>,
    pub settings: Settings,
    pub shutdown: CancellationToken,
    pub metrics: Arc<Metrics>,
}

/// Why a connection ended; the close frame we owe the client, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
enum End {
    /// The client closed, or the connection broke: nothing more to send.
    Quiet,
    Close(u16, &'static str),
}

/// Closes a socket with `code` and waits briefly for the client's answer, so the close frame
/// reaches it before the TCP connection goes.
pub async fn close_with<S>(socket: &mut S, code: u16, reason: impl Into<Utf8Bytes>)
where
    S: Stream<Item = Result<Message, axum::Error>> + Sink<Message, Error = axum::Error> + Unpin,
{
    let frame = CloseFrame {
        code,
        reason: reason.into(),
    };
    let _ = tokio::time::timeout(CLOSE_GRACE, async {
        if socket.send(Message::Close(Some(frame))).await.is_ok() {
            while let Some(Ok(_)) = socket.next().await {}
        }
    })
    .await;
}

/// Runs a signed-in user's socket until it ends, then takes them out of the room.
pub async fn run<S>(
    mut socket: S,
    shared: Arc<Shared>,
    user: Arc<User>,
    room: RoomName,
    client: IpAddr,
) where
    S: Stream<Item = Result<Message, axum::Error>> + Sink<Message, Error = axum::Error> + Unpin,
{
    let outbox = Outbox::new(shared.settings.outbound_queue);
    let member = match shared.engine.join(room, user.clone(), outbox.clone()).await {
        Ok(member) => member,
        Err(e) => {
            tracing::error!(user = user.id, %client, error = %e, "join failed");
            close_with(&mut socket, close::INTERNAL, "chat engine unavailable").await;
            return;
        }
    };
    tracing::info!(user = user.id, %client, room = %member.room(), "connected");
    let mut conn = Connection {
        socket,
        shared: shared.clone(),
        member,
        outbox,
        rate_limited: false,
        client,
    };
    let end = conn.serve().await;
    let Connection {
        mut socket, member, ..
    } = conn;
    shared.engine.leave(member).await;
    if end == slow_reader() || end == End::Close(close::POLICY, WRITE_TIMED_OUT) {
        shared.metrics.slow_readers.inc();
    }
    match end {
        End::Quiet => {
            tracing::info!(user = user.id, %client, "closed by client");
            let _ = tokio::time::timeout(CLOSE_GRACE, socket.close()).await;
        }
        End::Close(code, reason) => {
            if let Some(reject) = Reject::for_close_code(code) {
                shared.metrics.reject(reject);
            }
            tracing::info!(user = user.id, %client, code, reason, "closed by server");
            close_with(&mut socket, code, reason).await;
        }
    }
}

struct Connection<S> {
    socket: S,
    shared: Arc<Shared>,
    member: Membership,
    outbox: Outbox,
    /// Set once we told the user they are over the limit, so a flood gets one error, not many.
    rate_limited: bool,
    client: IpAddr,
}

impl<S> Connection<S>
where
    S: Stream<Item = Result<Message, axum::Error>> + Sink<Message, Error = axum::Error> + Unpin,
{
    async fn serve(&mut self) -> End {
        let interval = self.shared.settings.ping_interval;
        let mut ping = tokio::time::interval_at(Instant::now() + interval, interval);
        ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut last_heard = Instant::now();
        let mut batch: VecDeque<Frame> = VecDeque::new();
        loop {
            tokio::select! {
                biased;
                () = self.shared.shutdown.cancelled() => {
                    return End::Close(close::GOING_AWAY, "server shutting down");
                }
                queued = self.outbox.next_batch(&mut batch) => {
                    if queued.is_err() {
                        return slow_reader();
                    }
                    let frames = batch.drain(..).map(Message::Text);
                    if let Err(end) = self.write(frames).await {
                        return end;
                    }
                }
                incoming = self.socket.next() => {
                    last_heard = Instant::now();
                    match incoming {
                        None => return End::Quiet,
                        Some(Err(e)) => return end_for_read_error(&e),
                        Some(Ok(message)) => {
                            if let Some(end) = self.on_message(message).await {
                                return end;
                            }
                        }
                    }
                }
                _ = ping.tick() => {
                    if last_heard.elapsed() > interval * 2 {
                        return End::Close(close::GOING_AWAY, "ping timeout");
                    }
                    if let Err(end) = self.write(std::iter::once(Message::Ping(Default::default()))).await {
                        return end;
                    }
                }
            }
        }
    }

    /// Writes frames and flushes once. A write blocked by a client that does not read loses
    /// the race against shutdown, the outbox overflowing, or the liveness deadline.
    async fn write(&mut self, frames: impl Iterator<Item = Message>) -> Result<(), End> {
        let deadline = self.shared.settings.ping_interval * 2;
        let socket = &mut self.socket;
        let write = async move {
            for frame in frames {
                socket.feed(frame).await?;
            }
            socket.flush().await
        };
        tokio::select! {
            biased;
            () = self.shared.shutdown.cancelled() => Err(End::Close(close::GOING_AWAY, "server shutting down")),
            () = self.outbox.overflowed() => Err(slow_reader()),
            _ = tokio::time::sleep(deadline) => Err(End::Close(close::POLICY, WRITE_TIMED_OUT)),
            written = write => written.map_err(|_| End::Quiet),
        }
    }

    async fn on_message(&mut self, message: Message) -> Option<End> {
        match message {
            Message::Text(text) => {
                self.on_text(text.as_str()).await;
                None
            }
            Message::Binary(_) => Some(End::Close(
                close::UNSUPPORTED,
                "binary frames are not supported",
            )),
            Message::Close(_) => Some(End::Quiet),
            Message::Ping(_) | Message::Pong(_) => None,
        }
    }

    async fn on_text(&mut self, text: &str) {
        let engine = &self.shared.engine;
        let raw = match parse_client_text(text) {
            Ok(ClientCommand::Chat(raw)) => raw,
            Err(e) => {
                self.rejected(Reject::BadCommand);
                return engine.reply_error(&self.member, &e).await;
            }
        };
        let text = match ChatText::parse(&raw, self.shared.settings.max_message_chars) {
            Ok(text) => text,
            Err(TextError::Empty) => return,
            Err(e @ TextError::TooLong { .. }) => {
                self.rejected(Reject::TooLong);
                return engine.reply_error(&self.member, &e.to_string()).await;
            }
        };
        let user = self.member.user().id;
        if !self
            .shared
            .limiter
            .try_acquire(user, std::time::Instant::now())
        {
            self.shared.metrics.reject(Reject::RateLimited);
            if !self.rate_limited {
                self.rate_limited = true;
                tracing::info!(user, client = %self.client, reason = Reject::RateLimited.label(), "rejected");
                let message = format!(
                    "too many messages: slow down (about one every {} ms); messages over the limit are dropped",
                    self.shared.limiter.retry_after().as_millis()
                );
                engine.reply_error(&self.member, &message).await;
            }
            return;
        }
        self.rate_limited = false;
        if let Err(e) = engine.chat(&self.member, &text).await {
            tracing::warn!(user, error = %e, "chat not sent");
            engine
                .reply_error(&self.member, &format!("not sent: {e}"))
                .await;
        }
    }
}

impl<S> Connection<S> {
    /// Counts and logs a refused message.
    fn rejected(&self, reason: Reject) {
        self.shared.metrics.reject(reason);
        let user = self.member.user().id;
        tracing::info!(user, client = %self.client, reason = reason.label(), "rejected");
    }
}

fn slow_reader() -> End {
    End::Close(close::POLICY, "too slow: outbound queue overflowed")
}

/// Maps a read error to the close code RFC 6455 gives for it.
fn end_for_read_error(error: &axum::Error) -> End {
    use std::error::Error as _;
    let Some(error) = error
        .source()
        .and_then(|e| e.downcast_ref::<tungstenite::Error>())
    else {
        return End::Quiet;
    };
    match error {
        tungstenite::Error::Capacity(_) => End::Close(close::TOO_BIG, "message too big"),
        tungstenite::Error::Utf8(_) => End::Close(close::INVALID_PAYLOAD, "invalid UTF-8"),
        tungstenite::Error::Protocol(_) => End::Close(close::PROTOCOL, "protocol error"),
        _ => End::Quiet,
    }
}
