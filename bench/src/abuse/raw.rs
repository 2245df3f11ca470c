//! Hand-made sockets for the attacks: TCP from a chosen loopback address, a WebSocket
//! handshake written by hand, masked client frames, and a look at what the server said
//! (an HTTP status, a close code, or nothing) without blocking.
//!
//! The attacks need what a well-behaved client library will not do (never read, stop halfway
//! through a frame or a header), so they talk bytes.

use std::{
    collections::BTreeMap,
    fmt, io,
    net::{IpAddr, Ipv4Addr, SocketAddr},
    time::Duration,
};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpSocket, TcpStream},
};

/// Where every attack comes from.
pub const ATTACKER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1));
/// Where the probe and the health checks come from: another client of the same server.
pub const BYSTANDER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

/// A TCP connection to `to` from `from` (any port).
pub async fn tcp_from(from: IpAddr, to: SocketAddr) -> io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    // Many short runs in a row: a port in TIME_WAIT from the last one must not block this one.
    socket.set_reuseaddr(true)?;
    socket.bind(SocketAddr::new(from, 0))?;
    let stream = socket.connect(to).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// An attacker's connection, bounded in time so that a server that stops accepting shows as a
/// timeout instead of a hang.
pub async fn connect(to: SocketAddr, within: Duration) -> io::Result<TcpStream> {
    match tokio::time::timeout(within, TcpStream::connect(to)).await {
        Ok(stream) => stream,
        Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "connect timed out")),
    }
}

/// The request head of a WebSocket upgrade to `room`, `cookie` signed in; `finish` adds the
/// blank line that ends it.
pub fn upgrade_head(addr: SocketAddr, cookie: &str, room: &str, finish: bool) -> String {
    format!(
        "GET /ws?room={room} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\nCookie: {cookie}\r\n{}",
        if finish { "\r\n" } else { "" }
    )
}

/// An upgraded socket, and the bytes that came after the `101` head (the first events).
pub struct Upgraded {
    pub stream: TcpStream,
    pub seen: Vec<u8>,
}

/// Upgrades a fresh connection; `Err` carries what the server answered instead.
pub async fn upgrade(
    addr: SocketAddr,
    cookie: &str,
    room: &str,
    within: Duration,
) -> Result<Upgraded, String> {
    upgrade_on(connect(addr, within), addr, cookie, room, within).await
}

/// `upgrade` from another loopback address. `room` may carry more of the query after it
/// (`lobby&since=0`).
pub async fn upgrade_from(
    from: IpAddr,
    addr: SocketAddr,
    cookie: &str,
    room: &str,
    within: Duration,
) -> Result<Upgraded, String> {
    let connect = async move {
        match tokio::time::timeout(within, tcp_from(from, addr)).await {
            Ok(stream) => stream,
            Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "connect timed out")),
        }
    };
    upgrade_on(connect, addr, cookie, room, within).await
}

async fn upgrade_on(
    connect: impl std::future::Future<Output = io::Result<TcpStream>>,
    addr: SocketAddr,
    cookie: &str,
    room: &str,
    within: Duration,
) -> Result<Upgraded, String> {
    let attempt = async {
        let mut stream = connect.await.map_err(short)?;
        let head = upgrade_head(addr, cookie, room, true);
        stream.write_all(head.as_bytes()).await.map_err(short)?;
        let mut seen = Vec::with_capacity(1024);
        loop {
            let mut buf = [0u8; 4096];
            let n = stream.read(&mut buf).await.map_err(short)?;
            if n == 0 {
                return Err("closed".to_owned());
            }
            seen.extend_from_slice(&buf[..n]);
            if let Some(end) = find(&seen, b"\r\n\r\n") {
                let status = http_status(&seen);
                if status != Some(101) {
                    return Err(status.map_or("garbage".into(), |s| format!("HTTP {s}")));
                }
                seen.drain(..end + 4);
                return Ok(Upgraded { stream, seen });
            }
            if seen.len() > 16 * 1024 {
                return Err("head too long".into());
            }
        }
    };
    tokio::time::timeout(within, attempt)
        .await
        .unwrap_or_else(|_| Err("timed out".into()))
}

/// One client frame, masked as RFC 6455 requires of clients.
pub fn frame(opcode: u8, fin: bool, payload: &[u8]) -> Vec<u8> {
    const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];
    let mut out = Vec::with_capacity(payload.len() + 14);
    out.push(if fin { 0x80 } else { 0 } | opcode);
    match payload.len() {
        n if n < 126 => out.push(0x80 | n as u8),
        n if n <= u16::MAX as usize => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&MASK);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ MASK[i % 4]));
    out
}

pub const TEXT: u8 = 1;
pub const PING: u8 = 9;

/// The server's frames, read out of a byte stream: (opcode, payload). Stops at an incomplete one.
pub fn server_frames(bytes: &[u8]) -> (Vec<(u8, &[u8])>, usize) {
    let mut frames = Vec::new();
    let mut at = 0;
    while bytes.len() >= at + 2 {
        let (b0, b1) = (bytes[at], bytes[at + 1]);
        let (len, header) = match b1 & 0x7f {
            126 if bytes.len() >= at + 4 => (
                u16::from_be_bytes([bytes[at + 2], bytes[at + 3]]) as usize,
                4,
            ),
            127 if bytes.len() >= at + 10 => {
                let mut n = [0u8; 8];
                n.copy_from_slice(&bytes[at + 2..at + 10]);
                (u64::from_be_bytes(n) as usize, 10)
            }
            126 | 127 => break,
            n => (n as usize, 2),
        };
        let Some(end) = (at + header).checked_add(len).filter(|e| *e <= bytes.len()) else {
            break;
        };
        frames.push((b0 & 0x0f, &bytes[at + header..end]));
        at = end;
    }
    (frames, at)
}

/// The close code in the server's bytes, if a close frame is among them.
pub fn close_code(bytes: &[u8]) -> Option<u16> {
    server_frames(bytes)
        .0
        .into_iter()
        .find(|(op, _)| *op == 8)
        .map(|(_, p)| {
            p.get(..2)
                .map_or(1005, |c| u16::from_be_bytes([c[0], c[1]]))
        })
}

pub fn http_status(bytes: &[u8]) -> Option<u16> {
    let rest = bytes.strip_prefix(b"HTTP/1.1 ")?;
    std::str::from_utf8(rest.get(..3)?).ok()?.parse().ok()
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

pub fn short(e: io::Error) -> String {
    match e.kind() {
        io::ErrorKind::ConnectionReset => "reset".into(),
        io::ErrorKind::BrokenPipe => "broken pipe".into(),
        io::ErrorKind::TimedOut => "timed out".into(),
        io::ErrorKind::ConnectionRefused => "refused".into(),
        _ if e.raw_os_error() == Some(24) => "out of files (bench)".into(),
        _ => e.to_string(),
    }
}

/// What one held connection looks like now, read without waiting.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fate {
    Open,
    /// Closed with an answer: `HTTP 431`, `close 4004`.
    Answered(String),
    /// Closed (end of stream or reset) without an answer we could read.
    Closed,
}

/// Reads whatever the server sent to `stream` so far into `seen` and says what it amounts to.
/// `ws` reads `seen` as WebSocket frames, otherwise as an HTTP response.
pub fn fate(stream: &TcpStream, seen: &mut Vec<u8>, ws: bool) -> Fate {
    let mut ended = false;
    loop {
        let mut buf = [0u8; 8192];
        match stream.try_read(&mut buf) {
            Ok(0) => {
                ended = true;
                break;
            }
            // Keep what can carry an answer; the rest only needs to be drained.
            Ok(n) => {
                if seen.len() < 64 * 1024 {
                    seen.extend_from_slice(&buf[..n]);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(_) => {
                ended = true;
                break;
            }
        }
    }
    let answer = if ws {
        close_code(seen).map(|c| format!("close {c}"))
    } else {
        http_status(seen).map(|s| format!("HTTP {s}"))
    };
    match (answer, ended) {
        (Some(a), _) => Fate::Answered(a),
        (None, true) => Fate::Closed,
        (None, false) => Fate::Open,
    }
}

/// How many connections ended which way: `3 open, 256 × HTTP 429, 10 closed`.
#[derive(Debug, Default, Clone)]
pub struct Tally(pub BTreeMap<String, usize>);

impl Tally {
    pub fn add(&mut self, what: impl Into<String>) {
        *self.0.entry(what.into()).or_default() += 1;
    }

    pub fn count(&self, what: &str) -> usize {
        self.0.get(what).copied().unwrap_or(0)
    }

    pub fn of_fates<'a>(fates: impl IntoIterator<Item = &'a Fate>) -> Tally {
        let mut t = Tally::default();
        for f in fates {
            t.add(match f {
                Fate::Open => "open".to_owned(),
                Fate::Answered(a) => a.clone(),
                Fate::Closed => "closed".to_owned(),
            });
        }
        t
    }
}

impl fmt::Display for Tally {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.0.iter().map(|(k, n)| format!("{n} {k}")).collect();
        f.write_str(&parts.join(", "))
    }
}

/// A signed-in user's cookie, from `from`.
pub async fn sign_in(addr: SocketAddr, from: IpAddr, name: &str) -> anyhow::Result<String> {
    let http = reqwest::Client::builder()
        .local_address(from)
        .timeout(Duration::from_secs(10))
        .build()?;
    crate::client::sign_in(&http, addr, name).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_back_a_close_code_after_other_frames() {
        let mut bytes = vec![0x81, 2, b'h', b'i'];
        bytes.extend_from_slice(&[0x88, 2, 0x0f, 0xa4]);
        assert_eq!(close_code(&bytes), Some(4004));
        assert_eq!(close_code(&bytes[..5]), None);
        assert_eq!(http_status(b"HTTP/1.1 429 Too Many"), Some(429));
    }

    #[test]
    fn masks_client_frames_with_the_right_length_form() {
        assert_eq!(frame(PING, true, b"").len(), 6);
        assert_eq!(frame(TEXT, false, &[0; 200])[1], 0x80 | 126);
        assert_eq!(frame(TEXT, true, &[0; 70_000])[1], 0x80 | 127);
    }
}
