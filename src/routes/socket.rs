//! The WebSocket upgrade: origin check, cookie check, then hand over to `chat::connection`.

use axum::{
    extract::{FromRequestParts, Query, State},
    http::{HeaderMap, StatusCode, header, request::Parts},
    response::{IntoResponse, Response},
};
use axum_extra::extract::SignedCookieJar;
use futures_util::{FutureExt, future::OptionFuture};
use serde::Deserialize;
use std::{net::IpAddr, time::Instant};

use super::{
    admin,
    client_addr::ClientAddr,
    origin::{self, Scheme},
};
use crate::{
    auth::{self, Session},
    chat::{
        connection::{self, CLOSE_GRACE, Held, Live, OpenConnection, Writer},
        protocol::close,
        room::{RoomName, RoomNameError},
    },
    error::ApiError,
    metrics::Refused,
    moderation::name::ModeratorName,
    sessions::{EXPIRED, Refusal, SIGNED_OUT},
    state::AppState,
    ws::{ServerIo, ServerSocket, WsUpgrade, close as ws_close},
};

/// The reason sent with 4004; the page shows it and stops reconnecting.
const TOO_MANY_TABS: &str = "too many open tabs: close one";

/// The answer to a socket opened past `--socket-rate`.
const SOCKET_RATE: &str = "too many connections opened: wait a moment and try again";

#[derive(Debug, Default, Deserialize)]
pub struct SocketQuery {
    pub room: Option<String>,
    /// The last event id the client saw: it gets every later event it may see.
    pub since: Option<u64>,
}

/// `Some` when the request asks for a WebSocket; a malformed upgrade is rejected as such.
pub struct MaybeUpgrade(pub Option<WsUpgrade>);

impl<S: Send + Sync> FromRequestParts<S> for MaybeUpgrade {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Response> {
        if !WsUpgrade::requested(&parts.headers) {
            return Ok(MaybeUpgrade(None));
        }
        WsUpgrade::from_request_parts(parts, state)
            .await
            .map(|ws| MaybeUpgrade(Some(ws)))
            .map_err(IntoResponse::into_response)
    }
}

/// What a socket needs from its request besides the upgrade, on whichever path it came.
#[derive(FromRequestParts)]
#[from_request(state(AppState))]
pub struct SocketRequest {
    pub client: ClientAddr,
    pub scheme: Scheme,
    pub jar: SignedCookieJar,
    pub headers: HeaderMap,
    pub query: Query<SocketQuery>,
}

/// Any other path: a socket if asked for, else 404.
pub async fn socket_or_not_found(
    State(state): State<AppState>,
    MaybeUpgrade(upgrade): MaybeUpgrade,
    request: SocketRequest,
) -> Response {
    match upgrade {
        Some(ws) => accept(ws, &state, request),
        None => ApiError::NotFound("not found".into()).into_response(),
    }
}

pub fn accept(ws: WsUpgrade, state: &AppState, request: SocketRequest) -> Response {
    let SocketRequest {
        client: ClientAddr(client),
        scheme,
        jar,
        headers,
        query: Query(query),
    } = request;
    if !state.origins.allows(&headers, scheme) {
        let origin = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok());
        tracing::debug!(%client, origin, "refused a cross-origin WebSocket");
        origin::refused_request(state, client, "cross_origin_socket");
        return ApiError::Forbidden("cross-origin WebSocket refused".into()).into_response();
    }
    // Signed and well formed; whether it is still good (age, sign-out) is asked after the
    // upgrade, where the answer can be a close code.
    let signed = auth::signed_session(&jar);
    let moderator = admin::auth::from_cookie(state, &jar);
    // Before the upgrade: a loop of opens and closes is refused while it costs us nothing.
    let opened =
        state
            .socket_opens
            .try_open(signed.as_ref().map(|s| s.user.id), client, Instant::now());
    if let Err(retry_after) = opened {
        origin::refused_request(state, client, "socket_rate");
        return ApiError::RetryLater {
            status: StatusCode::TOO_MANY_REQUESTS,
            reason: SOCKET_RATE.into(),
            retry_after,
        }
        .into_response();
    }
    let room = query
        .room
        .as_deref()
        .map_or_else(|| Ok(RoomName::lobby()), RoomName::parse);
    let since = query.since;
    let sockets = state.sockets.clone();
    let ws = ws.max_message_bytes(state.chat.max_ws_message_bytes);
    let state = state.clone();
    ws.on_upgrade(move |socket| {
        // Boxed: the checks and the join are freed once the socket is in, and the task keeps
        // only the connection (`Live::run`), not the largest of these awaits.
        let admitted = Box::pin(admit(socket, state, signed, moderator, room, since, client));
        let run = admitted.then(|live| OptionFuture::from(live.map(Live::run)));
        sockets.track_future(run.map(drop))
    })
}

/// The upgrade went through (as in the seed: a browser only sees close codes): checks the
/// sign-in, bans, tabs and the room, then joins; `None` when the socket was closed instead.
async fn admit(
    mut socket: ServerSocket,
    state: AppState,
    signed: Option<Session>,
    moderator: Option<ModeratorName>,
    room: Result<RoomName, RoomNameError>,
    since: Option<u64>,
    client: IpAddr,
) -> Option<Live<ServerIo>> {
    let session = match state.sessions.verify(signed).await {
        Ok(session) => session,
        Err(Refusal::Unavailable) => {
            socket
                .close(
                    ws_close::TRY_AGAIN_LATER,
                    &Refusal::Unavailable.to_string(),
                    CLOSE_GRACE,
                )
                .await;
            return None;
        }
        Err(refusal) => {
            let (label, reason) = match refusal {
                Refusal::Expired => ("socket_session_expired", EXPIRED),
                Refusal::Revoked => ("socket_session_revoked", SIGNED_OUT),
                _ => ("socket_without_user", "Invalid user"),
            };
            origin::refused_request(&state, client, label);
            socket.close(close::INVALID_USER, reason, CLOSE_GRACE).await;
            return None;
        }
    };
    let user = session.user.clone();
    // Tracked before the check: a ban made in between finds this socket by address.
    let address = state.moderation.addresses.track(client, user.id);
    if let Some(ban) = state.moderation.banned(Some(user.id), Some(client)) {
        origin::refused_request(&state, client, "banned_socket");
        let reason = ban.describe();
        socket
            .close(close::REMOVED, close::fit_reason(&reason), CLOSE_GRACE)
            .await;
        return None;
    }
    // Each tab holds a socket, a task and a room membership: one user's are capped.
    let Some(tab) = state.tabs.take(user.id) else {
        state.metrics.refuse(Refused::PerUser);
        origin::refused_request(&state, client, "sockets_per_user");
        socket
            .close(close::TOO_MANY_SOCKETS, TOO_MANY_TABS, CLOSE_GRACE)
            .await;
        return None;
    };
    let room = match room {
        Ok(room) => room,
        Err(e) => {
            let reason = e.to_string();
            tracing::debug!(user = user.id, %client, reason, "refused a bad room name");
            origin::refused_request(&state, client, "bad_room_name");
            socket
                .close(close::INVALID_ROOM, &reason, CLOSE_GRACE)
                .await;
            return None;
        }
    };
    let open = OpenConnection::count(&state.metrics);
    if let Some(name) = &moderator {
        tracing::info!(user = user.id, moderator = %name, "a moderator's socket");
    }
    let writer = Writer {
        session,
        moderator: moderator.is_some(),
    };
    let held = Held { address, tab, open };
    connection::join(socket, state, writer, room, since, client, held).await
}
