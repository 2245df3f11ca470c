//! The HTTP edge: slow heads, idle keep-alive connections, oversized heads and running out of
//! file descriptors, each while other clients keep chatting. `caps.rs` has the connection caps.

use std::{
    net::Ipv4Addr,
    time::{Duration, Instant},
};

use tokio::io::AsyncWriteExt;

use crate::{
    helpers::{WAIT, spawn_with, still_chatting, two_chatting},
    raw::{get, raw_from, until_closed},
    server::ServerProcess,
};

const HERE: Ipv4Addr = Ipv4Addr::LOCALHOST;

#[tokio::test]
async fn a_slow_head_and_a_silent_connection_are_closed_at_the_header_timeout() {
    let app = spawn_with(|c| c.header_timeout = Duration::from_millis(500)).await;
    let (mut alice, mut bob) = two_chatting(&app).await;
    let mut slow = raw_from(app.addr, HERE).await;
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: passerby\r\n")
        .await
        .unwrap();
    let mut silent = raw_from(app.addr, HERE).await;
    let opened = Instant::now();

    still_chatting(&mut alice, &mut bob, "meanwhile").await;
    for tcp in [&mut slow, &mut silent] {
        let (sent, _) = until_closed(tcp).await;
        assert_eq!(sent, "", "closed without an answer");
        let lasted = opened.elapsed();
        assert!(
            lasted >= Duration::from_millis(450),
            "closed after {lasted:?}"
        );
    }
    // The sockets upgraded long ago are not heads: they outlive the header timeout.
    still_chatting(&mut alice, &mut bob, "still here").await;
}

#[tokio::test]
async fn an_idle_keep_alive_connection_closes_at_its_own_timeout_but_an_open_socket_does_not() {
    // A header timeout shorter than the keep-alive one: idle time must not count as a slow head.
    let app = spawn_with(|c| {
        c.header_timeout = Duration::from_millis(300);
        c.keep_alive_timeout = Duration::from_secs(1);
    })
    .await;
    let (mut alice, mut bob) = two_chatting(&app).await;
    let mut idle = raw_from(app.addr, HERE).await;
    let response = get(&mut idle, "/healthz", "").await.expect("served");
    assert_eq!(response.status, 200);
    // A second request on the same connection: it is kept alive.
    assert_eq!(get(&mut idle, "/healthz", "").await.unwrap().status, 200);
    let (sent, lasted) = until_closed(&mut idle).await;
    assert_eq!(sent, "");
    assert!(
        lasted >= Duration::from_millis(900),
        "closed after {lasted:?}, before the keep-alive timeout"
    );
    // Alice and Bob were idle for longer than that too.
    still_chatting(&mut alice, &mut bob, "sockets are not idle connections").await;
}

#[tokio::test]
async fn a_head_over_the_cap_gets_431_and_one_under_it_is_served() {
    let app = spawn_with(|c| c.max_header_bytes = 4096).await;
    let (mut alice, mut bob) = two_chatting(&app).await;

    let mut fits = raw_from(app.addr, HERE).await;
    let pad = format!("X-Pad: {}\r\n", "a".repeat(3000));
    assert_eq!(get(&mut fits, "/healthz", &pad).await.unwrap().status, 200);

    let big = format!("X-Pad: {}\r\n", "a".repeat(6000));
    let mut whole = raw_from(app.addr, HERE).await;
    let answer = get(&mut whole, "/healthz", &big).await.expect("an answer");
    assert_eq!(answer.status, 431, "{answer:?}");

    // Never finished: refused as soon as it passes the cap, not held until it ends.
    let mut unfinished = raw_from(app.addr, HERE).await;
    let head = format!("GET /healthz HTTP/1.1\r\nHost: passerby\r\n{big}");
    unfinished.write_all(head.as_bytes()).await.unwrap();
    let (sent, _) = until_closed(&mut unfinished).await;
    assert!(sent.starts_with("HTTP/1.1 431 "), "{sent:?}");

    still_chatting(&mut alice, &mut bob, "heads are capped").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_file_descriptors_open_connections_are_served_and_it_is_logged_once_per_interval() {
    // Soft and hard limit 64: the server cannot raise it. Its connection cap is set far above
    // what the descriptors allow, so `accept` is what fails.
    let server = ServerProcess::start_with_open_files(
        64,
        &["--max-connections", "100000", "--log-sample-interval", "1"],
    );
    let mut kept = raw_from(server.addr, HERE).await;
    assert_eq!(get(&mut kept, "/healthz", "").await.unwrap().status, 200);

    // The kernel completes these handshakes whether or not the server can accept them.
    let mut flood = Vec::new();
    for _ in 0..80 {
        flood.push(raw_from(server.addr, HERE).await);
    }
    let failing = "cannot accept connections";
    server.log_line(&[failing]).await;
    let start = Instant::now();
    assert_eq!(
        get(&mut kept, "/healthz", "").await.unwrap().status,
        200,
        "an open connection is still served"
    );
    // Over 2.5 s of failing every 75 ms, the log says so at most once a second.
    tokio::time::sleep(Duration::from_millis(2500).saturating_sub(start.elapsed())).await;
    let lines = server.count_lines(&[failing]);
    assert!((1..=4).contains(&lines), "{lines} lines");
    let second = server.log_line(&[failing, "failures="]).await;
    assert!(second.contains("Too many open files"), "{second}");
    let metrics = get(&mut kept, "/metrics", "").await.unwrap().body;
    let failures = crate::helpers::metric(&metrics, "passerby_accept_errors_total").unwrap();
    assert!(
        failures > lines as f64 + 5.0,
        "{failures} failures logged in {lines} lines"
    );

    // Once descriptors are free again, new connections are served.
    drop(flood);
    let deadline = Instant::now() + WAIT;
    loop {
        let mut fresh = raw_from(server.addr, HERE).await;
        if let Some(response) = get(&mut fresh, "/healthz", "").await {
            assert_eq!(response.status, 200);
            break;
        }
        assert!(Instant::now() < deadline, "no new connection served");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
