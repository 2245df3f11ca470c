//! `POST /wsin` signs a guest in; `GET /wsout` signs them out.

use std::{
    hash::{Hash, Hasher},
    net::IpAddr,
    time::Instant,
};

use axum::{
    Form, Json,
    extract::{FromRequest, Request, State},
    http::{HeaderMap, header},
};
use axum_extra::extract::SignedCookieJar;
use serde::{Deserialize, Serialize};

use super::client_addr::ClientAddr;
use crate::{
    auth::{self, User, UserName},
    error::{ApiError, Result},
    state::AppState,
};

#[derive(Debug, Default, Deserialize)]
pub struct SignIn {
    /// Missing or "" means the offered guest name, as in the seed.
    name: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Reply {
    code: u8,
    data: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<User>,
}

/// The sign-in body: a form (what jQuery's `$.ajax` sends), JSON, or nothing at all.
pub struct SignInBody(SignIn);

impl<S: Send + Sync> FromRequest<S> for SignInBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self> {
        let content_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| {
                v.split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase()
            });
        match content_type.as_deref() {
            Some("application/json") => Json::<SignIn>::from_request(req, state)
                .await
                .map(|Json(body)| SignInBody(body))
                .map_err(|e| ApiError::body_rejected(&e, e.status(), e.body_text())),
            Some("application/x-www-form-urlencoded") => Form::<SignIn>::from_request(req, state)
                .await
                .map(|Form(body)| SignInBody(body))
                .map_err(|e| ApiError::body_rejected(&e, e.status(), e.body_text())),
            None => {
                let body = axum::body::Bytes::from_request(req, state)
                    .await
                    .map_err(|e| ApiError::body_rejected(&e, e.status(), e.body_text()))?;
                if body.is_empty() {
                    Ok(SignInBody(SignIn::default()))
                } else {
                    Err(ApiError::UnsupportedMediaType(
                        "send the name as a form or as JSON".into(),
                    ))
                }
            }
            Some(other) => Err(ApiError::UnsupportedMediaType(format!(
                "{other} is not accepted; send a form or JSON"
            ))),
        }
    }
}

/// The rate limiter's key for an address. A collision merely shares a bucket.
fn address_key(address: IpAddr) -> u64 {
    let mut hasher = std::hash::DefaultHasher::new();
    address.hash(&mut hasher);
    hasher.finish()
}

pub async fn sign_in(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    headers: HeaderMap,
    jar: SignedCookieJar,
    SignInBody(body): SignInBody,
) -> Result<(SignedCookieJar, Json<Reply>)> {
    // A foreign page must not be able to sign its visitors in (login CSRF).
    if !state.origins.allows(&headers) {
        let origin = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok());
        tracing::warn!(%client, origin, "refused a cross-origin sign-in");
        return Err(ApiError::Forbidden("cross-origin sign-in refused".into()));
    }
    if !state
        .sign_ins
        .try_acquire(address_key(client), Instant::now())
    {
        tracing::warn!(%client, "refused a sign-in over the per-address limit");
        return Err(ApiError::TooManyRequests(
            "too many sign-ins from this address: wait a moment and try again".into(),
        ));
    }
    let name = match body.name.filter(|n| !n.is_empty()) {
        Some(raw) => UserName::parse(&raw).map_err(ApiError::BadRequest)?,
        None => auth::guest_name(state.user_ids.issued()),
    };
    let id = state
        .user_ids
        .allocate()
        .await
        .map_err(|e| ApiError::Internal(e.context("reserving a user id")))?;
    let user = User::guest(id, name);
    state.metrics.sign_ins.inc();
    tracing::info!(user = id, %client, name = %user.name, "signed in");
    let jar = state.cookies.sign_in(jar, &user);
    Ok((
        jar,
        Json(Reply {
            code: 0,
            data: "登录成功",
            user: Some(user),
        }),
    ))
}

pub async fn sign_out(
    State(state): State<AppState>,
    jar: SignedCookieJar,
) -> (SignedCookieJar, Json<Reply>) {
    (
        state.cookies.sign_out(jar),
        Json(Reply {
            code: 0,
            data: "退出成功",
            user: None,
        }),
    )
}
