//! A bounded memory of recently seen webhook events.
//!
//! Xero retries a delivery it thinks failed for up to 24 hours, so the same event can arrive many
//! times. Forgetting the oldest keys first keeps memory flat under a storm; an event old enough to
//! be forgotten and then redelivered only costs the engine one idempotent re-fetch.

use std::collections::{HashSet, VecDeque};
use std::hash::Hash;

pub struct RecentSet<K> {
    capacity: usize,
    order: VecDeque<K>,
    seen: HashSet<K>,
}

impl<K: Hash + Eq + Clone> RecentSet<K> {
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Self {
            capacity,
            order: VecDeque::with_capacity(capacity),
            seen: HashSet::with_capacity(capacity),
        }
    }

    /// `true` when `key` was not seen recently (and remembers it now).
    pub fn insert(&mut self, key: K) -> bool {
        if self.seen.contains(&key) {
            return false;
        }
        if self.order.len() == self.capacity
            && let Some(old) = self.order.pop_front()
        {
            self.seen.remove(&old);
        }
        self.order.push_back(key.clone());
        self.seen.insert(key);
        true
    }

    /// Forgets `key`, so a delivery that could not be queued is accepted when Xero retries it.
    pub fn remove(&mut self, key: &K) {
        if self.seen.remove(key) {
            self.order.retain(|k| k != key);
        }
    }

    pub fn len(&self) -> usize {
        self.seen.len()
    }

    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_are_refused_until_evicted() {
        let mut s = RecentSet::new(2);
        assert!(s.insert(1));
        assert!(!s.insert(1));
        assert!(s.insert(2));
        assert!(s.insert(3));
        assert_eq!(s.len(), 2);
        assert!(s.insert(1), "oldest key was evicted");
        assert!(!s.insert(3));
        s.remove(&3);
        assert!(s.insert(3));
    }
}
