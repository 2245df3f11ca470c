//! The names of users seen here lately, so an `error` about someone who has left (a whisper
//! to them) can name them rather than show an id. Bounded: the oldest are forgotten first.

use std::{
    collections::{HashMap, VecDeque},
    sync::Mutex,
};

/// How many names are kept: a page that whispers to someone gone longer than this many
/// sign-ins ago shows the id instead.
pub const RECENT_NAMES: usize = 10_000;

#[derive(Debug)]
pub struct RecentNames {
    inner: Mutex<Inner>,
    capacity: usize,
}

#[derive(Debug, Default)]
struct Inner {
    names: HashMap<u64, String>,
    /// Ids in the order they were first seen, the oldest first.
    order: VecDeque<u64>,
}

impl Default for RecentNames {
    fn default() -> Self {
        RecentNames::new(RECENT_NAMES)
    }
}

impl RecentNames {
    pub fn new(capacity: usize) -> Self {
        RecentNames {
            inner: Mutex::default(),
            capacity: capacity.max(1),
        }
    }

    pub fn saw(&self, id: u64, name: &str) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        match inner.names.get_mut(&id) {
            Some(known) if known == name => {}
            Some(known) => *known = name.to_owned(),
            None => {
                if inner.order.len() >= self.capacity
                    && let Some(oldest) = inner.order.pop_front()
                {
                    inner.names.remove(&oldest);
                }
                inner.order.push_back(id);
                inner.names.insert(id, name.to_owned());
            }
        }
    }

    pub fn name(&self, id: u64) -> Option<String> {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.names.get(&id).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_name_is_forgotten_past_the_bound() {
        let names = RecentNames::new(2);
        names.saw(1, "ada");
        names.saw(2, "bea");
        names.saw(1, "ada");
        names.saw(3, "cy");
        assert_eq!(names.name(1), None);
        assert_eq!(names.name(2).as_deref(), Some("bea"));
        assert_eq!(names.name(3).as_deref(), Some("cy"));
    }
}
