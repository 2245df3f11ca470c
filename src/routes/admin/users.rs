//! `POST /admin/api/users/{id}/kick` and `…/mute`, `GET /admin/api/mutes`: what a moderator
//! does to one user.

use axum::{
    Json,
    extract::{Path, Query, State, rejection::QueryRejection},
    http::StatusCode,
};
use serde::{Deserialize, Serialize};

use super::{ApiJson, PageQuery, auth::Moderator, bans::until, store_failed};
use crate::{
    chat::protocol::close,
    error::{ApiError, Result},
    moderation::{ModerationError, mutes::Mute, reason::Reason, time},
    state::AppState,
};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Kick {
    reason: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Kicked {
    user: u64,
    /// Sockets asked to close.
    closed: usize,
}

pub fn parse_reason(raw: Option<&str>) -> Result<Reason> {
    Reason::parse(raw).map_err(|e| ApiError::BadRequest(e.to_string()))
}

pub fn user_id(Path(raw): Path<String>) -> Result<u64> {
    raw.parse()
        .map_err(|_| ApiError::BadRequest(format!("`{raw}` is not a user id")))
}

/// Closes every socket of the user with 4003 and the reason. A kick is not a ban: the user
/// may come back at once.
pub async fn kick(
    State(state): State<AppState>,
    Moderator(moderator): Moderator,
    id: Path<String>,
    ApiJson(body): ApiJson<Kick>,
) -> Result<Json<Kicked>> {
    let user = user_id(id)?;
    let reason = parse_reason(body.reason.as_deref())?;
    let text = match reason.given() {
        Some(reason) => format!("kicked: {reason}"),
        None => "kicked by a moderator".to_owned(),
    };
    state
        .moderation
        .record(&moderator, "kick", &format!("user:{user}"), reason.given())
        .map_err(store_failed)?;
    // Every other instance closes its own sockets of the user.
    state.moderation.kick(user, &text).map_err(store_failed)?;
    let closed = state.engine.close_user(user, close::REMOVED, &text);
    tracing::info!(%moderator, user, closed, "kicked");
    Ok(Json(Kicked { user, closed }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewMute {
    /// Required: a mute always ends. Fractions are taken (0.5 is thirty seconds).
    minutes: f64,
    reason: Option<String>,
}

/// `POST /admin/api/users/{id}/mute`: the user still reads; what they send gets an `error`
/// until the mute ends. A second mute replaces the first.
pub async fn mute(
    State(state): State<AppState>,
    Moderator(moderator): Moderator,
    id: Path<String>,
    ApiJson(body): ApiJson<NewMute>,
) -> Result<Json<Mute>> {
    let user = user_id(id)?;
    let reason = parse_reason(body.reason.as_deref())?;
    let mute = Mute {
        user,
        reason: reason.as_str().to_owned(),
        moderator: moderator.to_string(),
        created: time::now_ms(),
        until: until(body.minutes)?,
    };
    state.moderation.mute(mute.clone()).map_err(|e| match e {
        e @ ModerationError::TooManyMutes { .. } => {
            ApiError::Status(StatusCode::CONFLICT, e.to_string())
        }
        ModerationError::Store(e) => store_failed(e),
        e => ApiError::Internal(e.into()),
    })?;
    state
        .moderation
        .record(&moderator, "mute", &format!("user:{user}"), reason.given())
        .map_err(store_failed)?;
    tracing::info!(%moderator, user, until = mute.until, "muted");
    Ok(Json(mute))
}

/// `DELETE /admin/api/users/{id}/mute`: lifts the mute.
pub async fn unmute(
    State(state): State<AppState>,
    Moderator(moderator): Moderator,
    id: Path<String>,
) -> Result<Json<Mute>> {
    let user = user_id(id)?;
    let mute = state
        .moderation
        .unmute(user)
        .map_err(store_failed)?
        .ok_or_else(|| ApiError::NotFound(format!("user {user} is not muted")))?;
    state
        .moderation
        .record(&moderator, "unmute", &format!("user:{user}"), None)
        .map_err(store_failed)?;
    Ok(Json(mute))
}

#[derive(Debug, Deserialize)]
pub struct MutePage {
    /// A user id: the mutes of lower ids.
    before: Option<u64>,
    limit: Option<usize>,
}

#[derive(Debug, Serialize)]
pub struct Mutes {
    mutes: Vec<Mute>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next: Option<u64>,
}

/// `GET /admin/api/mutes`: the mutes in force, by user id from the highest, paged.
pub async fn mutes(
    State(state): State<AppState>,
    _moderator: Moderator,
    page: Result<Query<MutePage>, QueryRejection>,
) -> Result<Json<Mutes>> {
    let Query(page) = page.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let limit = PageQuery {
        before: None,
        limit: page.limit,
    }
    .limit();
    let mutes = state.moderation.mutes_page(page.before, limit);
    let next = (mutes.len() == limit)
        .then(|| mutes.last().map(|m| m.user))
        .flatten();
    Ok(Json(Mutes { mutes, next }))
}
