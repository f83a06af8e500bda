//! Why a ledger operation failed. `Clone` because one failed group commit has to answer
//! every requester in the group with the same error.

use super::stage::{EntityKind, Stage};
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Debug, Clone, thiserror::Error)]
pub enum LedgerError {
    #[error("cannot open ledger {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: Arc<redb::DatabaseError>,
    },
    #[error(
        "ledger {path} has schema version {found}, older than this build's {expected}; \
         migrate it with the release that wrote it or rebuild it from the source systems"
    )]
    SchemaTooOld {
        path: PathBuf,
        found: u64,
        expected: u64,
    },
    #[error(
        "ledger {path} has schema version {found}, newer than this build's {expected}; \
         run the newer tally release that wrote it"
    )]
    SchemaTooNew {
        path: PathBuf,
        found: u64,
        expected: u64,
    },
    #[error("ledger storage error: {0}")]
    Storage(#[source] Arc<redb::Error>),
    #[error("cannot encode {what}: {reason}")]
    Encode { what: &'static str, reason: String },
    #[error("cannot decode {what} {key}: {reason}")]
    Decode {
        what: &'static str,
        key: String,
        reason: String,
    },
    #[error("{what} {key} has record version {found}; this build reads version {supported}")]
    RecordVersion {
        what: &'static str,
        key: String,
        found: u32,
        supported: u32,
    },
    #[error("stale write to {key}: expected version {expected}, ledger has {found}")]
    VersionConflict {
        key: String,
        expected: u64,
        found: u64,
    },
    #[error("illegal move of {kind:?} {key} from {from:?} to {to}: {reason}")]
    IllegalTransition {
        key: String,
        kind: EntityKind,
        from: Option<Stage>,
        to: Stage,
        reason: &'static str,
    },
    #[error("{key} is stored as {stored:?}, not {given:?}")]
    KindMismatch {
        key: String,
        stored: EntityKind,
        given: EntityKind,
    },
    #[error("idempotency key {idempotency_key} is already held by {holder}, not {key}")]
    DuplicateIdempotencyKey {
        idempotency_key: String,
        key: String,
        holder: String,
    },
    #[error("link {link} already points at {holder}, not {key}")]
    DuplicateLink {
        link: String,
        key: String,
        holder: String,
    },
    #[error("nothing in the ledger under {key}")]
    NotFound { key: String },
    #[error("the ledger does not index the link `{link}`; only Xero ids are indexed")]
    NotIndexed { link: String },
    #[error("the ledger writer thread has stopped")]
    WriterGone,
    #[error("a ledger read task failed: {0}")]
    ReadTask(String),
}

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for LedgerError {
            fn from(e: $t) -> Self {
                LedgerError::Storage(Arc::new(e.into()))
            }
        }
    )*};
}

from_redb!(
    redb::Error,
    redb::StorageError,
    redb::TableError,
    redb::TransactionError,
    redb::CommitError,
    redb::SetDurabilityError
);
