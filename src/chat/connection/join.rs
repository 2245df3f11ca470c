//! Joining: a signed-in socket enters its room, or is closed with the reason it may not;
//! and what the socket holds while it is open.

use std::{net::IpAddr, sync::Arc, time::Instant};

use tokio::io::{AsyncRead, AsyncWrite};

use super::{CLOSE_GRACE, Connection, Live, Writer, slow};
use crate::{
    auth::unix_now,
    chat::{
        outbox::{Outbox, Signal},
        protocol,
        refusal::Refusals,
        room::RoomName,
    },
    metrics::Metrics,
    moderation::addresses::Tracked,
    server::tally::Slot,
    sessions::SIGNED_OUT,
    state::AppState,
    ws::{WsSocket, close},
};

/// What a socket holds while it is open and lets go when it ends: its place among its
/// address's sockets (bans find it there), its user's tab, and the open-connections gauge.
pub struct Held {
    pub address: Tracked,
    pub tab: Slot<u64>,
    pub open: OpenConnection,
}

/// Counts a signed-in socket as open until dropped, however its task ends.
pub struct OpenConnection(Arc<Metrics>);

impl OpenConnection {
    pub fn count(metrics: &Arc<Metrics>) -> Self {
        metrics.connections.inc();
        metrics.connections_open.inc();
        OpenConnection(metrics.clone())
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.connections_open.dec();
    }
}

/// Joins a signed-in user's socket to `room`; `None` when the join was refused (the socket
/// is closed with the reason). Of `state` the connection uses the engine, the message rate
/// limit, the chat settings, the shutdown token, the metrics, the refusal log and the uploads
/// (an `image` may only name a stored file).
pub async fn join<T>(
    mut socket: WsSocket<T>,
    state: AppState,
    writer: Writer,
    room: RoomName,
    since: Option<u64>,
    client: IpAddr,
    held: Held,
) -> Option<Live<T>>
where
    T: AsyncRead + AsyncWrite + Unpin + Send,
{
    let outbox = Outbox::bounded(state.chat.outbound_queue, state.chat.outbound_queue_bytes);
    let Writer { session, moderator } = writer;
    let user = session.user.clone();
    let member = match state
        .engine
        .join(room, user.clone(), session.id, outbox.clone(), since)
        .await
    {
        Ok(member) => member,
        Err(e) if e.too_many_rooms() => {
            tracing::info!(user = user.id, %client, error = %e, "join refused: rooms");
            socket
                .close(protocol::close::TOO_MANY_ROOMS, &e.to_string(), CLOSE_GRACE)
                .await;
            return None;
        }
        Err(e) if e.retry_later() => {
            // Busy or not stored: the page reconnects with its backoff.
            tracing::warn!(user = user.id, %client, error = %e, "join refused for now");
            socket
                .close(
                    close::TRY_AGAIN_LATER,
                    "server busy: try again later",
                    CLOSE_GRACE,
                )
                .await;
            return None;
        }
        Err(e) => {
            tracing::error!(user = user.id, %client, error = %e, "join failed");
            socket
                .close(close::INTERNAL, "chat engine unavailable", CLOSE_GRACE)
                .await;
            return None;
        }
    };
    // A socket that joins while shutdown is under way missed the broadcast close.
    if state.shutdown.is_cancelled() {
        outbox.signal(Signal::Close(
            close::GOING_AWAY,
            "server shutting down".into(),
        ));
    }
    // A ban made while this socket joined found it in no room: it closes now instead.
    if let Some(ban) = state.moderation.banned(Some(user.id), Some(client)) {
        let reason = ban.describe();
        let reason = protocol::close::fit_reason(&reason).to_owned();
        outbox.signal(Signal::Close(protocol::close::REMOVED, reason.into()));
    }
    // A sign-out stores the revocation, then closes the session's sockets in the hub: one
    // checked before that store and joined after that close would be missed, so ask again
    // now that the hub knows this socket.
    if let Ok(true) = state.sessions.is_revoked(&session.id, unix_now()).await {
        outbox.signal(Signal::Close(
            protocol::close::INVALID_USER,
            SIGNED_OUT.into(),
        ));
    }
    tracing::info!(user = user.id, %client, room = %member.room(), "connected");
    let expires = state.sessions.expires(&session);
    let max_refused = state.chat.max_refused;
    let conn = Connection {
        socket,
        state,
        member,
        outbox,
        client,
        moderator,
        last_heard: Instant::now(),
        expires,
        writes: slow::Watch::default(),
        rate_limited: false,
        refusals: Refusals::new(max_refused, Instant::now()),
        chats: Vec::new(),
        image: None,
    };
    Some(Live(conn, held))
}
