//! Mapping rules from the `[mapping]` config table, checked against the live systems, and the
//! pure functions that turn a validated [`Order`](crate::model::Order) into Xero bodies.
//!
//! Everything here is synchronous and side-effect free so actors can call it inline.

pub mod check;
pub mod contact;
pub mod invoice;
pub mod payment;
pub mod rules;
pub mod xero_math;

pub use check::{CheckProblem, Severity, StoreFacts, XeroOrgFacts, check_against};
pub use contact::{ContactMatch, contact_for, contact_number, disambiguated_name, find_existing};
pub use invoice::{OrgContext, PlannedInvoice, RoundingNote, invoice_for};
pub use payment::payment_for;
pub use rules::{AccountRule, MappingRules, RuleProblem};
