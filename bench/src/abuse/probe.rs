//! The bystanders: pairs of signed-in users, each pair in a room of its own, from another address, timing
//! round trips (A says `p:N`, B answers `r:N`, A times it) at a steady rate while an attack
//! runs; and a sampler of the server's memory.

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering::Relaxed},
    },
    time::{Duration, Instant},
};

use futures_util::{SinkExt, StreamExt};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest, http::HeaderValue};

use super::raw::{self, BYSTANDER};
use crate::client::Ws;

/// Round trips per second: each of the two users sends this many messages a second, under the
/// default per-user rate limit (10 a second), so the probe is never the one refused.
pub const RATE: f64 = 8.0;

/// Pairs, each in a room of its own: with one pair a 10 s phase has about 80 round trips, and
/// its p99 is just its slowest one; eight pairs give a p99 that one hiccup cannot decide.
pub const PAIRS: usize = 8;

/// What the probe saw.
#[derive(Debug, Clone, Default)]
pub struct Seen {
    pub sent: u64,
    pub answered: u64,
    /// Round trips, in ms; one that never came back counts as the time it waited.
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// Sockets of the probe the server closed.
    pub dropped: u64,
}

#[derive(Default)]
struct Shared {
    stop: AtomicBool,
    done: AtomicBool,
    sent_at: Mutex<HashMap<u64, Instant>>,
    /// Round trips by sequence number, in ms.
    rtts: Mutex<Vec<(u64, f64)>>,
    /// The next sequence number, and the first one that counts.
    next: AtomicU64,
    first: AtomicU64,
    dropped: AtomicU64,
}

/// The pair runs on a thread and runtime of its own, so that the attack's tasks in this
/// process cannot delay its timers and reads: what it measures is the server.
pub struct Probe {
    shared: Arc<Shared>,
    thread: Option<std::thread::JoinHandle<()>>,
}

async fn open(addr: SocketAddr, cookie: &str, room: &str) -> anyhow::Result<Ws> {
    let mut request = format!("ws://{addr}/ws?room={room}").into_client_request()?;
    request
        .headers_mut()
        .insert("cookie", HeaderValue::from_str(cookie)?);
    let stream = raw::tcp_from(BYSTANDER, addr).await?;
    let (ws, _) =
        tokio_tungstenite::client_async(request, tokio_tungstenite::MaybeTlsStream::Plain(stream))
            .await?;
    Ok(ws)
}

/// The `data` of a chat event, when it is one.
fn chat_data(text: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(text).ok()?;
    (v.get("type")?.as_str()? == "chat").then(|| v.get("data")?.as_str().map(str::to_owned))?
}

async fn pair(addr: SocketAddr, room: &str, i: usize) -> anyhow::Result<(Ws, Ws)> {
    let a = raw::sign_in(addr, BYSTANDER, &format!("probe-a{i}")).await?;
    let b = raw::sign_in(addr, BYSTANDER, &format!("probe-b{i}")).await?;
    Ok((open(addr, &a, room).await?, open(addr, &b, room).await?))
}

async fn run(
    addr: SocketAddr,
    room: String,
    s: Arc<Shared>,
    ready: tokio::sync::oneshot::Sender<anyhow::Result<()>>,
) {
    let mut pairs = Vec::with_capacity(PAIRS);
    for i in 0..PAIRS {
        match pair(addr, &format!("{room}-{i}"), i).await {
            Ok(p) => pairs.push(p),
            Err(e) => {
                let _ = ready.send(Err(e));
                return;
            }
        }
    }
    let _ = ready.send(Ok(()));
    let talks: Vec<_> = pairs
        .into_iter()
        .map(|(a, b)| tokio::spawn(talk(a, b, s.clone())))
        .collect();
    for talk in talks {
        let _ = talk.await;
    }
    while !s.done.load(Relaxed) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// One pair's round trips until told to stop. Sequence numbers are shared by every pair, so
/// each `r:N` is timed against its own `p:N` whichever pair it came through.
async fn talk(a: Ws, b: Ws, s: Arc<Shared>) {
    let ((mut a_tx, mut a_rx), (mut b_tx, mut b_rx)) = (a.split(), b.split());
    // B answers every `p:N` it sees with `r:N`.
    let b_s = s.clone();
    tokio::spawn(async move {
        while let Some(Ok(message)) = b_rx.next().await {
            if let Message::Text(text) = message
                && let Some(n) =
                    chat_data(&text).and_then(|d| d.strip_prefix("p:").map(String::from))
                && b_tx.send(Message::text(format!("r:{n}"))).await.is_err()
            {
                break;
            }
        }
        b_s.dropped.fetch_add(1, Relaxed);
    });
    // A times each `r:N` against when it sent `p:N`.
    let a_s = s.clone();
    tokio::spawn(async move {
        while let Some(Ok(message)) = a_rx.next().await {
            if let Message::Text(text) = message
                && let Some(n) = chat_data(&text)
                    .and_then(|d| d.strip_prefix("r:").and_then(|n| n.parse::<u64>().ok()))
                && let Some(at) = lock(&a_s.sent_at).remove(&n)
            {
                lock(&a_s.rtts).push((n, at.elapsed().as_secs_f64() * 1e3));
            }
        }
        a_s.dropped.fetch_add(1, Relaxed);
    });
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / RATE));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if s.stop.load(Relaxed) {
            break;
        }
        let n = s.next.fetch_add(1, Relaxed);
        lock(&s.sent_at).insert(n, Instant::now());
        // A send that cannot go out (the server is not reading) waits: that is latency.
        if a_tx.send(Message::text(format!("p:{n}"))).await.is_err() {
            break;
        }
    }
}

impl Probe {
    pub async fn start(addr: SocketAddr, room: &str) -> anyhow::Result<Probe> {
        let shared = Arc::new(Shared::default());
        let (ready, is_ready) = tokio::sync::oneshot::channel();
        let (s, room) = (shared.clone(), room.to_owned());
        let thread = std::thread::Builder::new()
            .name("probe".into())
            .spawn(move || {
                match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt.block_on(run(addr, room, s, ready)),
                    Err(e) => {
                        let _ = ready.send(Err(e.into()));
                    }
                }
            })?;
        let started = is_ready
            .await
            .map_err(|_| anyhow::anyhow!("probe thread ended"));
        let probe = Probe {
            shared,
            thread: Some(thread),
        };
        started??;
        Ok(probe)
    }

    /// Forgets what was measured so far (the ramp-up), keeping the sockets.
    pub fn reset(&self) {
        self.shared
            .first
            .store(self.shared.next.load(Relaxed), Relaxed);
    }

    /// Stops sending, waits a moment for answers in flight, and sums up.
    pub async fn finish(mut self, grace: Duration) -> Seen {
        let s = self.shared.clone();
        s.stop.store(true, Relaxed);
        let deadline = Instant::now() + grace;
        let first = s.first.load(Relaxed);
        let waiting = || lock(&s.sent_at).keys().any(|n| *n >= first);
        while Instant::now() < deadline && waiting() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.end().await;
        let first = s.first.load(Relaxed);
        let mut rtts: Vec<f64> = lock(&s.rtts)
            .iter()
            .filter(|(n, _)| *n >= first)
            .map(|(_, ms)| *ms)
            .collect();
        let answered = rtts.len() as u64;
        rtts.extend(
            lock(&s.sent_at)
                .iter()
                .filter(|(n, _)| **n >= first)
                .map(|(_, at)| at.elapsed().as_secs_f64() * 1e3),
        );
        rtts.sort_by(f64::total_cmp);
        let pick = |q: f64| {
            rtts.get(((rtts.len() as f64 * q).ceil() as usize).saturating_sub(1))
                .copied()
                .unwrap_or(f64::NAN)
        };
        Seen {
            sent: s.next.load(Relaxed).saturating_sub(first),
            answered,
            p50_ms: pick(0.5),
            p99_ms: pick(0.99),
            dropped: s.dropped.load(Relaxed),
        }
    }

    async fn end(&mut self) {
        self.shared.stop.store(true, Relaxed);
        self.shared.done.store(true, Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        // Unfinished (an error on the way): let the thread end rather than poll forever.
        self.shared.stop.store(true, Relaxed);
        self.shared.done.store(true, Relaxed);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Resident memory of a process now and at its peak, in KiB (`VmRSS`, `VmHWM`).
pub fn memory(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| -> Option<u64> {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// Open file descriptors of a process (its connections, mostly).
pub fn open_files(pid: u32) -> Option<usize> {
    Some(std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count())
}

/// Samples `VmRSS` every 20 ms and keeps the highest.
pub struct Sampler {
    stop: Arc<AtomicBool>,
    task: JoinHandle<u64>,
}

impl Sampler {
    pub fn start(pid: u32) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let task = tokio::spawn(async move {
            let mut rss = 0;
            while !flag.load(Relaxed) {
                rss = rss.max(memory(pid).map_or(0, |m| m.0));
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            rss
        });
        Sampler { stop, task }
    }

    /// The highest RSS seen, in KiB.
    pub async fn finish(self) -> u64 {
        self.stop.store(true, Relaxed);
        self.task.await.unwrap_or_default()
    }
}
