//! Catch-up as a weapon: a room full of messages of 2 000 control characters (each escapes
//! to 12 KB of JSON), then sockets that never read ask for all of it with `?since=0`, and,
//! where the server pages history, sockets that never read page back through it.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt, stream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;

use super::{HANDSHAKE, address, error_key, event, open, users};
use crate::abuse::{
    Answer, Ctx, lock,
    raw::{self, ATTACKER, TEXT, Tally},
};

const ROOM: &str = "catchup";
/// Messages one user sends at once: the default rate burst.
const BURST: usize = 10;
/// Fill users per address: under the default sign-in burst (30).
const PER_ADDRESS: usize = 25;
/// Page requests each paging socket sends.
const PAGES: usize = 50;

/// The filled room: how many messages went in, and its newest id.
pub struct Room {
    messages: usize,
    newest: u64,
    /// What the server answered the fill, when not all went in.
    answers: Tally,
}

/// Fills the room: users from addresses of their own each send bursts of `BURST` messages
/// on a fresh socket (drained, so the server never counts them slow) a second apart.
pub async fn fill(ctx: &Ctx) -> anyhow::Result<Room> {
    let messages = ctx.n(10_000);
    let bursts = messages.div_ceil(BURST);
    // As many users as bursts, up to 100: a small fill waits for no one's rate limit.
    let n_users = bursts.clamp(1, 100);
    let mut signed = Vec::new();
    for g in 0..n_users.div_ceil(PER_ADDRESS) {
        let from = address(2, g);
        let count = PER_ADDRESS.min(n_users - g * PER_ADDRESS);
        for (cookie, _) in users(ctx.addr, from, &format!("filler{g}-"), count).await? {
            signed.push((from, cookie));
        }
    }
    let text = raw::frame(TEXT, true, &[1u8; 2000]);
    let burst = text.repeat(BURST);
    let close = raw::frame(super::CLOSE, true, &1000u16.to_be_bytes());
    let addr = ctx.addr;
    let per_user: Vec<usize> = (0..n_users)
        .map(|u| bursts / n_users + usize::from(u < bursts % n_users))
        .collect();
    let answers = &std::sync::Mutex::new(Tally::default());
    stream::iter(signed.into_iter().zip(per_user))
        .for_each_concurrent(None, |((from, cookie), times)| {
            let (burst, close) = (&burst, &close);
            async move {
                for i in 0..times {
                    if i > 0 {
                        tokio::time::sleep(Duration::from_millis(1050)).await;
                    }
                    let mut up = match raw::upgrade_from(from, addr, &cookie, ROOM, HANDSHAKE).await
                    {
                        Ok(up) => up,
                        Err(why) => {
                            lock(answers).add(why);
                            continue;
                        }
                    };
                    let _ = up.stream.write_all(burst).await;
                    let _ = up.stream.write_all(close).await;
                    // Read to the end: the server has taken the burst when it closes, and
                    // its refusals (a busy writer) are among what it sent.
                    let mut buf = vec![0u8; 64 * 1024];
                    let _ = tokio::time::timeout(Duration::from_secs(10), async {
                        while let Ok(n) = up.stream.read(&mut buf).await {
                            if n == 0 {
                                break;
                            }
                            up.seen.extend_from_slice(&buf[..n]);
                        }
                    })
                    .await;
                    let (frames, _) = raw::server_frames(&up.seen);
                    for (op, payload) in frames {
                        let text = std::str::from_utf8(payload).unwrap_or_default();
                        match (op, event(text)) {
                            (1, Some((kind, v))) if kind == "error" => {
                                lock(answers).add(error_key(&v))
                            }
                            (8, _) => {
                                let code = payload
                                    .get(..2)
                                    .map_or(1005, |c| u16::from_be_bytes([c[0], c[1]]));
                                if code != 1000 {
                                    lock(answers).add(format!("close {code}"));
                                }
                            }
                            _ => {}
                        }
                    }
                }
            }
        })
        .await;
    // The newest id, from what a newcomer is sent.
    let (cookie, _) = users(ctx.addr, ATTACKER, "counter", 1).await?.remove(0);
    let mut ws = open(ctx.addr, ATTACKER, &cookie, ROOM).await?;
    let mut newest = 0;
    let _ = tokio::time::timeout(HANDSHAKE, async {
        while let Some(Ok(Message::Text(text))) = ws.next().await {
            if let Some((kind, v)) = event(&text) {
                newest = newest.max(v.get("id").and_then(|i| i.as_u64()).unwrap_or(0));
                if kind == "history" {
                    break;
                }
            }
        }
    })
    .await;
    let _ = ws.close(None).await;
    let answers = lock(answers).clone();
    Ok(Room {
        messages,
        newest,
        answers,
    })
}

/// Does the server page history? Asks once on a reading socket: `Ok` with nothing when a
/// page came back, `Err` with what the server answered otherwise.
async fn pages(ctx: &Ctx, cookie: &str, before: u64) -> anyhow::Result<Result<(), String>> {
    let mut ws = open(ctx.addr, ATTACKER, cookie, ROOM).await?;
    let ask = serde_json::json!({"type": "history", "before": before.max(1)});
    ws.send(Message::text(ask.to_string())).await?;
    let answer = tokio::time::timeout(HANDSHAKE, async {
        while let Some(Ok(message)) = ws.next().await {
            if let Message::Text(text) = message
                && let Some((kind, v)) = event(&text)
            {
                if kind == "history" && v.get("before").is_some() {
                    return Ok(());
                }
                if kind == "error" {
                    return Err(error_key(&v));
                }
            }
        }
        Err("closed".to_owned())
    })
    .await
    .unwrap_or_else(|_| Err("no answer".to_owned()));
    let _ = ws.close(None).await;
    Ok(answer)
}

/// Opens `n` sockets of the `cookies`' users (12 each) to `query`, and writes `then` on each.
async fn silent(
    ctx: &Ctx,
    cookies: &[String],
    n: usize,
    query: &str,
    then: &[u8],
) -> (Vec<raw::Upgraded>, Tally) {
    let opened: Vec<_> = stream::iter(0..n)
        .map(|i| async move {
            let mut up = raw::upgrade(ctx.addr, &cookies[i / 12], query, HANDSHAKE).await?;
            if !then.is_empty() {
                up.stream.write_all(then).await.map_err(raw::short)?;
            }
            Ok::<_, String>(up)
        })
        .buffer_unordered(32)
        .collect()
        .await;
    let (mut held, mut refused) = (Vec::new(), Tally::default());
    for o in opened {
        match o {
            Ok(up) => held.push(up),
            Err(why) => refused.add(why),
        }
    }
    (held, refused)
}

pub async fn run(ctx: &Ctx, room: Room) -> anyhow::Result<Answer> {
    let n = ctx.n(24);
    // Users of 12 sockets each (the cap is 16) for each half, and one to ask for a page.
    let k = n.div_ceil(12);
    let cookies: Vec<String> = users(ctx.addr, ATTACKER, "reader", 2 * k + 1)
        .await?
        .into_iter()
        .map(|(c, _)| c)
        .collect();
    let (mut held, refused) = silent(ctx, &cookies[..k], n, &format!("{ROOM}&since=0"), &[]).await;
    let paging = pages(ctx, &cookies[2 * k], room.newest + 1).await?;
    let mut paged = None;
    if paging.is_ok() {
        // Each socket walks back from the newest id, never reading a page.
        let asks: Vec<u8> = (0..PAGES as u64)
            .flat_map(|i| {
                let before = room.newest.saturating_sub(i * 100).max(1);
                let ask = serde_json::json!({"type": "history", "before": before}).to_string();
                raw::frame(TEXT, true, ask.as_bytes())
            })
            .collect();
        paged = Some(silent(ctx, &cookies[k..2 * k], n, ROOM, &asks).await);
    }
    tokio::time::sleep(ctx.secs(10.0)).await;
    let fates = |held: &mut Vec<raw::Upgraded>| {
        let f: Vec<_> = held
            .iter_mut()
            .map(|up| raw::fate(&up.stream, &mut up.seen, true))
            .collect();
        Tally::of_fates(&f)
    };
    let mut text = format!(
        "{} messages × 12 KB sent{}, ids to {}; {} of {n} since=0 sockets upgraded",
        room.messages,
        if room.answers.0.is_empty() {
            String::new()
        } else {
            format!(" ({})", room.answers)
        },
        room.newest,
        held.len()
    );
    if !refused.0.is_empty() {
        text.push_str(&format!(" (refused: {refused})"));
    }
    text.push_str(&format!(", never reading, then {}", fates(&mut held)));
    match (paging, paged) {
        (Err(answer), _) => text.push_str(&format!("; no paging ({answer})")),
        (Ok(()), Some((mut held, refused))) => {
            text.push_str(&format!(
                "; {} of {n} sockets paging back {PAGES} pages each, never reading",
                held.len()
            ));
            if !refused.0.is_empty() {
                text.push_str(&format!(" (refused: {refused})"));
            }
            text.push_str(&format!(", then {}", fates(&mut held)));
        }
        (Ok(()), None) => {}
    }
    Ok(text.into())
}
