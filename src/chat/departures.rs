//! The presence grace: a user's last socket in a room that closes does not send `left` at
//! once. The user stays in the room (in `list`, and with Redis in the cluster's counts) for
//! `--presence-grace-secs`; a socket of theirs that comes back meanwhile (a reload, a
//! network blip) is no arrival, so nobody sees a `left` and a `join` for it. Once the grace
//! is over the departure ends, and the log sends `left` if nothing holds the user there.
//!
//! Written once above the logs: one task per engine holds the departures in the order they
//! fell due (the grace is the same for all, so arrival order is due order). What falls due
//! together is handed to the log one room at a time, so a mass leave is one batch per room:
//! one store call and one shared chunk per socket instead of one per `left`.
//!
//! Bounded by the sockets that closed: each entry is one socket that was open, and is gone
//! after the grace. At shutdown every departure still waiting ends at once, so no `left`
//! is lost.

use std::{collections::VecDeque, sync::Arc, time::Duration};

use tokio::{
    sync::{mpsc, oneshot},
    time::Instant,
};

use super::{log::EventLog, room::RoomName};
use crate::{auth::User, metrics::EventCounters};

/// `--presence-grace-secs`' default: longer than a page reload with a reconnect (well under
/// a second on a good link, a couple of seconds on a phone), short enough that a user who
/// closed the tab is shown gone while the others still remember them.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(5);

/// Departures due within this much of the first are ended with it: a mass leave becomes
/// one batch per room, and no `left` comes more than this late.
const GATHER: Duration = Duration::from_millis(100);

enum Order {
    Depart(Instant, RoomName, Arc<User>),
    /// End every departure now (shutdown), then answer.
    EndAll(oneshot::Sender<()>),
}

/// The engine's side of the grace: where a departure is handed over.
#[derive(Debug)]
pub struct Departures {
    grace: Duration,
    orders: mpsc::UnboundedSender<Order>,
}

impl Departures {
    /// Starts the task that ends departures; it stops when this is dropped.
    pub fn spawn(grace: Duration, log: Arc<dyn EventLog>, events: EventCounters) -> Self {
        let (orders, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(rx, log, events));
        Departures { grace, orders }
    }

    /// A user's last socket in `room` closed: their departure ends after the grace.
    pub fn add(&self, room: RoomName, user: Arc<User>) {
        let due = Instant::now() + self.grace;
        if self.orders.send(Order::Depart(due, room, user)).is_err() {
            tracing::error!("presence departures stopped: a left waits for shutdown");
        }
    }

    /// Resolves once every departure handed over so far has ended (shutdown).
    pub async fn end_all(&self) {
        let (tx, rx) = oneshot::channel();
        if self.orders.send(Order::EndAll(tx)).is_ok() {
            let _ = rx.await;
        }
    }
}

async fn run(
    mut orders: mpsc::UnboundedReceiver<Order>,
    log: Arc<dyn EventLog>,
    events: EventCounters,
) {
    let mut waiting: VecDeque<(Instant, RoomName, Arc<User>)> = VecDeque::new();
    loop {
        let order = match waiting.front() {
            Some((due, ..)) => {
                let wake = *due + GATHER;
                tokio::select! {
                    order = orders.recv() => order,
                    () = tokio::time::sleep_until(wake) => {
                        let now = Instant::now();
                        let split = waiting.partition_point(|(due, ..)| *due <= now);
                        end(&*log, &events, waiting.drain(..split));
                        continue;
                    }
                }
            }
            None => orders.recv().await,
        };
        match order {
            Some(Order::Depart(due, room, user)) => waiting.push_back((due, room, user)),
            Some(Order::EndAll(done)) => {
                end(&*log, &events, waiting.drain(..));
                let _ = done.send(());
            }
            None => {
                end(&*log, &events, waiting.drain(..));
                return;
            }
        }
    }
}

/// Ends departures, one batch per room, rooms in the order their first one fell due.
fn end(
    log: &dyn EventLog,
    events: &EventCounters,
    due: impl Iterator<Item = (Instant, RoomName, Arc<User>)>,
) {
    let mut rooms: Vec<(RoomName, Vec<Arc<User>>)> = Vec::new();
    let mut index: std::collections::HashMap<RoomName, usize> = Default::default();
    for (_, room, user) in due {
        let at = *index.entry(room.clone()).or_insert_with(|| {
            rooms.push((room, Vec::new()));
            rooms.len() - 1
        });
        rooms[at].1.push(user);
    }
    for (room, users) in rooms {
        let left = log.depart(&room, &users);
        events.left.inc_by(left as u64);
    }
}
