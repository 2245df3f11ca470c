//! `Known`: the images this instance has seen stored, so an `image` message naming one asks
//! the folder or the store once, not each time. A name is a content hash and nothing is ever
//! deleted, so a positive answer never goes stale; a negative one is never kept, since
//! another instance may store the image a moment later.

use std::{
    collections::{HashSet, VecDeque},
    sync::Mutex,
};

use super::UploadName;

/// At most `capacity` names; the oldest goes first when a new one comes.
#[derive(Debug)]
pub struct Known {
    capacity: usize,
    names: Mutex<Names>,
}

#[derive(Debug, Default)]
struct Names {
    set: HashSet<UploadName>,
    /// Arrival order, for eviction: a name re-seen keeps its first place, which costs at
    /// worst one more lookup for a popular image.
    order: VecDeque<UploadName>,
}

impl Known {
    /// `capacity` 0 keeps nothing: every `image` message asks.
    pub fn new(capacity: usize) -> Self {
        Known {
            capacity,
            names: Mutex::default(),
        }
    }

    pub fn contains(&self, name: &UploadName) -> bool {
        self.lock().set.contains(name)
    }

    pub fn insert(&self, name: &UploadName) {
        if self.capacity == 0 {
            return;
        }
        let mut names = self.lock();
        if names.set.contains(name) {
            return;
        }
        while names.order.len() >= self.capacity {
            if let Some(oldest) = names.order.pop_front() {
                names.set.remove(&oldest);
            }
        }
        names.set.insert(name.clone());
        names.order.push_back(name.clone());
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Names> {
        // The set is only a cache: a panic elsewhere while it was held leaves it usable.
        self.names
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upload::ImageKind;

    fn name(i: u8) -> UploadName {
        UploadName::for_content(&[i], ImageKind::Png)
    }

    #[test]
    fn the_oldest_name_goes_when_the_cache_is_full() {
        let known = Known::new(2);
        let len = |known: &Known| known.lock().order.len();
        known.insert(&name(1));
        known.insert(&name(2));
        known.insert(&name(1));
        assert_eq!(len(&known), 2);
        known.insert(&name(3));
        assert_eq!(len(&known), 2);
        assert!(!known.contains(&name(1)));
        assert!(known.contains(&name(2)) && known.contains(&name(3)));
    }

    #[test]
    fn a_capacity_of_zero_keeps_nothing() {
        let known = Known::new(0);
        known.insert(&name(1));
        assert!(known.lock().set.is_empty());
        assert!(!known.contains(&name(1)));
    }
}
