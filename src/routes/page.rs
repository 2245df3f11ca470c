//! `GET /ws` and `GET /`: the chat page, or the socket when the request asks to upgrade.

use super::socket::{self, MaybeUpgrade, SocketRequest};
use crate::{
    auth::{self, User},
    chat::room::RoomName,
    error::ApiError,
    i18n::Lang,
    sessions::Refusal,
    state::AppState,
    templates::{ChatPage, RoomErrorPage},
};
use askama::Template;
use axum::{
    extract::{Query, State},
    http::{StatusCode, header},
    response::{Html, IntoResponse, Response},
};

pub async fn page_or_socket(
    State(state): State<AppState>,
    MaybeUpgrade(upgrade): MaybeUpgrade,
    request: SocketRequest,
) -> Response {
    match upgrade {
        Some(ws) => socket::accept(ws, &state, request),
        None => {
            let SocketRequest {
                jar,
                headers,
                query: Query(query),
                ..
            } = request;
            let lang = Lang::negotiate(
                headers
                    .get(header::ACCEPT_LANGUAGE)
                    .and_then(|v| v.to_str().ok()),
            );
            // Caches must keep one copy per language. Back must not bring up a copy from the
            // disk cache: it would show the sign-in form to a visitor who has since signed in.
            let vary = [
                (header::VARY, "accept-language"),
                (header::CACHE_CONTROL, "no-store"),
            ];
            let room = query
                .room
                .as_deref()
                .map_or_else(|| Ok(RoomName::lobby()), RoomName::parse);
            match room {
                Ok(room) => {
                    // A cookie too old or signed out greets as signed out, as the socket
                    // would refuse it; if the store cannot say, the socket will.
                    let user = match state.sessions.check(&jar).await {
                        Ok(session) => Some(session.user),
                        Err(Refusal::Unavailable) => auth::signed_session(&jar).map(|s| s.user),
                        Err(_) => None,
                    };
                    (vary, render(&state, user.as_deref(), lang, &room)).into_response()
                }
                // The socket would be closed with 4002; say why before any script runs.
                Err(reason) => {
                    let page = RoomErrorPage {
                        assets: &state.assets,
                        lang,
                        t: lang.strings(),
                        reason: &reason.to_string(),
                    };
                    let html = page.render().map(Html).map_err(|e| {
                        ApiError::Internal(
                            anyhow::Error::new(e).context("rendering the room error"),
                        )
                    });
                    (StatusCode::BAD_REQUEST, vary, html).into_response()
                }
            }
        }
    }
}

fn render(
    state: &AppState,
    user: Option<&User>,
    lang: Lang,
    room: &RoomName,
) -> Result<Html<String>, ApiError> {
    let guest = auth::guest_name(state.user_ids.issued());
    let page = ChatPage {
        assets: &state.assets,
        lang,
        t: lang.strings(),
        m: lang.moderation(),
        guest_name: guest.as_str(),
        signed_in_as: user.map(|u| u.name.as_str()),
        max_message_chars: state.chat.max_message_chars,
        room: room.as_str(),
    };
    let html = page.render().map_err(|e| {
        ApiError::Internal(anyhow::Error::new(e).context("rendering the chat page"))
    })?;
    Ok(Html(html))
}
