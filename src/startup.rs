//! `App`: build binds the listener and knows its address; run serves until shutdown.

use std::{fs, future::Future, net::SocketAddr, sync::Arc, time::Duration};

use anyhow::Context;
use axum::Router;
use tokio::net::TcpListener;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::{
    assets::Assets,
    auth::{self, CookiePolicy},
    chat::{
        Engine, RedisSettings, Storage,
        connection::Settings,
        limit::{RateLimiter, RatePolicy},
        outbox,
        recovery::HistoryPolicy,
        refusal,
        rooms::RoomPolicy,
    },
    config::{Config, Durability},
    log_sample::SampledLog,
    metrics::Metrics,
    moderation::Moderation,
    routes::{self, client_addr::TrustedProxies, origin::OriginPolicy, socket_rate::SocketOpens},
    server::{EdgeSettings, Server, tally::Tally},
    sessions::Sessions,
    state::{AppState, Inner},
    store::{Floor, IdSource, UserIds},
    upload::{UploadLimits, UploadPolicy, Uploads},
    ws::close,
};

/// Everything must be closed this long after the shutdown signal; the contract is 5 s.
const SHUTDOWN_DEADLINE: Duration = Duration::from_millis(4500);

pub struct App {
    listener: TcpListener,
    local_addr: SocketAddr,
    router: Router,
    state: AppState,
    edge: EdgeSettings,
}

impl App {
    pub async fn build(config: Config) -> anyhow::Result<App> {
        raise_open_file_limit();
        fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("creating data dir {}", config.data_dir.display()))?;
        let key = auth::load_or_create_key(&config.secret_path())?;
        // With Redis: what a Redis that lost its data is raised to (`store::Floor`).
        let floor = match &config.redis {
            Some(_) => Some(Arc::new(Floor::open(&config.data_dir)?)),
            None => None,
        };
        let user_ids = match (config.redis_target(), &floor) {
            (Some(target), Some(floor)) => IdSource::redis(&target, floor.clone()).await?,
            _ => IdSource::File(UserIds::open(&config.data_dir)?),
        };
        if !(config.rate_limit > 0.0 && config.rate_burst >= 1.0) {
            anyhow::bail!("--rate-limit must be above 0 and --rate-burst at least 1");
        }
        if !(config.sign_in_rate > 0.0 && config.sign_in_burst >= 1.0) {
            anyhow::bail!("--sign-in-rate must be above 0 and --sign-in-burst at least 1");
        }
        let join = outbox::largest_join(config.history_on_join, config.max_message_chars);
        if config.outbound_queue_bytes < join {
            anyhow::bail!(
                "--outbound-queue-bytes must hold what a join queues at once: at least {join} \
                 for --history-on-join {} and --max-message-chars {}",
                config.history_on_join,
                config.max_message_chars
            );
        }
        if config.history_page == 0 || config.history_on_join > config.history_page {
            anyhow::bail!(
                "--history-page must be at least 1 and at least --history-on-join ({})",
                config.history_on_join
            );
        }
        if config.max_sockets_per_user == 0 {
            anyhow::bail!("--max-sockets-per-user must be at least 1");
        }
        let edge = EdgeSettings::from_config(&config)?;
        if config.max_upload_bytes == 0 {
            anyhow::bail!("--max-upload-bytes must be above 0");
        }
        if config.max_uploads == 0 || config.max_uploads_per_user == 0 {
            anyhow::bail!("--max-uploads and --max-uploads-per-user must be above 0");
        }
        if !(config.upload_rate.is_finite() && config.upload_rate > 0.0) {
            anyhow::bail!("--upload-rate must be above 0");
        }
        if config.upload_quota_bytes == 0 {
            anyhow::bail!("--upload-quota-bytes must be above 0");
        }
        let uploads = Uploads::open(config.uploads())
            .with_context(|| format!("opening the uploads in {}", config.upload_dir().display()))?;
        let metrics = Arc::new(Metrics::new());
        let policy = HistoryPolicy {
            on_join: config.history_on_join,
            page: config.history_page,
            max_bytes: outbox::history_budget(config.outbound_queue_bytes),
            reads: config.history_reads,
        };
        for (flag, rate) in [
            ("--room-rate", config.room_rate),
            ("--socket-rate", config.socket_rate),
            ("--socket-burst", config.socket_burst),
            ("--socket-address-rate", config.socket_address_rate),
            ("--socket-address-burst", config.socket_address_burst),
        ] {
            if !(rate.is_finite() && rate > 0.0) {
                anyhow::bail!("{flag} must be above 0");
            }
        }
        let rooms = RoomPolicy {
            idle: config.room_idle_secs,
            max_rooms: usize::try_from(config.max_rooms).unwrap_or(usize::MAX),
            per_minute: config.room_rate,
            cid_window: config.cid_window_secs,
        };
        let engine = match (config.redis_target(), config.history_retention(), floor) {
            (Some(target), retention, Some(floor)) => {
                Engine::redis(
                    RedisSettings {
                        target,
                        presence_ttl: config.redis_engine.presence_ttl,
                        policy,
                        max_events: config.history_max_events,
                        queue: usize::try_from(config.history_queue).unwrap_or(usize::MAX),
                        max_presence: config.history_max_presence,
                        floor,
                        position_check: config.redis_engine.position_check,
                        subscriber_timeout: config.redis_engine.subscriber_timeout,
                        lanes: usize::try_from(config.redis_engine.lanes).unwrap_or(1),
                        batch: usize::try_from(config.redis_engine.batch).unwrap_or(1),
                        cid_window: config.cid_window_secs,
                        room_ttl: config.redis_engine.room_ttl,
                        max_age: retention.and_then(|r| r.max_age),
                    },
                    metrics.events.clone(),
                )
                .await?
            }
            (_, None, _) => Engine::memory(metrics.events.clone(), rooms),
            (_, Some(retention), _) => {
                let queue = usize::try_from(config.history_queue).unwrap_or(usize::MAX);
                let mut storage = Storage::open(&config.data_dir, retention, policy, queue)?;
                storage.store.keep_presence(config.history_max_presence);
                if config.history_durability == Durability::Power {
                    storage.store.power_safe()?;
                }
                Engine::sqlite(metrics.events.clone(), storage, rooms)?
            }
        }
        .presence_grace(config.presence_grace_secs)
        .big_rooms(config.big_rooms.big_rooms());
        let engine = Arc::new(engine);
        let shutdown = CancellationToken::new();
        let sessions = match config.redis_target() {
            Some(target) => {
                Sessions::redis(
                    &target,
                    config.cookie_days,
                    config.max_revoked_sessions,
                    engine.clone(),
                    shutdown.clone(),
                )
                .await?
            }
            None => Sessions::local(
                &config.data_dir,
                config.cookie_days,
                config.max_revoked_sessions,
                engine.clone(),
            )?,
        };
        if !(config.moderators.moderator_auth_failures.is_finite()
            && config.moderators.moderator_auth_failures > 0.0)
        {
            anyhow::bail!("--moderator-auth-failures must be above 0");
        }
        // With --redis, moderation is the cluster's: stored in Redis, and every change made on
        // one instance is applied on all.
        let moderation = Arc::new(Moderation::open(
            &config.data_dir,
            config.redis_target().as_ref(),
            config.moderation(),
        )?);
        moderation.listen(engine.clone(), shutdown.clone()).await?;
        let state = AppState::new(Inner {
            key,
            sessions,
            cookies: CookiePolicy {
                secure: config.secure_cookies,
                max_age_days: config.cookie_days,
            },
            origins: OriginPolicy::new(&config.allowed_origins, config.secure_cookies),
            refused_requests: SampledLog::new(
                config.log_sample_interval,
                routes::origin::log_refused_requests,
            ),
            refused_messages: SampledLog::new(config.log_sample_interval, refusal::log_refusals),
            proxies: TrustedProxies::new(&config.trusted_proxies),
            purge_batch: config.purge_batch as usize,
            metrics,
            user_ids,
            sign_ins: RateLimiter::new(RatePolicy {
                per_second: config.sign_in_rate,
                burst: config.sign_in_burst,
            }),
            messages: RateLimiter::new(RatePolicy {
                per_second: config.rate_limit,
                burst: config.rate_burst,
            }),
            socket_opens: SocketOpens::new(
                RatePolicy {
                    per_second: config.socket_rate,
                    burst: config.socket_burst,
                },
                RatePolicy {
                    per_second: config.socket_address_rate,
                    burst: config.socket_address_burst,
                },
            ),
            uploads,
            upload_limits: UploadLimits::new(UploadPolicy {
                max_total: config.max_uploads,
                max_per_user: config.max_uploads_per_user,
                per_minute: config.upload_rate,
                quota_bytes: config.upload_quota_bytes,
            }),
            body_timeout: config.body_timeout,
            rooms_list: config.rooms_list,
            engine,
            chat: Settings {
                ping_interval: config.ping_interval,
                max_message_chars: config.max_message_chars,
                outbound_queue: config.outbound_queue,
                outbound_queue_bytes: config.outbound_queue_bytes,
                write_timeout: config.write_timeout,
                max_refused: config.max_refused,
                max_ws_message_bytes: config.max_ws_message_bytes,
            },
            shutdown,
            sockets: TaskTracker::new(),
            tabs: Tally::new(config.max_sockets_per_user),
            moderation,
            assets: Assets::load(&config.static_dir)?,
        });
        let router = routes::router(state.clone(), &config.static_dir);
        let listener = TcpListener::bind(config.bind)
            .await
            .with_context(|| format!("binding {}", config.bind))?;
        let local_addr = listener.local_addr()?;
        Ok(App {
            listener,
            local_addr,
            router,
            state,
            edge,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serves until `shutdown` resolves, then closes every socket with 1001 and returns
    /// within 5 s. The server stops accepting and lets requests finish; upgraded sockets are
    /// no longer its connections, so their tasks watch the token themselves.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let App {
            listener,
            router,
            state,
            edge,
            ..
        } = self;
        let token = state.shutdown.clone();
        tokio::spawn({
            let token = token.clone();
            async move {
                shutdown.await;
                tracing::info!("shutting down");
                token.cancel();
            }
        });
        tokio::spawn(ring_sockets(state.clone()));
        tokio::spawn(flush_sampled_logs(state.clone()));
        let server = Server::new(
            listener,
            router,
            edge,
            state.proxies.clone(),
            state.metrics.clone(),
            token.clone(),
        );
        let sockets = state.sockets.clone();
        let engine = state.engine.clone();
        let drained = async move {
            server.run().await;
            sockets.close();
            sockets.wait().await;
            // The `left` of every closed socket is stored before the process ends.
            engine.flush().await;
        };
        let deadline = async {
            token.cancelled().await;
            tokio::time::sleep(SHUTDOWN_DEADLINE).await;
        };
        tokio::select! {
            () = drained => {}
            () = deadline => tracing::warn!("connections still open at the shutdown deadline; leaving anyway"),
        }
        Ok(())
    }
}

/// One clock for every socket: each ping interval it rings every outbox, and at shutdown it
/// asks every socket to close with 1001.
async fn ring_sockets(state: AppState) {
    let mut ticks = tokio::time::interval(state.chat.ping_interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await;
    loop {
        tokio::select! {
            () = state.shutdown.cancelled() => {
                state.engine.close_all(close::GOING_AWAY, "server shutting down");
                return;
            }
            _ = ticks.tick() => state.engine.tick_all(),
        }
    }
}

/// Sampled logs write a key's last count once it has been quiet for an interval, so the end of
/// a flood is logged even if nothing follows it, and everything left at shutdown.
async fn flush_sampled_logs(state: AppState) {
    // An interval of 0 logs every occurrence at once and leaves nothing to flush.
    let period = state
        .refused_requests
        .interval()
        .max(Duration::from_secs(1));
    let mut ticks = tokio::time::interval(period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = state.shutdown.cancelled() => {
                state.refused_messages.flush_all();
                state.refused_requests.flush_all();
                return;
            }
            _ = ticks.tick() => {
                let now = std::time::Instant::now();
                state.refused_messages.flush_expired(now);
                state.refused_requests.flush_expired(now);
            }
        }
    }
}

/// Resolves on ctrl-c or SIGTERM. The handlers are installed before this returns, so a
/// SIGTERM sent as soon as the server announces itself is not fatal: call it before announcing.
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    use tokio::signal::unix::{SignalKind, signal};
    let interrupt = signal(SignalKind::interrupt());
    let terminate = signal(SignalKind::terminate());
    async move {
        let wait = |stream: std::io::Result<tokio::signal::unix::Signal>| async move {
            match stream {
                Ok(mut stream) => {
                    stream.recv().await;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot watch a shutdown signal");
                    std::future::pending::<()>().await;
                }
            }
        };
        tokio::select! {
            () = wait(interrupt) => {}
            () = wait(terminate) => {}
        }
    }
}

/// Each socket is a file descriptor: raise the soft limit to the hard one.
fn raise_open_file_limit() {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => tracing::debug!(limit, "open-file limit"),
        Err(e) => tracing::warn!(error = %e, "could not raise the open-file limit"),
    }
}
