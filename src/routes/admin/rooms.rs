//! `PUT|GET /admin/api/rooms/{room}`: a room's slow mode and read-only flag.

use axum::{
    Json,
    extract::{Path, State},
    http::StatusCode,
};

use super::{ApiJson, auth::Moderator, store_failed};
use crate::{
    chat::room::RoomName,
    error::{ApiError, Result},
    moderation::{
        ModerationError,
        rooms::{MAX_SLOW_MODE_SECS, RoomSettings},
    },
    state::AppState,
};

fn room(raw: &str) -> Result<RoomName> {
    RoomName::parse(raw).map_err(|e| ApiError::BadRequest(e.to_string()))
}

/// `{"slow_mode_secs":N,"read_only":bool}`; both default to off, so `{}` clears the room.
pub async fn put(
    State(state): State<AppState>,
    Moderator(moderator): Moderator,
    Path(raw): Path<String>,
    ApiJson(settings): ApiJson<RoomSettings>,
) -> Result<Json<RoomSettings>> {
    let room = room(&raw)?;
    if settings.slow_mode_secs > MAX_SLOW_MODE_SECS {
        return Err(ApiError::BadRequest(format!(
            "slow_mode_secs is at most {MAX_SLOW_MODE_SECS}"
        )));
    }
    state
        .moderation
        .set_room(room.as_str(), settings)
        .map_err(|e| match e {
            e @ ModerationError::TooManyRooms { .. } => {
                ApiError::Status(StatusCode::CONFLICT, e.to_string())
            }
            ModerationError::Store(e) => store_failed(e),
            e => ApiError::Internal(e.into()),
        })?;
    let what = format!(
        "slow_mode_secs={} read_only={}",
        settings.slow_mode_secs, settings.read_only
    );
    state
        .moderation
        .record(&moderator, "room", &format!("room:{room}"), Some(&what))
        .map_err(store_failed)?;
    Ok(Json(settings))
}

pub async fn get(
    State(state): State<AppState>,
    _moderator: Moderator,
    Path(raw): Path<String>,
) -> Result<Json<RoomSettings>> {
    let room = room(&raw)?;
    Ok(Json(state.moderation.room(room.as_str())))
}
