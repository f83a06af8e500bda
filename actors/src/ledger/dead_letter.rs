//! A record the engine gave up on, with enough context for an operator to fix and retry it.

use super::stage::Stage;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// The entity key (`order:000000123`); one dead letter per entity.
    pub key: String,
    /// Human wording of the record, e.g. `order 000000123`.
    pub record: String,
    /// The field at fault, when known (e.g. `items[2].tax_class`).
    pub field: Option<String>,
    /// Our explanation.
    pub message: String,
    /// The remote system's own words, e.g. Xero's ValidationErrors message.
    pub remote_message: Option<String>,
    /// Filled in by the ledger from the entity's stage when it has one.
    pub stage_at_death: Option<Stage>,
    pub attempts: u32,
    pub first_failed_at_ms: i64,
    /// Stamped by the ledger.
    pub dead_at_ms: i64,
    /// The payload that failed, when it helps to diagnose (kept out of logs).
    pub payload: Option<serde_json::Value>,
}
