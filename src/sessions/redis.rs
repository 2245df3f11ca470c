//! Revoked sessions in Redis, shared by every instance: one sorted set of session ids
//! scored by when their cookie expires, pruned by score on every sign-out, and a channel on
//! which each sign-out is published so every instance closes that session's sockets.

use std::sync::Arc;

use anyhow::Context;
use redis::Script;
use tokio_util::sync::CancellationToken;

use super::{RevokeError, SIGNED_OUT};
use crate::{
    auth::SessionId,
    chat::{Engine, protocol::close},
    pubsub::{self, Listener, Topic},
    redis_conn::{RedisConn, RedisTarget},
    redis_retry::retry_dropped,
};

const KEY: &str = "passerby:sessions:revoked";
const CHANNEL: &str = "passerby:sessions:signout";

/// Prune what expired, refuse past the cap, add, and tell every instance: one atomic step,
/// so two instances signing out at once cannot both slip under the cap. Returns 0 if full.
const REVOKE: &str = r"
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[3])
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[4]) then return 0 end
  redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
end
redis.call('PUBLISH', ARGV[5], ARGV[1])
return 1
";

#[derive(Debug)]
pub(super) struct Revoked {
    conn: RedisConn,
    script: Script,
    max: usize,
    _stop: tokio_util::sync::DropGuard,
}

impl Revoked {
    pub(super) async fn connect(
        target: &RedisTarget,
        max: usize,
        engine: Arc<Engine>,
        stop: CancellationToken,
    ) -> anyhow::Result<Revoked> {
        let client = target.clients()?;
        let conn = target.connect().await?;
        // Subscribed before the server serves: a sign-out on another instance from then on
        // reaches this one's sockets.
        let messages = pubsub::subscribe(&client, TOPIC)
            .await
            .context("subscribing to sign-outs in Redis")?;
        let stop = stop.child_token();
        let sign_outs = SignOuts {
            conn: conn.clone(),
            engine,
        };
        tokio::spawn(pubsub::keep_subscribed(
            client,
            TOPIC,
            "sign-outs",
            messages,
            sign_outs,
            stop.clone(),
        ));
        Ok(Revoked {
            conn,
            script: Script::new(REVOKE),
            max,
            _stop: stop.drop_guard(),
        })
    }

    pub(super) async fn contains(&self, id: &SessionId, now: u64) -> redis::RedisResult<bool> {
        let score: Option<u64> = retry_dropped(|| {
            let mut conn = self.conn.clone();
            async move {
                redis::cmd("ZSCORE")
                    .arg(KEY)
                    .arg(id.to_string())
                    .query_async(&mut conn)
                    .await
            }
        })
        .await?;
        Ok(score.is_some_and(|expires| expires > now))
    }

    pub(super) async fn len(&self) -> anyhow::Result<usize> {
        let n: usize = redis::cmd("ZCARD")
            .arg(KEY)
            .query_async(&mut self.conn.clone())
            .await?;
        Ok(n)
    }

    pub(super) async fn insert(
        &self,
        id: SessionId,
        expires: u64,
        now: u64,
    ) -> Result<(), RevokeError> {
        // Run twice, it stores the sign-out once and tells the instances twice: harmless.
        let stored: u8 = retry_dropped(|| {
            let mut conn = self.conn.clone();
            async move {
                self.script
                    .key(KEY)
                    .arg(id.to_string())
                    .arg(expires)
                    .arg(now)
                    .arg(self.max)
                    .arg(CHANNEL)
                    .invoke_async(&mut conn)
                    .await
            }
        })
        .await
        .context("storing a sign-out in Redis")?;
        if stored == 0 {
            tracing::warn!(max = self.max, "sign-out refused: --max-revoked-sessions");
            return Err(RevokeError::Full);
        }
        Ok(())
    }
}

const TOPIC: Topic = Topic::Channel(CHANNEL);

/// Closes the sockets of every session signed out anywhere; after a lost subscription, asks
/// Redis about the sessions with sockets here, since a sign-out published meanwhile was missed.
struct SignOuts {
    conn: RedisConn,
    engine: Arc<Engine>,
}

impl Listener for SignOuts {
    fn heard(&mut self, message: &redis::Msg) {
        let Some(id) = std::str::from_utf8(message.get_payload_bytes())
            .ok()
            .and_then(SessionId::parse)
        else {
            tracing::warn!("unreadable sign-out from Redis");
            return;
        };
        self.engine
            .close_session(&id, close::INVALID_USER, SIGNED_OUT);
    }

    async fn caught_up(&mut self) -> bool {
        // The first call after Redis returns may find the old connection dead.
        let caught = retry_dropped(|| {
            let mut conn = self.conn.clone();
            let engine = &self.engine;
            async move { catch_up(&mut conn, engine).await }
        });
        // A sign-out missed meanwhile would leave its sockets open: a failed catch-up is
        // tried again after subscribing again, never taken as done.
        match caught.await {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(error = %e, "could not catch up on sign-outs");
                false
            }
        }
    }
}

async fn catch_up(conn: &mut RedisConn, engine: &Engine) -> redis::RedisResult<()> {
    let here = engine.sessions();
    for chunk in here.chunks(512) {
        let ids: Vec<String> = chunk.iter().map(ToString::to_string).collect();
        let scores: Vec<Option<f64>> = redis::cmd("ZMSCORE")
            .arg(KEY)
            .arg(&ids)
            .query_async(conn)
            .await?;
        for (id, score) in chunk.iter().zip(scores) {
            if score.is_some() {
                engine.close_session(id, close::INVALID_USER, SIGNED_OUT);
            }
        }
    }
    Ok(())
}
