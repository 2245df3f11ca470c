//! `POST /upload` and `GET /uploads/{name}`, and the `image` message that names an upload.

use std::time::Duration;

use reqwest::multipart::{Form, Part};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::{TestApp, metric, rejected_uploads, spawn_app, spawn_with, two_chatting};

/// A complete 1×1 PNG, as a browser would send one.
pub const PNG: &[u8] = &[
    0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1F, 0x15, 0xC4,
    0x89, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9C, 0x63, 0xF8, 0xCF, 0xC0, 0xF0,
    0x1F, 0x00, 0x05, 0x00, 0x01, 0xFF, 0x89, 0x99, 0x3D, 0x1D, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45,
    0x4E, 0x44, 0xAE, 0x42, 0x60, 0x82,
];
const SVG: &[u8] = br#"<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>"#;
const QUIET: Duration = Duration::from_millis(200);

pub fn file(bytes: &[u8], name: &str, mime: &str) -> Form {
    Form::new().part(
        "file",
        Part::bytes(bytes.to_vec())
            .file_name(name.to_owned())
            .mime_str(mime)
            .unwrap(),
    )
}

/// Posts `form` with `cookie` (if any); the status and the JSON reply.
pub async fn upload(app: &TestApp, cookie: Option<&str>, form: Form) -> (u16, Value) {
    let mut request = app.http.post(app.url("/upload")).multipart(form);
    if let Some(cookie) = cookie {
        request = request.header("Cookie", cookie);
    }
    let response = request.send().await.expect("upload request");
    let status = response.status().as_u16();
    (status, response.json().await.expect("a JSON reply"))
}

/// Signs in and uploads; the URL the server answered.
pub async fn uploaded(app: &TestApp, cookie: &str, bytes: &[u8]) -> String {
    let (status, reply) = upload(app, Some(cookie), file(bytes, "a.png", "image/png")).await;
    assert_eq!(status, 200, "{reply}");
    reply["data"].as_str().unwrap().to_owned()
}

/// A raw HTTP/1.1 GET, so the path reaches the server exactly as written (no client
/// normalises `..` away); the status line and the whole response.
async fn raw_get(app: &TestApp, path: &str) -> (String, String) {
    let mut tcp = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        app.addr
    );
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    tcp.read_to_end(&mut response).await.unwrap();
    let response = String::from_utf8_lossy(&response).into_owned();
    let status = response.lines().next().unwrap_or("").to_owned();
    (status, response)
}

#[tokio::test]
async fn a_signed_in_user_uploads_a_png_and_it_is_served_under_its_hash() {
    let app = spawn_app().await;
    let cookie = app.sign_in("a").await;
    let (status, reply) = upload(&app, Some(&cookie), file(PNG, "dot.png", "image/png")).await;
    assert_eq!(status, 200);
    assert_eq!(reply["code"], 0);
    let url = reply["data"].as_str().unwrap();
    let name = url.strip_prefix("/uploads/").expect("an /uploads/ URL");
    let (hash, ext) = name.split_once('.').unwrap();
    assert_eq!(ext, "png");
    assert_eq!(hash.len(), 64);
    assert!(
        hash.bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    );

    let served = app.get(url).await;
    assert_eq!(served.status(), 200);
    let headers = served.headers().clone();
    assert_eq!(headers["content-type"], "image/png");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    let cache = headers["cache-control"].to_str().unwrap();
    assert!(
        cache.contains("immutable") && cache.contains("max-age=31536000"),
        "{cache}"
    );
    assert_eq!(&served.bytes().await.unwrap()[..], PNG);

    // The same picture again is the same file.
    assert_eq!(uploaded(&app, &cookie, PNG).await, url);
    assert_eq!(
        app.metric_becomes("passerby_uploads_total", 2.0).await,
        Some(2.0)
    );
}

#[tokio::test]
async fn the_type_comes_from_the_content_not_the_name_or_the_declared_type() {
    let app = spawn_app().await;
    let cookie = app.sign_in("a").await;
    let jpeg = b"\xFF\xD8\xFF\xE0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00\xFF\xD9";
    let (status, reply) = upload(&app, Some(&cookie), file(jpeg, "cat.gif", "image/gif")).await;
    assert_eq!(status, 200, "{reply}");
    let url = reply["data"].as_str().unwrap();
    assert!(url.ends_with(".jpg"), "{url}");
    let served = app.get(url).await;
    assert_eq!(served.headers()["content-type"], "image/jpeg");
    let gif = b"GIF89a\x01\x00\x01\x00\x00\x00\x00;";
    assert!(uploaded(&app, &cookie, gif).await.ends_with(".gif"));
    let webp = b"RIFF\x1a\x00\x00\x00WEBPVP8L\x0d\x00\x00\x00\x2f\x00\x00\x00\x10\x07\x10\x11\x11\x88\x88\xfe\x07\x00";
    assert!(uploaded(&app, &cookie, webp).await.ends_with(".webp"));
}

#[tokio::test]
async fn uploads_without_a_valid_cookie_get_401() {
    let app = spawn_app().await;
    let (status, reply) = upload(&app, None, file(PNG, "a.png", "image/png")).await;
    assert_eq!(status, 401);
    assert_eq!(reply["code"], 1);
    assert!(
        reply["data"].as_str().unwrap().contains("sign in"),
        "{reply}"
    );
    let forged = "name=eyJ0eXBlIjoi5ri45a6iIiwiaWQiOjEsIm5hbWUiOiJhIiwiaW1hZ2UiOjF9";
    let (status, _) = upload(&app, Some(forged), file(PNG, "a.png", "image/png")).await;
    assert_eq!(status, 401);
    assert_eq!(
        app.metric_becomes(&rejected_uploads("not_signed_in"), 2.0)
            .await,
        Some(2.0)
    );
    assert_eq!(
        metric(&app.metrics().await, "passerby_uploads_total"),
        Some(0.0)
    );
}

#[tokio::test]
async fn svg_is_refused_with_415_whatever_it_claims_to_be() {
    let app = spawn_app().await;
    let cookie = app.sign_in("a").await;
    for (name, mime) in [("a.svg", "image/svg+xml"), ("a.png", "image/png")] {
        let (status, reply) = upload(&app, Some(&cookie), file(SVG, name, mime)).await;
        assert_eq!(status, 415, "{reply}");
        assert_eq!(reply["code"], 1);
        assert!(reply["data"].as_str().unwrap().contains("SVG"), "{reply}");
    }
    let with_prolog = b"<?xml version=\"1.0\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\"/>";
    let (status, _) = upload(&app, Some(&cookie), file(with_prolog, "a.png", "image/png")).await;
    assert_eq!(status, 415);
}

#[tokio::test]
async fn wrong_magic_bytes_are_refused_with_415() {
    let app = spawn_app().await;
    let cookie = app.sign_in("a").await;
    for bytes in [
        &b"just some text, named like a picture"[..],
        b"<html><script>alert(1)</script></html>",
        b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n",
        &PNG[1..],
        b"\x89PNG",
    ] {
        let (status, reply) =
            upload(&app, Some(&cookie), file(bytes, "cat.png", "image/png")).await;
        assert_eq!(status, 415, "{reply}");
        assert!(
            reply["data"]
                .as_str()
                .unwrap()
                .contains("not a PNG, JPEG, GIF or WebP")
        );
    }
    assert_eq!(
        app.metric_becomes(&rejected_uploads("unsupported_type"), 5.0)
            .await,
        Some(5.0)
    );
}

#[tokio::test]
async fn an_image_over_the_limit_gets_413_and_one_at_the_limit_is_taken() {
    let app = spawn_with(|c| c.max_upload_bytes = 4096).await;
    let cookie = app.sign_in("a").await;
    let mut at_limit = PNG.to_vec();
    at_limit.resize(4096, 0);
    assert!(uploaded(&app, &cookie, &at_limit).await.ends_with(".png"));
    let mut over = at_limit.clone();
    over.push(0);
    let (status, reply) = upload(&app, Some(&cookie), file(&over, "a.png", "image/png")).await;
    assert_eq!(status, 413, "{reply}");
    assert_eq!(reply["code"], 1);
    assert!(reply["data"].as_str().unwrap().contains("4096"), "{reply}");
    // Far past the body limit: refused before the body is read to its end.
    let mut huge = PNG.to_vec();
    huge.resize(1024 * 1024, 0);
    let (status, reply) = upload(&app, Some(&cookie), file(&huge, "a.png", "image/png")).await;
    assert_eq!(status, 413, "{reply}");
    assert_eq!(
        app.metric_becomes(&rejected_uploads("too_large"), 2.0)
            .await,
        Some(2.0)
    );
}

#[tokio::test]
async fn the_default_limit_is_5_mib() {
    let app = spawn_app().await;
    let cookie = app.sign_in("a").await;
    let mut over = PNG.to_vec();
    over.resize(5 * 1024 * 1024 + 1, 0);
    let (status, _) = upload(&app, Some(&cookie), file(&over, "a.png", "image/png")).await;
    assert_eq!(status, 413);
}

#[tokio::test]
async fn a_request_without_a_file_field_or_not_multipart_is_400() {
    let app = spawn_app().await;
    let cookie = app.sign_in("a").await;
    let form = Form::new().text("image", "not the field we read");
    let (status, reply) = upload(&app, Some(&cookie), form).await;
    assert_eq!(status, 400);
    assert!(
        reply["data"].as_str().unwrap().contains("`file`"),
        "{reply}"
    );
    let (status, reply) = upload(&app, Some(&cookie), file(b"", "a.png", "image/png")).await;
    assert_eq!(status, 400, "{reply}");
    let response = app
        .http
        .post(app.url("/upload"))
        .header("Cookie", &cookie)
        .header("Content-Type", "image/png")
        .body(PNG.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let reply: Value = response.json().await.unwrap();
    assert_eq!(reply["code"], 1);
}

#[tokio::test]
async fn path_traversal_and_unknown_names_are_404_and_never_reach_the_disk() {
    let app = spawn_app().await;
    let cookie = app.sign_in("a").await;
    let url = uploaded(&app, &cookie, PNG).await;
    let hash = &url["/uploads/".len()..url.len() - 4];
    for path in [
        "/uploads/..%2fsecret.key".to_owned(),
        "/uploads/..%2Fsecret.key".to_owned(),
        "/uploads/%2e%2e%2fsecret.key".to_owned(),
        "/uploads/..%252fsecret.key".to_owned(),
        "/uploads/../secret.key".to_owned(),
        "/uploads/../x".to_owned(),
        "/uploads/%2e%2e/secret.key".to_owned(),
        "/uploads/..%5csecret.key".to_owned(),
        "/uploads/..".to_owned(),
        "/uploads/".to_owned(),
        "/uploads/user_ids".to_owned(),
        "/uploads/%00".to_owned(),
        format!("/uploads/{hash}.svg"),
        format!("/uploads/{}.png", hash.to_ascii_uppercase()),
        format!("/uploads/{hash}.png%2f..%2f..%2fsecret.key"),
        format!("/uploads/{}.png", "0".repeat(64)),
    ] {
        let (status, response) = raw_get(&app, &path).await;
        assert!(status.contains(" 404 "), "{path}: {status}");
        assert!(!response.contains("\u{89}PNG"), "{path}");
        assert!(response.contains(r#""code":1"#), "{path}: {response}");
    }
    let (status, _) = raw_get(&app, &url).await;
    assert!(
        status.contains(" 200 "),
        "the real file is still served: {status}"
    );
}

#[tokio::test]
async fn an_image_message_naming_an_upload_reaches_the_room_only() {
    let app = spawn_app().await;
    let (mut alice, me) = app.join("alice").await;
    let (mut bob, _) = app.join("bob").await;
    alice.expect("join").await;
    let elsewhere = app.sign_in("carol").await;
    let mut carol = app
        .connect_to("/ws?room=elsewhere", &[("Cookie", &elsewhere)])
        .await
        .unwrap();
    carol.expect("join").await;
    carol.expect("list").await;
    carol.expect("history").await;

    let url = uploaded(&app, &app.sign_in("x").await, PNG).await;
    alice
        .say(&format!(r#"{{"type":"image","data":"{url}"}}"#))
        .await;
    for client in [&mut alice, &mut bob] {
        let image = client.expect("image").await;
        assert_eq!(image["data"], url.as_str());
        assert_eq!(image["user"], me);
    }
    assert!(
        carol.events_within(QUIET).await.is_empty(),
        "another room sees nothing"
    );
    let series = "passerby_events_broadcast_total{kind=\"image\"}";
    assert_eq!(app.metric_becomes(series, 1.0).await, Some(1.0));
}

#[tokio::test]
async fn an_image_message_must_name_a_file_this_server_stored() {
    let app = spawn_app().await;
    let (mut alice, mut bob) = two_chatting(&app).await;
    let never_uploaded = format!("/uploads/{}.png", "ab".repeat(32));
    for data in [
        never_uploaded.as_str(),
        "/static/img/favicon.svg",
        "https://evil.example/x.png",
        "/uploads/../secret.key",
        "javascript:alert(1)",
        "",
    ] {
        let command = serde_json::json!({"type": "image", "data": data}).to_string();
        alice.say(&command).await;
        let error = alice.expect("error").await;
        assert!(
            error["data"].as_str().unwrap().contains("upload"),
            "{data}: {error}"
        );
    }
    assert!(
        bob.events_within(QUIET).await.is_empty(),
        "nothing was broadcast"
    );
    assert_eq!(app.rejected_becomes("bad_image", 6.0).await, Some(6.0));
}

#[tokio::test]
async fn images_share_the_chat_rate_limit() {
    let app = spawn_with(|c| {
        c.rate_limit = 1.0;
        c.rate_burst = 2.0;
    })
    .await;
    let (mut alice, _) = app.join("alice").await;
    let url = uploaded(&app, &app.sign_in("x").await, PNG).await;
    alice.say("one").await;
    alice
        .say(&format!(r#"{{"type":"image","data":"{url}"}}"#))
        .await;
    alice
        .say(&format!(r#"{{"type":"image","data":"{url}"}}"#))
        .await;
    let kinds: Vec<Value> = [
        alice.next_event().await,
        alice.next_event().await,
        alice.next_event().await,
    ]
    .iter()
    .map(|e| e["type"].clone())
    .collect();
    assert_eq!(kinds, ["chat", "image", "error"]);
}
