//! The HTTP surface: which handler answers which path.

pub mod admin;
pub mod body_timeout;
pub mod client_addr;
pub mod ops;
pub mod origin;
pub mod page;
pub mod rooms;
pub mod session;
pub mod socket;
pub mod socket_rate;
pub mod static_files;
pub mod upload;

use axum::{
    Router,
    extract::DefaultBodyLimit,
    http::{HeaderName, HeaderValue, header},
    routing::{get, post},
};
use tower_http::{
    compression::CompressionLayer, services::ServeFile, set_header::SetResponseHeaderLayer,
    trace::TraceLayer,
};

use crate::state::AppState;

/// Scripts and styles come only from our own `/static/`; nothing inline runs.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data: blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; \
     frame-ancestors 'none'; form-action 'self'";

pub fn router(state: AppState, static_dir: &std::path::Path) -> Router {
    let body_timeout = state.body_timeout;
    Router::new()
        // The page and the socket share `/ws` and `/`, as in the seed.
        .route("/", get(page::page_or_socket))
        .route("/ws", get(page::page_or_socket))
        .route(
            "/wsin",
            post(session::sign_in).layer(DefaultBodyLimit::max(4096)),
        )
        .route("/wsout", get(session::sign_out))
        .route(
            "/upload",
            post(upload::create).layer(DefaultBodyLimit::max(state.uploads.body_limit())),
        )
        .route("/uploads/{name}", get(upload::get))
        .merge(admin::router())
        .route("/rooms", get(rooms::list))
        .route("/healthz", get(ops::healthz))
        .route("/metrics", get(ops::metrics))
        // Pages and JSON, compressed as they are sent; before the static files, which were
        // compressed once at start.
        .layer(CompressionLayer::new())
        .route("/static/{*path}", get(static_files::get))
        // The page links its icon, but browsers and crawlers still ask for the old path.
        .route_service(
            "/favicon.ico",
            ServeFile::new(static_dir.join("img/favicon.svg")),
        )
        // The seed's page opens `ws://host:3000` on any path; anything else is 404.
        .fallback(socket::socket_or_not_found)
        .with_state(state)
        .layer(body_timeout::layer(body_timeout))
        .layer(header_layer(
            header::CONTENT_SECURITY_POLICY,
            CONTENT_SECURITY_POLICY,
        ))
        .layer(header_layer(header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .layer(header_layer(header::REFERRER_POLICY, "same-origin"))
        .layer(TraceLayer::new_for_http())
}

fn header_layer(name: HeaderName, value: &'static str) -> SetResponseHeaderLayer<HeaderValue> {
    SetResponseHeaderLayer::if_not_present(name, HeaderValue::from_static(value))
}
