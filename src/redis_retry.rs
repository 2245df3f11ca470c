//! Retrying a Redis call once when the connection under it was dropped.
//!
//! A `ConnectionManager` only notices that Redis went away (a restart, a dropped link) when
//! a call fails on the dead connection; it then reconnects, but that call has failed
//! already, so the first sign-in or join after Redis returns would fail (500, 1011). The
//! calls given here are safe to run twice (reads, and scripts that add nothing twice), so
//! they are tried once more on the new connection. A timeout is not retried: Redis may be
//! running the first call still.

use std::future::Future;

/// Whether the error says the connection was lost or refused, not that Redis refused or
/// was slow to answer the call.
pub fn dropped(e: &redis::RedisError) -> bool {
    !e.is_timeout()
        && (e.is_connection_dropped()
            || e.is_connection_refusal()
            || e.is_io_error()
            || e.is_unrecoverable_error())
}

/// Runs `call`, and once more if the connection was dropped under it.
pub async fn retry_dropped<T, F, Fut>(mut call: F) -> redis::RedisResult<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = redis::RedisResult<T>>,
{
    match call().await {
        Err(e) if dropped(&e) => {
            tracing::debug!(error = %e, "Redis connection dropped; trying once more");
            call().await
        }
        done => done,
    }
}
