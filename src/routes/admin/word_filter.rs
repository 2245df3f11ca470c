//! `PUT|GET /admin/api/word-filter`: the words kept out of names and messages, and whether a
//! message with one is masked or refused.

use axum::{Json, body::Body, extract::State, http::StatusCode};
use futures_util::StreamExt;

use super::{auth::Moderator, store_failed};
use crate::{
    error::{ApiError, Result},
    moderation::{
        ModerationError,
        words::{FilterError, FilterLimits, FilterSpec},
    },
    state::AppState,
};

/// The largest body a filter within the flags can take: every word at its longest, in
/// 4-byte characters and JSON-escaped quotes and commas, and room for the rest.
fn body_limit(limits: FilterLimits) -> usize {
    limits
        .max_words
        .saturating_mul(limits.max_word_chars.saturating_mul(4).saturating_add(8))
        .saturating_add(1024)
}

/// Reads the body up to `limit` bytes; past it 413, before the rest is read.
async fn read_body(body: Body, limit: usize) -> Result<Vec<u8>> {
    let mut stream = body.into_data_stream();
    let mut bytes = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            ApiError::body_rejected(&e, StatusCode::BAD_REQUEST, format!("body not read: {e}"))
        })?;
        if bytes.len() + chunk.len() > limit {
            return Err(ApiError::PayloadTooLarge(format!(
                "a word filter is at most {limit} bytes of JSON \
                 (--max-filter-words and --max-filter-word-chars)"
            )));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

/// `{"words":[…],"mode":"mask"|"reject"}`; `{"words":[]}` clears the filter. Answers the
/// filter as it is now in force: words trimmed, one of each normal form.
pub async fn put(
    State(state): State<AppState>,
    Moderator(moderator): Moderator,
    body: Body,
) -> Result<Json<FilterSpec>> {
    let limits = state.moderation.settings.word_filter;
    let bytes = read_body(body, body_limit(limits)).await?;
    let spec: FilterSpec = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::BadRequest(format!("not a word filter: {e}")))?;
    let filter = state
        .moderation
        .set_word_filter(spec)
        .map_err(|e| match e {
            ModerationError::Filter(e @ FilterError::TooManyWords { .. }) => {
                ApiError::PayloadTooLarge(e.to_string())
            }
            ModerationError::Filter(e @ FilterError::Build(_)) => {
                ApiError::Internal(anyhow::Error::new(e))
            }
            ModerationError::Filter(e) => ApiError::BadRequest(e.to_string()),
            ModerationError::Store(e) => store_failed(e),
            e => ApiError::Internal(e.into()),
        })?;
    let spec = filter.spec().clone();
    // The words themselves are not copied into the audit log: it would become a second list
    // of them, kept longer than the filter.
    let what = format!("mode={} words={}", spec.mode.as_str(), spec.words.len());
    tracing::info!(%moderator, mode = spec.mode.as_str(), words = spec.words.len(), "word filter set");
    state
        .moderation
        .record(&moderator, "word_filter", "word-filter", Some(&what))
        .map_err(store_failed)?;
    Ok(Json(spec))
}

pub async fn get(State(state): State<AppState>, _moderator: Moderator) -> Json<FilterSpec> {
    Json(state.moderation.word_filter().spec().clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_limit_fits_the_largest_filter_the_flags_allow() {
        let limits = FilterLimits {
            max_words: 3,
            max_word_chars: 5,
        };
        let largest = FilterSpec {
            words: vec!["\u{10FFFF}".repeat(5); 3],
            mode: crate::moderation::words::FilterMode::Reject,
        };
        let json = serde_json::to_vec(&largest).unwrap();
        assert!(json.len() <= body_limit(limits), "{}", json.len());
    }
}
