//! `AppState`: what every handler shares.

use std::{net::IpAddr, ops::Deref, sync::Arc};

use axum::extract::FromRef;
use axum_extra::extract::cookie::Key;
use tokio_util::task::TaskTracker;

use crate::{
    auth::CookiePolicy,
    chat::connection::Shared,
    chat::limit::RateLimiter,
    log_sample::SampledLog,
    metrics::Metrics,
    routes::{client_addr::TrustedProxies, origin::OriginPolicy},
    store::IdSource,
    upload::Uploads,
};

#[derive(Debug, Clone)]
pub struct AppState(Arc<Inner>);

#[derive(Debug)]
pub struct Inner {
    pub key: Key,
    pub cookies: CookiePolicy,
    pub origins: OriginPolicy,
    /// Requests refused for their origin or the sign-in limit, logged at most once per client
    /// address per `--log-sample-interval`.
    pub refused_requests: SampledLog<IpAddr>,
    /// Whose forwarding headers name the client.
    pub proxies: TrustedProxies,
    /// The same registry the socket tasks count into.
    pub metrics: Arc<Metrics>,
    pub user_ids: IdSource,
    /// Sign-ins per client address: each one reserves a user id for good.
    pub sign_ins: RateLimiter,
    /// Uploaded images in the data dir.
    pub uploads: Arc<Uploads>,
    /// What socket tasks share: the engine, limits, settings and the shutdown token.
    pub chat: Arc<Shared>,
    /// Socket tasks, so shutdown can wait for their close frames to go out.
    pub sockets: TaskTracker,
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
