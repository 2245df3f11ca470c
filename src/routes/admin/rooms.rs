//! `PUT|GET /admin/api/rooms/{room}`: a room's slow mode and read-only flag; `GET
//! /admin/api/rooms`: who is online, room by room.

use axum::{
    Json,
    extract::{Path, Query, State, rejection::QueryRejection},
    http::StatusCode,
};
use serde::{Deserialize, Serialize};

use super::{ApiJson, DEFAULT_PAGE, MAX_PAGE, auth::Moderator, store_failed};
use crate::{
    auth::User,
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

/// Users listed per room at most; `online` still counts them all.
pub const MAX_USERS_PER_ROOM: usize = 100;

/// `?after=<room>&limit=<n>`: the rooms whose names sort after `after`.
#[derive(Debug, Default, Deserialize)]
pub struct RoomsQuery {
    after: Option<String>,
    limit: Option<usize>,
}

#[derive(Debug, Serialize)]
pub struct RoomsPage {
    rooms: Vec<RoomOnline>,
    /// The `after` of the next page, `null` on the last.
    next: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct RoomOnline {
    room: String,
    online: usize,
    users: Vec<User>,
    #[serde(flatten)]
    settings: RoomSettings,
}

/// `GET /admin/api/rooms`: the rooms with someone online on this instance, by name, with
/// their users (the first `MAX_USERS_PER_ROOM` who came) and settings; paged like the rest.
pub async fn list(
    State(state): State<AppState>,
    _moderator: Moderator,
    query: Result<Query<RoomsQuery>, QueryRejection>,
) -> Result<Json<RoomsPage>> {
    let Query(query) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let limit = query.limit.unwrap_or(DEFAULT_PAGE).clamp(1, MAX_PAGE);
    let (rooms, more) = state
        .engine
        .rooms_here(query.after.as_deref(), limit, MAX_USERS_PER_ROOM);
    let next = more
        .then(|| rooms.last().map(|r| r.room.to_string()))
        .flatten();
    let rooms = rooms
        .into_iter()
        .map(|r| RoomOnline {
            settings: state.moderation.room(r.room.as_str()),
            room: r.room.to_string(),
            online: r.online,
            users: r.users.iter().map(|u| User::clone(u)).collect(),
        })
        .collect();
    Ok(Json(RoomsPage { rooms, next }))
}
