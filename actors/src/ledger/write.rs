//! What a caller asks the writer to do, and what it gets back.

use super::dead_letter::DeadLetter;
use super::entity::EntityState;
use super::stage::Stage;
use std::collections::BTreeMap;

/// One change. A `commit` of several writes is atomic: all of them or none.
#[derive(Clone)]
pub enum Write {
    /// Create or update an entity. `state.version` must be the version read (0 for a new
    /// entity); the stage move must be legal (see [`Stage`]). Keeps the stage, due, intent and
    /// link indexes in step, and appends an audit entry when the stage changes or `detail` is
    /// not empty.
    Put {
        state: EntityState,
        actor: String,
        detail: String,
    },
    /// A line in an entity's audit trail that changes nothing else: no version to match, so
    /// an operator's action noted beside the stages' own writes cannot conflict with them.
    /// `NotFound` if the entity is not in the ledger.
    Note {
        key: String,
        actor: String,
        detail: String,
    },
    /// Replaces one of an entity's links (`payment_id`, …) if it still holds `expected`, at
    /// whatever version the entity is: an operator's fix that learned a new remote id cannot
    /// conflict with the stages' writes, and never overwrites a link a stage changed
    /// meanwhile (then nothing is written). Audited. `NotFound` if the entity is not stored.
    SetLink {
        key: String,
        name: String,
        expected: String,
        value: String,
        actor: String,
    },
    /// Give up on an entity: stores the dead letter and moves the entity (if one is stored)
    /// to `Dead`. Overwrites an earlier dead letter for the same key.
    DeadLetter { letter: DeadLetter, actor: String },
    /// An operator's retry: removes the dead letter and moves the dead entity to `to` with its
    /// attempts and retry time cleared. The intent, if any, is kept so recovery still looks it
    /// up before re-sending.
    Revive {
        key: String,
        to: Stage,
        actor: String,
    },
    /// An operator's "forget it": removes the dead letter; the entity stays `Dead` so it is not
    /// picked up again.
    DropDeadLetter { key: String, actor: String },
    SetCursor {
        name: String,
        value: serde_json::Value,
    },
    /// Opaque bytes (e.g. a serialized OAuth token set); never logged or shown.
    SetToken { name: String, bytes: Vec<u8> },
    /// Raise a discrepancy, or raise it again: merged into the stored one by the writer (see
    /// `ledger::discrepancy::merged`), so it keeps its `raised_at`, and its acknowledgement
    /// while its `detail` is unchanged.
    /// A discrepancy raised, or changed, appends a line to its order's audit trail, by
    /// `actor`.
    PutDiscrepancy {
        key: String,
        value: serde_json::Value,
        actor: String,
    },
    /// Closes a discrepancy, with a line in its order's audit trail. Idempotent: removing an
    /// absent discrepancy is not an error (and writes nothing).
    RemoveDiscrepancy { key: String, actor: String },
    /// An operator has seen the discrepancy and accepts it for now: it stays open (the systems
    /// still disagree) but no longer counts as needing attention, until its detail changes.
    /// Appends a line to the order's audit trail, with the operator's reason when given.
    /// `NotFound` if no such discrepancy is open.
    AcknowledgeDiscrepancy {
        key: String,
        actor: String,
        note: Option<String>,
    },
}

/// By hand so that token bytes never reach a log line through `{:?}`.
impl std::fmt::Debug for Write {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Write::Put {
                state,
                actor,
                detail,
            } => f
                .debug_struct("Put")
                .field("state", state)
                .field("actor", actor)
                .field("detail", detail)
                .finish(),
            Write::SetLink {
                key,
                name,
                expected,
                value,
                actor,
            } => f
                .debug_struct("SetLink")
                .field("key", key)
                .field("name", name)
                .field("expected", expected)
                .field("value", value)
                .field("actor", actor)
                .finish(),
            Write::Note { key, actor, detail } => f
                .debug_struct("Note")
                .field("key", key)
                .field("actor", actor)
                .field("detail", detail)
                .finish(),
            Write::DeadLetter { letter, actor } => f
                .debug_struct("DeadLetter")
                .field("letter", letter)
                .field("actor", actor)
                .finish(),
            Write::Revive { key, to, actor } => f
                .debug_struct("Revive")
                .field("key", key)
                .field("to", to)
                .field("actor", actor)
                .finish(),
            Write::DropDeadLetter { key, actor } => f
                .debug_struct("DropDeadLetter")
                .field("key", key)
                .field("actor", actor)
                .finish(),
            Write::SetCursor { name, value } => f
                .debug_struct("SetCursor")
                .field("name", name)
                .field("value", value)
                .finish(),
            Write::SetToken { name, bytes } => f
                .debug_struct("SetToken")
                .field("name", name)
                .field("bytes", &format_args!("<{} bytes redacted>", bytes.len()))
                .finish(),
            Write::PutDiscrepancy { key, value, actor } => f
                .debug_struct("PutDiscrepancy")
                .field("key", key)
                .field("value", value)
                .field("actor", actor)
                .finish(),
            Write::RemoveDiscrepancy { key, actor } => f
                .debug_struct("RemoveDiscrepancy")
                .field("key", key)
                .field("actor", actor)
                .finish(),
            Write::AcknowledgeDiscrepancy { key, actor, note } => f
                .debug_struct("AcknowledgeDiscrepancy")
                .field("key", key)
                .field("actor", actor)
                .field("note", note)
                .finish(),
        }
    }
}

/// What a successful commit did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CommitInfo {
    /// The new version of every entity written, to pass back on the next `Put`.
    pub versions: BTreeMap<String, u64>,
    /// Sequence numbers of the audit entries appended.
    pub audit_seqs: Vec<u64>,
    /// Number of the redb transaction that carried this commit (counted since open).
    pub transaction: u64,
    /// How many commit requests shared that transaction.
    pub group_size: usize,
}

/// Counters of the writer since the ledger was opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LedgerStats {
    /// redb write transactions committed.
    pub transactions: u64,
    /// Commit requests that were committed.
    pub commits: u64,
    /// Commit requests rejected on their own (stale version, illegal move, …).
    pub rejected: u64,
    /// Write transactions that failed as a whole (storage errors).
    pub failed_transactions: u64,
    /// The most commit requests carried by one transaction.
    pub largest_group: u64,
    /// Transactions committed durably (with an fsync); the rest held no intent (see
    /// `ledger/durability.rs`).
    pub durable_transactions: u64,
    /// Empty durable commits made when the writer fell idle or stopped with undurable
    /// commits pending.
    pub hardened: u64,
}
