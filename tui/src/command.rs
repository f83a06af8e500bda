//! What the console asks of the engine.

use serde::{Deserialize, Serialize};

use crate::fix_rule::FixRule;

/// Sent on an unbounded channel so a keystroke never waits for the engine; the engine reports
/// the outcome back through the next [`crate::state::ConsoleState`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "command", content = "arg", rename_all = "snake_case")]
pub enum ConsoleCommand {
    /// Retry the failed or dead operation of this entity key now.
    Retry(String),
    /// Retry every failed and dead operation.
    RetryAll,
    /// Forget the dead operation of this entity key.
    Drop(String),
    /// Pause the named actor (ingest, contacts, invoices, …).
    Pause(String),
    Resume(String),
    /// Find entities by order number, email, SKU or Xero id.
    Search(String),
    /// Load the full audit trail of an entity key into `ConsoleState::entity`.
    Open(String),
    ReconcileNow,
    /// Accept this open discrepancy for now (by its key), with the operator's reason: it
    /// stops counting as needing attention until its detail changes, and the order's audit
    /// trail records who did it and why.
    Acknowledge {
        key: String,
        note: Option<String>,
    },
    /// Make the change that brings Magento and Xero back into agreement for this discrepancy,
    /// where tally can (void the Xero invoice of an order Magento cancelled); the engine
    /// refuses the others and says what to do instead.
    FixDiscrepancy(String),
    /// Write `rule` into the mapping config (after validating it against the organisation),
    /// reload the rules and retry `key` and every other dead letter the rule unblocks.
    Fix {
        key: String,
        rule: FixRule,
    },
    /// The operator closed the console.
    Quit,
}
