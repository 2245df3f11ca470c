//! Join churn and the room flood: one cookie opening and closing sockets as fast as it can,
//! in one room (and a bystander there counting the joins and lefts it is sent, then a
//! newcomer reading what its history holds), or each time in a room never used before.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering::Relaxed},
    },
    time::{Duration, Instant},
};

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

use super::{event, moves, open, touch, users};
use crate::abuse::{
    Answer, Ctx, lock,
    raw::{ATTACKER, BYSTANDER, Tally},
};

/// Opens and closes sockets with one cookie for `secs`, `loops` at a time (the per-user cap
/// is 16), in the rooms `room(i)` names.
async fn hammer(
    ctx: &Ctx,
    cookie: &str,
    secs: Duration,
    loops: usize,
    room: impl Fn(u64) -> String + Sync,
) -> (u64, f64, Tally) {
    let next = AtomicU64::new(0);
    let tally = Mutex::new(Tally::default());
    let start = Instant::now();
    let deadline = start + secs;
    let one = || async {
        while Instant::now() < deadline {
            let i = next.fetch_add(1, Relaxed);
            let how = touch(ATTACKER, ctx.addr, cookie, &room(i)).await;
            lock(&tally).add(how);
        }
    };
    futures_util::future::join_all((0..loops).map(|_| one())).await;
    let secs = start.elapsed().as_secs_f64();
    let tally = lock(&tally).clone();
    (next.load(Relaxed), secs, tally)
}

/// What a socket left in the room is sent meanwhile.
#[derive(Default)]
struct Watched {
    joins: AtomicU64,
    lefts: AtomicU64,
    closed: Mutex<Option<String>>,
    stop: AtomicBool,
}

pub async fn churn(ctx: &Ctx) -> anyhow::Result<Answer> {
    const ROOM: &str = "churn";
    let signed = users(ctx.addr, BYSTANDER, "watcher", 2).await?;
    let mut watcher = open(ctx.addr, BYSTANDER, &signed[0].0, ROOM).await?;
    // Real messages, which the room's history should still hold afterwards.
    const MESSAGES: usize = 5;
    for i in 0..MESSAGES {
        watcher
            .send(Message::text(format!("real message {i}")))
            .await?;
    }
    let watched = Arc::new(Watched::default());
    let w = watched.clone();
    let reader = tokio::spawn(async move {
        while !w.stop.load(Relaxed) {
            let next = tokio::time::timeout(Duration::from_millis(100), watcher.next()).await;
            match next {
                Err(_) => continue,
                Ok(Some(Ok(Message::Text(text)))) => {
                    if let Some((kind, v)) = event(&text) {
                        let (joins, lefts) = moves(&kind, &v);
                        w.joins.fetch_add(joins, Relaxed);
                        w.lefts.fetch_add(lefts, Relaxed);
                    }
                }
                Ok(Some(Ok(Message::Close(frame)))) => {
                    let code = frame.map_or(1005, |f| u16::from(f.code));
                    *lock(&w.closed) = Some(format!("close {code}"));
                    return;
                }
                Ok(Some(Ok(_))) => {}
                Ok(Some(Err(_)) | None) => {
                    *lock(&w.closed) = Some("closed".into());
                    return;
                }
            }
        }
    });
    let cookie = super::users(ctx.addr, ATTACKER, "churner", 1)
        .await?
        .remove(0)
        .0;
    // One at a time, so that each open is a join and each close a left.
    let (opens, secs, tally) = hammer(ctx, &cookie, ctx.secs(20.0), 1, |_| ROOM.to_owned()).await;
    // A newcomer: what recent history does the room offer now?
    let mut newcomer = open(ctx.addr, BYSTANDER, &signed[1].0, ROOM).await?;
    let mut kinds = Tally::default();
    let read = async {
        while let Some(Ok(message)) = newcomer.next().await {
            if let Message::Text(text) = message
                && let Some((kind, v)) = event(&text)
                && kind == "history"
            {
                for e in v
                    .get("data")
                    .and_then(|d| d.as_array())
                    .into_iter()
                    .flatten()
                {
                    kinds.add(e.get("type").and_then(|t| t.as_str()).unwrap_or("?"));
                }
                return true;
            }
        }
        false
    };
    let got = tokio::time::timeout(Duration::from_secs(5), read)
        .await
        .unwrap_or(false);
    watched.stop.store(true, Relaxed);
    let _ = reader.await;
    let closed = lock(&watched.closed).clone();
    let history = if got {
        kinds.to_string()
    } else {
        "none came".to_owned()
    };
    Ok(Answer {
        text: format!(
            "{opens} opens in {secs:.1} s ({:.0}/s): {tally}; the watcher was sent {} joins, {} lefts{}; a newcomer's history: {history} ({MESSAGES} real messages were sent)",
            opens as f64 / secs.max(1e-3),
            watched.joins.load(Relaxed),
            watched.lefts.load(Relaxed),
            closed
                .as_ref()
                .map_or(String::new(), |c| format!(", then {c}")),
        ),
        readers_closed: Some(usize::from(closed.is_some())),
    })
}

pub async fn rooms(ctx: &Ctx) -> anyhow::Result<Answer> {
    let cookie = users(ctx.addr, ATTACKER, "roomer", 1).await?.remove(0).0;
    let (opens, secs, tally) = hammer(ctx, &cookie, ctx.secs(20.0), 4, |i| format!("r{i}")).await;
    Ok(format!(
        "{opens} new rooms tried in {secs:.1} s ({:.0}/s): {tally}",
        opens as f64 / secs.max(1e-3)
    )
    .into())
}
