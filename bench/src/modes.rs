//! The runs besides the suite: history on and off, one instance against two over Redis, the
//! crowd (one instance and over Redis) and the abuse scenario. (Two builds side by side are
//! in `compare`.)

use std::{sync::atomic::AtomicUsize, time::Duration};

use passerby_bench::{abuse, scenario, server::Server};

use crate::{Args, redis::Redis, run_fanout, start, start_with, tempfile_dir};

/// The fan-out cost of storing every event: the same run with history on and off.
pub async fn history_ratio(args: &Args) -> anyhow::Result<()> {
    let mut runs = Vec::new();
    for (label, extra) in [("on", &[][..]), ("off", &["--history-max-events", "0"][..])] {
        let data = tempfile_dir::Dir::new()?;
        let (server, target) = start_with(args, "passerby", &data, extra).await?;
        eprintln!("passerby: fan-out, history {label}");
        let fanout = run_fanout(args, &target, &[server.pid()]).await?;
        server.stop().await;
        eprintln!("{}", serde_json::to_string_pretty(&fanout)?);
        runs.push((label, fanout));
    }
    println!("| history | deliveries/s | CPU ns per delivery | losses | out of order |");
    println!("|---|---|---|---|---|");
    for (label, f) in &runs {
        println!(
            "| {label} | {:.0} | {:.0} | {} | {} |",
            f.deliveries_per_sec,
            f.cpu_ns_per_delivery.unwrap_or(f64::NAN),
            f.losses,
            f.out_of_order
        );
    }
    let cpu = |i: usize| runs[i].1.cpu_ns_per_delivery.unwrap_or(f64::NAN);
    println!(
        "history on / off: {:.2}x CPU per delivery, {:.2}x deliveries per second",
        cpu(0) / cpu(1),
        runs[0].1.deliveries_per_sec / runs[1].1.deliveries_per_sec
    );
    Ok(())
}

/// One instance with the embedded engine, against two instances sharing a Redis.
pub async fn redis_ratio(args: &Args) -> anyhow::Result<()> {
    let duration = Duration::from_secs_f64(args.latency_secs);
    let mut rows = Vec::new();
    // One embedded instance.
    {
        let data = tempfile_dir::Dir::new()?;
        let (server, target) = start(args, "passerby", &data).await?;
        eprintln!("one instance: fan-out, latency");
        let fanout = run_fanout(args, &target, &[server.pid()]).await?;
        let latency =
            scenario::latency(&target, args.clients, args.probes, args.rate, duration).await?;
        server.stop().await;
        rows.push(("one instance, embedded engine", fanout, latency));
    }
    // Two instances over Redis, clients spread over both.
    {
        let redis = Redis::start(&args.server_cpu).await?;
        let (a_dir, b_dir) = (
            tempfile_dir::Dir::new_named("a")?,
            tempfile_dir::Dir::new_named("b")?,
        );
        let extra = redis.flags();
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        let (a, mut target) = start_with(args, "passerby", &a_dir, &extra).await?;
        let (b, other) = start_with(args, "passerby", &b_dir, &extra).await?;
        target.others.push(other.addr);
        eprintln!("two instances over Redis: fan-out, latency");
        let pids = [a.pid(), b.pid(), redis.pid()];
        let fanout = run_fanout(args, &target, &pids).await?;
        let latency =
            scenario::latency(&target, args.clients, args.probes, args.rate, duration).await?;
        a.stop().await;
        b.stop().await;
        redis.stop().await;
        rows.push(("two instances over Redis", fanout, latency));
    }
    println!(
        "| Setup | deliveries/s | CPU ns per delivery (servers + Redis) | p50 | p99 | losses |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    for (label, f, l) in &rows {
        println!(
            "| {label} | {:.0} | {:.0} | {:.2} ms | {:.2} ms | {} |",
            f.deliveries_per_sec,
            f.cpu_ns_per_delivery.unwrap_or(f64::NAN),
            l.p50_ms,
            l.p99_ms,
            f.losses + l.losses
        );
    }
    let (one, two) = (&rows[0], &rows[1]);
    println!(
        "two over Redis / one: {:.2}x deliveries per second, {:.2}x CPU per delivery, {:.2}x p50, {:.2}x p99",
        two.1.deliveries_per_sec / one.1.deliveries_per_sec,
        two.1.cpu_ns_per_delivery.unwrap_or(f64::NAN)
            / one.1.cpu_ns_per_delivery.unwrap_or(f64::NAN),
        two.2.p50_ms / one.2.p50_ms,
        two.2.p99_ms / one.2.p99_ms,
    );
    Ok(())
}

/// A crowd gathering: one room of --crowd-clients with big rooms on (the defaults), the same
/// number in rooms of --room-size, and one room of --crowd-off-clients with big rooms off.
pub async fn crowd(args: &Args) -> anyhow::Result<()> {
    // Longer than the presence interval (1 s): the last `presence` has gone out.
    let quiet = Duration::from_secs(3);
    let mut runs = vec![
        (
            "one room, big rooms on",
            args.crowd_clients,
            args.crowd_clients,
            &[][..],
        ),
        (
            "rooms of --room-size",
            args.crowd_clients,
            args.room_size,
            &[][..],
        ),
    ];
    if args.crowd_off_clients > 0 {
        let off = &["--big-room", "0"][..];
        runs.push((
            "one room, big rooms off",
            args.crowd_off_clients,
            args.crowd_off_clients,
            off,
        ));
    }
    let mut rows = Vec::new();
    for (label, clients, room_size, extra) in runs {
        let data = tempfile_dir::Dir::new()?;
        let (server, target) = start_with(args, "passerby", &data, extra).await?;
        eprintln!("passerby: crowd, {label}: {clients} in rooms of {room_size}");
        let crowd = scenario::crowd(&target, &[server.pid()], clients, room_size, quiet).await?;
        server.stop().await;
        eprintln!("{}", serde_json::to_string_pretty(&crowd)?);
        rows.push((label, crowd));
    }
    crowd_table(&rows);
    Ok(())
}

/// The crowd over Redis: one room of --crowd-clients with big rooms on, then one of
/// --crowd-off-clients with big rooms off, each on two instances sharing a fresh
/// redis-server, the clients spread over both. RSS per connection counts both instances
/// and Redis.
pub async fn crowd_redis(args: &Args) -> anyhow::Result<()> {
    let quiet = Duration::from_secs(3);
    let mut runs = vec![(
        "one room over Redis, big rooms on",
        args.crowd_clients,
        &[][..],
    )];
    if args.crowd_off_clients > 0 {
        runs.push((
            "one room over Redis, big rooms off",
            args.crowd_off_clients,
            &["--big-room", "0"][..],
        ));
    }
    let mut rows = Vec::new();
    for (label, clients, extra) in runs {
        let redis = Redis::start(&args.server_cpu).await?;
        let (a_dir, b_dir) = (
            tempfile_dir::Dir::new_named("a")?,
            tempfile_dir::Dir::new_named("b")?,
        );
        let mut flags = redis.flags();
        flags.extend(extra.iter().map(|s| s.to_string()));
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        let (a, mut target) = start_with(args, "passerby", &a_dir, &flags).await?;
        let (b, other) = start_with(args, "passerby", &b_dir, &flags).await?;
        target.others.push(other.addr);
        eprintln!("passerby: crowd, {label}: {clients} on two instances");
        let pids = [a.pid(), b.pid(), redis.pid()];
        let crowd = scenario::crowd(&target, &pids, clients, clients, quiet).await;
        a.stop().await;
        b.stop().await;
        redis.stop().await;
        let crowd = crowd?;
        eprintln!("{}", serde_json::to_string_pretty(&crowd)?);
        rows.push((label, crowd));
    }
    crowd_table(&rows);
    Ok(())
}

fn crowd_table(rows: &[(&str, scenario::Crowd)]) {
    println!(
        "| Run | clients | room size | ramp | connects/s | frames per client (mean, most) | KiB received per client | RSS per connection | dropped |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (label, c) in rows {
        println!(
            "| {label} | {} | {} | {:.2} s | {:.0} | {:.1}, {} | {:.1} | {:.2} KiB | {} |",
            c.clients,
            c.room_size,
            c.seconds,
            c.connects_per_sec,
            c.frames_mean,
            c.frames_max,
            c.bytes_mean / 1024.0,
            c.rss_per_connection.unwrap_or(f64::NAN) / 1024.0,
            c.disconnected
        );
    }
}

/// Each attack against a fresh passerby at its default limits (only the data dir and the port
/// set), then the table to paste into docs/BENCHMARKS.md.
pub async fn abuse(args: &Args, open_files: u64) -> anyhow::Result<()> {
    static RUN: AtomicUsize = AtomicUsize::new(0);
    let launch = |program: std::path::PathBuf| {
        let cpu = args.server_cpu.clone();
        move || {
            let (program, cpu) = (program.clone(), cpu.clone());
            Box::pin(async move {
                let n = RUN.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let data = tempfile_dir::Dir::new_named(&format!("abuse{n}"))?;
                let log = data.path().join("server.log");
                let flags = vec![
                    "--bind".to_owned(),
                    "127.0.0.1:0".to_owned(),
                    "--data-dir".to_owned(),
                    data.path().display().to_string(),
                ];
                let server =
                    Server::start_logged("passerby", &cpu, &program, &flags, &log, open_files)
                        .await?;
                Ok(abuse::Launched {
                    addr: server.addr,
                    pid: Some(server.pid()),
                    log: Some(log),
                    stop: Box::pin(async move {
                        server.stop().await;
                        drop(data);
                    }),
                })
            }) as std::pin::Pin<Box<dyn std::future::Future<Output = _> + Send>>
        }
    };
    let mut programs = vec![args.passerby.clone()];
    programs.extend(args.compare.clone());
    let commit = std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    let mut tables = Vec::new();
    for program in programs {
        let started = std::time::Instant::now();
        let f = launch(program.clone());
        let me = std::env::current_exe().ok();
        let rows = abuse::run(&f, &args.attacks, args.abuse_scale, me.as_deref()).await;
        tables.push((program, rows, started.elapsed()));
    }
    for (program, rows, took) in tables {
        println!(
            "\n### `{}` (run of {}, checkout {commit}, scale {}, {:.0} s)\n",
            program.display(),
            today(),
            args.abuse_scale,
            took.as_secs_f64()
        );
        println!("{}", abuse::markdown(&rows));
    }
    Ok(())
}

fn today() -> String {
    std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}
