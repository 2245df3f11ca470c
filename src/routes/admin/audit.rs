//! `GET /admin/api/audit`: what moderators did, newest first, a page at a time.

use axum::{Json, extract::State};
use serde::Serialize;

use super::{PageQuery, auth::Moderator, store_failed};
use crate::{error::Result, moderation::audit::AuditEntry, state::AppState};

#[derive(Debug, Serialize)]
pub struct Page {
    entries: Vec<AuditEntry>,
    /// `before` for the next page; absent on the last one.
    #[serde(skip_serializing_if = "Option::is_none")]
    next: Option<i64>,
}

pub async fn list(
    State(state): State<AppState>,
    _moderator: Moderator,
    page: PageQuery,
) -> Result<Json<Page>> {
    let limit = page.limit();
    let entries = state
        .moderation
        .audit_page(page.before, limit)
        .map_err(store_failed)?;
    let next = (entries.len() == limit)
        .then(|| entries.last().map(|e| e.id))
        .flatten();
    Ok(Json(Page { entries, next }))
}
