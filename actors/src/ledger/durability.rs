//! Which commits must reach the disk before the writer answers, and which may wait.
//!
//! The crash rule is: an intent is on disk before its call goes out. A commit that holds no
//! intent (an outcome recorded after a call, an ingested order, a poll cursor) can be lost in
//! a crash without breaking it: an outcome lost leaves its intent behind, which a restart
//! resolves by looking the record up by its natural key (the path every crash between a
//! call and its outcome already takes), and a lost ingest or cursor is read again from
//! Magento. So such a group is committed without an fsync (`Durability::None`), and it
//! reaches the disk with the next commit that needs one: redb persists every earlier commit
//! with a durable one. The writer also makes it durable once it has been idle for
//! [`HARDEN_AFTER`], and before it stops, so a quiet or stopped engine leaves nothing
//! pending. A backfill spent a quarter of its wall time in `fdatasync` with every commit
//! durable.

use std::time::Duration;

use super::write::Write;

/// How long the writer waits, with undurable commits pending, for a request that would make
/// them durable anyway before it commits an empty durable transaction itself.
pub(crate) const HARDEN_AFTER: Duration = Duration::from_millis(50);

/// Whether a commit holding `write` must be durable when the writer answers: it records an
/// intent (a call follows), or it is a token, an operator's action or a dead letter, which
/// no lookup can bring back.
pub(crate) fn needs_durability(write: &Write) -> bool {
    match write {
        Write::Put { state, .. } => state.intent.is_some(),
        Write::SetCursor { .. } => false,
        Write::DeadLetter { .. }
        | Write::Note { .. }
        | Write::SetLink { .. }
        | Write::Revive { .. }
        | Write::DropDeadLetter { .. }
        | Write::SetToken { .. }
        | Write::PutDiscrepancy { .. }
        | Write::RemoveDiscrepancy { .. }
        | Write::AcknowledgeDiscrepancy { .. } => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::{EntityKind, EntityState, Intent};

    fn put(intent: bool) -> Write {
        let mut state = EntityState::new(EntityKind::Order, "100000001", serde_json::json!({}));
        if intent {
            state.intent = Some(Intent {
                op: "PUT Invoices".into(),
                idempotency_key: "key-1".into(),
                body_sha256: String::new(),
                batch_id: "b-1".into(),
                committed_at_ms: 0,
            });
        }
        Write::Put {
            state,
            actor: "test".into(),
            detail: String::new(),
        }
    }

    #[test]
    fn intents_and_what_no_lookup_restores_are_durable() {
        assert!(needs_durability(&put(true)));
        assert!(!needs_durability(&put(false)));
        assert!(!needs_durability(&Write::SetCursor {
            name: "orders".into(),
            value: serde_json::json!("2024-01-01 00:00:00"),
        }));
        assert!(needs_durability(&Write::SetToken {
            name: "xero".into(),
            bytes: vec![1],
        }));
        assert!(needs_durability(&Write::DropDeadLetter {
            key: "order:1".into(),
            actor: "operator".into(),
        }));
    }
}
