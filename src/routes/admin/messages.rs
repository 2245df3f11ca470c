//! `DELETE /admin/api/rooms/{room}/messages/{id}` and `POST /admin/api/users/{id}/purge`:
//! a moderator removes one message, or a user's messages, from history and from every page.
//! Both are in the audit log once done; a deletion answered 404 is not.

use std::{collections::BTreeMap, time::Duration};

use axum::{
    Json,
    extract::{Path, State},
    http::StatusCode,
};
use serde::{Deserialize, Serialize};

use super::{
    ApiJson,
    auth::Moderator,
    store_failed,
    users::{parse_reason, user_id},
};
use crate::{
    chat::{DeleteError, Deleted, Deletion, protocol::now_ms, room::RoomName},
    error::{ApiError, Result},
    state::AppState,
};

/// The longest look back a purge by `minutes` takes, ten years, as bans and mutes take;
/// past it, purge everything.
const MAX_MINUTES: f64 = 10.0 * 366.0 * 24.0 * 60.0;

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

/// `{"room":…?, "minutes":…?, "reason":…?}`: absent room is every room, absent minutes
/// every message.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PurgeRequest {
    pub room: Option<String>,
    pub minutes: Option<f64>,
    pub reason: Option<String>,
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

/// Deletes one message; recorded in the audit log as `delete`, `message:<room>/<id>`.
pub async fn delete_message(
    State(state): State<AppState>,
    Moderator(moderator): Moderator,
    Path((raw_room, raw_id)): Path<(String, String)>,
) -> Result<Json<DeletedBody>> {
    let room = room(&raw_room)?;
    let id = raw_id
        .parse::<u64>()
        .map_err(|_| ApiError::NotFound(format!("no message {raw_id} in room {room}")))?;
    let target = format!("message:{room}/{id}");
    let deleted = state
        .engine
        .delete(Deletion::Message { room, id })
        .await
        .map_err(refused)?;
    state
        .moderation
        .record(&moderator, "delete", &target, None)
        .map_err(store_failed)?;
    tracing::info!(%moderator, target, "deleted");
    Ok(Json(deleted.into()))
}

/// Deletes a user's messages; recorded as `purge`, `user:<id>`, the reason followed by what
/// was deleted where.
pub async fn purge(
    State(state): State<AppState>,
    Moderator(moderator): Moderator,
    id: Path<String>,
    ApiJson(request): ApiJson<PurgeRequest>,
) -> Result<Json<DeletedBody>> {
    let user = user_id(id)?;
    let reason = parse_reason(request.reason.as_deref())?;
    let room = request.room.as_deref().map(room).transpose()?;
    let since_ms = match request.minutes {
        None => None,
        Some(minutes) if minutes > 0.0 && minutes <= MAX_MINUTES => {
            // Within ten years of ms: the cast neither wraps nor loses a minute.
            Some(now_ms().saturating_sub((minutes * 60_000.0) as u64))
        }
        Some(_) => {
            return Err(ApiError::BadRequest(
                "minutes must be above 0 and at most ten years, or absent for every message".into(),
            ));
        }
    };
    let place = room
        .as_ref()
        .map_or("every room".to_owned(), |r| format!("room {r}"));
    let recent = request.minutes.map_or(String::new(), |m| {
        format!(", said in the last {m} minute(s)")
    });
    let deletion = Deletion::Purge {
        user,
        room,
        since_ms,
        batch: state.purge_batch,
    };
    let deleted = state.engine.delete(deletion).await.map_err(refused)?;
    let what = format!("{} message(s) in {place}{recent}", deleted.total());
    let noted = match reason.given() {
        Some(reason) => format!("{reason} ({what})"),
        None => what,
    };
    state
        .moderation
        .record(&moderator, "purge", &format!("user:{user}"), Some(&noted))
        .map_err(store_failed)?;
    tracing::info!(%moderator, user, total = deleted.total(), "purged");
    Ok(Json(deleted.into()))
}
