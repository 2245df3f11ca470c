//! The Redis log (being ported onto the hub): every method of `EventLog` to implement.

use std::{convert::Infallible, sync::Arc, time::Duration};

use futures_util::future::BoxFuture;

use super::{Entry, EventLog, Joiner};
use crate::chat::{
    EngineError, Membership, Whisper, hub::Hub, protocol::EventKind, recovery::HistoryPolicy,
    text::ChatText,
};

/// How the engine reaches Redis and how long a dead instance may look alive.
#[derive(Debug, Clone)]
pub struct RedisSettings {
    pub url: String,
    pub presence_ttl: Duration,
    pub policy: HistoryPolicy,
    /// Events kept per room stream; 0 keeps none.
    pub max_events: u64,
}

#[derive(Debug)]
pub struct RedisLog(Infallible);

impl RedisLog {
    pub async fn connect(_settings: RedisSettings, _hub: Arc<Hub>) -> anyhow::Result<Self> {
        anyhow::bail!("the Redis engine is being ported onto the hub")
    }
}

impl EventLog for RedisLog {
    fn join(&self, _: Joiner) -> BoxFuture<'_, Result<(Membership, Entry), EngineError>> {
        match self.0 {}
    }

    fn publish(&self, _: &Membership, _: EventKind, _: &[&str]) -> Result<(), EngineError> {
        match self.0 {}
    }

    fn private(&self, _: &Membership, _: u64, _: &ChatText) -> Result<Whisper, EngineError> {
        match self.0 {}
    }

    fn reply_error(&self, _: &Membership, _: String) {
        match self.0 {}
    }

    fn leave(&self, _: Membership) -> bool {
        match self.0 {}
    }

    fn flush(&self) -> BoxFuture<'_, ()> {
        match self.0 {}
    }
}
