//! Several passerby instances sharing one real `redis-server`, started on a free port.

mod big_rooms;
mod crossing;
mod deletion;
mod faults_gaps;
mod faults_presence;
mod faults_sends;
mod keys;
mod moderation;
mod moderation_store;
mod numbered_calls;
mod presence;
mod queue;
mod redis_cluster;
mod redis_cluster_chat;
mod redis_cluster_store;
mod sessions;
mod uploads;
mod whispers;
mod wire;

use std::{
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::{Value, json};

use crate::{
    helpers::{Client, TestApp, WAIT, free_port, metric, signal, spawn_with},
    nginx::Nginx,
    server::ServerProcess,
};

/// `redis-server` in the foreground, keeping nothing on disk, killed on drop.
struct Redis {
    port: u16,
    child: Child,
    dir: tempfile::TempDir,
}

impl Redis {
    fn start() -> Redis {
        Redis::launch(spawn_redis)
    }

    /// Started by `spawn` on a free port in a temp dir, once it listens.
    fn launch(spawn: fn(u16, &tempfile::TempDir) -> Child) -> Redis {
        let port = free_port();
        let dir = tempfile::tempdir().unwrap();
        let child = spawn(port, &dir);
        let mut redis = Redis { port, child, dir };
        redis.wait_until_listening();
        redis
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills the server, as a crash would.
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Stops it (SIGSTOP): its sockets stay open and nothing they ask is answered, as a
    /// Redis stalled by a long command or a swapping machine.
    fn freeze(&self) {
        self.signal("-STOP");
    }

    /// Lets it go on (SIGCONT) with what was asked meanwhile.
    fn thaw(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, which: &str) {
        signal(&self.child, which, "redis-server");
    }

    /// Starts it again on the same port.
    fn restart(&mut self) {
        self.child = spawn_redis(self.port, &self.dir);
        self.wait_until_listening();
    }

    fn wait_until_listening(&mut self) {
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("redis-server exited with {status}");
            }
            assert!(start.elapsed() < WAIT, "redis-server is not listening");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

fn spawn_redis(port: u16, dir: &tempfile::TempDir) -> Child {
    spawn_redis_keeping(port, dir, &["--appendonly", "no"])
}

/// `redis-server` with `keeping`, its persistence flags (RDB snapshots are always off).
fn spawn_redis_keeping(port: u16, dir: &tempfile::TempDir, keeping: &[&str]) -> Child {
    Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", ""])
        .args(keeping)
        .arg("--dir")
        .arg(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("redis-server runs (Debian's redis-server package)")
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Instances of one cluster: the same Redis and the same signing key.
struct Cluster {
    redis: Redis,
    secret: tempfile::TempDir,
}

impl Cluster {
    fn new() -> Cluster {
        Cluster {
            redis: Redis::start(),
            secret: tempfile::tempdir().unwrap(),
        }
    }

    fn secret_file(&self) -> PathBuf {
        self.secret.path().join("secret.key")
    }

    async fn instance(&self) -> TestApp {
        let (url, secret) = (self.redis.url(), self.secret_file());
        spawn_with(move |c| {
            c.redis = Some(url);
            c.secret_file = Some(secret);
            c.redis_engine.presence_ttl = Duration::from_secs(1);
            c.rate_limit = 1000.0;
            c.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
            c.rate_burst = 1000.0;
        })
        .await
    }
}

/// Connects a socket that is not the user's first: `list` and `history`, no `join`.
async fn another_tab(app: &TestApp, cookie: &str) -> Client {
    let mut client = app.connect(cookie).await;
    client.expect("list").await;
    client.expect("history").await;
    client
}

fn names(list: &Value) -> Vec<&str> {
    list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["name"].as_str().unwrap())
        .collect()
}

/// The next event that is not presence.
async fn next_chat(client: &mut Client) -> Value {
    loop {
        let event = client.next_event().await;
        if event["type"] != "join" && event["type"] != "left" {
            return event;
        }
    }
}

/// The texts of the chat lines in a `history` event, oldest first.
fn chat_texts(history: &Value) -> Vec<&Value> {
    history["data"]
        .as_array()
        .expect("a history's data")
        .iter()
        .filter(|e| e["type"] == "chat")
        .map(|e| &e["data"])
        .collect()
}
