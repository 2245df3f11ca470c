//! What browsers may keep: pages never (Back must not bring up a stale sign-in form), a
//! static file a year when linked by its hash; what is compressed; and a second sign-in from
//! a browser that is signed in keeps its identity.

use passerby::assets::BUNDLES;
use serde_json::Value;

use crate::helpers::{cookie_pair, spawn_app};

#[tokio::test]
async fn pages_are_never_stored() {
    let app = spawn_app().await;
    let cookie = app.sign_in("ada").await;
    for (path, cookie) in [
        ("/ws", ""),
        ("/ws", cookie.as_str()),
        ("/ws?room=kitchen", cookie.as_str()),
        ("/?room=not%20a%20room!", ""),
        ("/admin", ""),
    ] {
        let response = app
            .http
            .get(app.url(path))
            .header("cookie", cookie)
            .send()
            .await
            .unwrap();
        let content_type = response.headers()["content-type"].to_str().unwrap();
        assert!(
            content_type.starts_with("text/html"),
            "{path}: {content_type}"
        );
        assert_eq!(
            response.headers()["cache-control"],
            "no-store",
            "{path} with cookie {cookie:?}"
        );
    }
}

#[tokio::test]
async fn signing_in_again_with_a_valid_cookie_keeps_the_identity() {
    let app = spawn_app().await;
    let first = app.post_sign_in(&[("name", "ada")]).await;
    let cookie = cookie_pair(&first).unwrap();
    let first: Value = first.json().await.unwrap();
    assert!(first.get("kept").is_none(), "{first}");

    let again = app
        .http
        .post(app.url("/wsin"))
        .header("cookie", &cookie)
        .form(&[("name", "someone else")])
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 200);
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["kept"], true);
    assert_eq!(again["user"], first["user"]);

    // Signed out, the same cookie no longer holds a session: a new identity is made.
    let out = app
        .http
        .get(app.url("/wsout"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 200);
    let after = app
        .http
        .post(app.url("/wsin"))
        .header("cookie", &cookie)
        .form(&[("name", "bea")])
        .send()
        .await
        .unwrap();
    let after: Value = after.json().await.unwrap();
    assert!(after.get("kept").is_none(), "{after}");
    assert_ne!(after["user"]["id"], first["user"]["id"]);
    assert_eq!(after["user"]["name"], "bea");
}

/// The versioned URL the signed-out page links `path` by.
async fn linked(app: &crate::helpers::TestApp, path: &str) -> String {
    let page = app.text("/ws").await;
    let start = page
        .find(&format!("/static/{path}?v="))
        .unwrap_or_else(|| panic!("the page links {path} by its hash:\n{page}"));
    let end = start + page[start..].find('"').unwrap();
    page[start..end].to_owned()
}

/// What `/static/<path>` holds: the file, or a bundle's files one after the other.
fn on_disk(path: &str) -> Vec<u8> {
    let read = |path: &str| {
        std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("static")
                .join(path),
        )
        .unwrap()
    };
    let Some(name) = path.strip_prefix("bundle/") else {
        return read(path);
    };
    let (_, parts) = BUNDLES.iter().find(|(bundle, _)| *bundle == name).unwrap();
    let gap: &[u8] = if name.ends_with(".js") {
        b"\n;\n"
    } else {
        b"\n"
    };
    parts
        .iter()
        .flat_map(|part| [read(part), gap.to_vec()])
        .flatten()
        .collect()
}

async fn fetch(
    app: &crate::helpers::TestApp,
    url: &str,
    headers: &[(&str, &str)],
) -> reqwest::Response {
    let mut request = app.http.get(app.url(url));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn a_versioned_file_is_kept_a_year_and_an_unversioned_one_is_revalidated() {
    let app = spawn_app().await;
    let url = linked(&app, "vendor/jquery/jquery.min.js").await;

    let kept = fetch(&app, &url, &[]).await;
    assert_eq!(kept.status(), 200);
    let headers = kept.headers().clone();
    assert_eq!(
        headers["cache-control"],
        "public, max-age=31536000, immutable"
    );
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
    assert!(headers.get("content-encoding").is_none());
    assert_eq!(
        kept.bytes().await.unwrap(),
        on_disk("vendor/jquery/jquery.min.js")
    );
    let etag = headers["etag"].to_str().unwrap().to_owned();

    for stale in [
        "/static/vendor/jquery/jquery.min.js",
        "/static/vendor/jquery/jquery.min.js?v=0123456789abcdef",
    ] {
        let response = fetch(&app, stale, &[]).await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["cache-control"], "no-cache", "{stale}");
        assert_eq!(response.headers()["etag"], etag.as_str());
        assert_eq!(
            response.bytes().await.unwrap(),
            on_disk("vendor/jquery/jquery.min.js")
        );
    }

    let unchanged = fetch(
        &app,
        "/static/vendor/jquery/jquery.min.js",
        &[("if-none-match", &etag)],
    )
    .await;
    assert_eq!(unchanged.status(), 304);
    assert_eq!(unchanged.headers()["etag"], etag.as_str());
    assert!(unchanged.bytes().await.unwrap().is_empty());
    let changed = fetch(
        &app,
        "/static/vendor/jquery/jquery.min.js",
        &[("if-none-match", "\"0000\"")],
    )
    .await;
    assert_eq!(changed.status(), 200);

    assert_eq!(
        fetch(&app, "/static/js/nothing.js", &[]).await.status(),
        404
    );
    assert_eq!(
        fetch(&app, "/static/../Cargo.toml", &[]).await.status(),
        404
    );
}

#[tokio::test]
async fn gzip_and_brotli_bodies_decode_to_the_file() {
    use std::io::Read;

    let app = spawn_app().await;
    for path in [
        "vendor/jquery/jquery.min.js",
        "bundle/chat.css",
        "bundle/chat.js",
    ] {
        let url = linked(&app, path).await;
        let file = on_disk(path);
        for (accept, expected) in [
            ("gzip, deflate, br, zstd", "br"),
            ("gzip", "gzip"),
            ("br;q=0, gzip", "gzip"),
            ("identity", ""),
        ] {
            let response = fetch(&app, &url, &[("accept-encoding", accept)]).await;
            let headers = response.headers().clone();
            assert_eq!(headers["vary"], "accept-encoding", "{path}");
            let encoding = headers
                .get("content-encoding")
                .map_or("", |v| v.to_str().unwrap());
            assert_eq!(encoding, expected, "{path} for {accept}");
            let body = response.bytes().await.unwrap();
            let mut decoded = Vec::new();
            match encoding {
                "br" => brotli::Decompressor::new(&body[..], 4096)
                    .read_to_end(&mut decoded)
                    .unwrap(),
                "gzip" => flate2::read::GzDecoder::new(&body[..])
                    .read_to_end(&mut decoded)
                    .unwrap(),
                _ => {
                    decoded = body.to_vec();
                    0
                }
            };
            assert_eq!(decoded, file, "{path} for {accept}");
            if !encoding.is_empty() {
                assert!(body.len() < file.len() / 2, "{path}: {} bytes", body.len());
            }
        }
    }
    // A file under 1 KiB is sent as it is, with nothing to vary on.
    let small = fetch(
        &app,
        "/static/img/favicon.svg",
        &[("accept-encoding", "br")],
    )
    .await;
    assert!(small.headers().get("content-encoding").is_none());
    assert!(small.headers().get("vary").is_none());
}

#[tokio::test]
async fn pages_and_json_are_compressed_as_they_are_sent() {
    let app = spawn_app().await;
    let page = fetch(&app, "/ws", &[("accept-encoding", "br")]).await;
    assert_eq!(page.headers()["content-encoding"], "br");
    let vary: Vec<&str> = page
        .headers()
        .get_all("vary")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    let vary = vary.join(", ");
    assert!(vary.contains("accept-encoding"), "{vary}");
    assert_eq!(page.headers()["cache-control"], "no-store");
    let json = app
        .http
        .post(app.url("/wsin"))
        .header("accept-encoding", "gzip")
        .form(&[("name", "ada")])
        .send()
        .await
        .unwrap();
    assert_eq!(json.headers()["content-encoding"], "gzip");
    assert!(cookie_pair(&json).is_some());
}
