//! What one user, or everyone, may hold with uploads: a stalled body, uploads in progress, the
//! upload rate and the byte quota. Each bound answers, and other clients keep chatting.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use reqwest::multipart::{Form, Part};
use serde_json::Value;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use crate::{
    helpers::{TestApp, WAIT, metric, rejected_uploads, spawn_in, still_chatting, two_chatting},
    upload::PNG,
};

const BOUNDARY: &str = "passerby-test-boundary";

/// A server on a data dir the test can look into; the dir lives as long as the value.
struct Server {
    app: TestApp,
    dir: tempfile::TempDir,
}

async fn spawn(configure: impl FnOnce(&mut passerby::config::Config)) -> Server {
    let dir = tempfile::tempdir().expect("temp dir");
    let app = spawn_in(dir.path().to_owned(), configure).await;
    Server { app, dir }
}

impl Server {
    fn uploads(&self) -> PathBuf {
        self.dir.path().join("uploads")
    }

    /// `.upload-*` files: uploads being written now.
    fn temp_files(&self) -> Vec<PathBuf> {
        temp_files(&self.uploads())
    }

    /// Waits until `n` uploads are being written, which means the server admitted them.
    async fn wait_for_temp_files(&self, n: usize) -> Vec<PathBuf> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let files = self.temp_files();
            if files.len() == n || tokio::time::Instant::now() > deadline {
                return files;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn rejected(&self, reason: &str, expected: f64) -> Option<f64> {
        let series = rejected_uploads(reason);
        self.app.metric_becomes(&series, expected).await
    }
}

fn temp_files(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .expect("the uploads dir")
        .map(|e| e.expect("a dir entry").path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(".upload-"))
        })
        .collect()
}

/// A PNG of exactly `len` bytes (its tail is padding; only the head is sniffed).
fn png(len: usize) -> Vec<u8> {
    let mut bytes = PNG.to_vec();
    bytes.resize(len, 0);
    bytes
}

/// Uploads with reqwest; the status, `Retry-After` and the JSON reply.
async fn upload(app: &TestApp, cookie: &str, bytes: &[u8]) -> (u16, Option<u64>, Value) {
    let part = Part::bytes(bytes.to_vec())
        .file_name("a.png")
        .mime_str("image/png")
        .unwrap();
    let response = app
        .http
        .post(app.url("/upload"))
        .header("Cookie", cookie)
        .multipart(Form::new().part("file", part))
        .send()
        .await
        .expect("upload request");
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().parse().expect("Retry-After in seconds"));
    (
        status,
        retry_after,
        response.json().await.expect("a JSON reply"),
    )
}

/// The multipart body around `file`: what comes before it, and what after.
fn framing() -> (String, String) {
    let head = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.png\"\r\n\
         Content-Type: image/png\r\n\r\n"
    );
    (head, format!("\r\n--{BOUNDARY}--\r\n"))
}

/// An upload over a raw socket that has sent `sent` bytes of `file` and waits to send the rest.
struct Held {
    tcp: TcpStream,
    rest: Vec<u8>,
}

impl Held {
    async fn start(app: &TestApp, cookie: &str, file: &[u8], sent: usize) -> Held {
        let (head, tail) = framing();
        let mut body = head.into_bytes();
        body.extend_from_slice(file);
        body.extend_from_slice(tail.as_bytes());
        let request = format!(
            "POST /upload HTTP/1.1\r\nHost: {}\r\nCookie: {cookie}\r\nConnection: close\r\n\
             Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n\
             Content-Length: {}\r\n\r\n",
            app.addr,
            body.len()
        );
        let cut = body.len() - (file.len() - sent) - tail.len();
        let mut tcp = TcpStream::connect(app.addr).await.expect("connect");
        tcp.write_all(request.as_bytes()).await.unwrap();
        tcp.write_all(&body[..cut]).await.unwrap();
        Held {
            tcp,
            rest: body[cut..].to_vec(),
        }
    }

    /// Sends the rest of the body; the status line and the reply body.
    async fn finish(mut self) -> (String, String) {
        let rest = std::mem::take(&mut self.rest);
        self.tcp.write_all(&rest).await.unwrap();
        self.response().await
    }

    /// Reads the response to the end of the connection, which the server must close.
    async fn response(mut self) -> (String, String) {
        let mut response = Vec::new();
        tokio::time::timeout(WAIT, self.tcp.read_to_end(&mut response))
            .await
            .expect("the server answers and closes within the wait")
            .expect("a readable response");
        let response = String::from_utf8_lossy(&response).into_owned();
        let status = response.lines().next().unwrap_or("").to_owned();
        let body = response
            .split_once("\r\n\r\n")
            .map_or("", |(_, b)| b)
            .to_owned();
        (status, body)
    }
}

#[tokio::test]
async fn a_stalled_upload_gets_408_its_connection_closed_and_its_temp_file_removed() {
    let server = spawn(|c| c.body_timeout = Duration::from_millis(500)).await;
    let app = &server.app;
    let (mut alice, mut bob) = two_chatting(app).await;
    let cookie = app.sign_in("uploader").await;
    let file = png(64 * 1024);
    // Everything but the last 4 KiB, then nothing.
    let stalled = Held::start(app, &cookie, &file, file.len() - 4096).await;
    assert_eq!(server.wait_for_temp_files(1).await.len(), 1);
    still_chatting(&mut alice, &mut bob, "while an upload stalls").await;
    let (status, body) = stalled.response().await;
    assert!(status.contains(" 408 "), "{status}");
    assert!(body.contains(r#""code":1"#), "{body}");
    assert!(body.contains("stopped arriving"), "{body}");
    assert!(server.temp_files().is_empty(), "the temp file was removed");
    assert_eq!(server.rejected("timeout", 1.0).await, Some(1.0));
    still_chatting(&mut alice, &mut bob, "after it").await;
}

#[tokio::test]
async fn a_stalled_sign_in_body_gets_408_and_the_connection_closes() {
    let server = spawn(|c| c.body_timeout = Duration::from_millis(500)).await;
    let app = &server.app;
    let (mut alice, mut bob) = two_chatting(app).await;
    let mut tcp = TcpStream::connect(app.addr).await.unwrap();
    let request = format!(
        "POST /wsin HTTP/1.1\r\nHost: {}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Content-Length: 20\r\n\r\nname=",
        app.addr
    );
    tcp.write_all(request.as_bytes()).await.unwrap();
    still_chatting(&mut alice, &mut bob, "while a sign-in stalls").await;
    let mut response = Vec::new();
    tokio::time::timeout(WAIT, tcp.read_to_end(&mut response))
        .await
        .expect("answered and closed within the wait")
        .unwrap();
    let response = String::from_utf8_lossy(&response);
    assert!(response.starts_with("HTTP/1.1 408 "), "{response}");
    assert!(response.contains("stopped arriving"), "{response}");
}

#[tokio::test]
async fn an_upload_in_progress_is_written_to_disk_as_it_arrives() {
    let server = spawn(|_| {}).await;
    let app = &server.app;
    let (mut alice, mut bob) = two_chatting(app).await;
    let cookie = app.sign_in("uploader").await;
    let file = png(4 * 1024 * 1024);
    let sent = 2 * 1024 * 1024;
    let held = Held::start(app, &cookie, &file, sent).await;
    // Bytes still in the socket or a write buffer are not on disk yet; most of them are.
    let temp = server.wait_for_temp_files(1).await;
    assert_eq!(temp.len(), 1);
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut on_disk = 0;
    while on_disk < sent as u64 * 3 / 4 && tokio::time::Instant::now() < deadline {
        on_disk = std::fs::metadata(&temp[0]).map_or(on_disk, |m| m.len());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        on_disk >= sent as u64 * 3 / 4,
        "{on_disk} of {sent} bytes on disk: the upload is held in memory"
    );
    still_chatting(&mut alice, &mut bob, "while an upload streams").await;
    let (status, body) = held.finish().await;
    assert!(status.contains(" 200 "), "{status}: {body}");
    let reply: Value = serde_json::from_str(&body).unwrap();
    let url = reply["data"].as_str().unwrap();
    let stored = server.uploads().join(&url["/uploads/".len()..]);
    assert_eq!(std::fs::metadata(stored).unwrap().len(), file.len() as u64);
    assert!(server.temp_files().is_empty());
}

#[tokio::test]
async fn a_third_upload_at_once_from_one_user_gets_429_and_another_user_still_uploads() {
    let server = spawn(|c| c.max_uploads_per_user = 2).await;
    let app = &server.app;
    let (mut alice, mut bob) = two_chatting(app).await;
    let cookie = app.sign_in("uploader").await;
    let file = png(8192);
    let first = Held::start(app, &cookie, &file, 100).await;
    let second = Held::start(app, &cookie, &file, 100).await;
    assert_eq!(server.wait_for_temp_files(2).await.len(), 2);

    let (status, retry_after, reply) = upload(app, &cookie, PNG).await;
    assert_eq!(status, 429, "{reply}");
    assert_eq!(reply["code"], 1);
    assert!(
        reply["data"]
            .as_str()
            .unwrap()
            .contains("2 uploads in progress"),
        "{reply}"
    );
    assert!(retry_after.is_some_and(|s| s >= 1), "{retry_after:?}");
    assert_eq!(server.rejected("busy", 1.0).await, Some(1.0));

    let other = app.sign_in("someone else").await;
    assert_eq!(upload(app, &other, PNG).await.0, 200);
    still_chatting(&mut alice, &mut bob, "while two uploads are held").await;

    for held in [first, second] {
        let (status, body) = held.finish().await;
        assert!(status.contains(" 200 "), "{status}: {body}");
    }
    assert_eq!(upload(app, &cookie, PNG).await.0, 200, "free again");
}

#[tokio::test]
async fn uploads_over_the_total_get_503_with_retry_after() {
    let server = spawn(|c| c.max_uploads = 2).await;
    let app = &server.app;
    let (mut alice, mut bob) = two_chatting(app).await;
    let file = png(8192);
    let (a, b, c) = (
        app.sign_in("a").await,
        app.sign_in("b").await,
        app.sign_in("c").await,
    );
    let held = [
        Held::start(app, &a, &file, 100).await,
        Held::start(app, &b, &file, 100).await,
    ];
    assert_eq!(server.wait_for_temp_files(2).await.len(), 2);
    let (status, retry_after, reply) = upload(app, &c, PNG).await;
    assert_eq!(status, 503, "{reply}");
    assert!(reply["data"].as_str().unwrap().contains("busy"), "{reply}");
    assert!(retry_after.is_some_and(|s| s >= 1), "{retry_after:?}");
    assert_eq!(server.rejected("server_busy", 1.0).await, Some(1.0));
    still_chatting(
        &mut alice,
        &mut bob,
        "while the server is busy with uploads",
    )
    .await;
    for held in held {
        assert!(held.finish().await.0.contains(" 200 "));
    }
    assert_eq!(upload(app, &c, PNG).await.0, 200, "free again");
}

#[tokio::test]
async fn uploads_over_the_rate_get_429_with_the_wait_for_the_next_one() {
    let server = spawn(|c| c.upload_rate = 2.0).await;
    let app = &server.app;
    let (mut alice, mut bob) = two_chatting(app).await;
    let cookie = app.sign_in("uploader").await;
    assert_eq!(upload(app, &cookie, PNG).await.0, 200);
    assert_eq!(upload(app, &cookie, &png(100)).await.0, 200);
    let (status, retry_after, reply) = upload(app, &cookie, &png(101)).await;
    assert_eq!(status, 429, "{reply}");
    assert!(
        reply["data"].as_str().unwrap().contains("2 a minute"),
        "{reply}"
    );
    // Two a minute: the next one comes within 30 s.
    assert!(
        retry_after.is_some_and(|s| (1..=30).contains(&s)),
        "{retry_after:?}"
    );
    assert_eq!(server.rejected("rate_limited", 1.0).await, Some(1.0));
    still_chatting(
        &mut alice,
        &mut bob,
        "while one user is over the upload rate",
    )
    .await;
    let other = app.sign_in("someone else").await;
    assert_eq!(upload(app, &other, PNG).await.0, 200);
}

#[tokio::test]
async fn uploads_over_the_byte_quota_get_429_up_front_or_as_they_stream() {
    let server = spawn(|c| c.upload_quota_bytes = 8192).await;
    let app = &server.app;
    let (mut alice, mut bob) = two_chatting(app).await;
    let cookie = app.sign_in("uploader").await;
    assert_eq!(upload(app, &cookie, &png(3000)).await.0, 200);
    assert_eq!(upload(app, &cookie, &png(3001)).await.0, 200);
    // 6001 of 8192 bytes used: a third declares more than is left, and is refused unread.
    let (status, retry_after, reply) = upload(app, &cookie, &png(3002)).await;
    assert_eq!(status, 429, "{reply}");
    assert!(reply["data"].as_str().unwrap().contains("quota"), "{reply}");
    assert!(retry_after.is_some_and(|s| s > 1), "{retry_after:?}");
    assert_eq!(server.rejected("quota", 1.0).await, Some(1.0));
    still_chatting(&mut alice, &mut bob, "while one user is over the quota").await;

    // Without a Content-Length, bytes are charged as they come: refused past the quota, and
    // the temp file goes with the refusal.
    let other = app.sign_in("someone else").await;
    let (head, _) = framing();
    let mut body = head.into_bytes();
    body.extend_from_slice(&png(9000));
    let request = format!(
        "POST /upload HTTP/1.1\r\nHost: {}\r\nCookie: {other}\r\nConnection: close\r\n\
         Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n\
         Transfer-Encoding: chunked\r\n\r\n{:x}\r\n",
        app.addr,
        body.len()
    );
    let mut tcp = TcpStream::connect(app.addr).await.unwrap();
    tcp.write_all(request.as_bytes()).await.unwrap();
    tcp.write_all(&body).await.unwrap();
    let streamed = Held {
        tcp,
        rest: Vec::new(),
    };
    let (status, body) = streamed.response().await;
    assert!(status.contains(" 429 "), "{status}: {body}");
    assert!(body.contains("quota"), "{body}");
    assert!(server.temp_files().is_empty());
    assert_eq!(server.rejected("quota", 2.0).await, Some(2.0));
    assert_eq!(
        metric(&app.metrics().await, "passerby_uploads_total"),
        Some(2.0)
    );
}
