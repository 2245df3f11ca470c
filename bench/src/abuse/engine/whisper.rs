//! Whisper amplification: a few users each hold a silent socket (never read) in many rooms
//! and whisper to each other in a loop, from one reading socket each. Before the fix, each
//! whisper was stored once per room either of the pair was in.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering::Relaxed},
    },
    time::{Duration, Instant},
};

use futures_util::{SinkExt, StreamExt, stream};
use tokio_tungstenite::tungstenite::Message;

use super::{HANDSHAKE, error_key, event, open, users};
use crate::abuse::{
    Answer, Ctx,
    raw::{self, ATTACKER, Tally},
};

/// Whispers a second per user, under the default rate limit (10): the attack wants them
/// stored, not refused.
const RATE: f64 = 9.0;

#[derive(Default)]
struct Counts {
    sent: AtomicU64,
    came_back: AtomicU64,
    answers: Mutex<Tally>,
}

pub async fn run(ctx: &Ctx) -> anyhow::Result<Answer> {
    let (n_users, rooms) = (ctx.n(8).max(2), ctx.n(1500));
    let signed = users(ctx.addr, ATTACKER, "whisperer", n_users).await?;
    // The talking sockets first, so the per-user cap refuses silent ones, not them.
    let mut talkers = Vec::with_capacity(n_users);
    for (cookie, _) in &signed {
        talkers.push(open(ctx.addr, ATTACKER, cookie, "whisper").await?);
    }
    let attempts: Vec<_> = stream::iter((0..rooms).flat_map(|r| (0..n_users).map(move |u| (u, r))))
        .map(|(u, r)| {
            let cookie = &signed[u].0;
            async move { raw::upgrade(ctx.addr, cookie, &format!("w-{r}"), HANDSHAKE).await }
        })
        .buffer_unordered(128)
        .collect()
        .await;
    let (mut held, mut refused) = (Vec::new(), Tally::default());
    for a in attempts {
        match a {
            Ok(up) => held.push(up),
            Err(why) => refused.add(why),
        }
    }
    let counts = Arc::new(Counts::default());
    let start = Instant::now();
    let deadline = start + ctx.secs(20.0);
    let tasks: Vec<_> = talkers
        .into_iter()
        .enumerate()
        .map(|(u, ws)| {
            let to = signed[(u + 1) % n_users].1;
            tokio::spawn(talk(ws, to, deadline, ctx.secs(0.5), counts.clone()))
        })
        .collect();
    for t in tasks {
        let _ = t.await;
    }
    let secs = start.elapsed().as_secs_f64();
    let fates: Vec<_> = held
        .iter_mut()
        .map(|up| raw::fate(&up.stream, &mut up.seen, true))
        .collect();
    let mut out = format!(
        "{} of {} silent sockets upgraded",
        held.len(),
        n_users * rooms
    );
    if !refused.0.is_empty() {
        out.push_str(&format!(" (refused: {refused})"));
    }
    let answers = crate::abuse::lock(&counts.answers).clone();
    out.push_str(&format!(
        "; {} whispers in {secs:.1} s, {} private events back to the talkers{}; silent sockets then {}",
        counts.sent.load(Relaxed),
        counts.came_back.load(Relaxed),
        if answers.0.is_empty() {
            String::new()
        } else {
            format!(", {answers}")
        },
        Tally::of_fates(&fates)
    ));
    Ok(out.into())
}

/// One user's talking socket: whispers to `to` until `deadline`, counting what comes back.
async fn talk(
    ws: crate::client::Ws,
    to: u64,
    deadline: Instant,
    grace: Duration,
    counts: Arc<Counts>,
) {
    let (mut tx, mut rx) = ws.split();
    let c = counts.clone();
    let reader = tokio::spawn(async move {
        while let Some(message) = rx.next().await {
            match message {
                Ok(Message::Text(text)) => match event(&text) {
                    Some((kind, _)) if kind == "private" => {
                        c.came_back.fetch_add(1, Relaxed);
                    }
                    Some((kind, v)) if kind == "error" => {
                        crate::abuse::lock(&c.answers).add(error_key(&v))
                    }
                    _ => {}
                },
                Ok(Message::Close(frame)) => {
                    let code = frame.map_or(1005, |f| u16::from(f.code));
                    crate::abuse::lock(&c.answers).add(format!("talker close {code}"));
                    return;
                }
                Ok(_) => {}
                Err(_) => return,
            }
        }
    });
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / RATE));
    let mut n = 0u64;
    while Instant::now() < deadline && !reader.is_finished() {
        tick.tick().await;
        let whisper = serde_json::json!({"type": "private", "to": to, "data": format!("w{n}")});
        if tx.send(Message::text(whisper.to_string())).await.is_err() {
            break;
        }
        counts.sent.fetch_add(1, Relaxed);
        n += 1;
    }
    // A moment for the last answers, then the talker leaves.
    let _ = tokio::time::timeout(grace, async {
        while !reader.is_finished() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    reader.abort();
}
