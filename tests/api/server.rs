//! `ServerProcess`: the real binary as a child, with its log lines captured for assertions;
//! `OnDataDir`: the binary on a data dir the test keeps, to kill it and start it again there.

use std::{
    io::{BufRead, BufReader},
    net::SocketAddr,
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::Duration,
};

use crate::helpers::WAIT;

pub struct ServerProcess {
    pub addr: SocketAddr,
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    _data: tempfile::TempDir,
}

impl ServerProcess {
    /// Starts `passerby` on 127.0.0.1:0 with `args`, and returns once it has announced itself.
    pub fn start(args: &[&str]) -> ServerProcess {
        ServerProcess::start_command(Command::new(env!("CARGO_BIN_EXE_passerby")), args)
    }

    /// Like `start`, with both open-file limits (soft and hard) at `limit`, so the server
    /// cannot raise them.
    pub fn start_with_open_files(limit: u32, args: &[&str]) -> ServerProcess {
        let mut command = Command::new("sh");
        command
            .args(["-c", &format!(r#"ulimit -n {limit} && exec "$0" "$@""#)])
            .arg(env!("CARGO_BIN_EXE_passerby"));
        ServerProcess::start_command(command, args)
    }

    fn start_command(mut command: Command, args: &[&str]) -> ServerProcess {
        let data = tempfile::tempdir().unwrap();
        let mut child = command
            .args(["--bind", "127.0.0.1:0", "--data-dir"])
            .arg(data.path())
            .arg("--static-dir")
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/static"))
            .args(args)
            .env("RUST_LOG", "info")
            // A `left` follows its socket's close, as the tests expect; a flag overrides it.
            .env("PASSERBY_PRESENCE_GRACE_SECS", "0")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Logs go to stderr; stdout carries only the address.
        let lines = Arc::new(Mutex::new(Vec::new()));
        let stderr = BufReader::new(child.stderr.take().unwrap());
        std::thread::spawn({
            let lines = lines.clone();
            move || {
                for line in stderr.lines().map_while(Result::ok) {
                    lines.lock().unwrap().push(line);
                }
            }
        });
        let addr = crate::helpers::announced_address(child.stdout.take().unwrap());
        ServerProcess {
            addr,
            child,
            lines,
            _data: data,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// How many log lines so far contain every one of `parts`.
    pub fn count_lines(&self, parts: &[&str]) -> usize {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .filter(|line| parts.iter().all(|p| line.contains(p)))
            .count()
    }

    /// The first log line containing every one of `parts`, waiting for it up to `WAIT`.
    pub async fn log_line(&self, parts: &[&str]) -> String {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let found = self
                .lines
                .lock()
                .unwrap()
                .iter()
                .find(|line| parts.iter().all(|p| line.contains(p)))
                .cloned();
            if let Some(line) = found {
                return line;
            }
            if tokio::time::Instant::now() > deadline {
                let log = self.lines.lock().unwrap().join("\n");
                panic!("no log line with {parts:?} in:\n{log}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl ServerProcess {
    /// SIGKILL: the process gets no chance to say goodbye.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A failed assertion must not leave the server running.
impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The binary as a child process on a data dir the test keeps, chatting without a rate
/// limit; killed if the test fails.
pub struct OnDataDir(Child);

impl OnDataDir {
    pub fn start(data_dir: &std::path::Path) -> (OnDataDir, crate::helpers::TestApp) {
        let mut child = Command::new(env!("CARGO_BIN_EXE_passerby"))
            .args([
                "--bind",
                "127.0.0.1:0",
                "--rate-limit",
                "1e6",
                "--rate-burst",
                "1e6",
            ])
            .arg("--data-dir")
            .arg(data_dir)
            .env("RUST_LOG", "error")
            .env("PASSERBY_PRESENCE_GRACE_SECS", "0")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let addr = crate::helpers::announced_address(child.stdout.take().unwrap());
        (OnDataDir(child), crate::helpers::TestApp::external(addr))
    }

    /// As a crash would: nothing is flushed, nothing is said goodbye.
    pub fn kill_9(&mut self) {
        let status = Command::new("kill")
            .args(["-KILL", &self.0.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        self.0.wait().unwrap();
    }
}

impl Drop for OnDataDir {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
