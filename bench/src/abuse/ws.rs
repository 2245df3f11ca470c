//! The WebSocket attacks: pings never read, many tabs of one user, partial messages held open,
//! and a flood of invalid commands. Each returns how the server answered.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering::Relaxed},
    },
    time::{Duration, Instant},
};

use futures_util::{StreamExt, stream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{
    Ctx,
    raw::{self, ATTACKER, Fate, PING, TEXT, Tally},
};

/// How long a write may wait before the server counts as no longer reading.
const STALL: Duration = Duration::from_secs(2);
const HANDSHAKE: Duration = Duration::from_secs(10);

async fn attacker(ctx: &Ctx) -> anyhow::Result<String> {
    raw::sign_in(ctx.addr, ATTACKER, "mallory").await
}

/// One socket sends empty pings as fast as it can and never reads, then leaves.
pub async fn pings(ctx: &Ctx) -> anyhow::Result<String> {
    let total = ctx.n(5_000_000);
    let cookie = attacker(ctx).await?;
    let mut ws = raw::upgrade(ctx.addr, &cookie, "lobby", HANDSHAKE)
        .await
        .map_err(anyhow::Error::msg)?;
    const PER_WRITE: usize = 10_000;
    let batch: Vec<u8> = raw::frame(PING, true, b"").repeat(PER_WRITE);
    let deadline = Instant::now() + ctx.secs(20.0);
    let (mut sent, mut how) = (0, None);
    while sent < total {
        let n = PER_WRITE.min(total - sent);
        let write = ws.stream.write_all(&batch[..n * 6]);
        match tokio::time::timeout(STALL, write).await {
            Ok(Ok(())) => sent += n,
            Ok(Err(e)) => {
                how = Some(format!("closed ({}) after {sent} pings", raw::short(e)));
                break;
            }
            Err(_) => {
                how = Some(format!("stopped reading after {sent} pings"));
                break;
            }
        }
        if Instant::now() > deadline {
            how = Some(format!("{sent} pings sent in the time allowed"));
            break;
        }
    }
    // Never read: the pongs pile up wherever the server keeps them.
    tokio::time::sleep(ctx.secs(1.0)).await;
    let fate = raw::fate(&ws.stream, &mut ws.seen, true);
    let how = how.unwrap_or_else(|| format!("all {sent} pings taken"));
    Ok(format!("{how}; socket then {}", describe(&fate)))
}

fn describe(fate: &Fate) -> String {
    match fate {
        Fate::Open => "open".into(),
        Fate::Answered(a) => a.clone(),
        Fate::Closed => "closed".into(),
    }
}

/// Opens `n` sockets with one cookie, `concurrency` at a time; then, after a moment, how
/// each ended up. `then` runs on each upgraded socket first.
async fn many_sockets<F, Fut>(
    ctx: &Ctx,
    n: usize,
    room: &str,
    then: F,
) -> anyhow::Result<(Tally, Tally)>
where
    F: Fn(raw::Upgraded) -> Fut,
    Fut: std::future::Future<Output = Option<raw::Upgraded>>,
{
    let cookie = attacker(ctx).await?;
    let mut refused = Tally::default();
    let mut held = Vec::new();
    let results: Vec<Result<raw::Upgraded, String>> = stream::iter(0..n)
        .map(|_| raw::upgrade(ctx.addr, &cookie, room, HANDSHAKE))
        .buffer_unordered(128)
        .collect()
        .await;
    for r in results {
        match r {
            Ok(up) => match then(up).await {
                Some(up) => held.push(up),
                None => refused.add("write failed"),
            },
            Err(why) => refused.add(why),
        }
    }
    tokio::time::sleep(ctx.secs(2.0)).await;
    let fates: Vec<Fate> = held
        .iter_mut()
        .map(|up| raw::fate(&up.stream, &mut up.seen, true))
        .collect();
    Ok((refused, Tally::of_fates(&fates)))
}

fn summary(n: usize, refused: &Tally, held: &Tally) -> String {
    let upgraded = held.0.values().sum::<usize>();
    let mut out = format!("{upgraded} of {n} upgraded");
    if !refused.0.is_empty() {
        out.push_str(&format!(" (refused: {refused})"));
    }
    out.push_str(&format!("; then {held}"));
    out
}

/// 9 000 sockets for one user, the cookie reused.
pub async fn tabs(ctx: &Ctx) -> anyhow::Result<String> {
    let n = ctx.n(9_000);
    let (refused, held) = many_sockets(ctx, n, "tabs", |up| async { Some(up) }).await?;
    Ok(summary(n, &refused, &held))
}

/// 4 000 sockets, each sending the first 63 KiB fragment of a text message and no more.
pub async fn partials(ctx: &Ctx) -> anyhow::Result<String> {
    let n = ctx.n(4_000);
    let fragment = Arc::new(raw::frame(TEXT, false, &[b'a'; 63 * 1024]));
    let (refused, held) = many_sockets(ctx, n, "partial", |mut up| {
        let fragment = fragment.clone();
        async move {
            let write = up.stream.write_all(&fragment);
            match tokio::time::timeout(STALL, write).await {
                Ok(Ok(())) => Some(up),
                _ => None,
            }
        }
    })
    .await?;
    Ok(summary(n, &refused, &held))
}

/// One user sends invalid commands as fast as it can, and reads the answers.
pub async fn commands(ctx: &Ctx) -> anyhow::Result<String> {
    let total = ctx.n(1_000_000);
    let cookie = attacker(ctx).await?;
    let up = raw::upgrade(ctx.addr, &cookie, "lobby", HANDSHAKE)
        .await
        .map_err(anyhow::Error::msg)?;
    let (mut read, mut write) = up.stream.into_split();
    let answers = Arc::new(AtomicU64::new(0));
    let counted = answers.clone();
    let read_some = Arc::new(tokio::sync::Notify::new());
    let woken = read_some.clone();
    let mut pending = up.seen;
    // Counts the server's text frames (answers) and stops at its close frame.
    let reader = tokio::spawn(async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let (frames, used) = raw::server_frames(&pending);
            let mut close = None;
            for (op, payload) in &frames {
                match op {
                    1 => {
                        counted.fetch_add(1, Relaxed);
                    }
                    8 => {
                        close = Some(
                            payload
                                .get(..2)
                                .map_or(1005, |c| u16::from_be_bytes([c[0], c[1]])),
                        )
                    }
                    _ => {}
                }
            }
            if close.is_some() {
                return close;
            }
            pending.drain(..used);
            woken.notify_one();
            match read.read(&mut buf).await {
                Ok(0) | Err(_) => return None,
                Ok(n) => pending.extend_from_slice(&buf[..n]),
            }
        }
    });
    // A window of unanswered commands, as a client that reads its answers keeps: the flood
    // then meets the refusal rules, not the slow-reader rule.
    const PER_WRITE: usize = 64;
    const WINDOW: u64 = 192;
    let one = raw::frame(TEXT, true, br#"{"type":"nope"}"#);
    let batch = one.repeat(PER_WRITE);
    let deadline = Instant::now() + ctx.secs(15.0);
    let start = Instant::now();
    let (mut sent, mut how) = (0, None);
    while sent < total && Instant::now() < deadline && !reader.is_finished() {
        if sent as u64 > answers.load(Relaxed) + WINDOW {
            let _ = tokio::time::timeout(STALL, read_some.notified()).await;
            continue;
        }
        let n = PER_WRITE.min(total - sent);
        match tokio::time::timeout(STALL, write.write_all(&batch[..n * one.len()])).await {
            Ok(Ok(())) => sent += n,
            Ok(Err(e)) => {
                how = Some(format!("write failed ({})", raw::short(e)));
                break;
            }
            Err(_) => {
                how = Some("server stopped reading".to_owned());
                break;
            }
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let closed = tokio::time::timeout(ctx.secs(2.0), reader)
        .await
        .ok()
        .and_then(|r| r.ok())
        .flatten();
    let got = answers.load(Relaxed);
    let end = match (closed, how) {
        (Some(code), _) => format!("closed {code} after {got} answers"),
        (None, Some(how)) => format!("{how}, {got} answers"),
        (None, None) => format!("{got} answers, still open"),
    };
    Ok(format!("{sent} sent in {secs:.1} s; {end}"))
}
