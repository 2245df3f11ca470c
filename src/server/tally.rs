//! `Tally`: how many of something each key holds, with a cap; a `Slot` gives its place back
//! when dropped, however its holder ends.

use std::{
    collections::HashMap,
    hash::Hash,
    sync::{Arc, Mutex, PoisonError},
};

/// Counts per key (a client address, a user id) against one cap.
#[derive(Debug)]
pub struct Tally<K: Hash + Eq + Copy> {
    cap: usize,
    counts: Arc<Mutex<HashMap<K, usize>>>,
}

/// One place in a `Tally`, held until dropped.
#[derive(Debug)]
pub struct Slot<K: Hash + Eq + Copy> {
    key: K,
    counts: Arc<Mutex<HashMap<K, usize>>>,
}

impl<K: Hash + Eq + Copy> Tally<K> {
    pub fn new(cap: usize) -> Self {
        Tally {
            cap,
            counts: Arc::default(),
        }
    }

    /// A place for `key`, or `None` when it already holds `cap`.
    pub fn take(&self, key: K) -> Option<Slot<K>> {
        // Nothing under this lock can panic half-way, so a poisoned map is still consistent.
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        let held = counts.entry(key).or_insert(0);
        if *held >= self.cap {
            if *held == 0 {
                counts.remove(&key);
            }
            return None;
        }
        *held += 1;
        Some(Slot {
            key,
            counts: self.counts.clone(),
        })
    }

    /// How many places `key` holds now.
    pub fn held(&self, key: K) -> usize {
        let counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        counts.get(&key).copied().unwrap_or(0)
    }
}

impl<K: Hash + Eq + Copy> Drop for Slot<K> {
    fn drop(&mut self) {
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(held) = counts.get_mut(&self.key) {
            *held -= 1;
            // An idle key costs nothing: a map of every address ever seen would only grow.
            if *held == 0 {
                counts.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_holds_at_most_its_cap_and_gets_places_back_when_slots_drop() {
        let tally = Tally::new(2);
        let a1 = tally.take('a').unwrap();
        let _a2 = tally.take('a').unwrap();
        assert!(tally.take('a').is_none());
        let _b = tally.take('b').expect("another key has its own places");
        drop(a1);
        assert_eq!(tally.held('a'), 1);
        assert!(tally.take('a').is_some());
    }

    #[test]
    fn keys_that_hold_nothing_are_forgotten() {
        let tally = Tally::new(1);
        drop(tally.take(7u64).unwrap());
        assert!(tally.counts.lock().unwrap().is_empty());
        let zero = Tally::new(0);
        assert!(zero.take(1u64).is_none());
        assert!(zero.counts.lock().unwrap().is_empty());
    }
}
