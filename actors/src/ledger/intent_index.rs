//! Which entity holds each open intent's idempotency key, in memory, rebuilt from the states
//! at open.
//!
//! An intent lives on its entity's state from the moment it is committed until its outcome
//! clears it; the index answers the restart's "which calls have no outcome?" and guards
//! against two entities sharing a key. Kept as a redb table it cost a B-tree insert when an
//! intent was committed and a removal when it was cleared, for data the states hold, so like
//! the stage index (`stage_index`) it is derived: built by [`IntentIndex::build`] with the
//! ledger, changed only by the writer thread after a commit, and never stored.

use crate::fast_map::FastMap;
use std::collections::BTreeSet;

use parking_lot::RwLock;

/// Idempotency key → the key of the entity whose state carries that intent.
#[derive(Debug, Default)]
pub(crate) struct IntentIndex {
    holders: RwLock<FastMap<String, String>>,
}

impl IntentIndex {
    /// The index of `(idempotency key, entity key)` pairs read from the stored states.
    pub(crate) fn build(pairs: impl IntoIterator<Item = (String, String)>) -> Self {
        Self {
            holders: RwLock::new(pairs.into_iter().collect()),
        }
    }

    /// The entity holding `idempotency_key`, as last committed.
    pub(crate) fn holder(&self, idempotency_key: &str) -> Option<String> {
        self.holders.read().get(idempotency_key).cloned()
    }

    /// Every entity holding an intent, in key order.
    pub(crate) fn holders(&self) -> BTreeSet<String> {
        self.holders.read().values().cloned().collect()
    }

    /// Applies a committed transaction's changes: `Some` holds the key, `None` frees it.
    pub(crate) fn committed(&self, changes: FastMap<String, Option<String>>) {
        if changes.is_empty() {
            return;
        }
        let mut holders = self.holders.write();
        for (idempotency_key, holder) in changes {
            match holder {
                Some(h) => holders.insert(idempotency_key, h),
                None => holders.remove(&idempotency_key),
            };
        }
    }

    /// Every pair, sorted, for comparing with a rebuild.
    pub(crate) fn snapshot(&self) -> Vec<(String, String)> {
        let mut all: Vec<_> = self
            .holders
            .read()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        all.sort();
        all
    }
}
