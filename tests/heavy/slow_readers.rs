//! Slow readers by bytes and by time, and healthy readers under a burst of presence: a socket
//! that cannot keep up is closed with 1008, one that reads is never, and other rooms chat on.

use std::{
    net::{IpAddr, Ipv4Addr, SocketAddr},
    time::{Duration, Instant},
};

use futures_util::{SinkExt, StreamExt};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpSocket, TcpStream},
    sync::watch,
};
use tokio_tungstenite::{
    MaybeTlsStream,
    tungstenite::{Message, client::IntoClientRequest, http::HeaderValue},
};

use crate::helpers::{Client, TestApp, metric, spawn_with, still_chatting, two_chatting};

/// Longer than the helpers' wait: these tests push megabytes through a debug build.
const LONG: Duration = Duration::from_secs(30);

/// A WebSocket client upgraded by hand over a bare TCP stream, so the test decides how fast
/// it reads.
struct Raw {
    tcp: TcpStream,
    buf: Vec<u8>,
}

const PING: u8 = 0x9;
const CLOSE: u8 = 0x8;

/// A masked client frame (payloads under 126 bytes).
fn client_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [0x12, 0x34, 0x56, 0x78];
    let mut out = vec![0x80 | opcode, 0x80 | payload.len() as u8];
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    out
}

/// The first complete server frame in `buf`: (opcode, payload, its length on the wire).
fn server_frame(buf: &[u8]) -> Option<(u8, &[u8], usize)> {
    let (opcode, len) = (buf.first()? & 0x0F, *buf.get(1)? as usize);
    let (len, start) = match len {
        126 => (
            u16::from_be_bytes(buf.get(2..4)?.try_into().ok()?) as usize,
            4,
        ),
        127 => (
            u64::from_be_bytes(buf.get(2..10)?.try_into().ok()?) as usize,
            10,
        ),
        n => (n, 2),
    };
    let payload = buf.get(start..start + len)?;
    Some((opcode, payload, start + len))
}

impl Raw {
    /// Signs in as `name` and opens a socket in `room`, with a small receive buffer so what
    /// it does not read waits on the server, not in this kernel.
    async fn join(app: &TestApp, name: &str, room: &str) -> Raw {
        let cookie = app.sign_in(name).await;
        let socket = TcpSocket::new_v4().unwrap();
        // Not below the loopback segment size (64 KiB): a window that never opens by a full
        // segment leaves the peer to probe, with backoff, for seconds.
        socket.set_recv_buffer_size(128 * 1024).unwrap();
        let mut tcp = socket.connect(app.addr).await.unwrap();
        let request = format!(
            "GET /ws?room={room} HTTP/1.1\r\nHost: {}\r\nConnection: Upgrade\r\n\
             Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nCookie: {cookie}\r\n\r\n",
            app.addr
        );
        tcp.write_all(request.as_bytes()).await.unwrap();
        let mut raw = Raw {
            tcp,
            buf: Vec::new(),
        };
        while !raw.buf.windows(4).any(|w| w == b"\r\n\r\n") {
            raw.read_some(4096).await;
        }
        assert!(raw.buf.starts_with(b"HTTP/1.1 101"), "upgraded");
        let end = raw.buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        raw.buf.drain(..end);
        raw
    }

    /// Reads at most `max` bytes; false once the connection has ended.
    async fn read_some(&mut self, max: usize) -> bool {
        let mut chunk = vec![0; max];
        match self.tcp.read(&mut chunk).await {
            Ok(0) | Err(_) => false,
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                true
            }
        }
    }

    /// Drops complete frames off the front of the buffer; a close frame's code and reason.
    fn skip_to_close(&mut self) -> Option<(u16, String)> {
        let mut used = 0;
        while let Some((opcode, payload, len)) = server_frame(&self.buf[used..]) {
            if opcode == CLOSE {
                let code = u16::from_be_bytes(payload.get(..2)?.try_into().ok()?);
                return Some((code, String::from_utf8_lossy(&payload[2..]).into_owned()));
            }
            used += len;
        }
        self.buf.drain(..used);
        None
    }

    /// Reads `per_step` bytes every 100 ms, pinging so the server keeps hearing from it,
    /// until `stop` is set; then reads at full speed to the close frame.
    async fn trickle_until(
        &mut self,
        per_step: usize,
        mut stop: watch::Receiver<bool>,
    ) -> Option<(u16, String)> {
        while !*stop.borrow_and_update() {
            if !self.read_some(per_step).await {
                return self.skip_to_close();
            }
            if let Some(close) = self.skip_to_close() {
                return Some(close);
            }
            let _ = self.tcp.write_all(&client_frame(PING, b"still here")).await;
            let _ = tokio::time::timeout(Duration::from_millis(100), stop.changed()).await;
        }
        loop {
            if let Some(close) = self.skip_to_close() {
                return Some(close);
            }
            if !self.read_some(256 * 1024).await {
                return self.skip_to_close();
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_that_trickles_behind_a_flood_is_closed_with_1008_while_others_chat() {
    let app = spawn_with(|c| {
        c.ping_interval = Duration::from_secs(2);
        c.write_timeout = Duration::from_secs(1);
        // Far off: this reader never overflows, it is caught by time alone.
        c.outbound_queue_bytes = 64 * 1024 * 1024;
        c.outbound_queue = 1_000_000;
        c.rate_limit = 1e6;
        c.rate_burst = 1e6;
    })
    .await;
    let (mut alice, mut bob) = two_chatting(&app).await;
    let mut trickle = Raw::join(&app, "trickle", "flood").await;
    let cookie = app.sign_in("flooder").await;
    let flooder = app
        .connect_to("/ws?room=flood", &[("Cookie", &cookie)])
        .await
        .unwrap();
    let (stop_tx, stop) = watch::channel(false);
    let reader = tokio::spawn(async move { trickle.trickle_until(32 * 1024, stop).await });
    // The flooder reads its own echoes, and says when the trickling reader has left.
    let (mut sink, mut stream) = flooder.ws.split();
    let watcher = tokio::spawn(async move {
        while let Some(Ok(message)) = stream.next().await {
            if let Message::Text(text) = message
                && text.contains(r#""type":"left""#)
                && text.contains("trickle is left.")
            {
                stop_tx.send_replace(true);
                return true;
            }
        }
        false
    });
    let text = "洪".repeat(2000);
    // Paced at a few MB/s: well above what `trickle` reads, far below the bytes bound's reach
    // before the timeout, even in a release build.
    let flood = tokio::spawn(async move {
        while sink.send(Message::text(text.as_str())).await.is_ok() {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    });
    // Alice and Bob chat on meanwhile, with no message held up for long.
    let started = Instant::now();
    let mut worst = Duration::ZERO;
    let mut n = 0;
    while !watcher.is_finished() {
        assert!(
            started.elapsed() < LONG,
            "the trickling reader is still connected"
        );
        let sent = Instant::now();
        still_chatting(&mut alice, &mut bob, &format!("lobby {n}")).await;
        worst = worst.max(sent.elapsed());
        n += 1;
    }
    assert!(
        watcher.await.unwrap(),
        "the flooder saw the trickling reader leave"
    );
    flood.abort();
    let close = tokio::time::timeout(LONG, reader)
        .await
        .expect("closed")
        .unwrap();
    assert_eq!(close, Some((1008, "too slow: could not keep up".into())));
    eprintln!(
        "closed after {:?}; lobby round trips {n}, worst {worst:?}",
        started.elapsed()
    );
    assert!(worst < Duration::from_secs(2), "lobby latency {worst:?}");
    assert_eq!(
        app.metric_becomes("passerby_slow_reader_disconnects_total", 1.0)
            .await,
        Some(1.0)
    );
}

/// A client of its own loopback address, so a crowd is not one address's connections.
async fn join_from(app: &TestApp, name: &str, room: &str, from: Ipv4Addr) -> Client {
    let cookie = app.sign_in(name).await;
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(IpAddr::V4(from), 0)).unwrap();
    let tcp = socket.connect(app.addr).await.unwrap();
    let mut request = app
        .ws_url(&format!("/ws?room={room}"))
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("Cookie", HeaderValue::from_str(&cookie).unwrap());
    let (ws, _) = tokio_tungstenite::client_async(request, MaybeTlsStream::Plain(tcp))
        .await
        .unwrap();
    Client { ws }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crowd_dropping_at_once_closes_no_healthy_reader() {
    const CROWD: usize = 200;
    const READERS: usize = 4;
    let app = spawn_with(|c| {
        c.outbound_queue = 16;
        c.sign_in_rate = 1e6;
        c.sign_in_burst = 1e6;
        // The lobby chats as fast as round trips go for as long as the lefts take.
        c.rate_limit = 1e6;
        c.rate_burst = 1e6;
        // The seed's one `left` per user, which this crowd would otherwise get summed up.
        c.big_rooms.big_room = 0;
    })
    .await;
    let (mut alice, mut bob) = two_chatting(&app).await;
    let mut readers = Vec::new();
    for n in 0..READERS {
        let mut reader = join_from(
            &app,
            &format!("reader{n}"),
            "crowd",
            Ipv4Addr::new(127, 0, 2, 1),
        )
        .await;
        for kind in ["join", "list", "history"] {
            reader.expect(kind).await;
        }
        readers.push(reader);
    }
    let mut crowd = Vec::new();
    for n in 0..CROWD {
        let from = Ipv4Addr::new(127, 0, 3, 1 + (n % 250) as u8);
        crowd.push(join_from(&app, &format!("crowd{n}"), "crowd", from).await);
    }
    // Each reader reads on its own, as a browser would; it counts joins, then lefts.
    let readers: Vec<_> = readers
        .into_iter()
        .enumerate()
        .map(|(n, mut reader)| {
            tokio::spawn(async move {
                let (mut joins, mut lefts) = (0, 0);
                let deadline = Instant::now() + LONG;
                while lefts < CROWD {
                    let left = deadline.saturating_duration_since(Instant::now());
                    let message = tokio::time::timeout(left, reader.ws.next()).await;
                    let text = match message {
                        Ok(Some(Ok(Message::Text(text)))) => text,
                        Ok(Some(Ok(Message::Close(frame)))) => {
                            panic!("reader{n} closed by the server: {frame:?}")
                        }
                        Ok(Some(Ok(_))) => continue,
                        other => panic!("reader{n} after {lefts} lefts: {other:?}"),
                    };
                    if text.contains(r#""type":"join""#) && text.contains("crowd") {
                        joins += 1;
                    } else if text.contains(r#""type":"left""#) && text.contains("crowd") {
                        lefts += 1;
                    }
                }
                (joins, lefts, reader)
            })
        })
        .collect();
    // Everyone in the crowd is in; then all their connections end at once.
    still_chatting(&mut alice, &mut bob, "crowd in").await;
    drop(crowd);
    // The lobby chats on while the crowd room takes its lefts.
    let mut n = 0;
    while readers.iter().any(|r| !r.is_finished()) {
        still_chatting(&mut alice, &mut bob, &format!("lobby {n}")).await;
        n += 1;
    }
    for reader in readers {
        let (joins, lefts, mut reader) = reader.await.unwrap();
        assert!(joins <= CROWD, "{joins} joins");
        assert_eq!(lefts, CROWD, "every left arrived");
        reader.say("still here").await;
        assert_eq!(reader.expect("chat").await["data"], "still here");
    }
    let metrics = app.metrics().await;
    assert_eq!(
        metric(&metrics, "passerby_slow_reader_disconnects_total"),
        Some(0.0)
    );
}
