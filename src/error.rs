//! `ApiError`: every HTTP failure, answered as `{"code":1,"data":"<reason>"}` (the seed's
//! shape), plus a stable `error` code and its `params`, which a page words in its language.

use std::time::Duration;

use axum::{
    Json,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde_json::{Value, json};

use crate::routes::body_timeout;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// Over a rate limit; the client may retry after a second.
    #[error("{0}")]
    TooManyRequests(String),
    /// Refused for now (429 for this client, 503 for everyone); `Retry-After` says when to
    /// come back.
    #[error("{reason}")]
    RetryLater {
        status: StatusCode,
        reason: String,
        retry_after: Duration,
    },
    /// The request body stopped arriving (408). The connection is closed after the answer,
    /// since the rest of the body may still come.
    #[error("{0}")]
    RequestTimeout(String),
    /// Any other status, with its reason.
    #[error("{1}")]
    Status(StatusCode, String),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
    /// Any of the above with its stable code (`error` in the body) and `params` (an object).
    #[error("{error}")]
    Coded {
        code: &'static str,
        params: Value,
        error: Box<ApiError>,
    },
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::RetryLater { status, .. } => *status,
            ApiError::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::Status(status, _) => *status,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::Coded { error, .. } => error.status(),
        }
    }

    /// This error, answered with the stable code `code` and its `params`; one coded already
    /// keeps the params it was given where it was refused, which knew more.
    pub fn coded(self, code: &'static str, params: Value) -> Self {
        match self {
            ApiError::Coded { params, error, .. } => ApiError::Coded {
                code,
                params,
                error,
            },
            error => ApiError::Coded {
                code,
                params,
                error: Box::new(error),
            },
        }
    }

    /// The code of an error that was given none: what its status says.
    fn default_code(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "bad_request",
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound(_) => "not_found",
            ApiError::PayloadTooLarge(_) => "too_large",
            ApiError::UnsupportedMediaType(_) => "unsupported_media_type",
            ApiError::TooManyRequests(_) => "rate_limited",
            ApiError::RetryLater { .. } => "retry_later",
            ApiError::RequestTimeout(_) => "timeout",
            ApiError::Status(..) => "refused",
            ApiError::Internal(_) => "internal",
            ApiError::Coded { code, .. } => code,
        }
    }
}

impl ApiError {
    /// An extractor's rejection, keeping its status where it is more precise than 400.
    pub fn rejected(status: StatusCode, reason: String) -> Self {
        match status {
            StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge(reason),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::UnsupportedMediaType(reason),
            _ => ApiError::BadRequest(reason),
        }
    }

    /// A body extractor's rejection: 408 if the body stalled, else as `rejected`.
    pub fn body_rejected(
        error: &(dyn std::error::Error + 'static),
        status: StatusCode,
        reason: String,
    ) -> Self {
        if body_timeout::stalled(error) {
            ApiError::RequestTimeout(body_timeout::REASON.into())
        } else {
            ApiError::rejected(status, reason)
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (code, mut params, this) = match self {
            ApiError::Coded {
                code,
                params,
                error,
            } => (code, params, *error),
            other => (other.default_code(), json!({}), other),
        };
        if let (ApiError::RetryLater { retry_after, .. }, Value::Object(params)) =
            (&this, &mut params)
        {
            params.insert("retry_after_ms".into(), json!(retry_after.as_millis()));
        }
        let reason = match &this {
            ApiError::Internal(e) => {
                tracing::error!(error = ?e, "internal error");
                "internal error".to_owned()
            }
            other => other.to_string(),
        };
        let body = json!({ "code": 1, "data": reason, "error": code, "params": params });
        let mut response = (this.status(), Json(body)).into_response();
        let headers = response.headers_mut();
        match this {
            ApiError::TooManyRequests(_) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            ApiError::RetryLater { retry_after, .. } => {
                // Rounded up, so a client that waits this long finds what it needs.
                let secs = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
                let secs = secs.max(1);
                headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
            }
            ApiError::RequestTimeout(_) => {
                headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            _ => {}
        }
        response
    }
}

pub type Result<T, E = ApiError> = std::result::Result<T, E>;
