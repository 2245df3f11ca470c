//! Who may moderate: `Authorization: Bearer <token>`, or the signed moderator cookie that
//! `POST /admin/session` sets for the page.
//!
//! The cookie names the moderator, when it was issued and the hash of the token it came from,
//! so it stops working when it is older than `--moderator-session-hours` or when the
//! moderator is removed (or given a new token). Failed attempts count per client address;
//! past `--moderator-auth-failures` a minute every attempt gets 429 before any check.

use std::time::Instant;

use axum::{
    Json,
    extract::{FromRequestParts, State},
    http::{StatusCode, header, request::Parts},
};
use axum_extra::extract::{
    SignedCookieJar,
    cookie::{Cookie, Key, SameSite},
};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use super::{ApiJson, store_failed};
use crate::{
    error::{ApiError, Result},
    moderation::{Moderation, name::ModeratorName, time},
    routes::client_addr::ClientAddr,
    state::AppState,
};

/// The moderator cookie's name; it is sent to `/admin` paths only.
pub const COOKIE_NAME: &str = "moderator";

const WRONG: &str = "wrong or removed moderator token";
const MISSING: &str = "moderators only: send Authorization: Bearer <token>";

/// A request made by a moderator.
#[derive(Debug, Clone)]
pub struct Moderator(pub ModeratorName);

impl FromRequestParts<AppState> for Moderator {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self> {
        let ClientAddr(client) = ClientAddr::from_request_parts(parts, state).await?;
        let moderation = &state.moderation;
        let now = Instant::now();
        throttled(moderation, client, now)?;
        let found = match parts.headers.get(header::AUTHORIZATION) {
            Some(value) => {
                let token = value
                    .to_str()
                    .ok()
                    .and_then(|v| v.strip_prefix("Bearer "))
                    .map(str::trim);
                match token {
                    Some(token) => moderation
                        .moderator_for_token(token)
                        .map_err(store_failed)?,
                    None => None,
                }
            }
            None => {
                let Ok(jar) = SignedCookieJar::<Key>::from_request_parts(parts, state).await;
                match jar.get(COOKIE_NAME) {
                    Some(cookie) => verify_cookie(moderation, cookie.value(), time::now_ms())?,
                    // Nothing was tried, so nothing failed.
                    None => return Err(ApiError::Unauthorized(MISSING.into())),
                }
            }
        };
        match found {
            Some(name) => Ok(Moderator(name)),
            None => {
                moderation.failures.fail(client, now);
                Err(ApiError::Unauthorized(WRONG.into()))
            }
        }
    }
}

/// The moderator the request's cookie names, if it is good: the chat socket asks, so a
/// moderator may write in a read-only room. The cookie only comes with `/admin` paths, so
/// the page opens its socket on `/admin/ws`. A bad cookie there is no failed sign-in: the
/// socket goes on as the user's.
pub fn from_cookie(state: &AppState, jar: &SignedCookieJar) -> Option<ModeratorName> {
    let cookie = jar.get(COOKIE_NAME)?;
    match verify_cookie(&state.moderation, cookie.value(), time::now_ms()) {
        Ok(found) => found,
        Err(e) => {
            tracing::warn!(error = %e, "could not check a moderator cookie on a socket");
            None
        }
    }
}

fn throttled(moderation: &Moderation, client: std::net::IpAddr, now: Instant) -> Result<()> {
    moderation
        .failures
        .check(client, now)
        .map_err(|retry_after| ApiError::RetryLater {
            status: StatusCode::TOO_MANY_REQUESTS,
            reason: "too many failed moderator sign-ins from this address: wait and try again"
                .into(),
            retry_after,
        })
}

/// `name|issued ms|token hash hex`: the signature (the server's key) vouches for all three.
fn cookie_value(name: &ModeratorName, issued_ms: i64, hash_hex: &str) -> String {
    format!("{name}|{issued_ms}|{hash_hex}")
}

/// The moderator a signed cookie names, if it is young enough and its token still theirs.
fn verify_cookie(
    moderation: &Moderation,
    value: &str,
    now_ms: i64,
) -> Result<Option<ModeratorName>> {
    let mut parts = value.splitn(3, '|');
    let (Some(name), Some(issued), Some(hex)) = (parts.next(), parts.next(), parts.next()) else {
        return Ok(None);
    };
    let (Ok(name), Ok(issued)) = (ModeratorName::parse(name), issued.parse::<i64>()) else {
        return Ok(None);
    };
    let lifetime = i64::from(moderation.settings.session_hours) * 3_600_000;
    if issued.saturating_add(lifetime) <= now_ms {
        return Ok(None);
    }
    let Some(current) = moderation.token_hash(&name).map_err(store_failed)? else {
        return Ok(None);
    };
    let same: bool = current.hex().as_bytes().ct_eq(hex.as_bytes()).into();
    Ok(same.then_some(name))
}

#[derive(Debug, Deserialize)]
pub struct SignIn {
    token: String,
}

#[derive(Debug, Serialize)]
pub struct Session {
    moderator: String,
    /// When the cookie stops working, in ms since the epoch.
    expires: i64,
}

/// `POST /admin/session` `{"token":…}`: sets the moderator cookie for the page.
pub async fn sign_in(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    jar: SignedCookieJar,
    ApiJson(body): ApiJson<SignIn>,
) -> Result<(SignedCookieJar, Json<Session>)> {
    let moderation = &state.moderation;
    let now = Instant::now();
    throttled(moderation, client, now)?;
    let found = moderation
        .moderator_for_token(body.token.trim())
        .map_err(store_failed)?;
    let Some(name) = found else {
        moderation.failures.fail(client, now);
        return Err(ApiError::Unauthorized(WRONG.into()));
    };
    let hash = moderation
        .token_hash(&name)
        .map_err(store_failed)?
        .ok_or_else(|| ApiError::Unauthorized(WRONG.into()))?;
    let issued = time::now_ms();
    let hours = moderation.settings.session_hours;
    let cookie = Cookie::build((COOKIE_NAME, cookie_value(&name, issued, &hash.hex())))
        .http_only(true)
        .same_site(SameSite::Strict)
        .path("/admin")
        .secure(state.cookies.secure)
        .max_age(cookie::time::Duration::hours(i64::from(hours)));
    moderation
        .record(&name, "session", &format!("moderator:{name}"), None)
        .map_err(store_failed)?;
    tracing::info!(moderator = %name, %client, "moderator signed in");
    Ok((
        jar.add(cookie),
        Json(Session {
            moderator: name.to_string(),
            expires: issued + i64::from(hours) * 3_600_000,
        }),
    ))
}

/// `DELETE /admin/session`: drops the cookie.
pub async fn sign_out(State(state): State<AppState>, jar: SignedCookieJar) -> SignedCookieJar {
    let mut cookie = Cookie::build(COOKIE_NAME)
        .http_only(true)
        .same_site(SameSite::Strict)
        .path("/admin")
        .secure(state.cookies.secure)
        .build();
    cookie.make_removal();
    jar.add(cookie)
}

/// `GET /admin/api/me`: who the credentials belong to.
pub async fn me(Moderator(name): Moderator) -> Json<serde_json::Value> {
    Json(serde_json::json!({ "moderator": name.as_str() }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::moderation::{Settings, token};

    #[test]
    fn a_cookie_is_good_for_its_hours_and_only_with_its_moderators_current_token() {
        let dir = tempfile::tempdir().unwrap();
        let moderation = Moderation::open(
            dir.path(),
            None,
            Settings {
                session_hours: 2,
                max_bans: 10,
                max_mutes: 10,
                max_room_settings: 10,
                audit_max_entries: 10,
                auth_failures_per_minute: 10.0,
                word_filter: crate::moderation::words::FilterLimits {
                    max_words: 10,
                    max_word_chars: 10,
                },
            },
        )
        .unwrap();
        let store = crate::moderation::open_store(dir.path(), None).unwrap();
        let name = ModeratorName::parse("alice").unwrap();
        let (_, hash) = token::generate().unwrap();
        store.add_moderator(&name, &hash, 0).unwrap();
        let issued = 1_000_000_000_000;
        let value = cookie_value(&name, issued, &hash.hex());
        let verify = |value: &str, now| verify_cookie(&moderation, value, now).unwrap();
        assert_eq!(verify(&value, issued + 1), Some(name.clone()));
        let hours = 3_600_000;
        assert_eq!(verify(&value, issued + 2 * hours - 1), Some(name.clone()));
        assert_eq!(
            verify(&value, issued + 2 * hours),
            None,
            "two hours and no more"
        );
        let (_, other) = token::generate().unwrap();
        assert_eq!(
            verify(&cookie_value(&name, issued, &other.hex()), issued),
            None
        );
        assert_eq!(verify("alice|x|y", issued), None);
        assert_eq!(verify("", issued), None);
        store.remove_moderator(&name).unwrap();
        assert_eq!(verify(&value, issued + 1), None);
    }
}
