//! Command-line flags with environment fallbacks: the operator's contract.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use clap::Parser;
use ipnet::IpNet;

use crate::{routes::client_addr::parse_proxy, store::history::Retention};

mod big_rooms;
pub use big_rooms::BigRoomFlags;
mod moderation;
mod redis;
mod uploads;
pub use moderation::ModerationFlags;
pub use redis::RedisFlags;
pub use uploads::UploadFlags;

/// The command line: the server's flags, and optionally a command to run instead of serving.
#[derive(Debug, Clone, Parser)]
#[command(name = "passerby", version, about = "A self-hosted guest chat server")]
pub struct Cli {
    #[command(flatten)]
    pub config: Config,
    /// Without one, the server runs.
    #[command(subcommand)]
    pub command: Option<crate::moderation::cli::Command>,
}

#[derive(Debug, Clone, Parser)]
#[command(name = "passerby", version, about = "A self-hosted guest chat server")]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = "PASSERBY_BIND", default_value = "127.0.0.1:3000")]
    pub bind: SocketAddr,

    /// Directory for everything the server keeps; created if missing.
    #[arg(long, env = "PASSERBY_DATA_DIR", default_value = "data", global = true)]
    pub data_dir: PathBuf,

    /// Cookie signing key [default: <data-dir>/secret.key], generated with mode 0600 if missing.
    #[arg(long, env = "PASSERBY_SECRET_FILE")]
    pub secret_file: Option<PathBuf>,

    /// Extra origin allowed to open the WebSocket, e.g. https://chat.example.org (repeatable).
    #[arg(
        long = "allowed-origin",
        env = "PASSERBY_ALLOWED_ORIGINS",
        value_delimiter = ','
    )]
    pub allowed_origins: Vec<String>,

    /// Mark the cookie Secure: use when clients reach the server over TLS.
    #[arg(long, env = "PASSERBY_SECURE_COOKIES")]
    pub secure_cookies: bool,

    /// Seconds between server pings; a socket silent for twice this long is dropped.
    #[arg(long, env = "PASSERBY_PING_INTERVAL", default_value = "25", value_parser = parse_seconds)]
    pub ping_interval: Duration,

    /// Longest chat message, in characters.
    #[arg(long, env = "PASSERBY_MAX_MESSAGE_CHARS", default_value_t = 2000)]
    pub max_message_chars: usize,

    /// Messages per second a user may send, sustained (token bucket refill rate).
    #[arg(long, env = "PASSERBY_RATE_LIMIT", default_value_t = 10.0)]
    pub rate_limit: f64,

    /// Messages a user may send in a burst before the rate limit applies.
    #[arg(long, env = "PASSERBY_RATE_BURST", default_value_t = 10.0)]
    pub rate_burst: f64,

    /// Sign-ins per second one client address may make, sustained.
    #[arg(long, env = "PASSERBY_SIGN_IN_RATE", default_value_t = 1.0)]
    pub sign_in_rate: f64,

    /// Sign-ins one client address may make in a burst.
    #[arg(long, env = "PASSERBY_SIGN_IN_BURST", default_value_t = 30.0)]
    pub sign_in_burst: f64,

    /// Events queued for one socket before it counts as a slow reader and is closed with 1008.
    #[arg(long, env = "PASSERBY_OUTBOUND_QUEUE", default_value_t = 256)]
    pub outbound_queue: usize,

    /// Bytes queued for one socket before it is closed with 1008 as too slow; must hold
    /// what a join queues at once (see `outbox::largest_join`).
    #[arg(long, env = "PASSERBY_OUTBOUND_QUEUE_BYTES", default_value_t = crate::chat::outbox::DEFAULT_MAX_BYTES)]
    pub outbound_queue_bytes: usize,

    /// Seconds within which what is queued for a socket must reach it; a reader that falls
    /// further behind is closed with 1008. Checked once per ping interval.
    #[arg(long, env = "PASSERBY_WRITE_TIMEOUT", default_value = "30", value_parser = parse_seconds)]
    pub write_timeout: Duration,

    /// Lifetime of a sign-in, in days: the cookie's Max-Age, and the server refuses an older
    /// cookie whatever the browser does.
    #[arg(long, env = "PASSERBY_COOKIE_DAYS", default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..))]
    pub cookie_days: u32,

    /// Signed-out sessions remembered at once (each until its cookie would have expired);
    /// past it a sign-out gets 503 and the session stays valid until it expires.
    #[arg(long, env = "PASSERBY_MAX_REVOKED_SESSIONS", default_value_t = 1_000_000, value_parser = parse_revoked)]
    pub max_revoked_sessions: usize,

    /// Largest image `POST /upload` takes, in bytes; larger ones get 413. The request body may
    /// be 64 KiB more, for the multipart framing (nginx's client_max_body_size is the sum).
    #[arg(long, env = "PASSERBY_MAX_UPLOAD_BYTES", default_value_t = 5 * 1024 * 1024)]
    pub max_upload_bytes: usize,

    /// Where uploaded images are kept: a folder, or an S3-compatible store (`uploads.rs`).
    #[command(flatten)]
    pub upload: UploadFlags,

    /// Directory served under /static/.
    #[arg(long, env = "PASSERBY_STATIC_DIR", default_value = "static")]
    pub static_dir: PathBuf,

    /// Proxy (address or CIDR range) whose X-Forwarded-For and X-Real-IP name the client,
    /// e.g. 127.0.0.1 for nginx on the same machine (repeatable).
    #[arg(
        long = "trusted-proxy",
        env = "PASSERBY_TRUSTED_PROXIES",
        value_delimiter = ',',
        value_parser = parse_proxy
    )]
    pub trusted_proxies: Vec<IpNet>,

    /// Chat history kept per room, in events; 0 turns history off (nothing is stored).
    #[arg(long, env = "PASSERBY_HISTORY_MAX_EVENTS", default_value_t = 10_000)]
    pub history_max_events: u64,

    /// Days an event is kept at most; 0 keeps events of any age (up to the count).
    #[arg(long, env = "PASSERBY_HISTORY_MAX_AGE_DAYS", default_value_t = 30.0, value_parser = parse_days)]
    pub history_max_age_days: f64,

    /// Rooms `GET /rooms` lists at most, the busiest first (the page's list of rooms).
    #[arg(long, env = "PASSERBY_ROOMS_LIST", default_value_t = 20)]
    pub rooms_list: usize,

    /// Recent events a newly connected socket receives in its `history` event.
    #[arg(long, env = "PASSERBY_HISTORY_ON_JOIN", default_value_t = 50)]
    pub history_on_join: usize,

    /// The most events one `history` carries: a recovery with `since`, or a page the client
    /// asked for with `{"type":"history","before":…}`; at least --history-on-join.
    #[arg(long, env = "PASSERBY_HISTORY_PAGE", default_value_t = 300)]
    pub history_page: usize,

    /// Reads of history waiting (SQLite) or under way (Redis) at once: pages, and with SQLite
    /// joiners' histories; past it a page request gets `error` (busy).
    #[arg(long, env = "PASSERBY_HISTORY_READS", default_value_t = 64, value_parser = parse_reads)]
    pub history_reads: usize,

    /// Messages one step of a purge (`POST /admin/api/users/{id}/purge`) deletes at most,
    /// listed by one `delete` event: the longest the log is held for another room's message
    /// is one such step, however many messages the user left.
    #[arg(long, env = "PASSERBY_PURGE_BATCH", default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub purge_batch: u32,

    /// What stored history survives: a crash of the process, or also a power loss (an fsync
    /// before every delivery).
    #[arg(long, env = "PASSERBY_HISTORY_DURABILITY", value_enum, default_value_t = Durability::Process)]
    pub history_durability: Durability,

    /// `join` and `left` events kept per room, apart from the messages' --history-max-events:
    /// presence never pushes messages out, and only a recovery (`since`) replays it.
    #[arg(long, env = "PASSERBY_HISTORY_MAX_PRESENCE", default_value_t = 200)]
    pub history_max_presence: u64,

    /// Seconds a user whose last socket in a room closed stays in it before `left`: a reload
    /// within it makes no `left`/`join` pair. 0 sends `left` at once.
    #[arg(long, env = "PASSERBY_PRESENCE_GRACE_SECS", default_value = "5", value_parser = parse_grace)]
    pub presence_grace_secs: Duration,

    /// Events waiting for the history writer (with --redis: for the Redis worker) at most;
    /// past it a message is refused with an `error` and a join closes with 1013 (try again
    /// later). A `left` always gets in.
    #[arg(long, env = "PASSERBY_HISTORY_QUEUE", default_value_t = 4096, value_parser = clap::value_parser!(u64).range(1..))]
    pub history_queue: u64,

    /// Redis to share the chat and its moderation with other instances, e.g.
    /// redis://127.0.0.1:6379; unset, the chat lives in this process alone.
    #[arg(long, env = "PASSERBY_REDIS_URL", global = true)]
    pub redis: Option<String>,

    /// With --redis: it names a node of a Redis Cluster (several, separated by commas, are
    /// tried in turn), and rooms spread over the cluster's nodes by their hash tags.
    #[arg(long, env = "PASSERBY_REDIS_CLUSTER", global = true)]
    pub redis_cluster: bool,

    #[command(flatten)]
    pub redis_engine: RedisFlags,

    // The edge: what one client, address or user may hold. Each bound answers past it.
    /// Largest WebSocket message a client may send, after reassembly; larger is closed with 1009.
    #[arg(long, env = "PASSERBY_MAX_WS_MESSAGE_BYTES", default_value_t = 64 * 1024)]
    pub max_ws_message_bytes: usize,

    /// Seconds a client has to send a request's headers once it starts; then the connection closes.
    #[arg(long, env = "PASSERBY_HEADER_TIMEOUT", default_value = "10", value_parser = parse_seconds)]
    pub header_timeout: Duration,

    /// Seconds an HTTP connection may sit idle between requests before it is closed.
    #[arg(long, env = "PASSERBY_KEEP_ALIVE_TIMEOUT", default_value = "75", value_parser = parse_seconds)]
    pub keep_alive_timeout: Duration,

    /// Seconds a request body may go without a byte before the request fails with 408.
    #[arg(long, env = "PASSERBY_BODY_TIMEOUT", default_value = "30", value_parser = parse_seconds)]
    pub body_timeout: Duration,

    /// Largest request head (request line and headers), in bytes; larger gets 431.
    #[arg(long, env = "PASSERBY_MAX_HEADER_BYTES", default_value_t = 16 * 1024)]
    pub max_header_bytes: usize,

    /// Connections open at once, from everyone; 0 means the open-file limit less 512.
    #[arg(long, env = "PASSERBY_MAX_CONNECTIONS", default_value_t = 0)]
    pub max_connections: usize,

    /// Connections (and WebSockets, behind a trusted proxy) one client address may hold at once.
    #[arg(
        long,
        env = "PASSERBY_MAX_CONNECTIONS_PER_ADDRESS",
        default_value_t = 256
    )]
    pub max_connections_per_address: usize,

    /// WebSockets one user may hold at once (tabs); one more is closed with 4004.
    #[arg(long, env = "PASSERBY_MAX_SOCKETS_PER_USER", default_value_t = 16)]
    pub max_sockets_per_user: usize,

    /// Uploads in progress at once, from everyone; one more gets 503 with Retry-After.
    #[arg(long, env = "PASSERBY_MAX_UPLOADS", default_value_t = 16)]
    pub max_uploads: usize,

    /// Uploads in progress at once for one user; one more gets 429 with Retry-After.
    #[arg(long, env = "PASSERBY_MAX_UPLOADS_PER_USER", default_value_t = 2)]
    pub max_uploads_per_user: usize,

    /// Uploads per minute one user may make (sustained, and the burst).
    #[arg(long, env = "PASSERBY_UPLOAD_RATE", default_value_t = 10.0)]
    pub upload_rate: f64,

    /// Bytes one user may upload per hour; beyond it 429 with Retry-After.
    #[arg(long, env = "PASSERBY_UPLOAD_QUOTA_BYTES", default_value_t = 100 * 1024 * 1024)]
    pub upload_quota_bytes: u64,

    /// Refused messages (bad, too long, over the rate limit) one socket may send per minute
    /// before it is closed with 1008.
    #[arg(long, env = "PASSERBY_MAX_REFUSED", default_value_t = 30)]
    pub max_refused: u32,

    /// Seconds between log lines about one repeated thing (a user's refusals, accept errors);
    /// the line carries the count since the last one.
    #[arg(long, env = "PASSERBY_LOG_SAMPLE_INTERVAL", default_value = "10", value_parser = parse_seconds)]
    pub log_sample_interval: Duration,

    /// Seconds a message's `cid` is remembered: a retry with it within this is stored once.
    #[arg(long, env = "PASSERBY_CID_WINDOW_SECS", default_value = "600", value_parser = parse_seconds)]
    pub cid_window_secs: Duration,

    /// Seconds an empty room stays in memory after its last event; its ids go on where they
    /// stopped when it is used again.
    #[arg(long, env = "PASSERBY_ROOM_IDLE_SECS", default_value = "300", value_parser = parse_seconds)]
    pub room_idle_secs: Duration,

    /// Rooms held in memory at once (not with --redis); a joiner of one more is closed with 4005.
    #[arg(long, env = "PASSERBY_MAX_ROOMS", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_rooms: u64,

    /// New rooms one user may open per minute, sustained and in a burst (not with --redis);
    /// past it the joiner is closed with 4005.
    #[arg(long, env = "PASSERBY_ROOM_RATE", default_value_t = 30.0)]
    pub room_rate: f64,

    /// WebSockets one user may open per second, sustained; past it the upgrade gets 429
    /// with Retry-After.
    #[arg(long, env = "PASSERBY_SOCKET_RATE", default_value_t = 2.0)]
    pub socket_rate: f64,

    /// WebSockets one user may open in a burst (every tab reloaded at once).
    #[arg(long, env = "PASSERBY_SOCKET_BURST", default_value_t = 30.0)]
    pub socket_burst: f64,

    /// WebSockets one client address (a /64 for IPv6) may open per second, sustained.
    #[arg(long, env = "PASSERBY_SOCKET_ADDRESS_RATE", default_value_t = 20.0)]
    pub socket_address_rate: f64,

    /// WebSockets one client address may open in a burst (a classroom behind one NAT).
    #[arg(long, env = "PASSERBY_SOCKET_ADDRESS_BURST", default_value_t = 256.0)]
    pub socket_address_burst: f64,

    // Moderation: see the README's "Moderation" section.
    #[command(flatten)]
    pub moderators: ModerationFlags,

    #[command(flatten)]
    pub big_rooms: BigRoomFlags,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Durability {
    /// Survives the process being killed; commits do not wait for the disk.
    Process,
    /// Survives a power loss too; every commit waits for an fsync.
    Power,
}

impl Config {
    /// Defaults for tests and embedding: every flag at its documented default, data in `data_dir`.
    pub fn with_data_dir(data_dir: impl Into<PathBuf>) -> Self {
        let mut config = Config::parse_from(["passerby"]);
        config.data_dir = data_dir.into();
        config
    }

    pub fn secret_path(&self) -> PathBuf {
        self.secret_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("secret.key"))
    }
}

impl Config {
    /// Where Redis is, if it is named.
    pub fn redis_target(&self) -> Option<crate::redis_conn::RedisTarget> {
        let url = self.redis.as_deref()?;
        Some(crate::redis_conn::RedisTarget::new(url, self.redis_cluster))
    }

    /// The moderation bounds and lifetimes.
    pub fn moderation(&self) -> crate::moderation::Settings {
        self.moderators.settings()
    }

    /// The history retention, or `None` when history is off.
    pub fn history_retention(&self) -> Option<Retention> {
        (self.history_max_events > 0).then(|| Retention {
            max_events: self.history_max_events,
            max_age: (self.history_max_age_days > 0.0)
                .then(|| Duration::from_secs_f64(self.history_max_age_days * 86_400.0)),
        })
    }
}

fn parse_revoked(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!("`{s}` is not a number of sessions (1 or more)")),
    }
}

fn parse_reads(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!("`{s}` is not a number of reads (1 or more)")),
    }
}

fn parse_days(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(days) if days.is_finite() && days >= 0.0 => Ok(days),
        _ => Err(format!("`{s}` is not a number of days (0 or more)")),
    }
}

/// Seconds, 0 allowed (no grace).
fn parse_grace(s: &str) -> Result<Duration, String> {
    match s.parse::<f64>() {
        Ok(secs) if secs.is_finite() && (0.0..=3600.0).contains(&secs) => {
            Ok(Duration::from_secs_f64(secs))
        }
        _ => Err(format!("`{s}` is not a number of seconds from 0 to 3600")),
    }
}

fn parse_seconds(s: &str) -> Result<Duration, String> {
    let secs: f64 = s
        .parse()
        .map_err(|_| format!("`{s}` is not a number of seconds"))?;
    if !(secs.is_finite() && secs > 0.0) {
        return Err("must be a positive number of seconds".into());
    }
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests;
