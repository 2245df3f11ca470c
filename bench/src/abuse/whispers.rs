//! Whisper amplification: users each holding a silent socket in many rooms whisper to one
//! another in a loop. When a whisper was kept once per room either person was in, this grew
//! the history writer's queue and slowed every room; now it should cost one event each.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{
    Ctx,
    raw::{self, ATTACKER, TEXT},
};

const USERS: usize = 8;
/// Sockets per user, each in a room of its own: the default `--max-sockets-per-user`.
const ROOMS: usize = 16;
/// Whispers per second per user: the default `--rate-limit`, so none is refused for flooding.
const RATE: f64 = 10.0;
const HANDSHAKE: Duration = Duration::from_secs(10);

/// A user's first socket, which talks and is read, and the silent others.
struct Whisperer {
    id: u64,
    talker: raw::Upgraded,
    silent: Vec<raw::Upgraded>,
}

/// The user id in the `list` a fresh socket gets, reading until it comes.
async fn own_id(up: &mut raw::Upgraded) -> anyhow::Result<u64> {
    let deadline = Instant::now() + HANDSHAKE;
    loop {
        let (frames, _) = raw::server_frames(&up.seen);
        for (op, payload) in frames {
            let Ok(event) = serde_json::from_slice::<serde_json::Value>(payload) else {
                continue;
            };
            if op == TEXT && event["type"] == "list" {
                return event["user"]["id"]
                    .as_u64()
                    .ok_or_else(|| anyhow::anyhow!("a list without its user's id"));
            }
        }
        let mut buf = [0u8; 4096];
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, up.stream.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => up.seen.extend_from_slice(&buf[..n]),
            _ => anyhow::bail!("no list"),
        }
    }
}

async fn whisperer(ctx: &Ctx, n: usize) -> anyhow::Result<Whisperer> {
    let cookie = raw::sign_in(ctx.addr, ATTACKER, &format!("amp{n}")).await?;
    let upgrade = |room: usize| {
        let (cookie, room) = (cookie.clone(), format!("amp{n}x{room}"));
        async move {
            raw::upgrade(ctx.addr, &cookie, &room, HANDSHAKE)
                .await
                .map_err(anyhow::Error::msg)
        }
    };
    let mut talker = upgrade(0).await?;
    let id = own_id(&mut talker).await?;
    let mut silent = Vec::new();
    for room in 1..ROOMS {
        silent.push(upgrade(room).await?);
    }
    Ok(Whisperer { id, talker, silent })
}

/// `USERS` users with a socket in `ROOMS` rooms each whisper to the next user at the rate
/// limit; only the talking sockets are read.
pub async fn whispers(ctx: &Ctx) -> anyhow::Result<String> {
    let mut users = Vec::new();
    for n in 0..USERS {
        users.push(whisperer(ctx, n).await?);
    }
    let ids: Vec<u64> = users.iter().map(|u| u.id).collect();
    let mut silent = Vec::new();
    let mut talkers = Vec::new();
    let until = Instant::now() + ctx.secs(10.0);
    for (n, user) in users.into_iter().enumerate() {
        silent.extend(user.silent);
        let to = ids[(n + 1) % USERS];
        talkers.push(tokio::spawn(talk(user.talker, to, until)));
    }
    let mut sent = 0;
    for talker in talkers {
        sent += talker.await.unwrap_or(0);
    }
    let open = silent
        .iter_mut()
        .map(|up| raw::fate(&up.stream, &mut up.seen, true))
        .filter(|fate| matches!(fate, raw::Fate::Open))
        .count();
    Ok(format!(
        "{USERS} users × {ROOMS} rooms; {sent} whispers sent; {open} of {} silent sockets still open",
        silent.len()
    ))
}

/// Whispers to `to` at `RATE` until `until`, reading whatever comes back; how many it sent.
async fn talk(talker: raw::Upgraded, to: u64, until: Instant) -> u64 {
    let (mut read, mut write) = talker.stream.into_split();
    let drain = tokio::spawn(async move {
        let mut buf = vec![0u8; 64 * 1024];
        while matches!(read.read(&mut buf).await, Ok(n) if n > 0) {}
    });
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / RATE));
    let mut sent = 0;
    while Instant::now() < until {
        tick.tick().await;
        let text = format!(r#"{{"type":"private","to":{to},"data":"psst {sent}"}}"#);
        let frame = raw::frame(TEXT, true, text.as_bytes());
        if write.write_all(&frame).await.is_err() {
            break;
        }
        sent += 1;
    }
    drain.abort();
    sent
}
