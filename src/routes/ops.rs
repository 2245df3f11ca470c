//! `GET /healthz` and `GET /metrics`: what operators and their monitoring ask.

use axum::{extract::State, http::header, response::IntoResponse};

use crate::{metrics, state::AppState};

/// 200 as long as the server answers requests; load balancers and systemd checks use it.
pub async fn healthz() -> &'static str {
    "ok\n"
}

/// Every metric in the Prometheus text format.
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let users_online = state.engine.users_online();
    (
        [(header::CONTENT_TYPE, metrics::CONTENT_TYPE)],
        state.metrics.render(users_online),
    )
}
