//! Intents this process is committing for a call nobody has made yet.
//!
//! An intent found in the ledger normally means "a call may have been made": the next attempt
//! looks the write up before repeating it. The payments stage commits an order's `Paid`
//! outcome together with the writeback intent (committed before the writeback call, as the
//! protocol requires), which saves a ledger transition per paid order; the writeback stage
//! must still tell that fresh intent from one a crashed or failed attempt left behind. Only
//! this process can know, so the set lives in memory, and a restart empties it: every intent
//! from a dead process is treated as possibly sent, as before.
//!
//! A note names the intent's key and the version the committed state will have. The
//! committer notes before its commit, so no reader of the committed state can come before the
//! note (a note after the commit let some writeback rounds read the order first and take the
//! slow path); only the state that commit writes carries that key at that version, so a note
//! whose commit failed vouches for nothing (and is dropped). The writeback takes the note
//! once, before its call: any later attempt is a retry.

use crate::fast_map::FastMap;
use parking_lot::Mutex;

#[derive(Debug, Default)]
pub struct FreshIntents(Mutex<FastMap<String, u64>>);

impl FreshIntents {
    /// The state about to be committed at `version` carries `idempotency_key`'s intent, and
    /// no call for it has been made.
    pub fn note(&self, idempotency_key: &str, version: u64) {
        self.0.lock().insert(idempotency_key.to_owned(), version);
    }

    /// The commit [`note`](Self::note) announced did not happen.
    pub fn forget(&self, idempotency_key: &str) {
        self.0.lock().remove(idempotency_key);
    }

    /// Whether the intent on the state read at `version` is certainly not acted on yet. True
    /// at most once per note.
    pub fn take(&self, idempotency_key: &str, version: u64) -> bool {
        let mut notes = self.0.lock();
        match notes.get(idempotency_key) {
            Some(v) if *v == version => {
                notes.remove(idempotency_key);
                true
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_noted_intent_is_fresh_once_at_its_version_and_an_unnoted_one_never() {
        let f = FreshIntents::default();
        assert!(
            !f.take("writeback-order:1", 5),
            "not committed by this process"
        );
        f.note("writeback-order:1", 5);
        assert!(
            !f.take("writeback-order:1", 7),
            "another state of the order"
        );
        assert!(f.take("writeback-order:1", 5));
        assert!(
            !f.take("writeback-order:1", 5),
            "the second attempt is a retry"
        );
        f.note("writeback-order:2", 3);
        f.forget("writeback-order:2");
        assert!(!f.take("writeback-order:2", 3), "the commit did not happen");
    }
}
