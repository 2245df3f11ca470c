//! A crowd gathering: `clients` users connect into rooms of `room_size`, each counting every
//! frame and byte it receives from its first, until the room falls quiet; then the server's
//! memory per connection. In one big room the seed's presence costs each client a frame per
//! later arrival and the joiner the whole list; passerby's big rooms send a `presence` per
//! interval and a page.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering::Relaxed},
    },
    time::{Duration, Instant},
};

use anyhow::Context;
use futures_util::{
    StreamExt,
    stream::{self, SplitSink},
};
use serde::Serialize;
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::Message;

use super::{Probe, stats};
use crate::client::{Target, Ws, head};

#[derive(Debug, Clone, Serialize)]
pub struct Crowd {
    pub clients: usize,
    pub room_size: usize,
    /// From the first sign-in until every client had its `list`.
    pub seconds: f64,
    pub connects_per_sec: f64,
    /// Frames each client received until the rooms fell quiet: mean and most.
    pub frames_mean: f64,
    pub frames_max: u64,
    /// Bytes of those frames' payloads, per client.
    pub bytes_mean: f64,
    pub rss_per_connection: Option<f64>,
    pub disconnected: usize,
}

/// A client's sending half, kept to close it, and what it received.
type Member = (SplitSink<Ws, Message>, Arc<Counts>);

#[derive(Default)]
struct Counts {
    frames: AtomicU64,
    bytes: AtomicU64,
    closed: AtomicU64,
}

/// Connects the crowd, 64 sign-ins at a time, waits until no frame arrived for `quiet`
/// (longer than the server's presence interval), and measures.
pub async fn crowd(
    target: &Target,
    pid: Probe<'_>,
    clients: usize,
    room_size: usize,
    quiet: Duration,
) -> anyhow::Result<Crowd> {
    let before = stats(pid);
    let http = reqwest::Client::new();
    let start = Instant::now();
    let joined: Vec<anyhow::Result<Member>> = stream::iter(0..clients)
        .map(|i| {
            let http = http.clone();
            let room = format!("crowd{}", i / room_size.max(1));
            async move {
                let target = target.instance(i);
                let cookie = target.sign_in(&http, &format!("c{i}")).await?;
                let ws = target.connect(&cookie, Some(&room)).await?;
                let (sink, stream) = ws.split();
                let counts = Arc::new(Counts::default());
                let (listed, list) = oneshot::channel();
                tokio::spawn(count(stream, counts.clone(), listed));
                tokio::time::timeout(Duration::from_secs(60), list)
                    .await
                    .context("no list within 60 s")?
                    .context("closed before its list")?;
                Ok((sink, counts))
            }
        })
        .buffer_unordered(64)
        .collect()
        .await;
    let seconds = start.elapsed().as_secs_f64();
    let members: Vec<Member> = joined.into_iter().collect::<anyhow::Result<_>>()?;
    let total = || -> u64 { members.iter().map(|(_, c)| c.frames.load(Relaxed)).sum() };
    // Quiet: what the ramp set going (joins, presence, lists) has all arrived.
    let mut last = (total(), Instant::now());
    let deadline = Instant::now() + Duration::from_secs(120);
    while last.1.elapsed() < quiet && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = total();
        if now != last.0 {
            last = (now, Instant::now());
        }
    }
    let after = stats(pid);
    let frames: Vec<u64> = members
        .iter()
        .map(|(_, c)| c.frames.load(Relaxed))
        .collect();
    let bytes: u64 = members.iter().map(|(_, c)| c.bytes.load(Relaxed)).sum();
    let result = Crowd {
        clients,
        room_size,
        seconds,
        connects_per_sec: clients as f64 / seconds,
        frames_mean: frames.iter().sum::<u64>() as f64 / clients as f64,
        frames_max: frames.iter().copied().max().unwrap_or(0),
        bytes_mean: bytes as f64 / clients as f64,
        rss_per_connection: before
            .zip(after)
            .map(|(b, a)| (a.rss as f64 - b.rss as f64) / clients as f64),
        disconnected: members
            .iter()
            .filter(|(_, c)| c.closed.load(Relaxed) > 0)
            .count(),
    };
    for (mut sink, _) in members {
        let _ = futures_util::SinkExt::close(&mut sink).await;
    }
    Ok(result)
}

/// Counts every text frame; says when the `list` came (the client is in).
async fn count(
    mut stream: futures_util::stream::SplitStream<Ws>,
    counts: Arc<Counts>,
    listed: oneshot::Sender<()>,
) {
    let mut listed = Some(listed);
    while let Some(Ok(message)) = stream.next().await {
        let Message::Text(text) = message else {
            continue;
        };
        counts.frames.fetch_add(1, Relaxed);
        counts.bytes.fetch_add(text.len() as u64, Relaxed);
        if listed.is_some() && head(&text).is_some_and(|(_, kind)| kind == "list") {
            let _ = listed.take().map(|l| l.send(()));
        }
    }
    counts.closed.store(1, Relaxed);
}
