//! `--compare`: this build (`--passerby`, "new") and another (`--compare`, "old") measured
//! alternately, round by round, so that both see the same machine at nearly the same moment:
//! fan-out CPU per delivery and idle memory per connection, with the embedded engine and over
//! a redis-server started for each run. Each figure's rounds and the ratio new / old.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use passerby_bench::{
    client::Target,
    scenario::{self, Fanout, Ramp},
    server::Server,
};
use serde::Serialize;

use crate::{Args, redis::Redis, run_fanout, start_with, tempfile_dir};

mod table;

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
            (Some(f), _) => (f.losses + f.out_of_order, f.disconnected),
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
    let mut runs: Vec<Run> = Vec::new();
    for round in 1..=args.compare_rounds {
        // Who goes first alternates, so that a machine getting busier or quieter during the
        // run does not always favour the same build.
        let order = if round % 2 == 1 { [0, 1] } else { [1, 0] };
        for &engine in &engines {
            for &measure in &measures {
                for b in order {
                    let (build, program) = builds[b];
                    eprintln!(
                        "round {round}: {build} ({}), {engine:?} engine, {measure:?}",
                        program.display()
                    );
                    let run = measure_once(args, program, engine, measure)
                        .await
                        .with_context(|| format!("{build} build, {engine:?}, {measure:?}"))?;
                    let run = Run {
                        round,
                        build,
                        ..run
                    };
                    for (_, label, unit, value) in run.figures() {
                        eprintln!("  {label}: {value:.2} {unit}");
                    }
                    if let Some(trouble) = run.trouble() {
                        eprintln!("  warning: {trouble}");
                    }
                    runs.push(run);
                }
            }
        }
    }
    let metrics = table::metrics(&runs);
    table::print(args, other, &metrics, &runs, started.elapsed());
    if let Some(out) = &args.out {
        std::fs::create_dir_all(out)?;
        let record = serde_json::json!({
            "mode": "compare",
            "new": args.passerby,
            "old": other,
            "rounds": args.compare_rounds,
            "redis_instances": args.compare_redis_instances,
            "seconds": started.elapsed().as_secs_f64(),
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

/// One fresh server (or instances and their redis-server) of `program`, one measurement.
async fn measure_once(
    args: &Args,
    program: &Path,
    engine: Engine,
    measure: Measure,
) -> anyhow::Result<Run> {
    let redis = match engine {
        Engine::Redis => Some(Redis::start(&args.server_cpu).await?),
        Engine::Embedded => None,
    };
    let extra = redis.as_ref().map(Redis::flags).unwrap_or_default();
    let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
    let instances = match engine {
        Engine::Redis => args.compare_redis_instances.max(1),
        Engine::Embedded => 1,
    };
    let mut dirs = Vec::new();
    let mut servers: Vec<Server> = Vec::new();
    let mut target: Option<Target> = None;
    for i in 0..instances {
        dirs.push(tempfile_dir::Dir::new_named(&format!("compare{i}"))?);
        let (server, t) = start_binary(args, program, &dirs[i], &extra).await?;
        match &mut target {
            None => target = Some(t),
            Some(first) => first.others.push(t.addr),
        }
        servers.push(server);
    }
    let target = target.context("no instance")?;
    let mut pids: Vec<u32> = servers.iter().map(Server::pid).collect();
    let (mut fanout, mut idle) = (None, None);
    let measured = match measure {
        Measure::Fanout => {
            pids.extend(redis.as_ref().map(Redis::pid));
            run_fanout(args, &target, &pids)
                .await
                .map(|f| fanout = Some(f))
        }
        // The instances' memory only: what a connection costs passerby.
        Measure::Idle => scenario::ramp(&target, &pids, args.idle_clients, args.room_size)
            .await
            .map(|r| idle = Some(r)),
    };
    for server in servers {
        server.stop().await;
    }
    if let Some(redis) = redis {
        redis.stop().await;
    }
    drop(dirs);
    measured?;
    Ok(Run {
        round: 0,
        build: "",
        binary: program.to_path_buf(),
        engine,
        measure,
        fanout,
        idle,
    })
}

/// Starts `program` (a passerby build) with the bench's usual flags.
async fn start_binary(
    args: &Args,
    program: &Path,
    data: &tempfile_dir::Dir,
    extra: &[&str],
) -> anyhow::Result<(Server, Target)> {
    let args = Args {
        passerby: program.to_path_buf(),
        ..args.clone()
    };
    start_with(&args, "passerby", data, extra).await
}
