//! `DELETE /admin/api/rooms/{room}/messages/{id}` and `POST /admin/api/users/{id}/purge`:
//! a moderator removes one message, or a user's messages, from history and from every page.

use std::{collections::BTreeMap, time::Duration};

use axum::{
    Json,
    extract::{Path, State, rejection::JsonRejection},
    http::StatusCode,
};
use serde::{Deserialize, Serialize};

use crate::{
    chat::{DeleteError, Deleted, Deletion, protocol::now_ms, room::RoomName},
    error::{ApiError, Result},
    state::AppState,
};

/// The longest look back a purge by `minutes` takes: a year; past it, purge everything.
const MAX_MINUTES: u64 = 366 * 24 * 60;

/// What a deletion answers: the ids deleted per room, and how many in all.
#[derive(Debug, Serialize)]
pub struct DeletedBody {
    pub rooms: BTreeMap<String, usize>,
    pub ids: BTreeMap<String, Vec<u64>>,
    pub total: usize,
}

impl From<Deleted> for DeletedBody {
    fn from(deleted: Deleted) -> Self {
        let total = deleted.total();
        let ids: BTreeMap<String, Vec<u64>> = deleted
            .0
            .into_iter()
            .map(|(room, ids)| (room.as_str().to_owned(), ids))
            .collect();
        DeletedBody {
            rooms: ids.iter().map(|(r, ids)| (r.clone(), ids.len())).collect(),
            ids,
            total,
        }
    }
}

/// `{"room":…?, "minutes":…?}`: absent room is every room, absent minutes every message.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PurgeRequest {
    pub room: Option<String>,
    pub minutes: Option<u64>,
}

fn room(raw: &str) -> Result<RoomName> {
    RoomName::parse(raw).map_err(|e| ApiError::BadRequest(format!("bad room name: {e}")))
}

fn refused(e: DeleteError) -> ApiError {
    match e {
        DeleteError::NotAMessage { .. } => ApiError::NotFound(e.to_string()),
        DeleteError::NoHistory => ApiError::Status(StatusCode::CONFLICT, e.to_string()),
        DeleteError::Engine(e) => ApiError::RetryLater {
            status: StatusCode::SERVICE_UNAVAILABLE,
            reason: format!("not deleted: {e}"),
            retry_after: Duration::from_secs(1),
        },
    }
}

pub async fn delete_message(
    State(state): State<AppState>,
    Path((raw_room, raw_id)): Path<(String, String)>,
) -> Result<Json<DeletedBody>> {
    let room = room(&raw_room)?;
    let id = raw_id
        .parse::<u64>()
        .map_err(|_| ApiError::NotFound(format!("no message {raw_id} in room {room}")))?;
    let deleted = state
        .engine
        .delete(Deletion::Message { room, id })
        .await
        .map_err(refused)?;
    Ok(Json(deleted.into()))
}

pub async fn purge(
    State(state): State<AppState>,
    Path(raw_user): Path<String>,
    body: std::result::Result<Json<PurgeRequest>, JsonRejection>,
) -> Result<Json<DeletedBody>> {
    let user = raw_user
        .parse::<u64>()
        .map_err(|_| ApiError::BadRequest(format!("bad user id {raw_user:?}")))?;
    let Json(request) = body.map_err(|e| ApiError::body_rejected(&e, e.status(), e.body_text()))?;
    let room = request.room.as_deref().map(room).transpose()?;
    let since_ms = match request.minutes {
        None => None,
        Some(minutes @ 1..=MAX_MINUTES) => Some(now_ms().saturating_sub(minutes * 60_000)),
        Some(_) => {
            return Err(ApiError::BadRequest(format!(
                "minutes must be 1 to {MAX_MINUTES}, or absent for every message"
            )));
        }
    };
    let deletion = Deletion::Purge {
        user,
        room,
        since_ms,
        batch: state.purge_batch,
    };
    let deleted = state.engine.delete(deletion).await.map_err(refused)?;
    Ok(Json(deleted.into()))
}
