//! What operators use: `/healthz`, `/metrics`, and the client address in the logs.

use futures_util::SinkExt;
use tokio_tungstenite::tungstenite::Message;

use crate::{
    helpers::{metric, rejected_messages, spawn_app, spawn_with},
    server::ServerProcess,
};

#[tokio::test]
async fn healthz_answers_200_while_serving() {
    let app = spawn_app().await;
    let response = app.get("/healthz").await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "ok\n");
}

#[tokio::test]
async fn metrics_are_prometheus_text_with_every_series_at_zero_on_start() {
    let app = spawn_app().await;
    let response = app.get("/metrics").await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/plain; version=0.0.4"
    );
    let text = response.text().await.unwrap();
    assert!(
        text.contains("# TYPE passerby_connections_open gauge"),
        "{text}"
    );
    for series in [
        "passerby_connections_open",
        "passerby_users_online",
        "passerby_sign_ins_total",
        "passerby_slow_reader_disconnects_total",
        r#"passerby_events_broadcast_total{kind="chat"}"#,
        r#"passerby_messages_rejected_total{reason="rate_limited"}"#,
    ] {
        assert_eq!(metric(&text, series), Some(0.0), "{series}");
    }
}

#[tokio::test]
async fn metrics_count_sign_ins_connections_messages_and_rejections_by_reason() {
    let app = spawn_with(|c| c.max_message_chars = 10).await;
    let (mut alice, _) = app.join("alice").await;
    let cookie = app.sign_in("bob").await;
    let mut bob_tab1 = app.connect(&cookie).await;
    let mut bob_tab2 = app.connect(&cookie).await;
    alice.expect("join").await;

    alice.say("hello").await;
    alice.expect("chat").await;
    alice.say("far too long for ten").await;
    alice.expect("error").await;
    alice.say(r#"{"type":"dance"}"#).await;
    alice.expect("error").await;
    bob_tab1.expect("join").await;
    bob_tab1.ws.send(Message::binary(vec![0u8])).await.unwrap();
    assert_eq!(bob_tab1.close_code().await.map(|c| c.0), Some(1003));
    bob_tab2.expect("list").await;
    bob_tab2.expect("history").await;

    assert_eq!(
        app.metric_becomes("passerby_connections_open", 2.0).await,
        Some(2.0),
        "bob's first tab closed"
    );
    let text = app.metrics().await;
    let value = |series: &str| metric(&text, series);
    assert_eq!(value("passerby_sign_ins_total"), Some(2.0));
    assert_eq!(value("passerby_connections_total"), Some(3.0));
    assert_eq!(value("passerby_users_online"), Some(2.0), "bob counts once");
    assert_eq!(
        value(r#"passerby_events_broadcast_total{kind="join"}"#),
        Some(2.0)
    );
    assert_eq!(
        value(r#"passerby_events_broadcast_total{kind="chat"}"#),
        Some(1.0)
    );
    for (reason, count) in [
        ("too_long", 1.0),
        ("bad_command", 1.0),
        ("binary", 1.0),
        ("rate_limited", 0.0),
    ] {
        assert_eq!(value(&rejected_messages(reason)), Some(count), "{reason}");
    }
}

#[tokio::test]
async fn messages_over_the_rate_limit_are_counted_each() {
    let app = spawn_with(|c| {
        c.rate_limit = 0.001;
        c.rate_burst = 1.0;
    })
    .await;
    let (mut alice, _) = app.join("alice").await;
    for _ in 0..4 {
        alice.say("hi").await;
    }
    alice.expect("chat").await;
    assert_eq!(app.rejected_becomes("rate_limited", 3.0).await, Some(3.0));
}

/// Signs in and opens a socket as if through a proxy that set `headers`.
async fn visit(server: &ServerProcess, name: &str, headers: &[(&'static str, &str)]) {
    let http = reqwest::Client::new();
    let mut request = http.post(server.url("/wsin")).form(&[("name", name)]);
    for (header, value) in headers {
        request = request.header(*header, *value);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 200);
    let cookie = crate::helpers::cookie_pair(&response).unwrap();
    let mut ws_request =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(format!(
            "ws://{}/ws",
            server.addr
        ))
        .unwrap();
    ws_request
        .headers_mut()
        .insert("cookie", cookie.parse().unwrap());
    for (header, value) in headers {
        ws_request
            .headers_mut()
            .insert(*header, value.parse().unwrap());
    }
    let (mut ws, _) = tokio_tungstenite::connect_async(ws_request).await.unwrap();
    ws.close(None).await.unwrap();
}

#[tokio::test]
async fn an_untrusted_peer_cannot_choose_the_address_the_server_logs() {
    let server = ServerProcess::start(&[]);
    let claims = [
        ("x-forwarded-for", "203.0.113.9"),
        ("x-real-ip", "203.0.113.9"),
    ];
    visit(&server, "spoofer", &claims).await;
    let signed_in = server.log_line(&["signed in", "name=spoofer"]).await;
    assert!(signed_in.contains("client=127.0.0.1"), "{signed_in}");
    let connected = server.log_line(&["connected"]).await;
    assert!(connected.contains("client=127.0.0.1"), "{connected}");
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_server_logs_the_rightmost_untrusted_hop() {
    let server = ServerProcess::start(&["--trusted-proxy", "127.0.0.0/8"]);
    // What a client sent (6.6.6.6), then what the proxy appended: the client's real address.
    let forwarded = [("x-forwarded-for", "6.6.6.6, 203.0.113.9")];
    visit(&server, "proxied", &forwarded).await;
    let signed_in = server.log_line(&["signed in", "name=proxied"]).await;
    assert!(signed_in.contains("client=203.0.113.9"), "{signed_in}");
    let connected = server.log_line(&["connected"]).await;
    assert!(connected.contains("client=203.0.113.9"), "{connected}");
    let closed = server.log_line(&["closed by client"]).await;
    assert!(closed.contains("client=203.0.113.9"), "{closed}");
}
