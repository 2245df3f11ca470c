//! `POST|GET /admin/api/bans`, `DELETE /admin/api/bans/{id}`: bans by user or address range.

use std::net::IpAddr;

use axum::{
    Json,
    extract::{Path, State},
    http::StatusCode,
};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use super::{ApiJson, PageQuery, auth::Moderator, store_failed, users::parse_reason};
use crate::{
    error::{ApiError, Result},
    moderation::{
        ModerationError,
        bans::{Ban, BanTarget, NewBan},
        time,
    },
    state::AppState,
};

/// The longest timed ban or mute, in minutes: ten years. Longer is what "permanent" is for.
pub const MAX_MINUTES: f64 = 10.0 * 365.0 * 24.0 * 60.0;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewBanBody {
    user: Option<u64>,
    address: Option<String>,
    /// Absent: until lifted. Fractions are taken (0.5 is thirty seconds).
    minutes: Option<f64>,
    reason: Option<String>,
}

/// `minutes` from now, in ms since the epoch.
pub fn until(minutes: f64) -> Result<i64> {
    if !(minutes.is_finite() && minutes > 0.0 && minutes <= MAX_MINUTES) {
        return Err(ApiError::BadRequest(format!(
            "minutes must be above 0 and at most {MAX_MINUTES}"
        )));
    }
    Ok(time::now_ms() + (minutes * 60_000.0).ceil() as i64)
}

/// `203.0.113.7`, `203.0.113.0/24`, `2001:db8::/48`: host bits past the prefix are dropped.
fn parse_address(raw: &str) -> Result<IpNet> {
    let raw = raw.trim();
    let net = raw
        .parse::<IpNet>()
        .or_else(|_| {
            raw.parse::<IpAddr>()
                .map(|ip| IpNet::from(ip.to_canonical()))
        })
        .map_err(|_| {
            ApiError::BadRequest(format!("`{raw}` is neither an IP address nor a CIDR range"))
        })?;
    Ok(net.trunc())
}

pub async fn create(
    State(state): State<AppState>,
    Moderator(moderator): Moderator,
    ApiJson(body): ApiJson<NewBanBody>,
) -> Result<Json<Ban>> {
    let target = match (body.user, body.address.as_deref()) {
        (Some(user), None) => BanTarget::User(user),
        (None, Some(address)) => BanTarget::Address(parse_address(address)?),
        _ => {
            return Err(ApiError::BadRequest(
                "name either a \"user\" or an \"address\"".into(),
            ));
        }
    };
    let reason = parse_reason(body.reason.as_deref())?;
    let until = body.minutes.map(until).transpose()?;
    let new = NewBan {
        target,
        reason: reason.as_str().to_owned(),
        moderator: moderator.to_string(),
        created: time::now_ms(),
        until,
    };
    let ban = state.moderation.ban(new).map_err(|e| match e {
        e @ ModerationError::TooManyBans { .. } => {
            ApiError::Status(StatusCode::CONFLICT, e.to_string())
        }
        ModerationError::Store(e) => store_failed(e),
        e => ApiError::Internal(e.into()),
    })?;
    let target = match ban.target {
        BanTarget::User(user) => format!("user:{user}"),
        BanTarget::Address(net) => format!("address:{net}"),
    };
    state
        .moderation
        .record(&moderator, "ban", &target, reason.given())
        .map_err(store_failed)?;
    // Their open sockets close at once (on other instances as they hear of it); new ones
    // are refused at the upgrade.
    let closed = state.moderation.close_banned(&ban, &state.engine);
    tracing::info!(%moderator, ban = ban.id, %target, closed, "banned");
    Ok(Json(ban))
}

#[derive(Debug, Serialize)]
pub struct Page {
    bans: Vec<Ban>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next: Option<i64>,
}

pub async fn list(
    State(state): State<AppState>,
    _moderator: Moderator,
    page: PageQuery,
) -> Json<Page> {
    let limit = page.limit();
    let bans = state.moderation.bans_page(page.before, limit);
    let next = (bans.len() == limit)
        .then(|| bans.last().map(|b| b.id))
        .flatten();
    Json(Page { bans, next })
}

pub async fn remove(
    State(state): State<AppState>,
    Moderator(moderator): Moderator,
    Path(raw): Path<String>,
) -> Result<Json<Ban>> {
    let id: i64 = raw
        .parse()
        .map_err(|_| ApiError::BadRequest(format!("`{raw}` is not a ban id")))?;
    let ban = state
        .moderation
        .unban(id)
        .map_err(store_failed)?
        .ok_or_else(|| ApiError::NotFound(format!("no ban {id} is in force")))?;
    state
        .moderation
        .record(&moderator, "unban", &format!("ban:{id}"), None)
        .map_err(store_failed)?;
    tracing::info!(%moderator, ban = id, "ban lifted");
    Ok(Json(ban))
}
