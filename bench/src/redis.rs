//! A throwaway redis-server for the runs over the Redis engine: a free port, a directory of
//! its own, nothing saved to disk, and the flags that point passerby instances at it.

use std::{
    path::PathBuf,
    process::Stdio,
    sync::atomic::{AtomicUsize, Ordering::Relaxed},
    time::Duration,
};

use anyhow::{Context, bail};
use tokio::process::{Child, Command};

use crate::tempfile_dir;

pub struct Redis {
    child: Child,
    port: u16,
    /// Every instance signs cookies with this key, so a user signed in at one is known to all.
    secret: PathBuf,
    // Dropped last: redis-server and the instances work in it.
    _dir: tempfile_dir::Dir,
}

impl Redis {
    /// Starts redis-server under `taskset -c cpu` and waits until it accepts connections.
    pub async fn start(cpu: &str) -> anyhow::Result<Redis> {
        // Several may run at once (one per build compared).
        static STARTED: AtomicUsize = AtomicUsize::new(0);
        let n = STARTED.fetch_add(1, Relaxed);
        let dir = tempfile_dir::Dir::new_named(&format!("redis{n}"))?;
        // Free now; taken again by redis-server a moment later. Nothing else here binds ports.
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let mut child = Command::new("taskset")
            .args(["-c", cpu, "redis-server", "--port", &port.to_string()])
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context(
                "starting redis-server (is it installed? --compare-engines embedded skips it)",
            )?;
        let started = tokio::time::Instant::now();
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            if let Some(status) = child.try_wait()? {
                bail!("redis-server exited before listening: {status}");
            }
            if started.elapsed() > Duration::from_secs(10) {
                bail!("redis-server did not listen on port {port} within 10 s");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let secret = dir.path().join("secret.key");
        Ok(Redis {
            child,
            port,
            secret,
            _dir: dir,
        })
    }

    /// `taskset` runs redis-server in its own process, so this is redis-server's pid.
    pub fn pid(&self) -> u32 {
        self.child.id().unwrap_or(0)
    }

    /// The flags that make a passerby instance use this Redis.
    pub fn flags(&self) -> Vec<String> {
        vec![
            "--redis".to_owned(),
            format!("redis://127.0.0.1:{}", self.port),
            "--secret-file".to_owned(),
            self.secret.display().to_string(),
        ]
    }

    pub async fn stop(mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }
}
