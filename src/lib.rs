//! passerby: a self-hosted guest chat server.
//!
//! A message travels: `server` accepts the connection within its bounds; `routes::socket` upgrades the request and checks the signed `name` cookie
//! (`auth`); `chat::connection` reads the frame and validates it (`chat::protocol`, `chat::text`,
//! `chat::limit`); the `chat::Engine` gives it the room's next id, serializes it once and pushes
//! the shared bytes into every member's `chat::outbox`; each connection task flushes its outbox.

pub mod assets;
pub mod auth;
pub mod chat;
pub mod config;
pub mod error;
pub mod i18n;
pub mod log_sample;
pub mod metrics;
pub mod moderation;
pub mod pubsub;
pub mod redis_conn;
pub mod redis_retry;
pub mod routes;
pub mod server;
pub mod sessions;
pub mod startup;
pub mod state;
pub mod store;
pub mod telemetry;
pub mod templates;
pub mod upload;
pub mod ws;
