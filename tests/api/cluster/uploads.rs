//! Uploads across instances: two instances sharing `--upload-dir`, and two sharing a bucket in
//! a real S3-compatible server (`s3s-fs`, started here on a free port over a temp dir). An
//! image uploaded through one is served by the other and may be sent in a message through it.

use std::{
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use passerby::{config::Config, upload::StoreUrl};

use super::Cluster;
use crate::{
    helpers::{Client, TestApp, WAIT, free_port, rejected_uploads, signal, spawn_with},
    nginx::Nginx,
    upload::{PNG, file, upload, uploaded},
};

const BUCKET: &str = "images";
const ACCESS_KEY: &str = "passerby-test";
const SECRET_KEY: &str = "passerby-test-secret";
const DOWN: &str = "the image store is unavailable: try again later";

impl Cluster {
    async fn instance_with(&self, configure: impl FnOnce(&mut Config) + Send) -> TestApp {
        let (url, secret) = (self.redis.url(), self.secret_file());
        spawn_with(move |c| {
            c.redis = Some(url);
            c.secret_file = Some(secret);
            c.rate_limit = 1000.0;
            c.rate_burst = 1000.0;
            c.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
            configure(c);
        })
        .await
    }
}

/// Whatever the store does, the answer comes within the wait.
async fn answered<T>(call: impl Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, call)
        .await
        .expect("an answer, not a hang")
}

fn image(url: &str) -> String {
    serde_json::json!({"type": "image", "data": url}).to_string()
}

/// Bob joins through `b` and sends `url`; Alice, on `a`, and Bob both see it.
async fn sent_through(b: &TestApp, alice: &mut Client, url: &str) {
    let (mut bob, _) = b.join("bob").await;
    alice.expect("join").await;
    bob.say(&image(url)).await;
    assert_eq!(bob.expect("image").await["data"], url, "accepted through B");
    assert_eq!(alice.expect("image").await["data"], url, "delivered on A");
}

async fn served_as_a_file_is(app: &TestApp, url: &str) {
    let served = app.get(url).await;
    assert_eq!(served.status(), 200);
    let headers = served.headers().clone();
    assert_eq!(headers["content-type"], "image/png");
    assert_eq!(
        headers["cache-control"],
        "public, max-age=31536000, immutable"
    );
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert!(headers.contains_key("last-modified"));
    assert_eq!(headers["content-length"], PNG.len().to_string().as_str());
    assert_eq!(&served.bytes().await.unwrap()[..], PNG);
}

#[tokio::test]
async fn instances_sharing_an_upload_dir_serve_and_accept_each_others_images() {
    let cluster = Cluster::new();
    let shared = tempfile::tempdir().unwrap();
    let dir = shared.path().to_owned();
    let (a, b) = (
        cluster
            .instance_with(|c| c.upload.upload_dir = Some(dir.clone()))
            .await,
        cluster
            .instance_with(|c| c.upload.upload_dir = Some(dir.clone()))
            .await,
    );
    let (mut alice, _) = a.join("alice").await;
    let url = uploaded(&a, &a.sign_in("alice").await, PNG).await;
    // The message first: B has not seen the image yet, so it must find it in the folder.
    sent_through(&b, &mut alice, &url).await;
    served_as_a_file_is(&b, &url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_round_robin_nginx_every_upload_is_served_and_accepted_whichever_instance_answers() {
    let cluster = Cluster::new();
    let shared = tempfile::tempdir().unwrap();
    let dir = shared.path().to_owned();
    let sharing = |c: &mut Config| c.upload.upload_dir = Some(dir.clone());
    let (a, b) = (
        cluster.instance_with(sharing).await,
        cluster.instance_with(sharing).await,
    );
    let nginx = Nginx::start_upstream(&[a.addr, b.addr]);
    let cookie = nginx.sign_in("alice").await;
    let mut sockets = Vec::new();
    for name in ["alice", "bob"] {
        let cookie = if name == "alice" {
            cookie.clone()
        } else {
            nginx.sign_in(name).await
        };
        let mut socket = nginx.connect("/ws", &cookie).await;
        socket.expect("join").await;
        socket.expect("list").await;
        socket.expect("history").await;
        sockets.push(socket);
    }
    sockets[0].expect("join").await;
    let http = reqwest::Client::new();
    // Round robin sends each request to the other instance: two in a row meet both.
    for i in 0..4u8 {
        let mut png = PNG.to_vec();
        png.extend_from_slice(&[i; 16]);
        let response = http
            .post(nginx.url("/upload"))
            .header("Origin", nginx.origin())
            .header("Cookie", &cookie)
            .multipart(file(&png, "a.png", "image/png"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let reply: serde_json::Value = response.json().await.unwrap();
        let url = reply["data"].as_str().unwrap().to_owned();
        for _ in 0..2 {
            let served = http.get(nginx.url(&url)).send().await.unwrap();
            assert_eq!(served.status(), 200, "{url}");
            assert_eq!(served.bytes().await.unwrap(), png);
        }
        let sender = usize::from(i % 2);
        sockets[sender].say(&image(&url)).await;
        for socket in &mut sockets {
            assert_eq!(socket.expect("image").await["data"], url.as_str());
        }
    }
}

/// `s3s-fs` in the foreground on a free port, its buckets folders of a temp dir; killed on drop.
struct S3 {
    port: u16,
    child: Child,
    root: tempfile::TempDir,
}

impl S3 {
    fn start() -> S3 {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join(BUCKET)).unwrap();
        let port = free_port();
        let child = spawn_s3s(port, root.path());
        let s3 = S3 { port, child, root };
        s3.wait_until_listening();
        s3
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn wait_until_listening(&self) {
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(start.elapsed() < WAIT, "s3s-fs is not listening");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Stops it (SIGSTOP): connections are accepted by the kernel and never answered, the
    /// worst a store can do.
    fn freeze(&self) {
        self.signal("-STOP");
    }

    fn thaw(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, which: &str) {
        signal(&self.child, which, "s3s-fs");
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The image files in the bucket: the store holds them, not the instances' folders.
    fn objects(&self) -> Vec<String> {
        let mut names: Vec<String> = walk(&self.root.path().join(BUCKET))
            .into_iter()
            .filter(|name| name.ends_with(".png"))
            .collect();
        names.sort();
        names
    }
}

fn walk(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(walk(&path));
        } else {
            found.push(path.to_string_lossy().into_owned());
        }
    }
    found
}

fn spawn_s3s(port: u16, root: &Path) -> Child {
    Command::new("s3s-fs")
        .args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
        .arg(root)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("s3s-fs runs (scripts/test installs it with cargo install)")
}

impl Drop for S3 {
    fn drop(&mut self) {
        // A frozen process is killed all the same.
        self.kill();
    }
}

/// An instance keeping its images in `s3`'s bucket, under a prefix, with a short deadline.
async fn on_store(cluster: &Cluster, s3: &S3) -> TestApp {
    let endpoint = s3.endpoint();
    cluster
        .instance_with(move |c| {
            let store = &mut c.upload;
            store.upload_store = Some(StoreUrl::parse(&format!("s3://{BUCKET}/chat")).unwrap());
            store.upload_store_endpoint = Some(endpoint);
            store.upload_store_region = Some("us-east-1".into());
            store.upload_store_access_key_id = Some(ACCESS_KEY.into());
            store.upload_store_secret_access_key =
                Some(passerby::upload::Secret(SECRET_KEY.into()));
            store.upload_store_allow_http = true;
            store.upload_store_timeout = Duration::from_secs(1);
        })
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_on_one_bucket_serve_and_accept_each_others_images() {
    let cluster = Cluster::new();
    let s3 = S3::start();
    let (a, b) = (on_store(&cluster, &s3).await, on_store(&cluster, &s3).await);
    let (mut alice, _) = a.join("alice").await;
    let url = uploaded(&a, &a.sign_in("alice").await, PNG).await;
    let name = url.strip_prefix("/uploads/").unwrap();
    let objects = s3.objects();
    assert_eq!(objects.len(), 1, "{objects:?}");
    assert!(
        objects[0].ends_with(&format!("/{BUCKET}/chat/{name}")),
        "{objects:?}"
    );

    // The message first: B has not seen the image yet, so it must ask the store.
    sent_through(&b, &mut alice, &url).await;
    served_as_a_file_is(&b, &url).await;
    // A copy dated when it was stored is current: 304, as for a file.
    let last_modified = b.get(&url).await.headers()["last-modified"].clone();
    let again = b
        .http
        .get(b.url(&url))
        .header("If-Modified-Since", last_modified)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
    let missing = format!("/uploads/{}.png", "ab".repeat(32));
    assert_eq!(b.get(&missing).await.status(), 404);

    let (mut bob, _) = b.join("bob").await;
    bob.say(&image(&missing)).await;
    let error = bob.expect("error").await;
    assert!(
        error["data"]
            .as_str()
            .unwrap()
            .contains("upload it with POST /upload first"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_is_down_answers_503_and_an_error_never_a_hang() {
    let cluster = Cluster::new();
    let mut s3 = S3::start();
    let (a, b) = (on_store(&cluster, &s3).await, on_store(&cluster, &s3).await);
    let alice = a.sign_in("alice").await;
    let url = uploaded(&a, &alice, PNG).await;
    let (mut carol, _) = a.join("carol").await;
    let (mut bob, _) = b.join("bob").await;
    carol.expect("join").await;

    // Frozen: every call meets its one-second deadline.
    s3.freeze();
    let started = Instant::now();
    let served = answered(b.get(&url)).await;
    assert_eq!(served.status(), 503);
    assert!(served.headers().contains_key("retry-after"));
    let reason = served.json::<serde_json::Value>().await.unwrap();
    assert_eq!(reason["data"], DOWN);
    let mut png = PNG.to_vec();
    png.extend_from_slice(&[7; 64]);
    let (status, reply) =
        answered(upload(&a, Some(&alice), file(&png, "b.png", "image/png"))).await;
    assert_eq!((status, reply["data"].as_str()), (503, Some(DOWN)));
    // B never saw the image: it must ask the store, and tells Bob it could not, while the
    // chat goes on around him.
    bob.say(&image(&url)).await;
    carol.say("still chatting").await;
    assert_eq!(carol.expect("chat").await["data"], "still chatting");
    let mut told = [bob.next_event().await, bob.next_event().await]
        .map(|event| format!("{} {}", event["type"], event["data"]));
    told.sort();
    assert_eq!(
        told,
        [
            "\"chat\" \"still chatting\"".to_owned(),
            format!("\"error\" \"not sent: {DOWN}\""),
        ]
    );
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "each call gave up at its deadline: {:?}",
        started.elapsed()
    );

    // Killed: refused at once, the same answer.
    s3.thaw();
    s3.kill();
    assert_eq!(answered(b.get(&url)).await.status(), 503);
    // A, which stored the image, still knows it exists: its message goes through.
    carol.say(&image(&url)).await;
    assert_eq!(bob.expect("image").await["data"], url.as_str());
    let series = rejected_uploads("store_unavailable");
    assert_eq!(a.metric_becomes(&series, 1.0).await, Some(1.0));
}
