//! Rate budgets: how many calls the engine may make, when, and in which order.
//!
//! One [`XeroBudget`] per Xero tenant is shared by every actor of a link, because Xero's
//! limits (60 a minute, 5 in flight, 5,000 a day) are per tenant, not per caller. Actors
//! call `acquire(priority)` before each request and hold the permit until the response has
//! been read.

mod gate;
mod magento;
mod priority;
mod snapshot;
mod xero;

pub use magento::{MagentoBudget, MagentoBudgetSnapshot, MagentoLimits, MagentoPermit};
pub use priority::Priority;
pub use snapshot::BudgetSnapshot;
pub use xero::{BudgetPermit, XeroBudget, XeroLimits};
