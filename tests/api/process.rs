//! The real binary as a child process: start-up line, secret file, SIGTERM.

use std::{
    io::{BufRead, BufReader},
    os::unix::fs::PermissionsExt,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use crate::helpers::{WAIT, spawn_app};

#[test]
fn the_binary_announces_its_address_keeps_a_private_key_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    // Start it with a low soft open-file limit, which it must raise to the hard limit.
    let mut child = KillOnDrop(
        Command::new("sh")
            .args(["-c", r#"ulimit -S -n 256 && exec "$0" "$@""#])
            .arg(env!("CARGO_BIN_EXE_passerby"))
            .args(["--bind", "127.0.0.1:0", "--data-dir"])
            .arg(&data_dir)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let child = &mut child.0;
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(
        line.starts_with("listening on http://127.0.0.1:"),
        "{line:?}"
    );
    let mode = std::fs::metadata(data_dir.join("secret.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", child.id())).unwrap();
    let open_files: Vec<&str> = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(
        open_files[3], open_files[4],
        "soft limit raised to the hard limit"
    );

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "{status:?}");
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "still running 5 s after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A failed assertion must not leave the server running.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_bad_secret_file_is_a_clear_start_up_error() {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("short.key");
    std::fs::write(&secret, "c2hvcnQ=\n").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_passerby"))
        .args(["--bind", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .arg("--secret-file")
        .arg(&secret)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("at least 64"), "{stderr}");
}

#[tokio::test]
async fn shutdown_closes_every_socket_with_1001_and_finishes_quickly() {
    let mut app = spawn_app().await;
    let (mut alice, _) = app.join("alice").await;
    let (mut bob, _) = app.join("bob").await;
    let start = Instant::now();
    app.trigger_shutdown();
    for client in [&mut alice, &mut bob] {
        let (code, _) = client.close_code().await.expect("a close frame");
        assert_eq!(code, 1001);
    }
    tokio::time::timeout(WAIT, app.finished())
        .await
        .expect("run() returns")
        .unwrap();
    assert!(start.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn shutdown_is_not_held_up_by_a_client_that_never_answers() {
    let mut app = spawn_app().await;
    let (_mute, _) = app.join("mute").await; // never reads, never answers the close
    let start = Instant::now();
    app.trigger_shutdown();
    tokio::time::timeout(Duration::from_secs(6), app.finished())
        .await
        .expect("run() returns")
        .unwrap();
    assert!(start.elapsed() < Duration::from_secs(5));
}
