//! The life of an entity as a small state machine. Enforced on every write so a bug in an
//! actor cannot, say, mark an order `Paid` that was never invoiced.

use serde::{Deserialize, Serialize};
use std::fmt;

/// What an entity key refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntityKind {
    Order,
    Contact,
    Payment,
    StockItem,
}

impl EntityKind {
    /// The key prefix, so keys of different kinds never collide and sort together.
    pub fn prefix(self) -> &'static str {
        match self {
            EntityKind::Order => "order",
            EntityKind::Contact => "contact",
            EntityKind::Payment => "payment",
            EntityKind::StockItem => "stock",
        }
    }

    /// The conventional entity key: `order:000000123`, `contact:jane@example.com`, `stock:SKU-1`.
    pub fn key(self, natural_id: &str) -> String {
        format!("{}:{natural_id}", self.prefix())
    }

    /// The stage a brand-new entity of this kind must start in.
    pub fn initial_stage(self) -> Stage {
        match self {
            EntityKind::Contact => Stage::ContactPending,
            EntityKind::Order | EntityKind::Payment | EntityKind::StockItem => Stage::Seen,
        }
    }

    /// Whether `stage` belongs to this kind's life at all.
    pub fn uses(self, stage: Stage) -> bool {
        use Stage::*;
        match self {
            EntityKind::Order => matches!(
                stage,
                Seen | ContactReady
                    | InvoicePosting
                    | Invoiced
                    | PaymentPosting
                    | Paid
                    | WrittenBack
                    | Skipped
                    | Dead
            ),
            EntityKind::Contact => {
                matches!(stage, ContactPending | ContactPosting | ContactDone | Dead)
            }
            EntityKind::Payment => matches!(stage, Seen | PaymentPosting | Paid | Skipped | Dead),
            EntityKind::StockItem => matches!(stage, Seen | WrittenBack | Skipped | Dead),
        }
    }
}

/// Where an entity is in its life. Failure is not a stage: a failed attempt stays in its stage
/// with `attempts`, `retry_at_ms` and `last_error` set (the design's `failed(retry_at, …)`
/// beside each step), so a retry resumes exactly where it stopped.
///
/// Legal moves (staying in the same stage is always legal: attempts, intents and data change):
///
/// * Order: `Seen → ContactReady → InvoicePosting → Invoiced → PaymentPosting → Paid →
///   WrittenBack`; `Seen | ContactReady → Skipped` (cancelled in
///   Magento before it was invoiced; nothing is sent to Xero);
///   `Invoiced → Skipped` (unpaid: no payment needed yet); `Skipped → Seen` (the order changed
///   and is re-evaluated); `Skipped → Invoiced` (a payment arrived in Magento: back in the
///   payments queue); `Skipped → PaymentPosting` (a payment arrived later);
///   `Invoiced | Skipped → Paid` (paid in Xero directly, seen by the reconciler).
/// * Contact: `ContactPending → ContactPosting → ContactDone`; `ContactPending → ContactDone`
///   (found by lookup, nothing to create); `ContactDone → ContactPending` (details changed).
/// * Payment: `Seen → PaymentPosting → Paid`; `Seen → Skipped`.
/// * StockItem: `Seen → WrittenBack` (level pushed to Magento); `WrittenBack → Seen` (a new
///   level observed); `Seen → Skipped`.
/// * Any kind: any live stage `→ Dead`, and `Dead →` any stage of the kind. The ledger only
///   performs these through `Write::DeadLetter` and `Write::Revive`, so a dead entity always
///   went through the dead-letter queue and only leaves it by an operator's retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    Seen,
    ContactReady,
    InvoicePosting,
    Invoiced,
    PaymentPosting,
    Paid,
    WrittenBack,
    ContactPending,
    ContactPosting,
    ContactDone,
    Skipped,
    Dead,
}

impl Stage {
    /// Every stage, in declaration order.
    pub const ALL: [Stage; 12] = [
        Stage::Seen,
        Stage::ContactReady,
        Stage::InvoicePosting,
        Stage::Invoiced,
        Stage::PaymentPosting,
        Stage::Paid,
        Stage::WrittenBack,
        Stage::ContactPending,
        Stage::ContactPosting,
        Stage::ContactDone,
        Stage::Skipped,
        Stage::Dead,
    ];

    /// The stable name stored in index keys; renaming one is a schema change.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Seen => "seen",
            Stage::ContactReady => "contact_ready",
            Stage::InvoicePosting => "invoice_posting",
            Stage::Invoiced => "invoiced",
            Stage::PaymentPosting => "payment_posting",
            Stage::Paid => "paid",
            Stage::WrittenBack => "written_back",
            Stage::ContactPending => "contact_pending",
            Stage::ContactPosting => "contact_posting",
            Stage::ContactDone => "contact_done",
            Stage::Skipped => "skipped",
            Stage::Dead => "dead",
        }
    }

    /// The inverse of [`Stage::as_str`].
    pub fn parse(name: &str) -> Option<Stage> {
        Stage::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether an entity of `kind` may move from `from` to `to` (see [`Stage`] for the graph).
///
/// The kind is part of the question because payments and stock items reuse order stage names
/// (`Seen`, `Paid`, …) with a shorter path: `Seen → PaymentPosting` is right for a payment
/// and wrong for an order that has no invoice yet.
pub fn can_move(kind: EntityKind, from: Stage, to: Stage) -> bool {
    use Stage::*;
    if !kind.uses(from) || !kind.uses(to) {
        return false;
    }
    if from == to {
        return true;
    }
    if to == Dead || from == Dead {
        return true;
    }
    match kind {
        EntityKind::Order => matches!(
            (from, to),
            (Seen, ContactReady)
                | (Seen, Skipped)
                | (ContactReady, Skipped)
                | (ContactReady, InvoicePosting)
                | (InvoicePosting, Invoiced)
                | (InvoicePosting, PaymentPosting)
                | (Invoiced, PaymentPosting)
                | (Invoiced, Skipped)
                | (Invoiced, Paid)
                | (Skipped, Seen)
                | (Skipped, Invoiced)
                | (Skipped, PaymentPosting)
                | (Skipped, Paid)
                | (PaymentPosting, Paid)
                | (Paid, WrittenBack)
        ),
        EntityKind::Contact => matches!(
            (from, to),
            (ContactPending, ContactPosting)
                | (ContactPending, ContactDone)
                | (ContactPosting, ContactDone)
                | (ContactDone, ContactPending)
        ),
        EntityKind::Payment => matches!(
            (from, to),
            (Seen, PaymentPosting) | (Seen, Skipped) | (PaymentPosting, Paid)
        ),
        EntityKind::StockItem => matches!(
            (from, to),
            (Seen, WrittenBack) | (WrittenBack, Seen) | (Seen, Skipped)
        ),
    }
}
