//! `Sessions`: whether a well-signed cookie still opens anything (not older than
//! `--cookie-days`, not signed out), and signing out, which closes that browser's sockets.
//!
//! A revoked session id is kept only until its cookie would have expired anyway: after that
//! the age check refuses the cookie on its own. The embedded engine keeps them in
//! `<data-dir>/sessions.db` (`local`); with `--redis`, in one sorted set that every instance
//! reads, and a published message closes the session's sockets on every instance (`redis`).
//! What bounds the store: a session id exists only if a sign-in made it (each takes from the
//! per-address sign-in limit), it stays at most `--cookie-days`, and past
//! `--max-revoked-sessions` a sign-out is refused with 503 rather than forgetting an older one.

mod local;
mod redis;

use std::{path::Path, sync::Arc};

use axum_extra::extract::SignedCookieJar;
use tokio_util::sync::CancellationToken;

use crate::{
    auth::{self, Session, SessionId},
    chat::{Engine, protocol::close},
};

/// The reason a signed-out session's sockets are closed with (code 4001).
pub const SIGNED_OUT: &str = "signed out";

/// The reason sent with 4001 to a cookie older than `--cookie-days`, at the upgrade or on a
/// socket that outlived it.
pub const EXPIRED: &str = "sign-in expired";

/// Why a request's cookie opens nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// No cookie, or one not signed by us, or not well formed (such as one from before
    /// sessions existed).
    #[error("not signed in: sign in first")]
    Missing,
    #[error("this sign-in is older than the server allows: sign in again")]
    Expired,
    #[error("this sign-in was signed out: sign in again")]
    Revoked,
    /// The revocation store cannot answer (Redis down): neither yes nor no.
    #[error("the server cannot check the sign-in right now: try again later")]
    Unavailable,
}

#[derive(Debug, thiserror::Error)]
pub enum RevokeError {
    #[error(
        "the server holds as many sign-outs as it may: the cookie was removed from this \
         browser, but stays valid on the server until it expires"
    )]
    Full,
    #[error(transparent)]
    Store(#[from] anyhow::Error),
}

#[derive(Debug)]
pub struct Sessions {
    /// `--cookie-days` in seconds: older cookies are refused whatever the browser does.
    max_age: u64,
    store: Store,
    engine: Arc<Engine>,
}

#[derive(Debug)]
enum Store {
    Local(local::Revoked),
    Redis(redis::Revoked),
}

impl Sessions {
    /// Revocations in `<data_dir>/sessions.db`; expired ones are pruned on open.
    pub fn local(
        data_dir: &Path,
        cookie_days: u32,
        max_revoked: usize,
        engine: Arc<Engine>,
    ) -> anyhow::Result<Sessions> {
        let store = local::Revoked::open(data_dir, max_revoked, auth::unix_now())?;
        Ok(Sessions {
            max_age: max_age(cookie_days),
            store: Store::Local(store),
            engine,
        })
    }

    /// Revocations in Redis, shared with every instance; listens for sign-outs made on any
    /// of them until `stop`.
    pub async fn redis(
        target: &crate::redis_conn::RedisTarget,
        cookie_days: u32,
        max_revoked: usize,
        engine: Arc<Engine>,
        stop: CancellationToken,
    ) -> anyhow::Result<Sessions> {
        let store = redis::Revoked::connect(target, max_revoked, engine.clone(), stop).await?;
        Ok(Sessions {
            max_age: max_age(cookie_days),
            store: Store::Redis(store),
            engine,
        })
    }

    /// The request's session, if its cookie is signed, well formed, young enough and not
    /// signed out.
    pub async fn check(&self, jar: &SignedCookieJar) -> Result<Session, Refusal> {
        self.verify(auth::signed_session(jar)).await
    }

    /// `check` for a cookie already read (a socket reads it before its upgrade).
    pub async fn verify(&self, signed: Option<Session>) -> Result<Session, Refusal> {
        let session = signed.ok_or(Refusal::Missing)?;
        let now = auth::unix_now();
        if session.age(now) > self.max_age {
            return Err(Refusal::Expired);
        }
        if self.is_revoked(&session.id, now).await? {
            return Err(Refusal::Revoked);
        }
        Ok(session)
    }

    /// When the session's cookie stops opening anything (unix seconds): a socket open then
    /// is closed at its next ping.
    pub fn expires(&self, session: &Session) -> u64 {
        session.issued.saturating_add(self.max_age)
    }

    /// Whether the session was signed out (asked again once a socket has joined, so a
    /// sign-out racing the join cannot miss it).
    pub async fn is_revoked(&self, id: &SessionId, now: u64) -> Result<bool, Refusal> {
        match &self.store {
            Store::Local(store) => Ok(store.contains(id, now)),
            Store::Redis(store) => store.contains(id, now).await.map_err(|e| {
                tracing::warn!(error = %e, "cannot check a session in Redis");
                Refusal::Unavailable
            }),
        }
    }

    /// Signs the session out for good: stored until its cookie would have expired, then
    /// every socket of it (on every instance) is closed with 4001.
    pub async fn revoke(&self, session: &Session) -> Result<(), RevokeError> {
        let now = auth::unix_now();
        let expires = self.expires(session);
        // An expired cookie opens nothing already: there is nothing to remember.
        if expires > now {
            match &self.store {
                Store::Local(store) => store.insert(session.id, expires, now).await?,
                Store::Redis(store) => store.insert(session.id, expires, now).await?,
            }
        }
        // With Redis every instance hears of it too; this one need not wait for that.
        let closed = self
            .engine
            .close_session(&session.id, close::INVALID_USER, SIGNED_OUT);
        tracing::info!(user = session.user.id, closed, "signed out");
        Ok(())
    }

    /// Sessions revoked and not yet expired (`/metrics`, tests).
    pub async fn revoked(&self) -> anyhow::Result<usize> {
        match &self.store {
            Store::Local(store) => Ok(store.len()),
            Store::Redis(store) => store.len().await,
        }
    }
}

fn max_age(cookie_days: u32) -> u64 {
    u64::from(cookie_days) * 86_400
}
