//! A real Redis Cluster of three primaries (`RedisCluster`), and what passerby instances started
//! with `--redis-cluster` share through it: moderation, sign-outs and user ids (the chat's
//! own crossing is in `redis_cluster_chat.rs`). Also the move of moderation's old key names
//! on a single Redis.

use std::{
    collections::HashSet,
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use redis::Commands;
use reqwest::Method;
use serde_json::{Value, json};

use super::{
    Cluster,
    moderation::{api, user_id},
};
use crate::{
    helpers::{TestApp, WAIT, free_port, spawn_with},
    moderation::moderator,
    sessions::sign_out,
};

/// Three `redis-server` cluster nodes in one temp dir, joined and serving every slot, killed
/// on drop; and the signing key the instances over it share.
pub(super) struct RedisCluster {
    pub(super) ports: Vec<u16>,
    children: Vec<Child>,
    dir: tempfile::TempDir,
    secret: tempfile::TempDir,
}

impl RedisCluster {
    pub(super) fn start() -> RedisCluster {
        let dir = tempfile::tempdir().unwrap();
        let mut cluster = RedisCluster {
            ports: Vec::new(),
            children: Vec::new(),
            dir,
            secret: tempfile::tempdir().unwrap(),
        };
        let mut taken = HashSet::new();
        let mut port = || loop {
            let port = free_port();
            if taken.insert(port) {
                return port;
            }
        };
        for _ in 0..3 {
            // The bus port is named, as the default (the port + 10000) may be out of range.
            let (node, bus) = (port(), port());
            cluster.children.push(cluster.spawn_node(node, bus));
            cluster.ports.push(node);
        }
        for port in cluster.ports.clone() {
            cluster.wait_until_listening(port);
        }
        let nodes: Vec<String> = cluster
            .ports
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect();
        let created = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&nodes)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdin(Stdio::null())
            .output()
            .expect("redis-cli runs (Debian's redis-server package)");
        assert!(
            created.status.success(),
            "redis-cli --cluster create: {}{}",
            String::from_utf8_lossy(&created.stdout),
            String::from_utf8_lossy(&created.stderr)
        );
        cluster.wait_until_ok();
        cluster
    }

    fn spawn_node(&self, port: u16, bus: u16) -> Child {
        let conf = self.dir.path().join(format!("nodes-{port}.conf"));
        Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args([
                "--cluster-enabled",
                "yes",
                "--cluster-port",
                &bus.to_string(),
            ])
            .arg("--cluster-config-file")
            .arg(conf)
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("redis-server runs (Debian's redis-server package)")
    }

    fn wait_until_listening(&mut self, port: u16) {
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            for child in &mut self.children {
                if let Some(status) = child.try_wait().unwrap() {
                    panic!("redis-server exited with {status}");
                }
            }
            assert!(start.elapsed() < WAIT, "redis-server is not listening");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Until every node says the cluster serves all its slots.
    fn wait_until_ok(&self) {
        let start = Instant::now();
        for &port in &self.ports {
            loop {
                let info = self.cli(port, &["cluster", "info"]);
                if info.lines().any(|l| l.trim() == "cluster_state:ok") {
                    break;
                }
                assert!(
                    start.elapsed() < 2 * WAIT,
                    "cluster not ok on {port}: {info}"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    /// `redis-cli -p PORT ARGS…`'s output.
    pub(super) fn cli(&self, port: u16, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .args(["-p", &port.to_string()])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("redis-cli runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub(super) fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.ports[0])
    }

    /// The port of the node that holds `key`'s slot.
    pub(super) fn node_of(&self, key: &str) -> u16 {
        let slot: u16 = self
            .cli(self.ports[0], &["cluster", "keyslot", key])
            .trim()
            .parse()
            .expect("a slot");
        let nodes = self.cli(self.ports[0], &["cluster", "nodes"]);
        for line in nodes.lines() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if !fields.get(2).is_some_and(|f| f.contains("master")) {
                continue;
            }
            let port = fields[1].split(['@', ':']).nth(1).unwrap().parse().unwrap();
            for range in &fields[8..] {
                let (from, to) = range.split_once('-').unwrap_or((range, range));
                if (from.parse().unwrap()..=to.parse().unwrap()).contains(&slot) {
                    return port;
                }
            }
        }
        panic!("no node holds slot {slot}: {nodes}");
    }

    /// Whether `key` exists, asked of the node that holds it.
    pub(super) fn exists(&self, key: &str) -> bool {
        self.cli(self.node_of(key), &["exists", key]).trim() == "1"
    }

    pub(super) fn secret_file(&self) -> PathBuf {
        self.secret.path().join("secret.key")
    }

    /// A passerby instance over the cluster, named by its first node.
    pub(super) async fn instance(&self) -> TestApp {
        self.instance_at(self.url()).await
    }

    /// A passerby instance over the cluster, with `--redis url`.
    pub(super) async fn instance_at(&self, url: String) -> TestApp {
        let secret = self.secret_file();
        spawn_with(move |c| {
            c.redis = Some(url);
            c.redis_cluster = true;
            c.secret_file = Some(secret);
            c.redis_engine.presence_ttl = Duration::from_secs(1);
            c.rate_limit = 1000.0;
            c.rate_burst = 1000.0;
        })
        .await
    }

    /// `passerby moderator ARGS… --redis URL --redis-cluster`: (ok, stdout, stderr).
    pub(super) fn moderator(&self, args: &[&str]) -> (bool, String, String) {
        let unused = tempfile::tempdir().unwrap();
        let mut args = args.to_vec();
        let url = self.url();
        args.extend(["--redis", &url, "--redis-cluster"]);
        moderator(unused.path(), &args)
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[tokio::test]
async fn redis_cluster_moderators_from_the_command_and_a_ban_through_a_apply_on_b() {
    let cluster = RedisCluster::start();
    let (ok, token, stderr) = cluster.moderator(&["add", "alice"]);
    assert!(ok, "moderator add --redis-cluster: {stderr}");
    let token = token.trim().to_owned();

    let (a, b) = (cluster.instance().await, cluster.instance().await);
    for app in [&a, &b] {
        let (status, me) = api(app, &token, Method::GET, "/admin/api/me", None).await;
        assert_eq!(status, 200, "{me}");
    }
    let cookie = b.sign_in("mallory").await;
    let mut on_b = b.connect(&cookie).await;
    let mallory = user_id(&mut on_b).await;
    let body = json!({"user": mallory, "reason": "spam"});
    let (status, ban) = api(&a, &token, Method::POST, "/admin/api/bans", Some(body)).await;
    assert_eq!(status, 200, "{ban}");
    let closed = on_b.close_code().await.expect("a close frame");
    assert_eq!(closed, (4003, "banned until lifted: spam".to_owned()));
    let again = b.http.post(b.url("/wsin")).header("Cookie", &cookie);
    let again = again.form(&[("name", "again")]).send().await.unwrap();
    assert_eq!(again.status(), 403, "B refuses the sign-in");
    for key in ["bans", "bans:until", "bans:next", "audit", "audit:next"] {
        let key = format!("passerby:{{moderation}}:{key}");
        assert!(cluster.exists(&key), "{key}");
    }

    // Lifted through B: A lets mallory back in; the audit log is one for both.
    let path = format!("/admin/api/bans/{}", ban["id"]);
    assert_eq!(api(&b, &token, Method::DELETE, &path, None).await.0, 200);
    let start = Instant::now();
    while a.post_sign_in(&[("name", "back")]).await.status() == 403 {
        assert!(start.elapsed() < WAIT, "A still refuses");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (_, audit) = api(&a, &token, Method::GET, "/admin/api/audit", None).await;
    assert!(audit.to_string().contains("spam"), "{audit}");

    let (ok, _, _) = cluster.moderator(&["remove", "alice"]);
    assert!(ok);
    let (status, _) = api(&b, &token, Method::GET, "/admin/api/me", None).await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn redis_cluster_a_sign_out_on_a_closes_the_socket_on_b_and_b_refuses_the_cookie() {
    let cluster = RedisCluster::start();
    let (a, b) = (cluster.instance().await, cluster.instance().await);
    let cookie = a.sign_in("alice").await;
    let mut on_b = b.connect(&cookie).await;
    on_b.expect("join").await;
    assert_eq!(sign_out(&a, &cookie).await.status(), 200);
    let closed = on_b.close_code().await.expect("a close frame");
    assert_eq!(closed, (4001, "signed out".to_owned()));
    let mut again = b.connect(&cookie).await;
    assert_eq!(
        again.close_code().await.expect("a close frame"),
        (4001, "signed out".to_owned()),
        "B refuses the cookie A revoked"
    );
    assert!(cluster.exists("passerby:sessions:revoked"));
}

#[tokio::test]
async fn redis_cluster_sign_ins_through_two_instances_get_distinct_ids() {
    let cluster = RedisCluster::start();
    let (a, b) = (cluster.instance().await, cluster.instance().await);
    let mut ids = HashSet::new();
    for n in 0..20 {
        let app = if n % 2 == 0 { &a } else { &b };
        let response = app.post_sign_in(&[("name", &format!("u{n}"))]).await;
        assert_eq!(response.status(), 200);
        let reply: Value = response.json().await.unwrap();
        let id = reply["user"]["id"].as_u64().expect("an id");
        assert!(ids.insert(id), "id {id} given twice");
    }
    assert!(cluster.exists("passerby:user_ids"));
}

/// The names moderation's keys had before they took the `{moderation}` tag.
const OLD: &[&str] = &[
    "moderators",
    "moderators:added",
    "bans",
    "bans:until",
    "bans:next",
];

#[tokio::test]
async fn redis_cluster_old_moderation_key_names_are_moved_on_a_single_redis() {
    let single = Cluster::new();
    let token = super::moderation::add_moderator_in_redis(&single, "alice");
    let a = single.instance().await;
    let (status, ban) = api(
        &a,
        &token,
        Method::POST,
        "/admin/api/bans",
        Some(json!({"user": 424_242, "reason": "old"})),
    )
    .await;
    assert_eq!(status, 200, "{ban}");
    a.stop().await.unwrap();
    // Back to the layout an older passerby kept, and a stray new key beside an old one.
    let mut redis = redis::Client::open(single.redis.url()).unwrap();
    for name in OLD {
        let _: () = redis
            .rename(
                format!("passerby:{{moderation}}:{name}"),
                format!("passerby:moderation:{name}"),
            )
            .unwrap();
    }
    let _: () = redis
        .set("passerby:moderation:word-filter", "stale")
        .unwrap();
    let _: () = redis
        .set("passerby:{moderation}:word-filter", r#"{"words":[]}"#)
        .unwrap();

    let b = single.instance().await;
    let (status, me) = api(&b, &token, Method::GET, "/admin/api/me", None).await;
    assert_eq!(status, 200, "the moderator is kept: {me}");
    let (status, bans) = api(&b, &token, Method::GET, "/admin/api/bans", None).await;
    assert_eq!(status, 200);
    assert!(
        bans.to_string().contains("424242"),
        "the ban is kept: {bans}"
    );
    let old: Vec<String> = redis.keys("passerby:moderation:*").unwrap();
    assert_eq!(old, Vec::<String>::new(), "no old name is left");
    let kept: String = redis.get("passerby:{moderation}:word-filter").unwrap();
    assert_eq!(kept, r#"{"words":[]}"#, "an existing new key wins");
    let next: i64 = redis.get("passerby:{moderation}:bans:next").unwrap();
    assert_eq!(next, 1);
}
