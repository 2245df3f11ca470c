//! The four measurements: idle memory, broadcast fan-out, latency at a steady rate, and the
//! connection ramp. Each counts what it expected against what arrived.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering::Relaxed},
    },
    time::{Duration, Instant},
};

use anyhow::Context;
use futures_util::{
    SinkExt, StreamExt,
    stream::{self, SplitSink},
};
use serde::Serialize;
use tokio_tungstenite::tungstenite::Message;

use crate::{
    client::{Target, Ws, head, probe_time},
    server::ProcStats,
};

mod crowd;
mod fanout;

pub use crowd::{Crowd, crowd};
pub use fanout::{Fanout, Paced, Room, fanout};

/// The processes whose CPU time and RSS count as the server's; none when it runs in-process.
pub type Probe<'a> = &'a [u32];

/// Each process's figures, in the order of `pids`; none unless every one could be read.
fn stats_each(pids: Probe<'_>) -> Option<Vec<ProcStats>> {
    let all: Vec<ProcStats> = pids.iter().filter_map(|p| ProcStats::of(*p).ok()).collect();
    (!all.is_empty() && all.len() == pids.len()).then_some(all)
}

fn stats(pids: Probe<'_>) -> Option<ProcStats> {
    stats_each(pids).map(|all| ProcStats {
        cpu_ns: all.iter().map(|s| s.cpu_ns).sum(),
        rss: all.iter().map(|s| s.rss).sum(),
    })
}

#[derive(Default)]
struct ClientStats {
    chats: AtomicU64,
    last_id: AtomicU64,
    disorder: AtomicU64,
    closed: AtomicBool,
}

#[derive(Default)]
struct Shared {
    delivered: AtomicU64,
    latencies_ns: Mutex<Vec<u64>>,
}

struct Member {
    sink: SplitSink<Ws, Message>,
    stats: Arc<ClientStats>,
}

/// Nanoseconds on a clock every task of the generator shares.
fn now_ns(base: Instant) -> u64 {
    base.elapsed().as_nanos() as u64
}

/// Signs in `n` users and opens their sockets, `concurrency` at a time. Each counts as
/// connected once it has received its `list`.
async fn connect_all(
    target: &Target,
    n: usize,
    room_of: impl Fn(usize) -> String,
    probes: usize,
    shared: &Arc<Shared>,
    base: Instant,
) -> anyhow::Result<Vec<Member>> {
    let http = reqwest::Client::new();
    let rooms: Vec<String> = (0..n).map(room_of).collect();
    let results: Vec<anyhow::Result<(usize, Member)>> = stream::iter(0..n)
        .map(|i| {
            let http = http.clone();
            let room = rooms[i].clone();
            let shared = shared.clone();
            async move {
                let target = target.instance(i);
                let cookie = target.sign_in(&http, &format!("c{i}")).await?;
                let mut ws = target.connect(&cookie, Some(&room)).await?;
                loop {
                    let message = tokio::time::timeout(Duration::from_secs(30), ws.next())
                        .await
                        .context("no list within 30 s")?
                        .context("closed before list")??;
                    if let Message::Text(text) = message
                        && head(&text).is_some_and(|(_, kind)| kind == "list")
                    {
                        break;
                    }
                }
                // Read from now on, so no client is a slow reader while others connect.
                let (sink, stream) = ws.split();
                let stats = Arc::new(ClientStats::default());
                tokio::spawn(read_loop(stream, stats.clone(), shared, i < probes, base));
                Ok((i, Member { sink, stats }))
            }
        })
        .buffer_unordered(64)
        .collect()
        .await;
    let mut members: Vec<(usize, Member)> = results.into_iter().collect::<anyhow::Result<_>>()?;
    members.sort_by_key(|(i, _)| *i);
    Ok(members.into_iter().map(|(_, m)| m).collect())
}

async fn read_loop(
    mut stream: futures_util::stream::SplitStream<Ws>,
    stats: Arc<ClientStats>,
    shared: Arc<Shared>,
    probe: bool,
    base: Instant,
) {
    while let Some(Ok(message)) = stream.next().await {
        let Message::Text(text) = message else {
            continue;
        };
        let Some((id, kind)) = head(&text) else {
            continue;
        };
        if stats.last_id.swap(id, Relaxed) >= id {
            stats.disorder.fetch_add(1, Relaxed);
        }
        if kind == "chat" {
            stats.chats.fetch_add(1, Relaxed);
            shared.delivered.fetch_add(1, Relaxed);
            if probe && let Some(sent) = probe_time(&text) {
                let latency = now_ns(base).saturating_sub(sent);
                shared
                    .latencies_ns
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(latency);
            }
        }
    }
    stats.closed.store(true, Relaxed);
}

/// Waits until `delivered` reaches `target`, or until it stops moving for `stall`.
async fn wait_for(shared: &Shared, target: u64, stall: Duration) -> u64 {
    let mut last = (shared.delivered.load(Relaxed), Instant::now());
    loop {
        let now = shared.delivered.load(Relaxed);
        if now >= target {
            return now;
        }
        if now != last.0 {
            last = (now, Instant::now());
        } else if last.1.elapsed() > stall {
            return now;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

async fn close_all(members: Vec<Member>) {
    for mut m in members {
        let _ = m.sink.close().await;
    }
}

fn kicked(members: &[Member]) -> usize {
    members
        .iter()
        .filter(|m| m.stats.closed.load(Relaxed))
        .count()
}

fn disorder(members: &[Member]) -> u64 {
    members.iter().map(|m| m.stats.disorder.load(Relaxed)).sum()
}

/// p50, p99 and the most of sorted nanoseconds, in milliseconds.
fn quantiles_ms(sorted: &[u64]) -> (f64, f64, f64) {
    let pick = |q: f64| {
        sorted
            .get(((sorted.len() as f64 * q).ceil() as usize).saturating_sub(1))
            .map_or(f64::NAN, |ns| *ns as f64 / 1e6)
    };
    let max = sorted.last().map_or(f64::NAN, |ns| *ns as f64 / 1e6);
    (pick(0.50), pick(0.99), max)
}

#[derive(Debug, Clone, Serialize)]
pub struct Latency {
    pub clients: usize,
    pub probes: usize,
    pub rate: f64,
    pub samples: usize,
    pub losses: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// One sender sends `rate` messages a second to `clients`; the first `probes` of them time it.
pub async fn latency(
    target: &Target,
    clients: usize,
    probes: usize,
    rate: f64,
    duration: Duration,
) -> anyhow::Result<Latency> {
    let shared = Arc::new(Shared::default());
    let base = Instant::now();
    let mut members =
        connect_all(target, clients, |_| "latency".into(), probes, &shared, base).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let count = (rate * duration.as_secs_f64()).round() as usize;
    let period = Duration::from_secs_f64(1.0 / rate);
    let sender = members.last_mut().context("no clients")?;
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    for _ in 0..count {
        tick.tick().await;
        sender
            .sink
            .send(Message::text(format!("t:{}", now_ns(base))))
            .await?;
    }
    let expected = (count * clients) as u64;
    wait_for(&shared, expected, Duration::from_secs(5)).await;
    let mut samples = std::mem::take(
        &mut *shared
            .latencies_ns
            .lock()
            .unwrap_or_else(|p| p.into_inner()),
    );
    samples.sort_unstable();
    let (p50_ms, p99_ms, max_ms) = quantiles_ms(&samples);
    let result = Latency {
        clients,
        probes,
        rate,
        samples: samples.len(),
        losses: expected.saturating_sub(shared.delivered.load(Relaxed)),
        p50_ms,
        p99_ms,
        max_ms,
    };
    close_all(members).await;
    Ok(result)
}

#[derive(Debug, Clone, Serialize)]
pub struct Ramp {
    pub clients: usize,
    pub room_size: usize,
    pub seconds: f64,
    pub connects_per_sec: f64,
    pub rss_per_connection: Option<f64>,
    pub disconnected: usize,
}

/// Connects `clients` users in rooms of `room_size` (one room if the server has none), then
/// measures the server's memory growth while they sit idle.
pub async fn ramp(
    target: &Target,
    pid: Probe<'_>,
    clients: usize,
    room_size: usize,
) -> anyhow::Result<Ramp> {
    let shared = Arc::new(Shared::default());
    let before = stats(pid);
    let start = Instant::now();
    let members = connect_all(
        target,
        clients,
        |i| format!("r{}", i / room_size.max(1)),
        0,
        &shared,
        Instant::now(),
    )
    .await?;
    let seconds = start.elapsed().as_secs_f64();
    // Idle: the joins have drained, nothing is moving.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = stats(pid);
    let result = Ramp {
        clients,
        room_size: if target.rooms { room_size } else { clients },
        seconds,
        connects_per_sec: clients as f64 / seconds,
        rss_per_connection: before
            .zip(after)
            .map(|(b, a)| (a.rss as f64 - b.rss as f64) / clients as f64),
        disconnected: kicked(&members),
    };
    close_all(members).await;
    Ok(result)
}
