//! One store↔organisation pair: its supervisor and the entity actors.
//!
//! ```text
//! LinkSupervisor ── restarts children with backoff and a restart-intensity limit
//!   ├─ ingest     polls Magento by updated_at, records orders (bad input → dead letters)
//!   ├─ contacts   Seen → ContactReady: find or create contacts in batches
//!   ├─ invoices   ContactReady → Invoiced: ACCREC invoices in batches of 50
//!   ├─ payments   Invoiced → Paid (or Skipped while unpaid): payments in batches of 50
//!   ├─ writeback  Paid → WrittenBack: Magento invoice/comment
//!   └─ stock      Xero tracked items' QuantityOnHand → Magento stock (absolute levels)
//! ```
//! Every actor holds the shared [`LinkContext`]: the budgeted Xero client, the Magento
//! client and the ledger handle.

pub mod bulk_comments;
pub mod contacts;
pub mod context;
pub mod fresh_intents;
pub mod fresh_payments;
pub mod ingest;
pub mod intents;
pub mod invoices;
pub mod keys;
pub mod parsed_orders;
pub mod passed_over;
pub mod payments;
pub mod runner;
pub mod stage;
pub mod stock;
pub mod supervisor;
pub mod token_store;
pub mod writeback;

pub use context::{LinkContext, LinkNames, LinkSettings};
pub use runner::{Link, LinkConfig, LinkStatus, StageStatus};
