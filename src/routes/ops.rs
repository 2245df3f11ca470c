//! `GET /healthz` and `GET /metrics`: what operators and their monitoring ask.

use axum::{
    extract::State,
    http::{StatusCode, header},
    response::IntoResponse,
};

use crate::{metrics, state::AppState};

/// 200 while the server answers requests and can keep what it is sent; 503 with a short
/// reason while it cannot (the history store fails to write, or its writer panicked), so
/// load balancers and systemd checks see it. It is 200 again once a commit succeeds.
pub async fn healthz(State(state): State<AppState>) -> (StatusCode, String) {
    match state.engine.health() {
        Ok(()) => (StatusCode::OK, "ok\n".to_owned()),
        Err(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("unavailable: {reason}\n"),
        ),
    }
}

/// Every metric in the Prometheus text format.
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let users_online = state.engine.users_online();
    (
        [(header::CONTENT_TYPE, metrics::CONTENT_TYPE)],
        state.metrics.render(users_online),
    )
}
