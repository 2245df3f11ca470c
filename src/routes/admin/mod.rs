//! `/admin` (the moderators' page), `/admin/session` and `/admin/api/*`: the moderators' JSON API.
//!
//! Every `/admin/api/*` handler takes a `Moderator`, so nothing there runs for anyone else.
//! Bodies are capped at `MAX_BODY` bytes and every list is a page of at most `MAX_PAGE`.

mod audit;
pub mod auth;
mod bans;
mod messages;
mod page;
mod rooms;
mod users;
mod word_filter;

use axum::{
    Json, Router,
    extract::{DefaultBodyLimit, FromRequest, FromRequestParts, Query, Request},
    http::request::Parts,
    routing::{delete, get, post, put},
};
use serde::{Deserialize, de::DeserializeOwned};

use crate::{error::ApiError, moderation::store::StoreError, state::AppState};

/// The largest request body the API reads: a ban or a reason is a few hundred bytes.
const MAX_BODY: usize = 4096;

/// Items a page holds unless `limit` asks for fewer.
pub const DEFAULT_PAGE: usize = 50;

/// The most items one page holds, whatever `limit` asks.
pub const MAX_PAGE: usize = 200;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin", get(page::get))
        .route(
            "/admin/session",
            post(auth::sign_in).delete(auth::sign_out).get(page::who),
        )
        // The chat socket, for a moderator's page: the moderator cookie comes with `/admin`
        // paths only, and the socket checks it (a read-only room takes their messages).
        .route("/admin/ws", get(crate::routes::socket::socket_or_not_found))
        .route("/admin/api/me", get(auth::me))
        .route("/admin/api/audit", get(audit::list))
        .route("/admin/api/users/{id}/kick", post(users::kick))
        .route(
            "/admin/api/users/{id}/mute",
            post(users::mute).delete(users::unmute),
        )
        .route("/admin/api/mutes", get(users::mutes))
        .route("/admin/api/rooms", get(rooms::list))
        .route("/admin/api/rooms/{room}", put(rooms::put).get(rooms::get))
        .route(
            "/admin/api/rooms/{room}/messages/{id}",
            delete(messages::delete_message),
        )
        .route("/admin/api/users/{id}/purge", post(messages::purge))
        .route("/admin/api/bans", post(bans::create).get(bans::list))
        .route("/admin/api/bans/{id}", delete(bans::remove))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        // Its own bound, from the flags: a list of words is larger than any other body here.
        .route(
            "/admin/api/word-filter",
            put(word_filter::put).get(word_filter::get),
        )
}

/// A JSON body, refused with the API's error shape (and 413 past `MAX_BODY`).
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        Json::<T>::from_request(req, state)
            .await
            .map(|Json(body)| ApiJson(body))
            .map_err(|e| ApiError::body_rejected(&e, e.status(), e.body_text()))
    }
}

/// `?before=<id>&limit=<n>`: the items older than `before`, newest first.
#[derive(Debug, Default, Deserialize)]
pub struct PageQuery {
    pub before: Option<i64>,
    pub limit: Option<usize>,
}

impl PageQuery {
    pub fn limit(&self) -> usize {
        self.limit.unwrap_or(DEFAULT_PAGE).clamp(1, MAX_PAGE)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for PageQuery {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Query::<PageQuery>::from_request_parts(parts, state)
            .await
            .map(|Query(q)| q)
            .map_err(|e| ApiError::BadRequest(e.body_text()))
    }
}

/// A store failure is ours: logged in full, answered 500; Redis out of reach is 503, since
/// the same call will work once it is back.
pub fn store_failed(e: StoreError) -> ApiError {
    if e.is_unavailable() {
        tracing::warn!(error = %e, "moderation store unavailable");
        return ApiError::Status(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "the moderation store cannot be reached right now: try again later".into(),
        );
    }
    ApiError::Internal(anyhow::Error::new(e).context("moderation store"))
}
