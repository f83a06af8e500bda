//! tally engine

pub mod model;
pub mod mapping;
pub mod budget;
pub mod retry;
pub mod xero;
pub mod magento;
pub mod ledger;
pub mod link;
