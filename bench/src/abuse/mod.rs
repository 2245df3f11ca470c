//! The `abuse` scenario: each attack of issues 11 (the edge) and 13 (the engine), one at a time
//! against a fresh server at its default limits, with probe pairs chatting in other rooms
//! meanwhile.
//! Reported per attack: the server's RSS before, at its peak and after the attacker left, the
//! probe's p99 round trip beside a run with no attack, the log written, and how the server
//! answered the attacker.

pub mod engine;
pub mod http;
pub mod probe;
pub mod raw;
mod ws;

use std::{future::Future, net::SocketAddr, path::PathBuf, pin::Pin, time::Duration};

use probe::{Probe, Sampler, memory};

/// RSS growth allowed for any one-address attack, in MiB.
pub const RSS_TARGET_MIB: f64 = 64.0;
/// The probe's p99 during an attack may be at most this many times its figure with none.
pub const P99_TARGET: f64 = 3.0;

/// The attacks, by the names `--attacks` takes.
pub const ATTACKS: &[&str] = &[
    "pings",
    "idle",
    "slowloris",
    "heads",
    "uploads",
    "tabs",
    "commands",
    "whispers",
    "catchup",
    "churn",
    "leave",
    "rooms",
];

/// What an attack saw of the server: how it answered, and how many healthy readers (besides
/// the probe) it closed, where the attack has some.
#[derive(Debug, Clone, Default)]
pub struct Answer {
    pub text: String,
    pub readers_closed: Option<usize>,
}

impl From<String> for Answer {
    fn from(text: String) -> Answer {
        Answer {
            text,
            readers_closed: None,
        }
    }
}

/// A lock whose holder may have panicked: the counts in it are still worth reading.
pub fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A server started for one phase, and how to stop it.
pub struct Launched {
    pub addr: SocketAddr,
    /// The server's process, for its memory (none: the figures are left out).
    pub pid: Option<u32>,
    /// Where the server's log goes, for the bytes an attack makes it write.
    pub log: Option<PathBuf>,
    pub stop: Pin<Box<dyn Future<Output = ()> + Send>>,
}

/// Starts a fresh server at its default limits.
pub type Launcher<'a> =
    &'a (dyn Fn() -> Pin<Box<dyn Future<Output = anyhow::Result<Launched>> + Send>> + Sync);

/// What an attack sees of the server and of the run's scale.
pub struct Ctx {
    pub addr: SocketAddr,
    pub pid: Option<u32>,
    pub scale: f64,
    /// This generator's binary, to start helpers that hold connections beyond its own
    /// open-file limit (`--hold-idle`); none in tests.
    pub helper: Option<PathBuf>,
}

impl Ctx {
    /// `full` scaled down, at least one.
    pub fn n(&self, full: usize) -> usize {
        ((full as f64 * self.scale).round() as usize).max(1)
    }

    /// `full` seconds scaled down, at least 0.1 s.
    pub fn secs(&self, full: f64) -> Duration {
        Duration::from_secs_f64((full * self.scale).max(0.1))
    }
}

/// One attack's (or the no-attack phase's) figures.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Row {
    pub attack: String,
    pub rss_before_mib: Option<f64>,
    pub rss_peak_mib: Option<f64>,
    pub rss_after_mib: Option<f64>,
    pub probe_p50_ms: f64,
    pub probe_p99_ms: f64,
    pub probe_sent: u64,
    pub probe_answered: u64,
    pub probe_dropped: u64,
    pub log_bytes: Option<u64>,
    pub seconds: f64,
    /// How the server answered the attacker.
    pub answer: String,
    /// Healthy readers the server closed, the probe's sockets included.
    pub readers_closed: u64,
}

impl Row {
    pub fn growth_mib(&self) -> Option<f64> {
        Some(self.rss_peak_mib? - self.rss_before_mib?)
    }
}

/// Runs the no-attack phase, then each of `attacks` (one or two rows each).
pub async fn run(
    launch: Launcher<'_>,
    attacks: &[String],
    scale: f64,
    helper: Option<&std::path::Path>,
) -> Vec<Row> {
    let mut rows = Vec::new();
    let mut phases: Vec<(&str, &str)> = vec![("none", "none")];
    for a in attacks {
        match a.as_str() {
            "uploads" => phases.extend([("uploads", "stalled"), ("uploads", "big")]),
            "tabs" => phases.extend([("tabs", "tabs"), ("tabs", "partial")]),
            other => {
                if let Some(name) = ATTACKS.iter().find(|n| **n == other) {
                    phases.push((name, name));
                } else {
                    eprintln!("unknown attack {other:?}; known: {}", ATTACKS.join(","));
                }
            }
        }
    }
    for (group, which) in phases {
        eprintln!("abuse: {group} {which}");
        let row = match phase(launch, which, scale, helper).await {
            Ok(row) => row,
            Err(e) => Row {
                attack: label(which).into(),
                answer: format!("harness error: {e:#}"),
                probe_p50_ms: f64::NAN,
                probe_p99_ms: f64::NAN,
                ..Row::default()
            },
        };
        eprintln!("{}", serde_json::to_string(&row).unwrap_or_default());
        rows.push(row);
    }
    rows
}

fn label(which: &str) -> &'static str {
    match which {
        "none" => "no attack (probe only)",
        "pings" => "5 000 000 pings, never reading",
        "idle" => "20 000 idle TCP connections",
        "slowloris" => "2 000 slowloris + 1 000 half upgrades",
        "heads" => "2 500 × 390 KiB unfinished heads",
        "stalled" => "300 uploads stalled 4 KiB short",
        "big" => "100 concurrent 5 MiB uploads",
        "tabs" => "9 000 sockets for one user",
        "partial" => "4 000 sockets × 63 KiB partial message",
        "commands" => "1 000 000 invalid commands",
        "whispers" => "8 users × 1 500 rooms, whispering",
        "catchup" => "24 × since=0 on 10 000 × 12 KB, never reading",
        "churn" => "join churn, one cookie",
        "leave" => "2 000 users leave at once",
        "rooms" => "room flood, one cookie",
        _ => "?",
    }
}

async fn phase(
    launch: Launcher<'_>,
    which: &str,
    scale: f64,
    helper: Option<&std::path::Path>,
) -> anyhow::Result<Row> {
    let server = launch().await?;
    let ctx = Ctx {
        addr: server.addr,
        pid: server.pid,
        scale,
        helper: helper.map(Into::into),
    };
    let probe = Probe::start(server.addr, "probe").await?;
    // Two seconds of round trips first, so the figures start from a warm probe: a fresh
    // server's first events create its rooms' history, and that one-off cost is no attack's.
    tokio::time::sleep(ctx.secs(2.0)).await;
    let prepared = engine::prepare(&ctx, which).await?;
    probe.reset();
    let mib = |kib: u64| kib as f64 / 1024.0;
    let before = server.pid.and_then(memory);
    let log_size = || {
        server
            .log
            .as_ref()
            .and_then(|p| std::fs::metadata(p).ok())
            .map(|m| m.len())
    };
    let log_before = log_size();
    let sampler = server.pid.map(Sampler::start);
    let start = std::time::Instant::now();
    let answer: anyhow::Result<Answer> = match (which, prepared) {
        ("whispers", _) => engine::whisper::run(&ctx).await,
        ("catchup", engine::Prepared::Room(room)) => engine::catchup::run(&ctx, room).await,
        ("churn", _) => engine::churn::churn(&ctx).await,
        ("leave", engine::Prepared::Crowd(crowd)) => engine::leave::drop_all(&ctx, crowd).await,
        ("rooms", _) => engine::churn::rooms(&ctx).await,
        _ => edge(&ctx, which).await.map(Answer::from),
    };
    let answer = answer.unwrap_or_else(|e| format!("attack stopped: {e:#}").into());
    let seconds = start.elapsed().as_secs_f64();
    // A short attack still gets a probe window long enough for a p99.
    if let Some(rest) = ctx.secs(5.0).checked_sub(start.elapsed()) {
        tokio::time::sleep(rest).await;
    }
    let seen = probe.finish(Duration::from_secs(2)).await;
    let peak_sampled = match sampler {
        Some(s) => Some(s.finish().await),
        None => None,
    };
    let log_bytes = log_size().zip(log_before).map(|(a, b)| a.saturating_sub(b));
    // The attacker has left: what the server keeps.
    tokio::time::sleep(ctx.secs(1.0)).await;
    let after = server.pid.and_then(memory);
    let peak = after
        .map(|m| m.1)
        .into_iter()
        .chain(peak_sampled)
        .max()
        .filter(|_| after.is_some());
    server.stop.await;
    Ok(Row {
        attack: label(which).into(),
        rss_before_mib: before.map(|m| mib(m.0)),
        rss_peak_mib: peak.map(mib),
        rss_after_mib: after.map(|m| mib(m.0)),
        probe_p50_ms: seen.p50_ms,
        probe_p99_ms: seen.p99_ms,
        probe_sent: seen.sent,
        probe_answered: seen.answered,
        probe_dropped: seen.dropped,
        log_bytes,
        seconds,
        readers_closed: seen.dropped + answer.readers_closed.unwrap_or(0) as u64,
        answer: answer.text,
    })
}

/// The attacks of issue 11, at the edge.
async fn edge(ctx: &Ctx, which: &str) -> anyhow::Result<String> {
    match which {
        "none" => {
            tokio::time::sleep(ctx.secs(10.0)).await;
            Ok(String::new())
        }
        "pings" => ws::pings(ctx).await,
        "idle" => http::idle(ctx).await,
        "slowloris" => http::slowloris(ctx).await,
        "heads" => http::heads(ctx).await,
        "stalled" => http::stalled_uploads(ctx).await,
        "big" => http::big_uploads(ctx).await,
        "tabs" => ws::tabs(ctx).await,
        "partial" => ws::partials(ctx).await,
        "commands" => ws::commands(ctx).await,
        other => anyhow::bail!("no attack {other}"),
    }
}

/// The rows as a Markdown table, each attack against the targets.
pub fn markdown(rows: &[Row]) -> String {
    let base = rows
        .iter()
        .find(|r| r.attack.starts_with("no attack"))
        .map(|r| r.probe_p99_ms);
    let mib = |v: Option<f64>| v.map_or("–".into(), |v| format!("{v:.1}"));
    let mut out = String::from(
        "| Attack | RSS before → peak → after (MiB) | Growth | Probe p50 / p99 | p99 × no attack | \
         Probe lost | Log written | Time | How the server answered | RSS < 64 MiB | p99 ≤ 3× | \
         No reader closed |\n\
         |---|---|---:|---:|---:|---:|---:|---:|---|:-:|:-:|:-:|\n",
    );
    for r in rows {
        let ratio = base.map(|b| r.probe_p99_ms / b);
        let growth = r.growth_mib();
        let none = r.attack.starts_with("no attack");
        let verdict = |ok: Option<bool>| match ok {
            _ if none => "",
            Some(true) => "pass",
            Some(false) => "**fail**",
            None => "–",
        };
        let lost = r.probe_sent.saturating_sub(r.probe_answered);
        out.push_str(&format!(
            "| {} | {} → {} → {} | {} | {:.1} / {:.1} ms | {} | {}{} | {} | {:.1} s | {} | {} | {} | {} |\n",
            r.attack,
            mib(r.rss_before_mib),
            mib(r.rss_peak_mib),
            mib(r.rss_after_mib),
            growth.map_or("–".into(), |g| format!("{g:+.1} MiB")),
            r.probe_p50_ms,
            r.probe_p99_ms,
            ratio.map_or("–".into(), |x| format!("{x:.1}×")),
            lost,
            if r.probe_dropped > 0 {
                " (probe closed)"
            } else {
                ""
            },
            r.log_bytes.map_or("–".into(), human_bytes),
            r.seconds,
            if r.answer.is_empty() {
                "–"
            } else {
                &r.answer
            },
            verdict(growth.map(|g| g < RSS_TARGET_MIB)),
            verdict(
                ratio
                    .filter(|x| !x.is_nan())
                    .map(|x| x <= P99_TARGET && lost == 0 && r.probe_dropped == 0)
            ),
            verdict(Some(r.readers_closed == 0)),
        ));
    }
    out
}

fn human_bytes(b: u64) -> String {
    match b {
        b if b >= 10 << 20 => format!("{:.0} MiB", b as f64 / f64::from(1 << 20)),
        b if b >= 10 << 10 => format!("{:.0} KiB", b as f64 / 1024.0),
        b => format!("{b} B"),
    }
}
