//! The limit zones of `nginx/passerby.conf`, through a real nginx: one address past its
//! sign-in rate or its connections gets nginx's 429 while a browser elsewhere keeps chatting.

use std::net::{IpAddr, Ipv4Addr};

use tokio_tungstenite::tungstenite;

use crate::{nginx::Nginx, server::ServerProcess};

/// The address that floods; the browser that chats is `nginx::BROWSER`.
const FLOOD: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3));

/// nginx's own 429: the API's error shape and a Retry-After, but none of passerby's headers.
async fn assert_nginx_429(response: reqwest::Response) {
    assert_eq!(response.status(), 429);
    let headers = response.headers();
    assert_eq!(headers["retry-after"], "1");
    assert!(
        !headers.contains_key("content-security-policy"),
        "answered by nginx, not passerby"
    );
    let reply: serde_json::Value = response.json().await.unwrap();
    assert_eq!(reply["code"], 1, "{reply}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_limits_sign_ins_and_connections_per_address_while_others_chat() {
    // passerby's own sign-in burst is raised so that what refuses here can only be nginx.
    let app = ServerProcess::start(&["--trusted-proxy", "127.0.0.1", "--sign-in-burst", "1000"]);
    // The shipped 256 connections would need more than the test's nginx may open. The
    // shipped read timeout too: the browser's sockets wait on each other's greetings, which
    // on a loaded machine may take longer than the harness's short one.
    let nginx = Nginx::start_changed(
        &[app.addr],
        &[
            (
                "limit_conn passerby_conn 256;",
                "limit_conn passerby_conn 4;",
            ),
            ("proxy_read_timeout 60s;", "proxy_read_timeout 60s;"),
        ],
    );
    // The browser signs in first; its sockets open while the flood holds its own, below.
    let alice_cookie = nginx.sign_in("alice").await;
    let bob_cookie = nginx.sign_in("bob").await;

    // Sign-ins: a burst of 30 (plus one a second) gets through, then nginx refuses.
    let flood = nginx.client_at(FLOOD);
    let mut signed_in = 0;
    let mut refused = None;
    for i in 0..40 {
        let response = flood
            .post(nginx.url("/wsin"))
            .header("origin", nginx.origin())
            .form(&[("name", format!("flood{i}"))])
            .send()
            .await
            .unwrap();
        if response.status() == 200 {
            signed_in += 1;
        } else {
            refused = Some(response);
            break;
        }
    }
    assert!(
        (30..=33).contains(&signed_in),
        "{signed_in} sign-ins let through"
    );
    assert_nginx_429(refused.expect("nginx refused a sign-in")).await;
    // Someone else signs in meanwhile.
    let carol_cookie = nginx.sign_in("carol").await;

    // Connections: four sockets from one address, the fifth is refused by nginx.
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(
            nginx
                .connect_from(FLOOD, "/ws?room=flood", &carol_cookie)
                .await
                .unwrap(),
        );
    }
    match nginx
        .connect_from(FLOOD, "/ws?room=flood", &carol_cookie)
        .await
    {
        Err(tungstenite::Error::Http(response)) => assert_eq!(response.status(), 429),
        other => panic!("expected 429, got {:?}", other.map(|_| ())),
    }
    let page = flood.get(nginx.url("/healthz")).send().await.unwrap();
    assert_nginx_429(page).await;

    // Meanwhile the browser at another address connects and chats.
    let mut alice = nginx.connect("/ws", &alice_cookie).await;
    let mut bob = nginx.connect("/ws", &bob_cookie).await;
    for kind in ["join", "list", "history"] {
        alice.expect(kind).await;
        bob.expect(kind).await;
    }
    alice.expect("join").await;
    alice.say("the flood is elsewhere").await;
    assert_eq!(bob.expect("chat").await["data"], "the flood is elsewhere");
    assert_eq!(alice.expect("chat").await["data"], "the flood is elsewhere");
}
