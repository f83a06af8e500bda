//! The reconciler: reads back from Xero what tally wrote and raises a discrepancy wherever
//! Xero no longer agrees with Magento (a voided invoice, a changed total, a payment made or
//! removed in Xero), and closes it when they agree again.
//!
//! The comparison is a pure function (`diff`) so every rule is tested without a server; the
//! worker (`worker`) only fetches, looks orders up and commits.

pub mod diff;
pub mod fix;
pub mod kinds;
pub mod worker;

pub use diff::{Finding, findings};
pub use worker::{PassSummary, ReconcileWorker};
