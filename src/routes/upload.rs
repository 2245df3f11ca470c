//! `POST /upload` stores an image for a signed-in user; `GET /uploads/{name}` serves it, from
//! the folder or streamed from the object store, with the same headers either way.
//!
//! What counts as an image, its name and its storage live in `crate::upload`; these handlers
//! only move bytes between HTTP and there.

use std::time::Instant;

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

use super::{
    body_timeout,
    client_addr::ClientAddr,
    origin::{self, Scheme},
};
use crate::{
    error::ApiError,
    metrics::UploadReject,
    sessions::Refusal,
    state::AppState,
    upload::{self, IMMUTABLE, Image, IntakeError, KeepError, Refused, StoreError, UploadName},
};

/// How long a client should wait before asking again when the image store is down.
const STORE_RETRY: std::time::Duration = std::time::Duration::from_secs(5);

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
    match receive(&state, client, scheme, &headers, &jar, multipart).await {
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
            tracing::debug!(%client, reason = reason.label(), error = %error, "upload refused");
            origin::refused_request(&state, client, log_reason(reason));
            Err(error.coded(log_reason(reason), serde_json::json!({})))
        }
    }
}

/// The reason in the sampled "refused requests" line, which other routes' reasons share.
fn log_reason(reason: UploadReject) -> &'static str {
    match reason {
        UploadReject::NotSignedIn => "upload_not_signed_in",
        UploadReject::TooLarge => "upload_too_large",
        UploadReject::UnsupportedType => "upload_unsupported_type",
        UploadReject::Malformed => "upload_malformed",
        UploadReject::Busy => "upload_busy",
        UploadReject::ServerBusy => "upload_server_busy",
        UploadReject::RateLimited => "upload_rate_limited",
        UploadReject::Quota => "upload_quota",
        UploadReject::Timeout => "upload_timeout",
        UploadReject::StoreUnavailable => "upload_store_unavailable",
    }
}

/// Who uploaded and what was stored, or why not.
async fn receive(
    state: &AppState,
    client: std::net::IpAddr,
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
    let user = match state.sessions.check(jar).await {
        Ok(session) => session.user,
        Err(Refusal::Missing) => {
            let e = ApiError::Unauthorized("sign in to upload images".into());
            return Err((UploadReject::NotSignedIn, e));
        }
        Err(Refusal::Unavailable) => {
            let e = ApiError::Status(
                StatusCode::SERVICE_UNAVAILABLE,
                Refusal::Unavailable.to_string(),
            );
            return Err((UploadReject::ServerBusy, e));
        }
        // Signed by us, but signed out or too old: say so, the page signs in again.
        Err(refusal) => {
            let e = ApiError::Unauthorized(refusal.to_string());
            return Err((UploadReject::NotSignedIn, e));
        }
    };
    // Counted with the signed-out: a banned user is out of the chat.
    if let Some(ban) = state.moderation.banned(Some(user.id), Some(client)) {
        let e = ApiError::Forbidden(ban.describe());
        return Err((UploadReject::NotSignedIn, e));
    }
    // Before a byte of the body is read: a refused upload costs the server nothing more.
    // The slot is held until this function returns, however it returns.
    let declared: Option<u64> = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse().ok());
    let body_limit = state.uploads.body_limit() as u64;
    if declared.is_some_and(|bytes| bytes > body_limit) {
        let max = state.uploads.max_bytes();
        return Err(intake_error(IntakeError::TooLarge { max }));
    }
    let _slot = state
        .upload_limits
        .admit(user.id, declared, Instant::now())
        .map_err(refused)?;
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
    // Dropping the intake on any early return below removes its temp file.
    let mut intake = state.uploads.intake().await.map_err(store_error)?;
    while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
        state
            .upload_limits
            .charge(user.id, chunk.len(), Instant::now())
            .map_err(refused)?;
        intake.push(&chunk).await.map_err(intake_error)?;
    }
    let received = intake.finish().await.map_err(intake_error)?;
    let name = state.uploads.keep(received).await.map_err(keep_error)?;
    Ok((user.id, name))
}

fn refused(refusal: Refused) -> (UploadReject, ApiError) {
    let (reason, status) = match refusal {
        Refused::UserBusy { .. } => (UploadReject::Busy, StatusCode::TOO_MANY_REQUESTS),
        Refused::ServerBusy => (UploadReject::ServerBusy, StatusCode::SERVICE_UNAVAILABLE),
        Refused::RateLimited { .. } => (UploadReject::RateLimited, StatusCode::TOO_MANY_REQUESTS),
        Refused::Quota { .. } => (UploadReject::Quota, StatusCode::TOO_MANY_REQUESTS),
    };
    let error = ApiError::RetryLater {
        status,
        reason: refusal.to_string(),
        retry_after: refusal.retry_after(),
    };
    (reason, error)
}

/// A failure to store is ours, not the client's: a 500, and no rejection is counted.
fn store_error(e: std::io::Error) -> (UploadReject, ApiError) {
    let e = anyhow::Error::new(e).context("storing an upload");
    (UploadReject::Malformed, ApiError::Internal(e))
}

fn keep_error(e: KeepError) -> (UploadReject, ApiError) {
    match e {
        KeepError::Io(e) => store_error(e),
        KeepError::Store(e) => (UploadReject::StoreUnavailable, store_unavailable(&e)),
    }
}

/// The store's failure is ours and passing: 503, and when to come back.
fn store_unavailable(e: &StoreError) -> ApiError {
    ApiError::RetryLater {
        status: StatusCode::SERVICE_UNAVAILABLE,
        reason: e.to_string(),
        retry_after: STORE_RETRY,
    }
}

fn intake_error(e: IntakeError) -> (UploadReject, ApiError) {
    let reason = e.to_string();
    match e {
        IntakeError::TooLarge { max } => {
            let e = ApiError::PayloadTooLarge(reason);
            let params = serde_json::json!({ "max_bytes": max });
            (
                UploadReject::TooLarge,
                e.coded(log_reason(UploadReject::TooLarge), params),
            )
        }
        IntakeError::Refused(refusal) => {
            let e = ApiError::UnsupportedMediaType(reason);
            let params = serde_json::json!({ "svg": refusal == upload::Refusal::Svg });
            let reject = UploadReject::UnsupportedType;
            (reject, e.coded(log_reason(reject), params))
        }
        IntakeError::Empty => (UploadReject::Malformed, ApiError::BadRequest(reason)),
        IntakeError::Io(e) => store_error(e),
    }
}

/// The body limit (the file plus its framing) surfaces here, as 413, and a stalled body as 408.
fn multipart_error(e: MultipartError) -> (UploadReject, ApiError) {
    if body_timeout::stalled(&e) {
        let e = ApiError::RequestTimeout(body_timeout::REASON.into());
        return (UploadReject::Timeout, e);
    }
    let status = e.status();
    let reason = if status == StatusCode::PAYLOAD_TOO_LARGE {
        UploadReject::TooLarge
    } else {
        UploadReject::Malformed
    };
    (reason, ApiError::rejected(status, e.body_text()))
}

/// Serves a stored image. Only a valid `UploadName` reaches the file system or the store;
/// anything else, `..` and encoded slashes included, is 404.
pub async fn get(
    State(state): State<AppState>,
    name: Result<Path<String>, PathRejection>,
    request: Request,
) -> Response {
    let Some(name) = name.ok().and_then(|Path(raw)| UploadName::parse(&raw).ok()) else {
        return not_found();
    };
    let since = request
        .headers()
        .get(header::IF_MODIFIED_SINCE)
        .and_then(|v| httpdate::parse_http_date(v.to_str().ok()?).ok());
    let mut response = match state.uploads.image(&name, since).await {
        Ok(Image::File(path)) => {
            let Ok(response) = ServeFile::new(path).oneshot(request).await;
            if response.status() == StatusCode::NOT_FOUND {
                return not_found();
            }
            response.map(Body::new)
        }
        Ok(Image::Object(object)) => {
            let mut response = Body::from_stream(object.body).into_response();
            let headers = response.headers_mut();
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from(object.len));
            headers.insert(header::LAST_MODIFIED, http_date(object.last_modified));
            response
        }
        Ok(Image::NotModified(at)) => {
            let mut response = StatusCode::NOT_MODIFIED.into_response();
            response
                .headers_mut()
                .insert(header::LAST_MODIFIED, http_date(at));
            response
        }
        Err(StoreError::NotFound) => return not_found(),
        Err(e) => return store_unavailable(&e).into_response(),
    };
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
    response
}

fn http_date(at: std::time::SystemTime) -> HeaderValue {
    HeaderValue::try_from(httpdate::fmt_http_date(at))
        .unwrap_or_else(|_| HeaderValue::from_static("Thu, 01 Jan 1970 00:00:00 GMT"))
}

fn not_found() -> Response {
    ApiError::NotFound("no such image".into()).into_response()
}
