//! `GET /admin`, the moderators' page, and `GET /admin/session`, which tells any page whether
//! its visitor is a moderator.

use askama::Template;
use axum::{
    Json,
    extract::State,
    http::{HeaderMap, header},
    response::{Html, IntoResponse, Response},
};
use axum_extra::extract::SignedCookieJar;
use serde::Serialize;

use super::auth;
use crate::{error::ApiError, i18n::Lang, state::AppState, templates::AdminPage};

/// `GET /admin`: the sign-in form, or the panels if the cookie is good already.
pub async fn get(
    State(state): State<AppState>,
    headers: HeaderMap,
    jar: SignedCookieJar,
) -> Response {
    let lang = Lang::negotiate(
        headers
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok()),
    );
    let moderator = auth::from_cookie(&state, &jar);
    let page = AdminPage {
        assets: &state.assets,
        lang,
        t: lang.strings(),
        m: lang.moderation(),
        moderator: moderator.as_ref().map(|m| m.as_str()),
    };
    let html = page.render().map(Html).map_err(|e| {
        ApiError::Internal(anyhow::Error::new(e).context("rendering the moderators' page"))
    });
    // Caches must keep one copy per language, and none per moderator.
    let headers = [
        (header::VARY, "accept-language, cookie"),
        (header::CACHE_CONTROL, "no-store"),
    ];
    (headers, html).into_response()
}

#[derive(Debug, Serialize)]
pub struct Who {
    /// The moderator the cookie names, `null` for everyone else.
    moderator: Option<String>,
}

/// `GET /admin/session`: 200 for everyone, so the chat page can ask without a 401 in the
/// console; a bad cookie is no failed sign-in either, as nothing was tried.
pub async fn who(State(state): State<AppState>, jar: SignedCookieJar) -> impl IntoResponse {
    let moderator = auth::from_cookie(&state, &jar).map(|m| m.to_string());
    (
        [(header::CACHE_CONTROL, "no-store")],
        Json(Who { moderator }),
    )
}
