//! The WebSocket's bounds, driven with raw frames where a well-behaved client library would
//! not misbehave: ping floods, fragments around control frames, messages over the limit.

use std::time::Duration;

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{
        TcpSocket,
        tcp::{OwnedReadHalf, OwnedWriteHalf},
    },
};

use crate::helpers::{TestApp, WAIT, spawn_with, two_chatting};

const TEXT: u8 = 0x1;
const CONTINUATION: u8 = 0x0;
const PING: u8 = 0x9;
const PONG: u8 = 0xA;

/// A masked client frame.
fn frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [0x5A, 0xA5, 0x3C, 0xC3];
    let mut out = vec![(u8::from(fin) << 7) | opcode];
    match payload.len() {
        n if n < 126 => out.push(0x80 | n as u8),
        n => {
            out.push(0x80 | 126);
            out.extend_from_slice(&u16::try_from(n).unwrap().to_be_bytes());
        }
    }
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    out
}

/// A WebSocket client over a bare TCP stream, upgraded by hand: the reading half, and the
/// writing half to send any bytes at all.
struct Raw {
    read: OwnedReadHalf,
    buf: Vec<u8>,
}

impl Raw {
    /// Signs in and upgrades; `small_buffers` asks the kernel for small socket buffers, so a
    /// flood reaches its bound after kilobytes, not megabytes.
    async fn join(app: &TestApp, name: &str, small_buffers: bool) -> (Raw, OwnedWriteHalf) {
        let cookie = app.sign_in(name).await;
        let socket = TcpSocket::new_v4().unwrap();
        if small_buffers {
            // Not below the loopback segment size (64 KiB) for receiving: a window that never
            // opens by a full segment leaves the peer to probe, with backoff, for seconds.
            socket.set_recv_buffer_size(128 * 1024).unwrap();
            socket.set_send_buffer_size(4096).unwrap();
        }
        let stream = socket.connect(app.addr).await.unwrap();
        let (read, mut write) = stream.into_split();
        let request = format!(
            "GET /ws HTTP/1.1\r\nHost: {}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
             Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
             Cookie: {cookie}\r\n\r\n",
            app.addr
        );
        write.write_all(request.as_bytes()).await.unwrap();
        let mut raw = Raw {
            read,
            buf: Vec::new(),
        };
        while !raw.buf.windows(4).any(|w| w == b"\r\n\r\n") {
            raw.read_more().await;
        }
        let end = raw.buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        assert!(raw.buf.starts_with(b"HTTP/1.1 101"), "upgraded");
        raw.buf.drain(..end);
        for kind in ["join", "list", "history"] {
            assert!(raw.next_text().await.contains(kind));
        }
        (raw, write)
    }

    async fn read_more(&mut self) {
        let mut chunk = [0u8; 8192];
        // Longer than `WAIT`: a flood's pongs come after megabytes of pings on a busy machine.
        let n = tokio::time::timeout(WAIT * 6, self.read.read(&mut chunk))
            .await
            .expect("bytes within the wait")
            .expect("readable");
        assert!(n > 0, "the server closed the connection");
        self.buf.extend_from_slice(&chunk[..n]);
    }

    /// The next server frame: its opcode and payload.
    async fn next_frame(&mut self) -> (u8, Vec<u8>) {
        loop {
            if self.buf.len() >= 2 {
                let (len, at) = match self.buf[1] {
                    126 if self.buf.len() >= 4 => (
                        usize::from(u16::from_be_bytes([self.buf[2], self.buf[3]])),
                        4,
                    ),
                    126 | 127 => (usize::MAX, 0),
                    n => (usize::from(n), 2),
                };
                if at > 0 && self.buf.len() >= at + len {
                    let opcode = self.buf[0] & 0x0F;
                    let payload = self.buf[at..at + len].to_vec();
                    self.buf.drain(..at + len);
                    return (opcode, payload);
                }
            }
            self.read_more().await;
        }
    }

    /// The next text frame, skipping pings and pongs.
    async fn next_text(&mut self) -> String {
        loop {
            match self.next_frame().await {
                (TEXT, payload) => return String::from_utf8(payload).unwrap(),
                (PING | PONG, _) => continue,
                (opcode, payload) => panic!("unexpected frame {opcode}: {payload:?}"),
            }
        }
    }
}

/// Writes until the server stops reading for a while; the bytes written.
async fn write_until_stalled(write: &mut OwnedWriteHalf, bytes: &[u8]) -> usize {
    let mut sent = 0;
    while sent < bytes.len() {
        // `write` is cancel-safe: when it times out, nothing of this call was written.
        match tokio::time::timeout(Duration::from_secs(2), write.write(&bytes[sent..])).await {
            Ok(Ok(written)) => sent += written,
            // The server stopped reading (or closed): what it has to answer waits in the kernel.
            Ok(Err(_)) | Err(_) => break,
        }
    }
    sent
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ping_flood_from_a_client_that_never_reads_is_not_read_on() {
    let app = spawn_with(|_| {}).await;
    let (mut alice, mut bob) = two_chatting(&app).await;
    let (mut pinger, mut write) = Raw::join(&app, "pinger", true).await;
    alice.expect("join").await;
    // 100 000 pings of 125 bytes: 12.5 MiB of pongs if the server answered them all.
    let flood: Vec<u8> = (0..100_000)
        .flat_map(|_| frame(true, PING, &[7; 125]))
        .collect();
    let sent = write_until_stalled(&mut write, &flood).await;
    assert!(
        sent < flood.len() / 2,
        "the server read on: {sent} of {} bytes went through",
        flood.len()
    );
    // Meanwhile the room is fine.
    for n in 0..5 {
        bob.say(&format!("still here {n}")).await;
        assert_eq!(
            alice.expect("chat").await["data"],
            format!("still here {n}")
        );
    }
    // Once the pinger reads, the rest of its flood goes through and its socket still works.
    let reader = tokio::spawn(async move {
        let mut pongs = 0u32;
        loop {
            match pinger.next_frame().await {
                (PONG, _) => pongs += 1,
                (TEXT, text) if text.windows(4).any(|w| w == b"done") => return pongs,
                (0x8, payload) => panic!("closed: {}", String::from_utf8_lossy(&payload)),
                _ => {}
            }
        }
    });
    let through =
        tokio::time::timeout(Duration::from_secs(60), write.write_all(&flood[sent..])).await;
    assert!(
        through.is_ok(),
        "the flood goes through once the pinger reads; reader finished: {}",
        reader.is_finished()
    );
    write.write_all(&frame(true, TEXT, b"done")).await.unwrap();
    let pongs = tokio::time::timeout(Duration::from_secs(60), reader)
        .await
        .expect("the pinger's own chat comes back")
        .unwrap();
    assert!(pongs > 0 && pongs <= 100_000, "{pongs} pongs");
    assert_eq!(alice.expect("chat").await["data"], "done");
}

#[tokio::test]
async fn a_ping_between_fragments_of_a_message_of_the_limit_is_answered() {
    let app = spawn_with(|c| c.max_ws_message_bytes = 1024).await;
    let (mut alice, _) = app.join("alice").await;
    let (mut raw, mut write) = Raw::join(&app, "raw", false).await;
    alice.expect("join").await;
    let text = "a".repeat(1024);
    let mut bytes = frame(false, TEXT, &text.as_bytes()[..1000]);
    bytes.extend(frame(true, PING, b"between"));
    bytes.extend(frame(true, CONTINUATION, &text.as_bytes()[1000..]));
    write.write_all(&bytes).await.unwrap();
    assert_eq!(raw.next_frame().await, (PONG, b"between".to_vec()));
    assert_eq!(alice.expect("chat").await["data"], text);
}

#[tokio::test]
async fn a_message_over_the_limit_is_closed_with_1009_while_others_chat() {
    let app = spawn_with(|c| c.max_ws_message_bytes = 1024).await;
    let (mut alice, mut bob) = two_chatting(&app).await;
    let (mut raw, mut write) = Raw::join(&app, "raw", false).await;
    alice.expect("join").await;
    bob.expect("join").await;
    // Fragments that add up to one byte over: refused from the last fragment's header.
    let mut bytes = frame(false, TEXT, &[b'a'; 1000]);
    bytes.extend(frame(true, CONTINUATION, &[b'a'; 25])[..8].iter());
    write.write_all(&bytes).await.unwrap();
    let (opcode, payload) = raw.next_frame().await;
    assert_eq!((opcode, &payload[..2]), (0x8, &1009u16.to_be_bytes()[..]));
    assert_eq!(alice.expect("left").await["data"], "raw is left.");
    bob.say("still chatting").await;
    assert_eq!(alice.expect("chat").await["data"], "still chatting");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pinger_that_never_reads_is_closed_while_others_chat() {
    // Long enough for alice to answer pings on a busy machine; the pings she gets keep her
    // waits below going until the pinger's two stalled ticks.
    let app = spawn_with(|c| c.ping_interval = Duration::from_secs(2)).await;
    // alice reads all along, so she answers pings and stays.
    let (mut alice, _) = app.join("alice").await;
    let (_pinger, mut write) = Raw::join(&app, "pinger", true).await;
    alice.expect("join").await;
    let flood: Vec<u8> = (0..100_000)
        .flat_map(|_| frame(true, PING, &[7; 125]))
        .collect();
    let flooding = tokio::spawn(async move { write_until_stalled(&mut write, &flood).await });
    // Its writes stall, then the server's ticks close it (1008, or silent for two pings).
    assert_eq!(alice.expect("left").await["data"], "pinger is left.");
    alice.say("after the flood").await;
    assert_eq!(alice.expect("chat").await["data"], "after the flood");
    flooding.await.unwrap();
}
