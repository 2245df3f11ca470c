//! `passerby-bench`: starts each server pinned to one core, drives it from another, and
//! reports the figures side by side. See docs/BENCHMARKS.md.

use std::{path::PathBuf, time::Duration};

mod compare;
mod modes;
mod redis;

use anyhow::Context;
use clap::Parser;
use passerby_bench::{
    client::Target,
    report::{self, ServerResults},
    scenario,
    server::Server,
};

#[derive(Debug, Clone, Parser)]
#[command(about = "Measure passerby and the Node.js seed server side by side")]
struct Args {
    /// Servers to measure, in order.
    #[arg(long, value_delimiter = ',', default_value = "passerby,node")]
    servers: Vec<String>,
    /// Scenarios to run: fanout, latency, ramp, idle, max.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "fanout,latency,ramp,idle,max"
    )]
    scenarios: Vec<String>,
    /// The passerby binary (build it with --release first).
    #[arg(long, default_value = "target/release/passerby")]
    passerby: PathBuf,
    /// The seed server's script (run `npm ci` in its folder first).
    #[arg(long, default_value = "bench/node-seed/server.js")]
    node_seed: PathBuf,
    /// Core (taskset list) for the server under test.
    #[arg(long, default_value = "0")]
    server_cpu: String,
    /// Core for this generator.
    #[arg(long, default_value_t = 1)]
    client_cpu: usize,
    /// Fan-out: clients in the room.
    #[arg(long, default_value_t = 1000)]
    clients: usize,
    /// Fan-out: how many of them send.
    #[arg(long, default_value_t = 10)]
    senders: usize,
    /// Fan-out: messages each sender sends.
    #[arg(long, default_value_t = 300)]
    messages: usize,
    /// Latency: messages per second.
    #[arg(long, default_value_t = 100.0)]
    rate: f64,
    /// Latency: seconds of sending.
    #[arg(long, default_value_t = 10.0)]
    latency_secs: f64,
    /// Latency: clients that time each message.
    #[arg(long, default_value_t = 5)]
    probes: usize,
    /// Ramp and idle memory, side by side: clients in one room.
    #[arg(long, default_value_t = 2000)]
    ramp_clients: usize,
    /// passerby only: idle clients spread over rooms.
    #[arg(long, default_value_t = 10_000)]
    idle_clients: usize,
    /// passerby only: the most connections held at once (0 skips it).
    #[arg(long, default_value_t = 19_000)]
    max_clients: usize,
    /// Users per room for the idle and max runs.
    #[arg(long, default_value_t = 100)]
    room_size: usize,
    /// Where to write results.json and chart.svg.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Instead of the suite: passerby's fan-out with history on, then off
    /// (--history-max-events 0), and the ratio of their CPU time per delivery.
    #[arg(long)]
    history_ratio: bool,
    /// Instead of the suite: fan-out and latency on one embedded instance, then on two
    /// instances over a redis-server started here, and their ratios.
    #[arg(long)]
    redis_ratio: bool,
    /// Instead of the suite: another passerby build. With --abuse, the attacks run against it
    /// too; otherwise both builds, alternating round by round: fan-out CPU per delivery, with
    /// latency p50/p99 at --rate in the same room (--latency-secs 0 skips it), and idle
    /// memory per connection (--idle-clients in rooms of --room-size) for each of
    /// --compare-engines. --scenarios fanout or idle picks one of the two.
    #[arg(long)]
    compare: Option<PathBuf>,
    /// Rounds of --compare: each measures every figure once on each build.
    #[arg(long, default_value_t = 5)]
    compare_rounds: usize,
    /// Engines for --compare: embedded, redis (a redis-server started for each run).
    #[arg(long, value_delimiter = ',', default_value = "embedded,redis")]
    compare_engines: Vec<String>,
    /// Instances over one redis-server for --compare's Redis runs, clients spread over them
    /// (two measured steadier CPU per delivery than one, and cross instances as Redis is for).
    #[arg(long, default_value_t = 2)]
    compare_redis_instances: usize,
    /// Instead of the suite: each attack against a fresh passerby at its default limits,
    /// with a probe pair chatting in another room (see docs/BENCHMARKS.md, "Abuse").
    #[arg(long)]
    abuse: bool,
    /// Abuse: the attacks to run, in order.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "pings,idle,slowloris,heads,uploads,tabs,commands,whispers,catchup,churn,leave,rooms"
    )]
    attacks: Vec<String>,
    /// Abuse: scales every count and duration (1 is the full size).
    #[arg(long, default_value_t = 1.0)]
    abuse_scale: f64,
    /// Instead of the suite: --crowd-clients users gathering in one big room, then in rooms
    /// of --room-size, then --crowd-off-clients in one room with big rooms off (0 skips it):
    /// ramp time, frames per client, memory per connection (see docs/BENCHMARKS.md).
    #[arg(long)]
    crowd: bool,
    /// Instead of the suite: the crowd over Redis, two instances sharing a redis-server:
    /// --crowd-clients in one big room, then --crowd-off-clients in one room with big rooms
    /// off (0 skips it).
    #[arg(long)]
    crowd_redis: bool,
    /// Crowd: clients in each run.
    #[arg(long, default_value_t = 10_000)]
    crowd_clients: usize,
    /// Crowd: clients of the run in one room with big rooms off (the seed's presence).
    #[arg(long, default_value_t = 5_000)]
    crowd_off_clients: usize,
    /// Internal (the idle attack's helper): hold --hold-count idle connections to this
    /// address until stdin closes.
    #[arg(long, hide = true)]
    hold_idle: Option<std::net::SocketAddr>,
    #[arg(long, hide = true, default_value_t = 0)]
    hold_count: usize,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if let Some(core) = core_affinity::get_core_ids()
        .unwrap_or_default()
        .into_iter()
        .find(|c| c.id == args.client_cpu)
    {
        core_affinity::set_for_current(core);
    }
    // The servers get the machine's limit; this generator may hold more (root may raise it), so
    // that one address can reach the server's limit on its own.
    let open_files = rlimit::getrlimit(rlimit::Resource::NOFILE).map_or(20_000, |l| l.1);
    if args.abuse {
        let more = open_files.max(70_000);
        let _ = rlimit::setrlimit(rlimit::Resource::NOFILE, more, more);
    }
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    if let Some(addr) = args.hold_idle {
        return passerby_bench::abuse::http::hold(addr, args.hold_count).await;
    }
    if args.abuse {
        return modes::abuse(&args, open_files).await;
    }
    if args.history_ratio {
        return modes::history_ratio(&args).await;
    }
    if args.redis_ratio {
        return modes::redis_ratio(&args).await;
    }
    if args.crowd {
        return modes::crowd(&args).await;
    }
    if args.crowd_redis {
        return modes::crowd_redis(&args).await;
    }
    if let Some(other) = &args.compare {
        return compare::compare(&args, other).await;
    }
    let mut all = Vec::new();
    for name in &args.servers {
        let results = measure(&args, name)
            .await
            .with_context(|| format!("measuring {name}"))?;
        eprintln!("{}", serde_json::to_string_pretty(&results)?);
        all.push(results);
    }
    let ours = all
        .iter()
        .find(|r| r.name == "passerby")
        .cloned()
        .unwrap_or_default();
    let seed = all.iter().find(|r| r.name == "node");
    println!("{}", report::markdown(&ours, seed));
    for extra in [&ours.idle, &ours.max].into_iter().flatten() {
        println!(
            "passerby, {} idle clients in rooms of {}: ramp {:.2} s, {:.2} KiB per connection, {} dropped",
            extra.clients,
            extra.room_size,
            extra.seconds,
            extra.rss_per_connection.unwrap_or(f64::NAN) / 1024.0,
            extra.disconnected
        );
    }
    if let Some(out) = &args.out {
        std::fs::create_dir_all(out)?;
        std::fs::write(
            out.join("results.json"),
            serde_json::to_string_pretty(&all)?,
        )?;
        if let Some(seed) = seed {
            report::chart(&ours, seed, &out.join("chart.svg"))?;
        }
    }
    Ok(())
}

/// The fan-out scenario with this run's clients, senders and messages.
async fn run_fanout(
    args: &Args,
    target: &Target,
    pids: &[u32],
) -> anyhow::Result<scenario::Fanout> {
    scenario::fanout(target, pids, args.clients, args.senders, args.messages).await
}

async fn start(
    args: &Args,
    name: &str,
    data: &tempfile_dir::Dir,
) -> anyhow::Result<(Server, Target)> {
    start_with(args, name, data, &[]).await
}

/// Starts `name`; `extra` flags go to passerby only.
async fn start_with(
    args: &Args,
    name: &str,
    data: &tempfile_dir::Dir,
    extra: &[&str],
) -> anyhow::Result<(Server, Target)> {
    let (server, rooms) = match name {
        "passerby" => {
            let args_: Vec<String> = [
                "--bind",
                "127.0.0.1:0",
                "--rate-limit",
                "1e9",
                "--rate-burst",
                "1e9",
                "--sign-in-rate",
                "1e9",
                "--sign-in-burst",
                "1e9",
                "--data-dir",
            ]
            .iter()
            .map(|s| s.to_string())
            .chain([data.path().display().to_string()])
            .chain(extra.iter().map(|s| s.to_string()))
            .collect();
            (
                Server::start("passerby", &args.server_cpu, &args.passerby, &args_).await?,
                true,
            )
        }
        "node" => {
            let node_args = vec![args.node_seed.display().to_string(), "0".into()];
            (
                Server::start(
                    "node",
                    &args.server_cpu,
                    std::path::Path::new("node"),
                    &node_args,
                )
                .await?,
                false,
            )
        }
        other => anyhow::bail!("unknown server {other:?}: use passerby or node"),
    };
    let target = Target {
        addr: server.addr,
        others: Vec::new(),
        rooms,
    };
    Ok((server, target))
}

async fn measure(args: &Args, name: &str) -> anyhow::Result<ServerResults> {
    let mut results = ServerResults {
        name: name.to_owned(),
        ..Default::default()
    };
    let data = tempfile_dir::Dir::new()?;

    let run = |scenario: &str| args.scenarios.iter().any(|s| s == scenario);
    if run("fanout") {
        let (server, target) = start(args, name, &data).await?;
        eprintln!("{name}: fan-out");
        let pid = &[server.pid()];
        results.fanout = Some(run_fanout(args, &target, pid).await?);
        server.stop().await;
    }
    if run("latency") {
        let (server, target) = start(args, name, &data).await?;
        eprintln!("{name}: latency");
        let duration = Duration::from_secs_f64(args.latency_secs);
        results.latency =
            Some(scenario::latency(&target, args.clients, args.probes, args.rate, duration).await?);
        server.stop().await;
    }
    if run("ramp") {
        let (server, target) = start(args, name, &data).await?;
        eprintln!("{name}: ramp");
        let pid = &[server.pid()];
        results.ramp =
            Some(scenario::ramp(&target, pid, args.ramp_clients, args.ramp_clients).await?);
        server.stop().await;
    }
    if name == "passerby" && run("idle") {
        let (server, target) = start(args, name, &data).await?;
        eprintln!("{name}: idle");
        let pid = &[server.pid()];
        results.idle = Some(scenario::ramp(&target, pid, args.idle_clients, args.room_size).await?);
        server.stop().await;
    }
    if name == "passerby" && run("max") && args.max_clients > 0 {
        let (server, target) = start(args, name, &data).await?;
        eprintln!("{name}: max");
        let pid = &[server.pid()];
        results.max = Some(scenario::ramp(&target, pid, args.max_clients, args.room_size).await?);
        server.stop().await;
    }
    Ok(results)
}

/// A scratch data dir for the server under test, removed afterwards.
mod tempfile_dir {
    use std::path::{Path, PathBuf};

    pub struct Dir(PathBuf);

    impl Dir {
        pub fn new() -> std::io::Result<Dir> {
            Dir::new_named("")
        }

        pub fn new_named(name: &str) -> std::io::Result<Dir> {
            let path =
                std::env::temp_dir().join(format!("passerby-bench-{}{name}", std::process::id()));
            std::fs::create_dir_all(&path)?;
            Ok(Dir(path))
        }

        pub fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}
