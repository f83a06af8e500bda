//! tally engine

pub mod budget;
mod fast_map;
pub mod ledger;
pub mod link;
pub mod magento;
pub mod mapping;
pub mod model;
pub mod reconcile;
pub mod retry;
pub mod xero;
