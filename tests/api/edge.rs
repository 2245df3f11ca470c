//! The HTTP edge: slow heads, idle keep-alive connections, oversized heads and running out of
//! file descriptors, each while other clients keep chatting. `caps.rs` has the connection caps.

use std::{
    net::{IpAddr, Ipv4Addr, SocketAddr},
    time::{Duration, Instant},
};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpSocket, TcpStream},
};

use crate::{
    helpers::{Client, TestApp, WAIT, spawn_with},
    server::ServerProcess,
};

/// A raw TCP connection from a loopback address of the test's choosing, so one test can be
/// several clients: the server counts connections per address.
pub async fn raw_from(addr: SocketAddr, from: Ipv4Addr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(IpAddr::V4(from), 0)).unwrap();
    socket.connect(addr).await.unwrap()
}

/// One response as read off the wire.
#[derive(Debug)]
pub struct Raw {
    pub status: u16,
    pub head: String,
    pub body: String,
}

/// Sends `GET path` on `tcp` (kept alive) and reads one response; `None` if the connection
/// ended first.
pub async fn get(tcp: &mut TcpStream, path: &str, extra_headers: &str) -> Option<Raw> {
    let request = format!("GET {path} HTTP/1.1\r\nHost: passerby\r\n{extra_headers}\r\n");
    tcp.write_all(request.as_bytes()).await.ok()?;
    read_response(tcp).await
}

/// Reads one response whose body has a `content-length`.
pub async fn read_response(tcp: &mut TcpStream) -> Option<Raw> {
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let text = String::from_utf8_lossy(&bytes).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length: usize = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse().unwrap())
                })
                .unwrap_or(0);
            if body.len() >= length {
                let status = head.split(' ').nth(1)?.parse().ok()?;
                return Some(Raw {
                    status,
                    head: head.to_owned(),
                    body: body.to_owned(),
                });
            }
        }
        match tokio::time::timeout_at(deadline, tcp.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return None,
            Ok(Ok(n)) => bytes.extend_from_slice(&chunk[..n]),
            Err(_) => panic!("no response within the wait; got {text:?}"),
        }
    }
}

/// Reads until the server closes; what it sent, and how long that took.
pub async fn until_closed(tcp: &mut TcpStream) -> (String, Duration) {
    let start = Instant::now();
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match tokio::time::timeout(WAIT, tcp.read(&mut chunk))
            .await
            .expect("the server closes within the wait")
        {
            Ok(0) | Err(_) => break,
            Ok(n) => bytes.extend_from_slice(&chunk[..n]),
        }
    }
    (
        String::from_utf8_lossy(&bytes).into_owned(),
        start.elapsed(),
    )
}

/// Alice and Bob in the lobby, each having received their own join, list and history.
pub async fn two_chatting(app: &TestApp) -> (Client, Client) {
    let (mut alice, _) = app.join("alice").await;
    let (bob, _) = app.join("bob").await;
    assert_eq!(alice.expect("join").await["data"], "bob joined.");
    (alice, bob)
}

/// Alice says something and both see it.
pub async fn still_chatting(alice: &mut Client, bob: &mut Client, text: &str) {
    alice.say(text).await;
    assert_eq!(bob.expect("chat").await["data"], text);
    assert_eq!(alice.expect("chat").await["data"], text);
}

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
