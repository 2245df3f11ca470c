//! Who may sign in, sign out and open a socket: origins by scheme, host and port; sign-out
//! refused to other sites; sign-ins limited per IPv6 /64; names without hidden characters.

use passerby::routes::client_addr::parse_proxy;
use serde_json::Value;
use tokio_tungstenite::tungstenite;

use crate::{
    helpers::{TestApp, spawn_app, spawn_with},
    refused::Captured,
};

async fn sign_in_from(app: &TestApp, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut request = app.http.post(app.url("/wsin"));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.form(&[("name", "x")]).send().await.unwrap()
}

async fn upgrade_status(app: &TestApp, cookie: &str, origin: &str) -> u16 {
    match app
        .connect_to("/ws", &[("Cookie", cookie), ("Origin", origin)])
        .await
    {
        Ok(_) => 101,
        Err(tungstenite::Error::Http(response)) => response.status().as_u16(),
        Err(e) => panic!("{e}"),
    }
}

#[tokio::test]
async fn an_origin_must_match_in_scheme_host_and_port() {
    let app = spawn_app().await;
    let cookie = app.sign_in("a").await;
    let port = app.addr.port();
    let ours = format!("http://127.0.0.1:{port}");
    assert_eq!(upgrade_status(&app, &cookie, &ours).await, 101);
    assert_eq!(sign_in_from(&app, &[("origin", &ours)]).await.status(), 200);
    for foreign in [
        format!("foo://127.0.0.1:{port}"),
        format!("https://127.0.0.1:{port}"),
        format!("ws://127.0.0.1:{port}"),
        format!("http://127.0.0.1:{}", port.wrapping_add(1)),
        "null".to_owned(),
    ] {
        assert_eq!(
            upgrade_status(&app, &cookie, &foreign).await,
            403,
            "{foreign}"
        );
        let refused = sign_in_from(&app, &[("origin", &foreign)]).await;
        assert_eq!(refused.status(), 403, "{foreign}");
        assert!(refused.headers().get("set-cookie").is_none());
    }
}

#[tokio::test]
async fn behind_tls_the_origin_must_be_https() {
    let proxied = spawn_with(|c| c.trusted_proxies = vec![parse_proxy("127.0.0.1").unwrap()]).await;
    let host = proxied.addr.to_string();
    let https = format!("https://{host}");
    let http = format!("http://{host}");
    let tls = ("x-forwarded-proto", "https");
    let status = |r: reqwest::Response| r.status().as_u16();
    for (origin, via_tls, expected) in [
        (&https, true, 200),
        (&http, true, 403),
        (&https, false, 403),
        (&http, false, 200),
    ] {
        let mut headers = vec![("origin", origin.as_str())];
        if via_tls {
            headers.push(tls);
        }
        assert_eq!(
            status(sign_in_from(&proxied, &headers).await),
            expected,
            "{origin}, forwarded over TLS: {via_tls}"
        );
    }

    // Only a trusted proxy is believed.
    let direct = spawn_app().await;
    let https = format!("https://{}", direct.addr);
    let headers = [("origin", https.as_str()), tls];
    assert_eq!(status(sign_in_from(&direct, &headers).await), 403);

    // --secure-cookies says the visitors use TLS, whatever the headers.
    let secure = spawn_with(|c| c.secure_cookies = true).await;
    let https = format!("https://{}", secure.addr);
    let http = format!("http://{}", secure.addr);
    assert_eq!(
        status(sign_in_from(&secure, &[("origin", &https)]).await),
        200
    );
    assert_eq!(
        status(sign_in_from(&secure, &[("origin", &http)]).await),
        403
    );
}

async fn sign_out(app: &TestApp, cookie: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut request = app.http.get(app.url("/wsout")).header("cookie", cookie);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn sign_out_refuses_other_sites_and_works_for_our_page() {
    let app = spawn_app().await;
    let cookie = app.sign_in("a").await;
    let ours = app.url("");
    for headers in [
        vec![("sec-fetch-site", "cross-site")],
        vec![("sec-fetch-site", "same-site")],
        vec![("origin", "http://evil.example")],
        vec![("origin", "null"), ("sec-fetch-site", "cross-site")],
        vec![("origin", "foo://127.0.0.1")],
    ] {
        let refused = sign_out(&app, &cookie, &headers).await;
        assert_eq!(refused.status(), 403, "{headers:?}");
        assert!(refused.headers().get("set-cookie").is_none(), "{headers:?}");
        let body: Value = refused.json().await.unwrap();
        assert!(body["data"].as_str().unwrap().contains("cross-site"));
    }
    for headers in [
        vec![("sec-fetch-site", "same-origin")],
        vec![("sec-fetch-site", "none")],
        vec![("origin", ours.as_str()), ("sec-fetch-site", "same-origin")],
        vec![],
    ] {
        let signed_out = sign_out(&app, &cookie, &headers).await;
        assert_eq!(signed_out.status(), 200, "{headers:?}");
        let set = signed_out.headers()["set-cookie"].to_str().unwrap();
        assert!(set.contains("Max-Age=0"), "{headers:?}: {set}");
    }
}

#[tokio::test]
async fn sign_ins_from_one_ipv6_slash_64_share_one_limit() {
    let app = spawn_with(|c| {
        c.trusted_proxies = vec![parse_proxy("127.0.0.1").unwrap()];
        c.sign_in_rate = 0.01;
        c.sign_in_burst = 3.0;
    })
    .await;
    let status = async |address: &str| {
        let response = sign_in_from(&app, &[("x-forwarded-for", address)]).await;
        response.status().as_u16()
    };
    for address in ["2001:db8:1:2::1", "2001:db8:1:2::2", "2001:db8:1:2:ffff::3"] {
        assert_eq!(status(address).await, 200, "{address}");
    }
    let rotated = sign_in_from(&app, &[("x-forwarded-for", "2001:db8:1:2:abcd::4")]).await;
    assert_eq!(rotated.status(), 429, "a new address in the same /64");
    assert_eq!(rotated.headers()["retry-after"], "1");
    assert_eq!(status("2001:db8:1:3::1").await, 200, "another /64");
    assert_eq!(status("192.0.2.1").await, 200, "an IPv4 client");
}

#[tokio::test]
async fn names_that_hide_or_smear_text_get_400_with_the_reason() {
    let app = spawn_app().await;
    let stacked = format!("a{}", "\u{0301}".repeat(23));
    for (name, reason) in [
        ("ab\u{061C}c", "U+061C"),
        ("\u{3164}\u{3164}\u{3164}", "U+3164"),
        ("\u{2800}", "U+2800"),
        ("x\u{E0041}", "U+E0041"),
        ("\u{1F468}\u{200D}\u{1F469}", "emoji"),
        (stacked.as_str(), "combining marks"),
    ] {
        let response = app.post_sign_in(&[("name", name)]).await;
        assert_eq!(response.status(), 400, "{name:?}");
        assert!(response.headers().get("set-cookie").is_none());
        let body: Value = response.json().await.unwrap();
        assert!(body["data"].as_str().unwrap().contains(reason), "{body}");
    }
    for name in ["José", "Jose\u{0301}", "김민준", "山田太郎", "Ana 🌸"] {
        let response = app.post_sign_in(&[("name", name)]).await;
        assert_eq!(response.status(), 200, "{name:?}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["user"]["name"], name);
    }
}

#[tokio::test]
async fn refused_sign_ins_are_logged_once_per_address_per_interval() {
    let (captured, _guard) = Captured::install();
    let app = spawn_with(|c| {
        c.sign_in_rate = 0.01;
        c.sign_in_burst = 1.0;
        c.log_sample_interval = std::time::Duration::from_secs(3600);
    })
    .await;
    assert_eq!(app.post_sign_in(&[("name", "a")]).await.status(), 200);
    for _ in 0..20 {
        assert_eq!(app.post_sign_in(&[("name", "b")]).await.status(), 429);
    }
    let foreign = [("origin", "http://evil.example")];
    for _ in 0..20 {
        assert_eq!(sign_in_from(&app, &foreign).await.status(), 403);
    }
    let lines = captured.counts(&["refused requests", "client=127.0.0.1"]);
    assert_eq!(lines, [1], "40 refusals, one line within the interval");
}
