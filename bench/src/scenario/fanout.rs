//! The fan-out scenario: clients in one room, a few of them sending as fast as a window
//! allows, everyone counting. A `Room` stays connected between bursts, so that two servers can
//! be measured in turns a second apart rather than minutes.

use std::{
    sync::{Arc, atomic::Ordering::Relaxed},
    time::{Duration, Instant},
};

use anyhow::Context;
use futures_util::SinkExt;
use serde::Serialize;
use tokio_tungstenite::tungstenite::Message;

use super::{
    Member, Probe, Shared, close_all, connect_all, disorder, kicked, stats_each, wait_for,
};
use crate::{client::Target, server::ProcStats};

#[derive(Debug, Clone, Serialize)]
pub struct Fanout {
    pub clients: usize,
    pub senders: usize,
    pub messages: usize,
    pub deliveries: u64,
    pub losses: u64,
    pub out_of_order: u64,
    pub disconnected: usize,
    pub seconds: f64,
    pub deliveries_per_sec: f64,
    pub cpu_ns_per_delivery: Option<f64>,
    /// The same, process by process in the order they were given (so that a redis-server's
    /// share can be told from the instances').
    pub cpu_ns_per_delivery_each: Vec<f64>,
    /// The same room at a steady rate right after (`Room::paced`), when asked for.
    pub paced: Option<Paced>,
}

/// Latency at a steady rate, timed by the room's probes.
#[derive(Debug, Clone, Serialize)]
pub struct Paced {
    pub rate: f64,
    pub samples: usize,
    pub losses: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// `senders` of `clients` send `messages` each as fast as the window allows; everyone counts.
pub async fn fanout(
    target: &Target,
    pid: Probe<'_>,
    clients: usize,
    senders: usize,
    messages: usize,
) -> anyhow::Result<Fanout> {
    let mut room = Room::connect(target, clients, 0).await?;
    let result = room.burst(pid, senders, messages).await;
    room.close().await;
    result
}

/// `clients` connected to one room of the server, each reading and counting.
pub struct Room {
    members: Vec<Member>,
    shared: Arc<Shared>,
    /// The clock the probes' send times are on.
    base: Instant,
}

impl Room {
    /// The first `probes` clients time the messages of `paced`.
    pub async fn connect(target: &Target, clients: usize, probes: usize) -> anyhow::Result<Room> {
        let shared = Arc::new(Shared::default());
        let base = Instant::now();
        let members =
            connect_all(target, clients, |_| "fanout".into(), probes, &shared, base).await?;
        // Let the joins of the ramp drain before measuring.
        tokio::time::sleep(Duration::from_millis(500)).await;
        Ok(Room {
            members,
            shared,
            base,
        })
    }

    /// The latency scenario in this room: the last client sends `rate` messages a second for
    /// `duration`, each carrying its send time; the probes time their arrival.
    pub async fn paced(&mut self, rate: f64, duration: Duration) -> anyhow::Result<Paced> {
        let clients = self.members.len() as u64;
        let delivered = self.shared.delivered.load(Relaxed);
        self.shared
            .latencies_ns
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
        let count = (rate * duration.as_secs_f64()).round() as usize;
        let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        let base = self.base;
        let sender = self.members.last_mut().context("no clients")?;
        for _ in 0..count {
            tick.tick().await;
            let text = format!("t:{}", super::now_ns(base));
            sender.sink.send(Message::text(text)).await?;
        }
        let expected = delivered + count as u64 * clients;
        let got = wait_for(&self.shared, expected, Duration::from_secs(5)).await;
        let mut samples = std::mem::take(
            &mut *self
                .shared
                .latencies_ns
                .lock()
                .unwrap_or_else(|p| p.into_inner()),
        );
        samples.sort_unstable();
        let (p50_ms, p99_ms, max_ms) = super::quantiles_ms(&samples);
        Ok(Paced {
            rate,
            samples: samples.len(),
            losses: expected.saturating_sub(got),
            p50_ms,
            p99_ms,
            max_ms,
        })
    }

    /// One run of the scenario: the first `senders` send `messages` each.
    pub async fn burst(
        &mut self,
        pid: Probe<'_>,
        senders: usize,
        messages: usize,
    ) -> anyhow::Result<Fanout> {
        let clients = self.members.len();
        // Earlier bursts' deliveries and disorder are not this one's.
        let (delivered, disordered) =
            (self.shared.delivered.load(Relaxed), disorder(&self.members));
        let before = stats_each(pid);
        let start = Instant::now();
        // Rounds of `BATCH` per sender with at most `IN_FLIGHT` rounds unread keep every queue
        // well inside the server's limits, so a loss can only be the server's fault. (Wider
        // windows measured the same CPU per delivery.)
        const BATCH: usize = 8;
        const IN_FLIGHT: u64 = 2;
        let per_round = (clients * senders * BATCH) as u64;
        let mut sent = 0;
        let mut round = 0u64;
        let text = Message::text("bench message: the quick brown fox jumps over the lazy dog");
        while sent < messages {
            let now = BATCH.min(messages - sent);
            for member in self.members.iter_mut().take(senders) {
                for _ in 0..now {
                    member.sink.feed(text.clone()).await?;
                }
                member.sink.flush().await?;
            }
            sent += now;
            if round + 1 >= IN_FLIGHT {
                wait_for(
                    &self.shared,
                    delivered + per_round * (round + 1 - IN_FLIGHT),
                    Duration::from_secs(10),
                )
                .await;
            }
            round += 1;
        }
        let expected = (clients * senders * messages) as u64;
        let deliveries =
            wait_for(&self.shared, delivered + expected, Duration::from_secs(10)).await - delivered;
        let seconds = start.elapsed().as_secs_f64();
        let after = stats_each(pid);
        let per_delivery = |b: &ProcStats, a: &ProcStats| {
            a.cpu_ns.saturating_sub(b.cpu_ns) as f64 / deliveries.max(1) as f64
        };
        let each: Vec<f64> = before
            .iter()
            .zip(&after)
            .flat_map(|(b, a)| b.iter().zip(a).map(|(b, a)| per_delivery(b, a)))
            .collect();
        Ok(Fanout {
            clients,
            senders,
            messages,
            deliveries,
            losses: expected.saturating_sub(deliveries),
            out_of_order: disorder(&self.members) - disordered,
            disconnected: kicked(&self.members),
            seconds,
            deliveries_per_sec: deliveries as f64 / seconds,
            cpu_ns_per_delivery: (!each.is_empty()).then(|| each.iter().sum()),
            cpu_ns_per_delivery_each: each,
            paced: None,
        })
    }

    pub async fn close(self) {
        close_all(self.members).await;
    }
}
