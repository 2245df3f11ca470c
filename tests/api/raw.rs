//! HTTP/1.1 by hand over raw TCP, for tests about the connection itself: who it comes from,
//! what arrives when a head or a body is unfinished, and when the server closes it.

use std::{
    net::{IpAddr, Ipv4Addr, SocketAddr},
    time::{Duration, Instant},
};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpSocket, TcpStream},
};

use crate::helpers::WAIT;

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
