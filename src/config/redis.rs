//! The flags of the Redis engine (`chat::log::redis`): its lanes and batches, how long a
//! socket's presence outlives its instance's silence, and how gaps are looked for.

use std::time::Duration;

use super::parse_seconds;

#[derive(Debug, Clone, clap::Args)]
pub struct RedisFlags {
    /// With --redis: lanes that call Redis side by side; each room keeps to one lane, in order.
    #[arg(long = "redis-lanes", env = "PASSERBY_REDIS_LANES", default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..=256))]
    pub lanes: u64,

    /// With --redis: messages of one room a lane sends in one script call at most.
    #[arg(long = "redis-batch", env = "PASSERBY_REDIS_BATCH", default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=4096))]
    pub batch: u64,

    /// With --redis: seconds after which a socket's presence entry that its instance stopped
    /// refreshing expires, and its user leaves if it was their last.
    #[arg(long = "redis-presence-ttl", env = "PASSERBY_REDIS_PRESENCE_TTL", default_value = "30", value_parser = parse_seconds)]
    pub presence_ttl: Duration,

    /// With --redis: seconds between checks that this instance's sockets missed nothing Redis
    /// kept (what is missing is sent, or the sockets are told `truncated`), and writes of
    /// the floor in the data dir.
    #[arg(long = "redis-position-check", env = "PASSERBY_REDIS_POSITION_CHECK", default_value = "5", value_parser = parse_seconds)]
    pub position_check: Duration,

    /// With --redis: seconds a subscription may leave a ping unanswered before it is dropped
    /// and made again (a half-open connection); it is pinged every third of this.
    #[arg(long = "redis-subscriber-timeout", env = "PASSERBY_REDIS_SUBSCRIBER_TIMEOUT", default_value = "15", value_parser = parse_seconds)]
    pub subscriber_timeout: Duration,

    /// With --redis: seconds the keys of a room nobody is in and nobody writes to live
    /// (its ids, history, epoch); any activity, or a socket in it on any instance, starts
    /// the time again. 30 days, the default age of history.
    #[arg(long = "redis-room-ttl", env = "PASSERBY_REDIS_ROOM_TTL", default_value = "2592000", value_parser = parse_seconds)]
    pub room_ttl: Duration,
}
