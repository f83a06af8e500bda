//! The ledger: the engine's durable memory, in one redb file.
//!
//! An entity's life (order, contact, …) is a state machine persisted here. Every outbound call
//! is made only after its [`Intent`] (with its idempotency key) is committed, and its outcome
//! is committed after; after a crash, [`Ledger::with_intent`] lists the calls whose outcome is
//! unknown, to be resolved by a lookup before anything is re-sent. Every stage move appends to
//! an audit log in the same transaction. Failed entities wait in a due-time index; entities the
//! engine gives up on go to the dead-letter queue until an operator revives or drops them.
//!
//! Writes go through one writer thread that groups concurrent commits into one transaction.
//!
//! ```no_run
//! # async fn demo() -> Result<(), tally_actors::ledger::LedgerError> {
//! use tally_actors::ledger::*;
//! let ledger = Ledger::open("tally.redb")?;
//! let order = EntityState::new(EntityKind::Order, "000000123", serde_json::json!({"increment_id": "000000123"}));
//! let info = ledger.commit(vec![Write::Put { state: order, actor: "ingest".into(), detail: String::new() }]).await?;
//! let mut order = ledger.get("order:000000123").await?.expect("just written");
//! assert_eq!(order.version, info.versions["order:000000123"]);
//! order.stage = Stage::ContactReady;
//! ledger.commit(vec![Write::Put { state: order, actor: "contacts".into(), detail: "contact found".into() }]).await?;
//! # Ok(()) }
//! ```

mod audit;
mod codec;
mod config;
mod dead_letter;
mod derived;
pub mod discrepancy;
mod durability;
mod entity;
mod error;
mod handle;
mod intent_index;
mod link_index;
mod reader_pool;
mod reads;
mod record;
mod repair_log;
mod schema;
mod stage;
mod stage_index;
pub mod tables;
mod write;
mod writer;

pub use audit::AuditEntry;
pub use codec::RECORD_VERSION;
pub use config::{LedgerConfig, LedgerOptions};
pub use dead_letter::DeadLetter;
pub use entity::{EntityState, Intent};
pub use error::LedgerError;
pub use handle::Ledger;
pub use reads::LedgerReader;
pub use record::Record;
pub use stage::{EntityKind, Stage, can_move};
pub use write::{CommitInfo, LedgerStats, Write};
