//! One socket's life: join, then read frames, write queued events and ping, then leave.
//!
//! The loop is one `poll_fn` over a small struct: the socket, the outbox and a few clocks.
//! There is no timer per socket; the server rings every outbox once per ping interval.

use std::{
    future::poll_fn,
    net::IpAddr,
    task::{Context, Poll},
    time::{Duration, Instant},
};

mod end;
mod image;
mod join;
mod replies;
mod slow;

use end::{End, FELL_BEHIND, WRITE_TIMED_OUT};
pub use join::{Held, OpenConnection, join};
use serde_json::json;
use slow::Slow;
use tokio::io::{AsyncRead, AsyncWrite};

use super::{
    Membership, Whisper,
    outbox::{Outbox, Signal},
    protocol::{self, Cid, ClientCommand, code, parse_client_text},
    refusal::Refusals,
    text::ChatText,
};
use crate::{
    auth::{Session, unix_now},
    metrics::Reject,
    sessions::EXPIRED,
    state::AppState,
    ws::{
        ReadError, WsSocket, close,
        frame::{self, Incoming},
    },
};

/// Client messages handled per turn. Each may fan out to every socket in the room, so a busy
/// sender yields and lets those sockets drain before it reads on.
const MESSAGES_PER_TURN: usize = 16;

/// How long a closing socket may take to take our close frame and answer it.
pub const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// How every socket behaves, from the flags; kept in `AppState::chat`.
#[derive(Debug, Clone)]
pub struct Settings {
    pub ping_interval: Duration,
    pub max_message_chars: usize,
    pub outbound_queue: usize,
    /// `--outbound-queue-bytes`: bytes that may wait for one socket.
    pub outbound_queue_bytes: usize,
    /// `--write-timeout`: how long queued bytes may wait to be written.
    pub write_timeout: Duration,
    /// Refused messages one socket may send per minute before it is closed with 1008.
    pub max_refused: u32,
    /// `--max-ws-message-bytes`: the largest WebSocket message, after reassembly.
    pub max_ws_message_bytes: usize,
}

/// A client that stops reading blocks our writes, and one that reads too slowly falls behind;
/// each way of noticing counts as a slow reader.
/// Who writes on a socket: the user's sign-in, and whether the socket came with a good
/// moderator cookie (a moderator writes in read-only and slow rooms too).
#[derive(Debug)]
pub struct Writer {
    pub session: Session,
    pub moderator: bool,
}

/// A socket that joined its room: `run` it until it ends.
///
/// Split from `join` so that the socket's task holds the connection once for its life. A
/// single async fn keeps its arguments and the struct they move into side by side, and is as
/// large as its largest await (the sign-in checks, the join); the caller boxes `join`, which
/// is freed once the socket is in, and the task keeps only `run` (see docs/BENCHMARKS.md).
pub struct Live<T>(Connection<T>, Held);

impl<T> Live<T>
where
    T: AsyncRead + AsyncWrite + Unpin + Send,
{
    /// Reads, writes and pings until the socket ends, then takes the user out of the room
    /// and says the last words on the socket.
    pub async fn run(mut self) {
        let end = poll_fn(|cx| self.0.poll(cx)).await;
        // Boxed: the leave and the close are awaited once, at the end, and would otherwise
        // make every socket's task as large as they are for its whole life.
        let Live(conn, held) = self;
        Box::pin(conn.finish(end)).await;
        drop(held);
    }
}

struct Connection<T> {
    socket: WsSocket<T>,
    state: AppState,
    member: Membership,
    outbox: Outbox,
    client: IpAddr,
    /// Read-only rooms and slow mode let a moderator's socket through.
    moderator: bool,
    last_heard: Instant,
    /// When its cookie passes `--cookie-days` (unix seconds): an open socket is no exception.
    expires: u64,
    /// How its writes kept up, tick by tick.
    writes: slow::Watch,
    /// Set once we told the user they are over the limit, so a flood gets one error, not many.
    rate_limited: bool,
    /// What this socket's refused messages have cost it so far.
    refusals: Refusals,
    /// Chat messages read this turn, sent to the engine together when the turn ends.
    chats: Vec<(ChatText, Option<Cid>)>,
    /// An `image` message whose image the object store is asked about (`image.rs`); boxed,
    /// as nearly every socket has none.
    image: Option<Box<image::PendingImage>>,
}

impl<T: AsyncRead + AsyncWrite + Unpin + Send> Connection<T> {
    async fn finish(self, end: End) {
        let Connection {
            mut socket,
            state,
            member,
            client,
            ..
        } = self;
        let user = member.user().id;
        state.engine.leave(member).await;
        end.close(&mut socket, &state, user, client).await;
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> Connection<T> {
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<End> {
        let polled = self.poll_turn(cx);
        self.send_chats();
        polled
    }

    fn poll_turn(&mut self, cx: &mut Context<'_>) -> Poll<End> {
        let mut handled = 0;
        loop {
            // Write first: frames still waiting for the socket stay in the outbox, where
            // they count against its capacity.
            let flushed = match self.socket.poll_flush(cx) {
                Poll::Ready(Ok(())) => true,
                Poll::Ready(Err(_)) => return Poll::Ready(End::Gone),
                Poll::Pending => false,
            };
            let news = self.outbox.poll_news(cx, self.socket.queue_mut(), flushed);
            match news.signal {
                Some(Signal::Overflowed) => return Poll::Ready(End::slow_reader()),
                Some(Signal::Close(code, reason)) => return Poll::Ready(End::Close(code, reason)),
                None => {}
            }
            if news.tick
                && let Some(end) = self.on_tick()
            {
                return Poll::Ready(end);
            }
            if flushed && self.socket.has_queued() {
                continue;
            }
            if !flushed {
                // Read backpressure: a client that does not take what we write gets nothing
                // read either, so its pings and messages wait in its own TCP buffers, not in
                // ours. The write's readiness or the outbox wakes us; a write that stays
                // stuck is closed by the tick (1008).
                return Poll::Pending;
            }
            if self.poll_image(cx).is_pending() {
                return Poll::Pending;
            }
            match self.socket.poll_next(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => return Poll::Ready(End::Gone),
                Poll::Ready(Some(Err(ReadError::Io(_)))) => return Poll::Ready(End::Gone),
                Poll::Ready(Some(Err(ReadError::Frame(e)))) => {
                    tracing::info!(user = self.member.user().id, error = %e, "bad frame");
                    return Poll::Ready(End::Close(e.close_code(), e.reason().into()));
                }
                Poll::Ready(Some(Ok(message))) => {
                    self.last_heard = Instant::now();
                    if let Some(end) = self.on_message(message) {
                        return Poll::Ready(end);
                    }
                    handled += 1;
                    if handled == MESSAGES_PER_TURN {
                        cx.waker().wake_by_ref();
                        return Poll::Pending;
                    }
                }
            }
        }
    }

    /// Once per ping interval: drop the silent and the stuck, ping the rest.
    fn on_tick(&mut self) -> Option<End> {
        let queued = self.socket.unwritten() + self.outbox.queued_bytes() as u64;
        let slow = self.writes.tick(
            Instant::now(),
            self.socket.written(),
            queued,
            self.state.chat.write_timeout,
        );
        match slow {
            Some(Slow::Stalled) => return Some(End::Close(close::POLICY, WRITE_TIMED_OUT.into())),
            Some(Slow::FellBehind) => return Some(End::Close(close::POLICY, FELL_BEHIND.into())),
            None => {}
        }
        // After the slow-reader rules: a client we stopped reading because it does not take
        // our writes has its pongs waiting unread, and is a slow reader, not a silent one.
        if self.last_heard.elapsed() > self.state.chat.ping_interval * 2 {
            return Some(End::Close(close::GOING_AWAY, "ping timeout".into()));
        }
        if unix_now() >= self.expires {
            return Some(End::Close(protocol::close::INVALID_USER, EXPIRED.into()));
        }
        self.socket.queue(frame::ping());
        None
    }

    fn on_message(&mut self, message: Incoming) -> Option<End> {
        match message {
            Incoming::Text(text) => {
                self.on_text(&text);
                None
            }
            Incoming::Binary => Some(End::Close(
                close::UNSUPPORTED,
                "binary frames are not supported".into(),
            )),
            Incoming::Close(code) => Some(End::ClientClosed(code)),
            Incoming::Ping(payload) => {
                self.socket.pong(&payload);
                None
            }
            Incoming::Pong => None,
        }
    }

    fn on_text(&mut self, text: &str) {
        let command = match parse_client_text(text) {
            Ok(command) => command,
            Err(e) => return self.refuse(Reject::BadCommand, &e.to_string(), json!({}), text),
        };
        let user = self.member.user().id;
        match command {
            ClientCommand::Chat { data, cid } => {
                let Some(text) = self.text(&data) else { return };
                let Some(text) = self.filtered(text) else {
                    return;
                };
                if self.within_rate_limit() && !self.muted() && !self.room_refused() {
                    // Sent with the rest of this turn's chat, in one fan-out.
                    self.chats.push((text, cid));
                }
            }
            ClientCommand::Private { to, data, cid } => {
                let Some(text) = self.text(&data) else { return };
                if to == user {
                    return self.refuse(
                        Reject::BadRecipient,
                        "a private message needs someone else",
                        json!({ "to": to }),
                        &data,
                    );
                }
                let Some(text) = self.filtered(text) else {
                    return;
                };
                if !self.within_rate_limit() || self.muted() || self.room_refused() {
                    return;
                }
                self.send_chats();
                let sent = self
                    .state
                    .engine
                    .private(&self.member, to, &text, cid.as_ref());
                match sent {
                    // The engine answered it; it took its token above like a sent one.
                    Ok(Whisper::RecipientOffline) => {
                        self.rejected(Reject::BadRecipient, None);
                    }
                    Ok(_) => {}
                    Err(e) => self.not_sent(&e, [cid.as_ref()]),
                }
            }
            ClientCommand::Image { data: url, cid } => self.on_image(url, cid),
            ClientCommand::History { before } => {
                // A page is a read of up to a frame's bytes: it costs a message's token.
                if !self.within_rate_limit() {
                    return;
                }
                self.send_chats();
                if let Err(e) = self.state.engine.history_page(&self.member, before) {
                    tracing::warn!(user, error = %e, "history page not read");
                    self.reply_error(code::HISTORY_UNAVAILABLE, &format!("history not read: {e}"));
                }
            }
            ClientCommand::Users { after } => {
                // A page of users is bounded by --list-page, and costs a token like a page.
                if !self.within_rate_limit() {
                    return;
                }
                self.send_chats();
                if let Err(e) = self.state.engine.users(&self.member, after) {
                    tracing::warn!(user, error = %e, "users page not read");
                    self.reply_error(code::USERS_UNAVAILABLE, &format!("users not read: {e}"));
                }
            }
        }
    }
}

impl<T> Connection<T> {
    /// Hands the turn's chat messages to the engine in one go.
    fn send_chats(&mut self) {
        if self.chats.is_empty() {
            return;
        }
        if let Err(e) = self.state.engine.chat(&self.member, &self.chats) {
            self.not_sent(&e, self.chats.iter().map(|(_, cid)| cid.as_ref()));
        }
        self.chats.clear();
    }
}
