//! One line of the append-only audit log: who moved what, from where to where, and why.

use super::stage::Stage;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Global, gap-free within committed history, increasing in commit order.
    pub seq: u64,
    pub at_ms: i64,
    /// The entity key.
    pub entity: String,
    /// `None` when the entity was created by this write.
    pub from: Option<Stage>,
    pub to: Stage,
    /// The actor (or operator command) that made the write.
    pub actor: String,
    /// e.g. `intent PUT Invoices key=inv-000000123-1`, `Xero accepted InvoiceID=…`.
    pub detail: String,
}
