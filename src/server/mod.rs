//! The HTTP edge: our own accept loop in front of hyper. It caps connections in total and per
//! client address, answers past a cap with 429 or 503, closes slow heads and idle keep-alive
//! connections, and keeps serving when the process runs out of file descriptors.
//!
//! axum's `serve` runs hyper without a timer and without caps, so one address could hold every
//! descriptor with idle or half-sent requests.

mod accept_log;
mod activity;
mod refuse;
mod service;
pub mod tally;

use std::{
    io,
    net::{IpAddr, SocketAddr},
    sync::Arc,
    time::{Duration, Instant},
};

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::{
    net::{TcpListener, TcpStream},
    sync::{OwnedSemaphorePermit, Semaphore},
};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use self::{
    accept_log::{AcceptFailure, AcceptLogs},
    activity::{Activity, Verdict, Watched},
    service::ConnService,
    tally::{Slot, Tally},
};
use crate::{
    config::Config,
    metrics::{Metrics, Refused},
    routes::client_addr::{TrustedProxies, address_key},
};

/// How long to wait before accepting again after a failure such as running out of file
/// descriptors: long enough not to spin, short enough that clients barely notice.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(75);
/// Descriptors kept for everything but connections (the database, uploads in progress, files
/// being served, Redis, logs) when `--max-connections` is 0. Uploads are capped at 16 by
/// default and the rest are few, so 512 spares plenty and leaves a 20 000 limit 19 488
/// connections.
const RESERVED_FILES: u64 = 512;

/// The edge's bounds, from the configuration.
#[derive(Debug, Clone)]
pub struct EdgeSettings {
    pub header_timeout: Duration,
    pub keep_alive_timeout: Duration,
    pub max_header_bytes: usize,
    pub max_connections: usize,
    pub max_connections_per_address: usize,
    pub log_sample_interval: Duration,
}

impl EdgeSettings {
    /// Reads the flags; call after the open-file limit was raised, as `0` connections means
    /// "what the descriptors allow".
    pub fn from_config(config: &Config) -> anyhow::Result<Self> {
        if config.max_header_bytes < 1024 {
            anyhow::bail!("--max-header-bytes must be at least 1024");
        }
        if config.max_connections_per_address == 0 {
            anyhow::bail!("--max-connections-per-address must be at least 1");
        }
        Ok(EdgeSettings {
            header_timeout: config.header_timeout,
            keep_alive_timeout: config.keep_alive_timeout,
            max_header_bytes: config.max_header_bytes,
            max_connections: match config.max_connections {
                0 => connections_the_descriptors_allow(),
                n => n,
            },
            max_connections_per_address: config.max_connections_per_address,
            log_sample_interval: config.log_sample_interval,
        })
    }
}

/// The open-file soft limit less what the rest of the server needs; half of it when the
/// limit is too small to spare that many.
fn connections_the_descriptors_allow() -> usize {
    let soft = match rlimit::getrlimit(rlimit::Resource::NOFILE) {
        Ok((soft, _hard)) => soft,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the open-file limit; assuming 1024");
            1024
        }
    };
    let allowed = soft.saturating_sub(RESERVED_FILES).max(soft / 2).max(1);
    usize::try_from(allowed).unwrap_or(usize::MAX)
}

/// What every connection task shares.
#[derive(Debug)]
pub struct Edge {
    settings: EdgeSettings,
    http: http1::Builder,
    total: Arc<Semaphore>,
    per_address: Tally<IpAddr>,
    proxies: TrustedProxies,
    metrics: Arc<Metrics>,
}

/// The places a connection was let in with; given back when its socket closes.
#[derive(Debug)]
struct Admission {
    _total: OwnedSemaphorePermit,
    _address: Option<Slot<IpAddr>>,
    _open: OpenGauge,
}

#[derive(Debug)]
struct OpenGauge(Arc<Metrics>);

impl Drop for OpenGauge {
    fn drop(&mut self) {
        self.0.http_connections_open.dec();
    }
}

pub struct Server {
    listener: TcpListener,
    router: Router,
    edge: Arc<Edge>,
    shutdown: CancellationToken,
}

impl Server {
    pub fn new(
        listener: TcpListener,
        router: Router,
        settings: EdgeSettings,
        proxies: TrustedProxies,
        metrics: Arc<Metrics>,
        shutdown: CancellationToken,
    ) -> Self {
        let mut http = http1::Builder::new();
        http.timer(TokioTimer::new())
            // The header clock is ours (see `activity`): hyper's would also run while idle.
            .header_read_timeout(None)
            // Past this a head, even unfinished, is answered with 431 and the connection closed.
            .max_header_size(settings.max_header_bytes);
        tracing::info!(
            max_connections = settings.max_connections,
            per_address = settings.max_connections_per_address,
            "connection limits"
        );
        let edge = Edge {
            total: Arc::new(Semaphore::new(
                settings.max_connections.min(Semaphore::MAX_PERMITS),
            )),
            per_address: Tally::new(settings.max_connections_per_address),
            settings,
            http,
            proxies,
            metrics,
        };
        Server {
            listener,
            router,
            edge: Arc::new(edge),
            shutdown,
        }
    }

    /// Accepts until shutdown, then waits for the connections' requests to finish. Upgraded
    /// sockets are not waited for here: they watch the shutdown token themselves.
    pub async fn run(self) {
        let Server {
            listener,
            router,
            edge,
            shutdown,
        } = self;
        let connections = TaskTracker::new();
        let logs = AcceptLogs::new(edge.settings.log_sample_interval);
        let mut flush = logs.clock();
        loop {
            let accepted = tokio::select! {
                () = shutdown.cancelled() => break,
                _ = flush.tick() => {
                    logs.flush_expired(Instant::now());
                    continue;
                }
                accepted = listener.accept() => accepted,
            };
            let (tcp, peer) = match accepted {
                Ok(accepted) => accepted,
                // That one client gave up before we took its connection: nothing to wait for.
                Err(e) if is_about_one_connection(&e) => continue,
                Err(e) => {
                    edge.metrics.accept_errors.inc();
                    logs.failures
                        .record(AcceptFailure::of(&e), "accept", Instant::now());
                    // Out of descriptors, the pending connection stays queued and `accept`
                    // would fail again at once: wait for some to close instead of spinning.
                    tokio::select! {
                        () = shutdown.cancelled() => break,
                        () = tokio::time::sleep(ACCEPT_BACKOFF) => continue,
                    }
                }
            };
            match admit(&edge, peer) {
                Ok(admission) => {
                    connections.spawn(serve_connection(
                        edge.clone(),
                        router.clone(),
                        tcp,
                        peer,
                        admission,
                        shutdown.clone(),
                    ));
                }
                Err(reason) => {
                    edge.metrics.refuse(reason);
                    logs.refusals
                        .record(address_key(peer.ip()), reason.label(), Instant::now());
                    connections.spawn(refuse::refuse(tcp, reason));
                }
            }
        }
        drop(listener);
        logs.flush_all();
        connections.close();
        connections.wait().await;
    }
}

/// Accept errors that concern one connection only, not the listener.
fn is_about_one_connection(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// Takes a place for a new connection: one per peer address unless the peer is a trusted
/// proxy (its clients are counted per request), and one of the total.
fn admit(edge: &Arc<Edge>, peer: SocketAddr) -> Result<Admission, Refused> {
    let address = if edge.proxies.trusts(peer.ip()) {
        None
    } else {
        Some(
            edge.per_address
                .take(address_key(peer.ip()))
                .ok_or(Refused::PerAddress)?,
        )
    };
    let total = edge
        .total
        .clone()
        .try_acquire_owned()
        .map_err(|_| Refused::Total)?;
    edge.metrics.http_connections_open.inc();
    Ok(Admission {
        _total: total,
        _address: address,
        _open: OpenGauge(edge.metrics.clone()),
    })
}

/// Serves one connection until it ends, its head is too slow, it idles too long between
/// requests, or the server shuts down. An upgraded socket leaves this task: hyper's future
/// completes and the socket's own task owns the connection from then on.
async fn serve_connection(
    edge: Arc<Edge>,
    router: Router,
    tcp: TcpStream,
    peer: SocketAddr,
    admission: Admission,
    shutdown: CancellationToken,
) {
    if let Err(e) = tcp.set_nodelay(true) {
        tracing::warn!(error = %e, "could not set TCP_NODELAY");
    }
    let activity = Arc::new(Activity::new());
    let io = TokioIo::new(Watched {
        io: tcp,
        activity: activity.clone(),
        _admission: admission,
    });
    let service = ConnService {
        router,
        peer,
        activity: activity.clone(),
        forwarded_for: edge.proxies.trusts(peer.ip()).then(|| edge.clone()),
    };
    let connection = edge.http.serve_connection(io, service).with_upgrades();
    let mut connection = std::pin::pin!(connection);
    let EdgeSettings {
        header_timeout,
        keep_alive_timeout,
        ..
    } = edge.settings;
    let mut wake = Instant::now() + header_timeout;
    // Once asked to close, a connection gets this long to finish what it is doing.
    let mut closing = false;
    loop {
        tokio::select! {
            served = connection.as_mut() => {
                if let Err(e) = served {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
                return;
            }
            () = shutdown.cancelled(), if !closing => {
                closing = true;
                connection.as_mut().graceful_shutdown();
                wake = Instant::now() + keep_alive_timeout.max(header_timeout);
            }
            () = tokio::time::sleep_until(wake.into()) => {
                if closing {
                    return;
                }
                match activity.verdict(header_timeout, keep_alive_timeout) {
                    Verdict::Until(at) => wake = at,
                    Verdict::HeadTooSlow => {
                        tracing::debug!(%peer, "closed a connection whose head was too slow");
                        return;
                    }
                    Verdict::Idle => {
                        closing = true;
                        connection.as_mut().graceful_shutdown();
                        wake = Instant::now() + header_timeout;
                    }
                }
            }
        }
    }
}
