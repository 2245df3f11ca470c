//! The servers under test: started as child processes pinned to a core, and measured from /proc.

use std::{net::SocketAddr, path::Path, process::Stdio, time::Duration};

use anyhow::{Context, bail};
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command},
};

/// A running server and where it listens.
pub struct Server {
    pub name: &'static str,
    pub addr: SocketAddr,
    child: Child,
}

impl Server {
    /// Runs `program args…` under `taskset -c cpu` and waits for its `listening on http://ADDR`.
    pub async fn start(
        name: &'static str,
        cpu: &str,
        program: &Path,
        args: &[String],
    ) -> anyhow::Result<Server> {
        let mut command = Command::new("taskset");
        command.env(
            "RUST_LOG",
            std::env::var("BENCH_SERVER_LOG").unwrap_or_else(|_| "warn".into()),
        );
        // The load scenarios play thousands of visitors from one address. An environment
        // variable rather than a flag, so that a build from before the cap still starts.
        command.env("PASSERBY_MAX_CONNECTIONS_PER_ADDRESS", "1000000");
        // And open and close sockets, and rooms, far faster than one visitor may.
        for var in [
            "PASSERBY_SOCKET_RATE",
            "PASSERBY_SOCKET_BURST",
            "PASSERBY_SOCKET_ADDRESS_RATE",
            "PASSERBY_SOCKET_ADDRESS_BURST",
            "PASSERBY_ROOM_RATE",
            "PASSERBY_MAX_ROOMS",
        ] {
            command.env(var, "1000000000");
        }
        Server::spawn(name, command, cpu, program, args, Stdio::inherit()).await
    }

    /// Like `start`, at the server's own log level (no `RUST_LOG`), its log written to `log`,
    /// and at most `open_files` descriptors, whatever this process may open.
    pub async fn start_logged(
        name: &'static str,
        cpu: &str,
        program: &Path,
        args: &[String],
        log: &Path,
        open_files: u64,
    ) -> anyhow::Result<Server> {
        let mut command = Command::new("prlimit");
        command
            .arg(format!("--nofile={open_files}:{open_files}"))
            .arg("taskset")
            .env_remove("RUST_LOG");
        let log = std::fs::File::create(log).context("creating the server's log")?;
        Server::spawn(name, command, cpu, program, args, log.into()).await
    }

    async fn spawn(
        name: &'static str,
        mut command: Command,
        cpu: &str,
        program: &Path,
        args: &[String],
        stderr: Stdio,
    ) -> anyhow::Result<Server> {
        let mut child = command
            .arg("-c")
            .arg(cpu)
            .arg(program)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(stderr)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", program.display()))?;
        let stdout = child.stdout.take().context("stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(Duration::from_secs(20), async {
            while let Some(line) = lines.next_line().await? {
                if line.starts_with("listening on http://") {
                    return Ok(line);
                }
            }
            bail!("{name} exited before listening")
        })
        .await
        .context("server did not start within 20 s")??;
        let addr = line.trim_start_matches("listening on http://");
        let addr = addr.trim().parse()?;
        Ok(Server { name, addr, child })
    }

    pub fn pid(&self) -> u32 {
        self.child.id().unwrap_or(0)
    }

    pub fn stats(&self) -> anyhow::Result<ProcStats> {
        ProcStats::of(self.pid())
    }

    pub async fn stop(mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }
}

/// CPU time (ns, all threads) and resident memory (bytes) of a process.
#[derive(Debug, Clone, Copy)]
pub struct ProcStats {
    pub cpu_ns: u64,
    pub rss: u64,
}

impl ProcStats {
    pub fn of(pid: u32) -> anyhow::Result<ProcStats> {
        let mut cpu_ns = 0;
        // schedstat has nanosecond resolution; /proc/PID/stat only has clock ticks.
        for task in std::fs::read_dir(format!("/proc/{pid}/task"))? {
            let path = task?.path().join("schedstat");
            if let Ok(text) = std::fs::read_to_string(path) {
                cpu_ns += text
                    .split_whitespace()
                    .next()
                    .and_then(|n| n.parse::<u64>().ok())
                    .unwrap_or(0);
            }
        }
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
        let rss_kib: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .context("VmRSS")?;
        Ok(ProcStats {
            cpu_ns,
            rss: rss_kib * 1024,
        })
    }
}
