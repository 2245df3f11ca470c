//! A few seconds of every benchmark scenario against an in-process passerby: nothing may be
//! lost, reordered or dropped. The speed figures themselves belong to the full run.

use std::time::Duration;

use passerby::{config::Config, startup::App};
use passerby_bench::{client::Target, scenario};

async fn start() -> (Target, tokio::sync::oneshot::Sender<()>, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = Config::with_data_dir(dir.path());
    config.bind = "127.0.0.1:0".parse().expect("address");
    config.rate_limit = 1e9;
    config.rate_burst = 1e9;
    config.sign_in_rate = 1e9;
    config.sign_in_burst = 1e9;
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
