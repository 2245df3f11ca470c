//! `--compare`: this build (`--passerby`, "new") and another (`--compare`, "old") measured
//! alternately, round by round, so that both see the same machine at nearly the same moment:
//! fan-out CPU per delivery and idle memory per connection, with the embedded engine and over
//! redis-servers started here. Each figure's rounds and the ratio new / old.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::{Context, bail};
use passerby_bench::scenario::{self, Fanout, Ramp};
use serde::Serialize;

use crate::Args;

mod setup;
mod table;

use setup::Setup;

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Engine {
    Embedded,
    Redis,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Measure {
    Fanout,
    Idle,
}
/// One server run, as measured, for results.json.
#[derive(Debug, Serialize)]
pub(crate) struct Run {
    round: usize,
    build: &'static str,
    binary: PathBuf,
    engine: Engine,
    measure: Measure,
    fanout: Option<Fanout>,
    idle: Option<Ramp>,
}

impl Run {
    /// The figures this run adds to the metrics: (key, label, unit, value).
    pub(crate) fn figures(&self) -> Vec<(&'static str, &'static str, &'static str, f64)> {
        let nan = f64::NAN;
        let mut figures = self.cpu_or_memory();
        if let Some(paced) = self.fanout.as_ref().and_then(|f| f.paced.as_ref()) {
            let (p50, p99) = match self.engine {
                Engine::Embedded => (
                    (
                        "fanout_embedded_p50_ms",
                        "Latency p50 at --rate, embedded engine",
                    ),
                    (
                        "fanout_embedded_p99_ms",
                        "Latency p99 at --rate, embedded engine",
                    ),
                ),
                Engine::Redis => (
                    ("fanout_redis_p50_ms", "Latency p50 at --rate, Redis engine"),
                    ("fanout_redis_p99_ms", "Latency p99 at --rate, Redis engine"),
                ),
            };
            let lost = paced.losses > 0;
            figures.push((p50.0, p50.1, "ms", if lost { nan } else { paced.p50_ms }));
            figures.push((p99.0, p99.1, "ms", if lost { nan } else { paced.p99_ms }));
        }
        figures
    }

    fn cpu_or_memory(&self) -> Vec<(&'static str, &'static str, &'static str, f64)> {
        let nan = f64::NAN;
        match (self.engine, &self.fanout, &self.idle) {
            (Engine::Embedded, Some(f), _) => vec![(
                "fanout_embedded_cpu_ns_per_delivery",
                "Fan-out CPU per delivery, embedded engine (passerby)",
                "ns",
                f.cpu_ns_per_delivery.unwrap_or(nan),
            )],
            (Engine::Redis, Some(f), _) => {
                // The instances come first, redis-server last (see `measure`).
                let (servers, redis) = match f.cpu_ns_per_delivery_each.split_last() {
                    Some((redis, servers)) => (servers.iter().sum(), *redis),
                    None => (nan, nan),
                };
                vec![
                    (
                        "fanout_redis_cpu_ns_per_delivery",
                        "Fan-out CPU per delivery, Redis engine (passerby only)",
                        "ns",
                        servers,
                    ),
                    (
                        "fanout_redis_server_cpu_ns_per_delivery",
                        "Fan-out CPU per delivery, Redis engine (redis-server only)",
                        "ns",
                        redis,
                    ),
                    (
                        "fanout_redis_total_cpu_ns_per_delivery",
                        "Fan-out CPU per delivery, Redis engine (passerby + redis-server)",
                        "ns",
                        servers + redis,
                    ),
                ]
            }
            (engine, None, Some(r)) => vec![(
                match engine {
                    Engine::Embedded => "idle_embedded_bytes_per_connection",
                    Engine::Redis => "idle_redis_bytes_per_connection",
                },
                match engine {
                    Engine::Embedded => {
                        "Idle memory per connection, embedded engine (passerby RSS)"
                    }
                    Engine::Redis => "Idle memory per connection, Redis engine (passerby RSS)",
                },
                "KiB",
                r.rss_per_connection.map_or(nan, |b| b / 1024.0),
            )],
            _ => Vec::new(),
        }
    }

    /// Anything that makes this run's figure suspect.
    pub(crate) fn trouble(&self) -> Option<String> {
        let (lost, dropped) = match (&self.fanout, &self.idle) {
            (Some(f), _) => (
                f.losses + f.out_of_order + f.paced.as_ref().map_or(0, |p| p.losses),
                f.disconnected,
            ),
            (_, Some(r)) => (0, r.disconnected),
            _ => (0, 0),
        };
        (lost + dropped as u64 > 0)
            .then(|| format!("{lost} lost or out of order, {dropped} disconnected"))
    }
}

pub async fn compare(args: &Args, other: &Path) -> anyhow::Result<()> {
    let builds = [("new", args.passerby.as_path()), ("old", other)];
    let mut engines = Vec::new();
    for name in &args.compare_engines {
        engines.push(match name.as_str() {
            "embedded" => Engine::Embedded,
            "redis" => Engine::Redis,
            other => bail!("unknown engine {other:?}: use embedded, redis"),
        });
    }
    let wanted = |s: &str| args.scenarios.iter().any(|x| x == s);
    let measures: Vec<Measure> = [(Measure::Fanout, "fanout"), (Measure::Idle, "idle")]
        .into_iter()
        .filter(|(_, name)| wanted(name))
        .map(|(m, _)| m)
        .collect();
    if engines.is_empty() || measures.is_empty() || args.compare_rounds == 0 {
        bail!("--compare needs an engine, one of the scenarios fanout and idle, and a round");
    }
    let started = std::time::Instant::now();
    let load_before = load_average();
    let mut runs: Vec<Run> = Vec::new();
    if measures.contains(&Measure::Fanout) {
        for &engine in &engines {
            fanout_in_turns(args, &builds, engine, &mut runs).await?;
        }
    }
    if measures.contains(&Measure::Idle) {
        for round in 1..=args.compare_rounds {
            for &engine in &engines {
                for b in order(round) {
                    let (build, program) = builds[b];
                    eprintln!(
                        "round {round}: {build} ({}), {engine:?} engine, idle",
                        program.display()
                    );
                    let setup = Setup::start(args, build, program, engine).await?;
                    // The instances' memory only: what a connection costs passerby.
                    let idle = scenario::ramp(
                        &setup.target,
                        &setup.servers(),
                        args.idle_clients,
                        args.room_size,
                    )
                    .await;
                    setup.stop().await;
                    let idle = idle.with_context(|| format!("{build} build, {engine:?}, idle"))?;
                    record(&mut runs, round, builds[b], engine, None, Some(idle));
                }
            }
        }
    }
    let metrics = table::metrics(&runs);
    let load = [load_before, load_average()];
    println!(
        "new: {} (--passerby), old: {} (--compare); {} rounds, who goes first alternating \
         (fan-out: both builds running, in turns; idle memory: a fresh server each); {:.0} s",
        args.passerby.display(),
        other.display(),
        args.compare_rounds,
        started.elapsed().as_secs_f64()
    );
    if engines.contains(&Engine::Redis) {
        println!(
            "Redis engine: {} instance(s) per build over a redis-server of its own, all on core {}; \
             CPU is given for passerby and for redis-server apart and together; memory is \
             passerby's RSS only.",
            args.compare_redis_instances.max(1),
            args.server_cpu
        );
    }
    // CPU per delivery is only as steady as the machine: other work on the cores moves it.
    println!(
        "Load average (1 min): {:.2} at the start, {:.2} at the end.",
        load[0], load[1]
    );
    table::print(&metrics, &runs);
    if let Some(out) = &args.out {
        std::fs::create_dir_all(out)?;
        let record = serde_json::json!({
            "mode": "compare",
            "new": args.passerby,
            "old": other,
            "rounds": args.compare_rounds,
            "redis_instances": args.compare_redis_instances,
            "seconds": started.elapsed().as_secs_f64(),
            "load_average": load,
            "metrics": metrics,
            "runs": runs,
        });
        std::fs::write(
            out.join("results.json"),
            serde_json::to_string_pretty(&record)?,
        )?;
    }
    Ok(())
}

/// Who goes first alternates, so that a machine getting busier or quieter during the run does
/// not always favour the same build.
fn order(round: usize) -> [usize; 2] {
    if round % 2 == 1 { [0, 1] } else { [1, 0] }
}

/// Fan-out on both builds at once, each with its clients connected, in turns: one burst of
/// the scenario on one, then on the other, `--compare-rounds` times. Turns a second or two
/// apart see the same machine far more nearly than fresh servers minutes apart; the build
/// waiting its turn is idle.
async fn fanout_in_turns(
    args: &Args,
    builds: &[(&'static str, &Path); 2],
    engine: Engine,
    runs: &mut Vec<Run>,
) -> anyhow::Result<()> {
    let mut setups = Vec::new();
    for (build, program) in builds {
        eprintln!(
            "{build} ({}): starting, {engine:?} engine",
            program.display()
        );
        match Setup::start(args, build, program, engine).await {
            Ok(setup) => setups.push(setup),
            Err(e) => {
                for setup in setups {
                    setup.stop().await;
                }
                return Err(e);
            }
        }
    }
    let measured = async {
        let mut rooms = Vec::new();
        for setup in &setups {
            rooms.push(scenario::Room::connect(&setup.target, args.clients, args.probes).await?);
        }
        for round in 1..=args.compare_rounds {
            for b in order(round) {
                let (build, _) = builds[b];
                eprintln!("round {round}: {build}, {engine:?} engine, fan-out");
                let mut fanout = rooms[b]
                    .burst(&setups[b].all(), args.senders, args.messages)
                    .await
                    .with_context(|| format!("{build} build, {engine:?}, fan-out"))?;
                // The same room at --rate: the latency target's p50 and p99, in the same turn.
                if args.latency_secs > 0.0 {
                    let paced = rooms[b]
                        .paced(args.rate, Duration::from_secs_f64(args.latency_secs))
                        .await
                        .with_context(|| format!("{build} build, {engine:?}, latency"))?;
                    fanout.paced = Some(paced);
                }
                record(runs, round, builds[b], engine, Some(fanout), None);
            }
        }
        for room in rooms {
            room.close().await;
        }
        anyhow::Ok(())
    }
    .await;
    for setup in setups {
        setup.stop().await;
    }
    measured
}

/// Keeps one run, telling how it went.
fn record(
    runs: &mut Vec<Run>,
    round: usize,
    (build, program): (&'static str, &Path),
    engine: Engine,
    fanout: Option<Fanout>,
    idle: Option<Ramp>,
) {
    let run = Run {
        round,
        build,
        binary: program.to_path_buf(),
        engine,
        measure: if fanout.is_some() {
            Measure::Fanout
        } else {
            Measure::Idle
        },
        fanout,
        idle,
    };
    for (_, label, unit, value) in run.figures() {
        eprintln!("  {label}: {value:.2} {unit}");
    }
    if let Some(trouble) = run.trouble() {
        eprintln!("  warning: {trouble}");
    }
    runs.push(run);
}

/// The machine's load average over the last minute (NaN where /proc has none).
fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|text| text.split_whitespace().next()?.parse().ok())
        .unwrap_or(f64::NAN)
}
