//! The worker's queue, bounded in events (`--history-queue`), as the SQLite writer's is,
//! and split into lanes (`--redis-lanes`): each room's jobs go to one lane, in order, and the
//! lanes call Redis side by side.
//!
//! A queued event holds a slot until the worker has run it, so while Redis stalls the queue
//! fills and the next sender is refused at once (`EngineError::Busy`) instead of the queue
//! growing for as long as the stall lasts. The channel itself is unbounded only so that what
//! may not be refused (a `left`, a flush) always gets in.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};

use super::worker::Job;
use crate::chat::{EngineError, room::RoomName};

/// A job with the slots it holds until the worker is done with it (dropping the rest of a
/// `Queued` after running its `job` frees them).
#[derive(Debug)]
pub(super) struct Queued {
    pub job: Job,
    _slots: Option<OwnedSemaphorePermit>,
}

#[derive(Debug, Clone)]
pub(super) struct Jobs {
    lanes: Vec<mpsc::UnboundedSender<Queued>>,
    slots: Arc<Semaphore>,
    capacity: u32,
}

/// The lane of a room: FNV-1a of its name, so a room always has the same one.
pub(super) fn lane_of(room: &RoomName, lanes: usize) -> usize {
    let hash = room
        .as_str()
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
    (hash % lanes.max(1) as u64) as usize
}

impl Jobs {
    /// The queue and each lane's end of it (at least one).
    pub fn new(capacity: usize, lanes: usize) -> (Jobs, Vec<mpsc::UnboundedReceiver<Queued>>) {
        let capacity = u32::try_from(capacity.clamp(1, Semaphore::MAX_PERMITS))
            .unwrap_or(u32::MAX)
            .max(1);
        let (txs, rxs) = (0..lanes.max(1)).map(|_| mpsc::unbounded_channel()).unzip();
        let slots = Arc::new(Semaphore::new(capacity as usize));
        (
            Jobs {
                lanes: txs,
                slots,
                capacity,
            },
            rxs,
        )
    }

    /// A flush for every lane: each answers once what it held before is done.
    pub fn flush(&self) -> Vec<oneshot::Receiver<()>> {
        self.lanes
            .iter()
            .filter_map(|lane| {
                let (tx, rx) = oneshot::channel();
                let job = Queued {
                    job: Job::Flush(tx),
                    _slots: None,
                };
                lane.send(job).ok().map(|()| rx)
            })
            .collect()
    }

    /// Whether one more event would be refused: a joiner is then closed with 1013 rather
    /// than let in to a room it could not talk in.
    pub fn full(&self) -> bool {
        self.slots.available_permits() == 0
    }

    /// Queues the jobs (one burst of one room, one event each) or refuses them all without
    /// waiting. A burst larger than the bound takes every slot, so it gets in once the queue
    /// is empty.
    pub fn push(&self, jobs: Vec<Job>) -> Result<(), EngineError> {
        let weight = u32::try_from(jobs.len())
            .unwrap_or(u32::MAX)
            .min(self.capacity);
        if weight == 0 {
            return Ok(());
        }
        let slots = self
            .slots
            .clone()
            .try_acquire_many_owned(weight)
            .map_err(|_| EngineError::Busy)?;
        // The burst's slots go with its last job: they are free once all of it ran.
        let last = jobs.len() - 1;
        let mut slots = Some(slots);
        for (i, job) in jobs.into_iter().enumerate() {
            let held = if i == last { slots.take() } else { None };
            self.send(job, held)?;
        }
        Ok(())
    }

    /// Queues a job past the bound. Only for what nobody could be told about (a `left`,
    /// whose socket is gone) or what is bounded elsewhere (a flush): each member leaves
    /// once, and a member only got in while the queue had room.
    pub fn always(&self, job: Job) -> Result<(), EngineError> {
        self.send(job, None)
    }

    fn send(&self, job: Job, slots: Option<OwnedSemaphorePermit>) -> Result<(), EngineError> {
        let lane = job.room().map_or(0, |room| lane_of(room, self.lanes.len()));
        self.lanes[lane]
            .send(Queued { job, _slots: slots })
            .map_err(|_| EngineError::WorkerGone)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flush() -> Job {
        Job::Flush(tokio::sync::oneshot::channel().0)
    }

    #[test]
    fn a_full_queue_refuses_until_the_worker_is_done_and_always_takes_what_it_must() {
        let (jobs, mut rx) = Jobs::new(2, 1);
        let mut rx = rx.remove(0);
        jobs.push(vec![flush()]).unwrap();
        assert!(!jobs.full());
        jobs.push(vec![flush()]).unwrap();
        assert!(jobs.full());
        assert!(matches!(jobs.push(vec![flush()]), Err(EngineError::Busy)));
        jobs.always(flush()).unwrap();
        let first = rx.try_recv().unwrap();
        assert!(jobs.full(), "a job holds its slot until the worker is done");
        drop(first);
        assert!(!jobs.full());
        jobs.push(vec![flush()]).unwrap();
    }

    #[test]
    fn a_burst_is_taken_whole_or_refused_whole_and_a_large_one_waits_for_an_empty_queue() {
        let (jobs, mut rx) = Jobs::new(3, 1);
        let mut rx = rx.remove(0);
        jobs.push(vec![flush(), flush()]).unwrap();
        assert!(matches!(
            jobs.push(vec![flush(), flush()]),
            Err(EngineError::Busy)
        ));
        assert_eq!(rx.len(), 2, "nothing of the refused burst went in");
        assert!(matches!(
            jobs.push((0..5).map(|_| flush()).collect()),
            Err(EngineError::Busy)
        ));
        let (first, second) = (rx.try_recv().unwrap(), rx.try_recv().unwrap());
        drop(first);
        assert!(
            matches!(jobs.push(vec![flush(), flush()]), Err(EngineError::Busy)),
            "the burst's slots are held until its last job ran"
        );
        drop(second);
        jobs.push((0..5).map(|_| flush()).collect()).unwrap();
        assert!(jobs.full());
    }

    #[test]
    fn a_room_keeps_its_lane_and_rooms_spread_over_the_lanes() {
        let room = |n: usize| RoomName::parse(&format!("room{n}")).unwrap();
        assert_eq!(lane_of(&room(1), 4), lane_of(&room(1), 4));
        let mut used = [false; 4];
        for n in 0..64 {
            used[lane_of(&room(n), 4)] = true;
        }
        assert_eq!(used, [true; 4]);
        assert_eq!(lane_of(&room(1), 1), 0);
    }
}
