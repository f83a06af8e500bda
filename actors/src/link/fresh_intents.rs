//! Intents this process committed for a call nobody has made yet.
//!
//! An intent found in the ledger normally means "a call may have been made": the next attempt
//! looks the write up before repeating it. The payments stage commits an order's `Paid`
//! outcome together with the writeback intent (committed before the writeback call, as the
//! protocol requires), which saves a ledger transition per paid order; the writeback stage
//! must still tell that fresh intent from one a crashed or failed attempt left behind. Only
//! this process can know, so the set lives in memory: the committer notes the key after its
//! commit, the caller takes it once before the call. A restart empties the set, so every
//! intent from a dead process is treated as possibly sent, as before.
//!
//! Noted after the commit, never before: a key noted for a commit that then failed could
//! later vouch for an intent a failed attempt left. The price is a race in the safe
//! direction: a writeback round that reads the order between the commit and the note takes
//! it for a retry and looks Magento up first (a few hundred of 8,000 orders in some runs).

use parking_lot::Mutex;
use std::collections::HashSet;

#[derive(Debug, Default)]
pub struct FreshIntents(Mutex<HashSet<String>>);

impl FreshIntents {
    /// `idempotency_key`'s intent is committed and its call not made.
    pub fn note(&self, idempotency_key: &str) {
        self.0.lock().insert(idempotency_key.to_owned());
    }

    /// Whether the call for `idempotency_key` is certainly not made yet. True at most once
    /// per noting: the caller makes the call, and any later attempt is treated as a retry.
    pub fn take(&self, idempotency_key: &str) -> bool {
        self.0.lock().remove(idempotency_key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_noted_intent_is_fresh_once_and_an_unnoted_one_never() {
        let f = FreshIntents::default();
        assert!(
            !f.take("writeback-order:1"),
            "not committed by this process"
        );
        f.note("writeback-order:1");
        assert!(f.take("writeback-order:1"));
        assert!(
            !f.take("writeback-order:1"),
            "the second attempt is a retry"
        );
    }
}
