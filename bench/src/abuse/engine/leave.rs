//! Mass leave: a crowd in one room with a few healthy readers, then the whole crowd drops at
//! once. Every healthy reader must stay open and be sent every `left`.

use std::{
    net::IpAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering::Relaxed},
    },
    time::{Duration, Instant},
};

use futures_util::{StreamExt, stream};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

use super::{address, event, moves, open, users};
use crate::abuse::{Answer, Ctx, lock, raw::Tally};

const ROOM: &str = "crowd";
/// Crowd members per address: under the default sign-in burst (30) of one address.
const PER_ADDRESS: usize = 20;
/// Where the healthy readers come from: neither the attacker nor the probe.
const READERS: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 3));

#[derive(Default)]
struct Reader {
    joins: AtomicU64,
    lefts: AtomicU64,
    closed: Mutex<Option<String>>,
}

/// The crowd in its room, each member's socket read (and dropped) by a task of its own.
pub struct Crowd {
    readers: Vec<(Arc<Reader>, JoinHandle<()>)>,
    members: Vec<JoinHandle<()>>,
    tried: usize,
    refused: Tally,
}

fn read(mut ws: crate::client::Ws, r: Arc<Reader>) -> JoinHandle<()> {
    tokio::spawn(async move {
        while let Some(message) = ws.next().await {
            match message {
                Ok(Message::Text(text)) => {
                    if let Some((kind, v)) = event(&text) {
                        let (joins, lefts) = moves(&kind, &v);
                        r.joins.fetch_add(joins, Relaxed);
                        r.lefts.fetch_add(lefts, Relaxed);
                    }
                }
                Ok(Message::Close(frame)) => {
                    let code = frame.map_or(1005, |f| u16::from(f.code));
                    *lock(&r.closed) = Some(format!("close {code}"));
                    return;
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
        *lock(&r.closed) = Some("closed".into());
    })
}

/// The readers join first, so they are sent every member's `join`; then the crowd, from
/// addresses of its own.
pub async fn gather(ctx: &Ctx) -> anyhow::Result<Crowd> {
    let (n, n_readers) = (ctx.n(2000), ctx.n(10).max(3));
    let mut readers = Vec::new();
    for (cookie, _) in users(ctx.addr, READERS, "reader", n_readers).await? {
        let ws = open(ctx.addr, READERS, &cookie, ROOM).await?;
        let r = Arc::new(Reader::default());
        readers.push((r.clone(), read(ws, r)));
    }
    let addr = ctx.addr;
    let groups: Vec<anyhow::Result<Vec<(IpAddr, String)>>> =
        stream::iter(0..n.div_ceil(PER_ADDRESS))
            .map(|g| async move {
                let from = address(1, g);
                let count = PER_ADDRESS.min(n - g * PER_ADDRESS);
                let signed = users(addr, from, &format!("crowd{g}-"), count).await?;
                Ok(signed.into_iter().map(|(c, _)| (from, c)).collect())
            })
            .buffer_unordered(4)
            .collect()
            .await;
    let mut signed = Vec::with_capacity(n);
    for g in groups {
        signed.extend(g?);
    }
    let opened: Vec<anyhow::Result<crate::client::Ws>> = stream::iter(signed)
        .map(|(from, cookie)| async move { open(addr, from, &cookie, ROOM).await })
        .buffer_unordered(64)
        .collect()
        .await;
    let (mut members, mut refused) = (Vec::new(), Tally::default());
    for o in opened {
        match o {
            Ok(mut ws) => members.push(tokio::spawn(async move {
                while let Some(Ok(_)) = ws.next().await {}
            })),
            Err(e) => refused.add(short(&e)),
        }
    }
    // Settled: every reader was sent the crowd's joins (or a while passed).
    let joined = members.len() as u64;
    let settled = Instant::now() + Duration::from_secs(30);
    while Instant::now() < settled
        && readers
            .iter()
            .any(|(r, _)| r.joins.load(Relaxed) < joined && lock(&r.closed).is_none())
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(Crowd {
        readers,
        members,
        tried: n,
        refused,
    })
}

fn short(e: &anyhow::Error) -> String {
    let text = e.to_string();
    match text.find("HTTP error: ") {
        Some(at) => format!(
            "HTTP {}",
            text[at + 12..].chars().take(3).collect::<String>()
        ),
        None => text.chars().take(40).collect(),
    }
}

/// Drops the whole crowd at once and watches the readers.
pub async fn drop_all(ctx: &Ctx, crowd: Crowd) -> anyhow::Result<Answer> {
    let Crowd {
        readers,
        members,
        tried,
        refused,
    } = crowd;
    let gone = members.len() as u64;
    let lefts_before: Vec<u64> = readers.iter().map(|(r, _)| r.lefts.load(Relaxed)).collect();
    let start = Instant::now();
    for m in &members {
        m.abort();
    }
    for m in members {
        let _ = m.await;
    }
    let wait = Instant::now() + ctx.secs(10.0).max(Duration::from_secs(3));
    let all_in = |i: usize, r: &Reader| r.lefts.load(Relaxed) - lefts_before[i] >= gone;
    while Instant::now() < wait
        && readers
            .iter()
            .enumerate()
            .any(|(i, (r, _))| !all_in(i, r) && lock(&r.closed).is_none())
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let secs = start.elapsed().as_secs_f64();
    // A moment more, for a close that follows the last `left`.
    tokio::time::sleep(ctx.secs(1.0)).await;
    let mut fates = Tally::default();
    let mut lefts = Vec::new();
    for (i, (r, task)) in readers.iter().enumerate() {
        fates.add(lock(&r.closed).clone().unwrap_or_else(|| "open".into()));
        lefts.push(r.lefts.load(Relaxed) - lefts_before[i]);
        task.abort();
    }
    let closed = readers.len() - fates.count("open");
    let (min, max) = (
        lefts.iter().min().copied().unwrap_or(0),
        lefts.iter().max().copied().unwrap_or(0),
    );
    let mut text = format!("{gone} of {tried} in the room");
    if !refused.0.is_empty() {
        text.push_str(&format!(" (refused: {refused})"));
    }
    text.push_str(&format!(
        ", dropped at once; {} healthy readers: {fates}, sent {min}–{max} of {gone} lefts in {secs:.1} s",
        readers.len()
    ));
    Ok(Answer {
        text,
        readers_closed: Some(closed),
    })
}
