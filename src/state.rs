//! `AppState`: what every handler and every socket task shares, each piece held once.

use std::{net::IpAddr, ops::Deref, sync::Arc, time::Duration};

use axum::extract::FromRef;
use axum_extra::extract::cookie::Key;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::{
    assets::Assets,
    auth::CookiePolicy,
    chat::{Engine, connection, limit::RateLimiter},
    log_sample::SampledLog,
    metrics::Metrics,
    moderation::Moderation,
    routes::{client_addr::TrustedProxies, origin::OriginPolicy, socket_rate::SocketOpens},
    server::tally::Tally,
    sessions::Sessions,
    store::IdSource,
    upload::{UploadLimits, Uploads},
};

#[derive(Debug, Clone)]
pub struct AppState(Arc<Inner>);

#[derive(Debug)]
pub struct Inner {
    pub key: Key,
    pub cookies: CookiePolicy,
    /// Whether a signed cookie still opens anything (age, sign-out), and signing out.
    pub sessions: Sessions,
    pub origins: OriginPolicy,
    /// Requests refused for their origin or the sign-in limit, logged at most once per client
    /// address per `--log-sample-interval`.
    pub refused_requests: SampledLog<IpAddr>,
    /// Refused chat messages, logged at most once per user (and client address) per
    /// `--log-sample-interval`.
    pub refused_messages: SampledLog<(u64, IpAddr)>,
    /// Whose forwarding headers name the client.
    pub proxies: TrustedProxies,
    /// Shared with the accept loop, which counts connections into it.
    pub metrics: Arc<Metrics>,
    pub user_ids: IdSource,
    /// Sign-ins per client address: each one reserves a user id for good.
    pub sign_ins: RateLimiter,
    /// Chat messages per user: chat, whispers and images take from one bucket.
    pub messages: RateLimiter,
    /// Uploaded images, in a folder or a store; an `image` message may only name one of them.
    pub uploads: Uploads,
    /// Uploads in progress, and each user's upload rate and byte quota.
    pub upload_limits: UploadLimits,
    /// How long any request body may go without a byte (`--body-timeout`).
    pub body_timeout: Duration,
    /// Rooms `GET /rooms` lists at most (`--rooms-list`).
    pub rooms_list: usize,
    /// Rooms, history and delivery, whichever engine runs them.
    pub engine: Arc<Engine>,
    /// Messages one step of a purge deletes at most (`--purge-batch`).
    pub purge_batch: usize,
    /// How every socket behaves: ping interval, message and queue limits.
    pub chat: connection::Settings,
    /// Cancelled once at shutdown: the server stops accepting and every socket closes.
    pub shutdown: CancellationToken,
    /// Socket tasks, so shutdown can wait for their close frames to go out.
    pub sockets: TaskTracker,
    /// Signed-in sockets per user id, capped at `--max-sockets-per-user`.
    pub tabs: Tally<u64>,
    /// WebSockets opened per user and per client address, `--socket-rate`.
    pub socket_opens: SocketOpens,
    /// Moderators, bans, mutes and the audit log.
    pub moderation: Arc<Moderation>,
    /// The files under `--static-dir`, hashed and compressed at start.
    pub assets: Assets,
}

impl AppState {
    pub fn new(inner: Inner) -> Self {
        AppState(Arc::new(inner))
    }
}

impl Deref for AppState {
    type Target = Inner;

    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl FromRef<AppState> for Key {
    fn from_ref(state: &AppState) -> Key {
        state.key.clone()
    }
}
