//! `POST /admin/api/users/{id}/kick`: what a moderator does to one user's sockets.

use axum::{
    Json,
    extract::{Path, State},
};
use serde::{Deserialize, Serialize};

use super::{ApiJson, auth::Moderator, store_failed};
use crate::{
    chat::protocol::close,
    error::{ApiError, Result},
    moderation::reason::Reason,
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
    let closed = state.engine.close_user(user, close::REMOVED, &text);
    tracing::info!(%moderator, user, closed, "kicked");
    Ok(Json(Kicked { user, closed }))
}
