//! A few seconds of every benchmark scenario against an in-process passerby: nothing may be
//! lost, reordered or dropped. The speed figures themselves belong to the full run.

use std::time::Duration;

use passerby::{config::Config, startup::App};
use passerby_bench::{client::Target, scenario};

async fn start() -> (Target, tokio::sync::oneshot::Sender<()>, tempfile::TempDir) {
    start_with(|_| {}).await
}

async fn start_with(
    configure: impl FnOnce(&mut Config),
) -> (Target, tokio::sync::oneshot::Sender<()>, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = Config::with_data_dir(dir.path());
    config.bind = "127.0.0.1:0".parse().expect("address");
    config.rate_limit = 1e9;
    config.rate_burst = 1e9;
    config.sign_in_rate = 1e9;
    config.sign_in_burst = 1e9;
    // Hundreds of visitors from one address.
    config.max_connections_per_address = 1_000_000;
    config.socket_rate = 1e9;
    config.socket_burst = 1e9;
    config.socket_address_rate = 1e9;
    config.socket_address_burst = 1e9;
    config.room_rate = 1e9;
    configure(&mut config);
    let app = App::build(config).await.expect("server builds");
    let target = Target {
        addr: app.local_addr(),
        others: Vec::new(),
        rooms: true,
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(app.run(async move {
        let _ = stopped.await;
    }));
    (target, stop, dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_scenario_runs_and_loses_nothing() {
    let (target, _stop, _dir) = start().await;

    let fanout = scenario::fanout(&target, &[], 60, 3, 40)
        .await
        .expect("fan-out runs");
    assert_eq!(fanout.deliveries, 60 * 3 * 40);
    assert_eq!(
        (fanout.losses, fanout.out_of_order, fanout.disconnected),
        (0, 0, 0)
    );

    let latency = scenario::latency(&target, 40, 3, 100.0, Duration::from_millis(500))
        .await
        .expect("latency runs");
    assert_eq!(latency.losses, 0);
    assert_eq!(latency.samples, 3 * 50);
    assert!(latency.p50_ms <= latency.p99_ms && latency.p99_ms <= latency.max_ms);

    let ramp = scenario::ramp(&target, &[], 300, 50)
        .await
        .expect("ramp runs");
    assert_eq!(ramp.disconnected, 0);
    assert!(ramp.connects_per_sec > 0.0);
}

/// A crowd gathering in one big room: every client gets in, none is dropped, and each gets
/// a few frames (its list, history, a presence per interval), not one per later arrival.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crowd_gathers_in_a_big_room_with_a_few_frames_each() {
    let (target, _stop, _dir) = start_with(|c| {
        c.big_rooms.big_room = 10;
        c.big_rooms.presence_interval_ms = 100;
    })
    .await;
    let crowd = scenario::crowd(&target, &[], 120, 120, Duration::from_millis(500))
        .await
        .expect("the crowd gathers");
    assert_eq!(crowd.disconnected, 0);
    assert!(crowd.frames_mean >= 2.0, "{crowd:?}");
    assert!(
        crowd.frames_mean < 60.0,
        "presence comes summed up, not a join per arrival: {crowd:?}"
    );
}

/// `--compare` keeps each build's clients connected and runs the fan-out in turns: every burst
/// counts its own deliveries, losses and disorder, not the earlier bursts'.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connected_room_counts_each_burst_on_its_own() {
    let (target, _stop, _dir) = start().await;
    let mut room = scenario::Room::connect(&target, 30, 3)
        .await
        .expect("clients connect");
    for _ in 0..2 {
        let fanout = room
            .burst(&[std::process::id()], 2, 20)
            .await
            .expect("a burst runs");
        assert_eq!(fanout.deliveries, 30 * 2 * 20);
        assert_eq!(
            (fanout.losses, fanout.out_of_order, fanout.disconnected),
            (0, 0, 0)
        );
        assert_eq!(fanout.cpu_ns_per_delivery_each.len(), 1);
        // The latency in the same room: every paced message timed by each probe.
        let paced = room
            .paced(200.0, std::time::Duration::from_millis(100))
            .await
            .expect("a paced run");
        assert_eq!((paced.samples, paced.losses), (20 * 3, 0), "{paced:?}");
        assert!(paced.p50_ms <= paced.p99_ms && paced.p99_ms <= paced.max_ms);
    }
    room.close().await;
}

/// The abuse scenario at a tiny scale, each phase on a fresh in-process server at its default
/// limits: every attack runs and gets a row. Its targets belong to the full run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_abuse_scenario_runs_every_attack_and_reports_a_row_each() {
    use passerby_bench::abuse::{self, ATTACKS, Launched};

    let launch = || {
        Box::pin(async {
            let dir = tempfile::tempdir()?;
            let mut config = Config::with_data_dir(dir.path());
            config.bind = "127.0.0.1:0".parse()?;
            let app = App::build(config).await?;
            let addr = app.local_addr();
            let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
            let served = tokio::spawn(app.run(async move {
                let _ = stopped.await;
            }));
            Ok(Launched {
                addr,
                // In-process: the figures are this test's own, which is all a smoke run needs.
                pid: Some(std::process::id()),
                log: None,
                stop: Box::pin(async move {
                    let _ = stop.send(());
                    let _ = tokio::time::timeout(Duration::from_secs(5), served).await;
                    drop(dir);
                }),
            })
        }) as std::pin::Pin<Box<dyn std::future::Future<Output = _> + Send>>
    };
    let attacks: Vec<String> = ATTACKS.iter().map(|a| a.to_string()).collect();
    let rows = abuse::run(&launch, &attacks, 0.002, None).await;

    // The no-attack phase, then one row per attack and two for uploads and for tabs.
    assert_eq!(rows.len(), 1 + ATTACKS.len() + 2, "{rows:#?}");
    for row in &rows {
        assert!(
            !row.answer.starts_with("harness error"),
            "{}: {}",
            row.attack,
            row.answer
        );
        assert!(row.rss_peak_mib.is_some(), "{row:?}");
    }
    let table = abuse::markdown(&rows);
    assert_eq!(table.lines().count(), 2 + rows.len(), "{table}");
}
