//! `POST /upload` stores an image for a signed-in user; `GET /uploads/{name}` serves it.
//!
//! What counts as an image, its name and its storage live in `crate::upload`; these handlers
//! only move bytes between HTTP and there.

use axum::{
    Json,
    body::Body,
    extract::{
        Multipart, Path, Request, State,
        multipart::{MultipartError, MultipartRejection},
        rejection::PathRejection,
    },
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use axum_extra::extract::SignedCookieJar;
use serde::Serialize;
use tower::ServiceExt as _;
use tower_http::services::ServeFile;

use super::{client_addr::ClientAddr, origin::Scheme};
use crate::{
    auth,
    error::ApiError,
    metrics::UploadReject,
    state::AppState,
    upload::{Intake, IntakeError, UploadName},
};

/// A stored file never changes under its name (the name is its hash), so caches keep it.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";

#[derive(Debug, Serialize)]
pub struct Reply {
    code: u8,
    /// The image's URL, `/uploads/<name>`, for an `image` message.
    data: String,
}

pub async fn create(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    scheme: Scheme,
    headers: HeaderMap,
    jar: SignedCookieJar,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Json<Reply>, ApiError> {
    match receive(&state, scheme, &headers, &jar, multipart).await {
        Ok((user, name)) => {
            state.metrics.uploads.inc();
            tracing::info!(user, %client, image = %name, "uploaded");
            Ok(Json(Reply {
                code: 0,
                data: name.url(),
            }))
        }
        // A failure to store is ours, not the client's: no rejection reason, and a 500.
        Err((_, error @ ApiError::Internal(_))) => Err(error),
        Err((reason, error)) => {
            state.metrics.reject_upload(reason);
            tracing::info!(%client, reason = reason.label(), error = %error, "upload refused");
            Err(error)
        }
    }
}

/// Who uploaded and what was stored, or why not.
async fn receive(
    state: &AppState,
    scheme: Scheme,
    headers: &HeaderMap,
    jar: &SignedCookieJar,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<(u64, UploadName), (UploadReject, ApiError)> {
    // SameSite=Lax keeps the cookie off other sites' posts already; this says so plainly.
    if !state.origins.allows(headers, scheme) {
        let e = ApiError::Forbidden("cross-origin upload refused".into());
        return Err((UploadReject::NotSignedIn, e));
    }
    let Some(user) = auth::current_user(jar) else {
        let e = ApiError::Unauthorized("sign in to upload images".into());
        return Err((UploadReject::NotSignedIn, e));
    };
    let malformed = |reason: String| (UploadReject::Malformed, ApiError::BadRequest(reason));
    let mut multipart = multipart.map_err(|e| match e.status() {
        StatusCode::UNSUPPORTED_MEDIA_TYPE => (
            UploadReject::Malformed,
            ApiError::UnsupportedMediaType("send the image as multipart/form-data".into()),
        ),
        _ => malformed(e.body_text()),
    })?;
    let mut field = loop {
        match multipart.next_field().await.map_err(multipart_error)? {
            Some(field) if field.name() == Some("file") => break field,
            Some(_) => continue,
            None => return Err(malformed("the multipart field `file` is missing".into())),
        }
    };
    let mut intake = Intake::new(state.uploads.max_bytes());
    while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
        intake.push(&chunk).map_err(intake_error)?;
    }
    let (kind, bytes) = intake.finish().map_err(intake_error)?;
    let uploads = state.uploads.clone();
    let stored = tokio::task::spawn_blocking(move || uploads.store(kind, &bytes))
        .await
        .map_err(anyhow::Error::new)
        .and_then(|stored| stored.map_err(anyhow::Error::new));
    match stored {
        Ok(name) => Ok((user.id, name)),
        Err(e) => Err((
            UploadReject::Malformed,
            ApiError::Internal(e.context("storing an upload")),
        )),
    }
}

fn intake_error(e: IntakeError) -> (UploadReject, ApiError) {
    let reason = e.to_string();
    match e {
        IntakeError::TooLarge { .. } => (UploadReject::TooLarge, ApiError::PayloadTooLarge(reason)),
        IntakeError::Refused(_) => (
            UploadReject::UnsupportedType,
            ApiError::UnsupportedMediaType(reason),
        ),
        IntakeError::Empty => (UploadReject::Malformed, ApiError::BadRequest(reason)),
    }
}

/// The body limit (the file plus its framing) surfaces here, as 413.
fn multipart_error(e: MultipartError) -> (UploadReject, ApiError) {
    let status = e.status();
    let reason = if status == StatusCode::PAYLOAD_TOO_LARGE {
        UploadReject::TooLarge
    } else {
        UploadReject::Malformed
    };
    (reason, ApiError::rejected(status, e.body_text()))
}

/// Serves a stored image. Only a valid `UploadName` reaches the file system; anything else,
/// `..` and encoded slashes included, is 404.
pub async fn get(
    State(state): State<AppState>,
    name: Result<Path<String>, PathRejection>,
    request: Request,
) -> Response {
    let Some(name) = name.ok().and_then(|Path(raw)| UploadName::parse(&raw).ok()) else {
        return not_found();
    };
    let Ok(mut response) = ServeFile::new(state.uploads.path(&name))
        .oneshot(request)
        .await;
    if response.status() == StatusCode::NOT_FOUND {
        return not_found();
    }
    let headers = response.headers_mut();
    // Our own type from the name, which came from the content, rather than a guess.
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(name.kind().content_type()),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(IMMUTABLE));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response.map(Body::new)
}

fn not_found() -> Response {
    ApiError::NotFound("no such image".into()).into_response()
}
