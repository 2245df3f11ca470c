//! `WsSocket` over in-memory pipes: pongs, backpressure, the close handshake.

use super::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt, duplex};

use crate::ws::decode::tests::client_with;

fn masked(payload: &[u8]) -> Vec<u8> {
    let mut out = vec![0x81, 0x80 | payload.len() as u8, 1, 2, 3, 4];
    out.extend(
        payload
            .iter()
            .enumerate()
            .map(|(i, b)| b ^ [1, 2, 3, 4][i % 4]),
    );
    out
}

#[tokio::test]
async fn reads_messages_split_across_reads_and_frees_the_buffer() {
    let (mut client, server) = duplex(64);
    let mut socket = WsSocket::new(server, frame::MAX_MESSAGE_BYTES);
    let bytes = [masked(b"one"), masked(b"two")].concat();
    client.write_all(&bytes[..5]).await.unwrap();
    let reader = tokio::spawn(async move {
        let a = socket.next().await.unwrap().unwrap();
        let b = socket.next().await.unwrap().unwrap();
        (a, b, socket.read_buf.capacity())
    });
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    client.write_all(&bytes[5..]).await.unwrap();
    let (a, b, capacity) = reader.await.unwrap();
    assert_eq!(a, Incoming::Text("one".into()));
    assert_eq!(b, Incoming::Text("two".into()));
    assert_eq!(capacity, 0);
}

#[tokio::test]
async fn flush_writes_queued_frames_in_order_through_a_narrow_pipe() {
    let (mut client, server) = duplex(7);
    let mut socket = WsSocket::new(server, frame::MAX_MESSAGE_BYTES);
    let frames: Vec<WireFrame> = (0..50)
        .map(|i| frame::text(|b| b.extend_from_slice(format!("frame {i}").as_bytes())))
        .collect();
    let expected: Vec<u8> = frames.iter().flat_map(|f| f.to_vec()).collect();
    for f in &frames {
        socket.queue(f.clone());
    }
    let writer = tokio::spawn(async move {
        socket.flush().await.unwrap();
        socket.written()
    });
    let mut got = vec![0; expected.len()];
    client.read_exact(&mut got).await.unwrap();
    assert_eq!(got, expected);
    assert_eq!(writer.await.unwrap(), expected.len() as u64);
}

#[tokio::test]
async fn chunks_of_many_frames_go_out_whole_through_a_narrow_pipe() {
    let (mut client, server) = duplex(5);
    let mut socket = WsSocket::new(server, frame::MAX_MESSAGE_BYTES);
    let chunk: Chunk = (0..100)
        .map(|i| frame::text(|b| b.extend_from_slice(format!("f{i}").as_bytes())))
        .collect();
    let expected: Vec<u8> = chunk.iter().flat_map(|f| f.to_vec()).collect();
    socket.queue_mut().push_back(chunk.clone());
    socket.queue_mut().push_back(chunk);
    let writer = tokio::spawn(async move { socket.flush().await });
    let mut got = vec![0; 2 * expected.len()];
    client.read_exact(&mut got).await.unwrap();
    writer.await.unwrap().unwrap();
    assert_eq!(got, [expected.clone(), expected].concat());
}

#[tokio::test]
async fn discarding_keeps_a_partly_written_frame_whole() {
    let (mut client, server) = duplex(3);
    let mut socket = WsSocket::new(server, frame::MAX_MESSAGE_BYTES);
    socket.queue(frame::text(|b| b.extend_from_slice(b"hello")));
    socket.queue(frame::text(|b| b.extend_from_slice(b"dropped")));
    let mut cx = Context::from_waker(std::task::Waker::noop());
    assert!(socket.poll_flush(&mut cx).is_pending());
    socket.discard_queued();
    socket.queue(frame::close(1008, "slow"));
    let writer = tokio::spawn(async move { socket.flush().await });
    let mut got = Vec::new();
    let mut buf = [0u8; 64];
    while got.len() < 7 + 8 {
        let n = client.read(&mut buf).await.unwrap();
        got.extend_from_slice(&buf[..n]);
    }
    writer.await.unwrap().unwrap();
    assert_eq!(&got[..7], &[0x81, 5, b'h', b'e', b'l', b'l', b'o']);
    assert_eq!(&got[7..11], &[0x88, 6, 0x03, 0xF0]);
}

/// Frames queued or pending on the socket.
fn frames_waiting<T>(socket: &WsSocket<T>) -> usize {
    socket.writes.iter().map(|chunk| chunk.len()).sum::<usize>()
        + usize::from(socket.pong.is_some())
}

#[tokio::test]
async fn a_ping_flood_from_a_client_that_does_not_read_leaves_one_pending_pong() {
    let (client, server) = duplex(256);
    let (mut client_read, mut client_write) = tokio::io::split(client);
    let mut socket = WsSocket::new(server, 1000);
    let pings: u32 = 20_000;
    let writer = tokio::spawn(async move {
        for i in 0..pings {
            let ping = client_with(true, 0x9, &i.to_be_bytes(), [9, 8, 7, 6]);
            client_write.write_all(&ping).await.unwrap();
        }
    });
    let mut cx = Context::from_waker(std::task::Waker::noop());
    let mut most = 0;
    for i in 0..pings {
        let message = socket.next().await.unwrap().unwrap();
        assert_eq!(message, Incoming::Ping(i.to_be_bytes().to_vec()));
        socket.pong(&i.to_be_bytes());
        // The pipe fills after a few dozen pongs: from then on every flush is blocked.
        let _ = socket.poll_flush(&mut cx);
        most = most.max(frames_waiting(&socket));
    }
    writer.await.unwrap();
    assert!(most <= 2, "{most} frames waited");
    // Now the client reads: what fitted in the pipe, then the answer to the last ping.
    let flushing = tokio::spawn(async move { socket.flush().await });
    let mut got = Vec::new();
    let last = [0x8A, 4, 0, 0, 0x4E, 0x1F]; // pong 19 999
    while !got.ends_with(&last) {
        let mut buf = [0u8; 512];
        let n = client_read.read(&mut buf).await.unwrap();
        assert!(n > 0);
        got.extend_from_slice(&buf[..n]);
    }
    flushing.await.unwrap().unwrap();
    let pongs = got.len() / last.len();
    assert!(pongs < 60, "{pongs} pongs for {pings} pings");
}

#[tokio::test]
async fn close_after_a_decode_error_skips_later_frames_to_the_client_close() {
    let (client, server) = duplex(4096);
    let (mut client_read, mut client_write) = tokio::io::split(client);
    let mut socket = WsSocket::new(server, 100);
    let bad = client_with(true, 0x1, &[0xFF; 10], [1, 2, 3, 4]);
    client_write.write_all(&bad).await.unwrap();
    let error = socket.next().await.unwrap().unwrap_err();
    assert!(matches!(error, ReadError::Frame(FrameError::InvalidUtf8)));
    let started = std::time::Instant::now();
    let closing = tokio::spawn(async move {
        socket
            .close(1007, "invalid UTF-8", std::time::Duration::from_secs(30))
            .await;
    });
    let mut ours = [0u8; 4];
    client_read.read_exact(&mut ours).await.unwrap();
    assert_eq!(ours, [0x88, 15, 0x03, 0xEF]);
    // Frames after the error, one far over the limit, are skipped, not refused or kept.
    let big = client_with(true, 0x1, &vec![b'a'; 200_000], [5, 6, 7, 8]);
    client_write.write_all(&big).await.unwrap();
    client_write
        .write_all(&client_with(
            true,
            0x8,
            &1007u16.to_be_bytes(),
            [1, 1, 1, 1],
        ))
        .await
        .unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(5), closing)
        .await
        .expect("the close ends with the client's close, not the grace")
        .unwrap();
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}

#[tokio::test]
async fn close_after_lost_framing_ends_with_the_connection() {
    let (mut client, server) = duplex(4096);
    let mut socket = WsSocket::new(server, 100);
    client
        .write_all(&[0x81, 0xFF, 0xFF, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4])
        .await
        .unwrap();
    assert!(socket.next().await.unwrap().is_err());
    let closing = tokio::spawn(async move {
        socket
            .close(1002, "bad length", std::time::Duration::from_secs(30))
            .await;
    });
    let mut ours = [0u8; 2];
    client.read_exact(&mut ours).await.unwrap();
    client.write_all(&[0x88, 0x80, 0, 0, 0, 0]).await.unwrap();
    drop(client);
    tokio::time::timeout(std::time::Duration::from_secs(5), closing)
        .await
        .expect("the end of the connection ends the close")
        .unwrap();
}

#[tokio::test]
async fn unwritten_counts_what_is_left_of_a_partly_written_chunk() {
    let (mut client, server) = duplex(5);
    let mut socket = WsSocket::new(server, frame::MAX_MESSAGE_BYTES);
    let chunk: Chunk = (0..10)
        .map(|i| frame::text(|b| b.extend_from_slice(format!("f{i}").as_bytes())))
        .collect();
    let total: usize = chunk.iter().map(|f| f.len()).sum();
    socket.queue_mut().push_back(chunk);
    assert_eq!(socket.unwritten(), total as u64);
    // The pipe takes five bytes: a frame and a bit of the next.
    let polled = poll_fn(|cx| Poll::Ready(socket.poll_flush(cx))).await;
    assert!(polled.is_pending());
    assert_eq!(socket.written(), 5);
    assert_eq!(socket.unwritten(), total as u64 - 5);
    let mut got = vec![0; 5];
    client.read_exact(&mut got).await.unwrap();
}

#[tokio::test]
async fn a_written_burst_leaves_no_burst_sized_queue_behind() {
    let (mut client, server) = duplex(64 * 1024);
    let mut socket = WsSocket::new(server, frame::MAX_MESSAGE_BYTES);
    // A room's worth of joins queued before the socket's turn: one chunk each.
    for i in 0..200 {
        socket.queue(frame::text(|b| {
            b.extend_from_slice(format!("join {i}").as_bytes())
        }));
    }
    assert!(socket.writes.capacity() >= 200);
    let reader = tokio::spawn(async move {
        let mut sink = Vec::new();
        let _ = client.read_to_end(&mut sink).await;
    });
    socket.flush().await.unwrap();
    assert!(
        socket.writes.capacity() <= KEEP_QUEUED,
        "kept room for {} chunks",
        socket.writes.capacity()
    );
    drop(socket);
    reader.await.unwrap();
}
