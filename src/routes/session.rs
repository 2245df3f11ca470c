//! `POST /wsin` signs a guest in (a new session); `GET /wsout` signs that session out on
//! the server, closing its sockets.

use std::{
    hash::{Hash, Hasher},
    net::IpAddr,
    time::Instant,
};

use axum::{
    Form, Json,
    extract::{FromRequest, Request, State},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
};
use axum_extra::extract::SignedCookieJar;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{
    client_addr::{self, ClientAddr},
    origin::{self, Scheme},
};
use crate::{
    auth::{self, Session, User, UserName},
    error::{ApiError, Result},
    sessions::RevokeError,
    state::AppState,
    store::IdsExhausted,
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
    /// True when the browser already held a valid session, which it keeps: a sign-in form
    /// shown again (Back, a second tab) must not make a second identity.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    kept: bool,
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

/// The rate limiter's key for a client: its IPv4 address, or its IPv6 /64, which one client
/// usually holds whole and can rotate through. A collision merely shares a bucket.
fn sign_in_key(client: IpAddr) -> u64 {
    let mut hasher = std::hash::DefaultHasher::new();
    client_addr::address_key(client).hash(&mut hasher);
    hasher.finish()
}

pub async fn sign_in(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    scheme: Scheme,
    headers: HeaderMap,
    jar: SignedCookieJar,
    SignInBody(body): SignInBody,
) -> Result<(SignedCookieJar, Json<Reply>)> {
    // A foreign page must not be able to sign its visitors in (login CSRF).
    if !state.origins.allows(&headers, scheme) {
        let origin = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok());
        tracing::debug!(%client, origin, "refused a cross-origin sign-in");
        origin::refused_request(&state, client, "cross_origin_sign_in");
        let e = ApiError::Forbidden("cross-origin sign-in refused".into());
        return Err(e.coded("cross_origin", json!({})));
    }
    let signed_in = auth::signed_session(&jar).map(|s| s.user.id);
    if let Some(ban) = state.moderation.banned(signed_in, Some(client)) {
        origin::refused_request(&state, client, "banned_sign_in");
        let params = json!({ "until": ban.until, "reason": ban.reason });
        return Err(ApiError::Forbidden(ban.describe()).coded("banned", params));
    }
    // Before the rate limit: keeping a session makes nothing new.
    if let Ok(session) = state.sessions.check(&jar).await {
        return Ok((
            jar,
            Json(Reply {
                code: 0,
                data: "登录成功",
                user: Some(User::clone(&session.user)),
                kept: true,
            }),
        ));
    }
    if !state
        .sign_ins
        .try_acquire(sign_in_key(client), Instant::now())
    {
        origin::refused_request(&state, client, "sign_in_rate");
        let e = ApiError::TooManyRequests(
            "too many sign-ins from this address: wait a moment and try again".into(),
        );
        return Err(e.coded("sign_in_rate_limited", json!({})));
    }
    let name = match body.name.filter(|n| !n.is_empty()) {
        Some(raw) => {
            let name = UserName::parse(&raw)
                .map_err(|e| ApiError::BadRequest(e.to_string()).coded("bad_name", e.params()))?;
            // Refused in either mode: a name is shown beside every line, and a masked one
            // would leave everyone guessing who is who. The offered guest names are ours and
            // not checked, so a filter can never stop every sign-in.
            state
                .moderation
                .word_filter()
                .check_name(name.as_str())
                .map_err(|e| {
                    ApiError::BadRequest(e.to_string()).coded("name_filtered", json!({}))
                })?;
            name
        }
        None => auth::guest_name(state.user_ids.issued()),
    };
    let id = state.user_ids.allocate().await.map_err(|e| {
        if e.is::<IdsExhausted>() {
            tracing::error!(error = %e, "sign-in refused");
            ApiError::Status(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
                .coded("server_full", json!({}))
        } else {
            ApiError::Internal(e.context("reserving a user id"))
        }
    })?;
    let session = Session::start(User::guest(id, name)).map_err(ApiError::Internal)?;
    state.metrics.sign_ins.inc();
    tracing::info!(user = id, %client, name = %session.user.name, "signed in");
    let jar = state.cookies.sign_in(jar, &session);
    Ok((
        jar,
        Json(Reply {
            code: 0,
            data: "登录成功",
            user: Some(User::clone(&session.user)),
            kept: false,
        }),
    ))
}

/// A GET, as in the seed, so a link on another site could sign the visitor out; the
/// browser's `Origin` and `Sec-Fetch-Site` tell such a request from our page's own.
pub async fn sign_out(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    scheme: Scheme,
    headers: HeaderMap,
    jar: SignedCookieJar,
) -> Result<Response> {
    if state.origins.is_cross_site(&headers, scheme) {
        origin::refused_request(&state, client, "cross_site_sign_out");
        let e = ApiError::Forbidden("cross-site sign-out refused".into());
        return Err(e.coded("cross_site", json!({})));
    }
    // Revoked on the server, so a copy of the cookie opens nothing either. One that is
    // absent, forged, too old or revoked already has nothing left to revoke.
    if let Some(session) = auth::signed_session(&jar) {
        match state.sessions.revoke(&session).await {
            Ok(()) => {}
            // The browser still forgets the cookie; the answer says the server could not.
            Err(RevokeError::Full) => {
                let reason = RevokeError::Full.to_string();
                return Ok((
                    state.cookies.sign_out(jar),
                    ApiError::Status(StatusCode::SERVICE_UNAVAILABLE, reason)
                        .coded("server_busy", json!({})),
                )
                    .into_response());
            }
            Err(RevokeError::Store(e)) => {
                return Err(ApiError::Internal(e.context("storing a sign-out")));
            }
        }
    }
    Ok((
        state.cookies.sign_out(jar),
        Json(Reply {
            code: 0,
            data: "退出成功",
            user: None,
            kept: false,
        }),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::chat::limit::{RateLimiter, RatePolicy};

    fn key(ip: &str) -> u64 {
        sign_in_key(ip.parse().unwrap())
    }

    #[test]
    fn sign_ins_from_one_ipv6_slash_64_share_a_bucket() {
        assert_eq!(
            key("2001:db8:1:2::1"),
            key("2001:db8:1:2:ffff:ffff:ffff:fffe")
        );
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
        assert_ne!(key("192.0.2.1"), key("192.0.2.2"));
        assert_eq!(key("::ffff:192.0.2.1"), key("192.0.2.1"));
        let limiter = RateLimiter::new(RatePolicy {
            per_second: 0.01,
            burst: 3.0,
        });
        let now = Instant::now();
        for n in 1..=3 {
            assert!(limiter.try_acquire(key(&format!("2001:db8:1:2::{n}")), now));
        }
        assert!(!limiter.try_acquire(key("2001:db8:1:2::99"), now));
        assert!(limiter.try_acquire(key("2001:db8:1:3::1"), now));
    }
}
