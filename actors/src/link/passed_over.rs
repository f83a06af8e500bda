//! Orders whose Magento change the poll moved past without taking it.
//!
//! Ingest does not take a change to an order whose invoice call is in flight
//! (`InvoicePosting`): the call's intent was built from the stored copy. The poll's cursor
//! moves on all the same, so if that change was a payment, the payments stage would later
//! judge the order from a copy that says nothing is paid, and the payment would never sync.
//! The payments stage therefore asks Magento for the current copy before it calls such an
//! order unpaid, and only such an order: asking for every unpaid order would put a Magento
//! read in front of every payments round.
//!
//! The set lives in memory. After a restart it is empty, so every order the ledger held
//! before this process started counts as passed over: its change may have been passed by
//! the process that died. It is not a mark in the order's state because writing to an
//! order whose invoice call is in flight would make that call's outcome commit fail on a
//! version conflict.

use std::collections::HashSet;

use parking_lot::Mutex;

use crate::ledger::{EntityState, Stage};

#[derive(Debug)]
pub struct PassedOver {
    keys: Mutex<HashSet<String>>,
    /// When this process started, in ledger milliseconds.
    started_ms: i64,
}

impl PassedOver {
    pub fn new(started_ms: i64) -> Self {
        Self {
            keys: Mutex::new(HashSet::new()),
            started_ms,
        }
    }

    /// Notes a change the poll found for an order stored in `stage`, which ingest does not
    /// take then; only an in-flight invoice can be followed by a payment decision.
    pub fn note(&self, key: &str, stage: Stage) {
        if stage == Stage::InvoicePosting {
            self.keys.lock().insert(key.to_owned());
        }
    }

    /// Forgets an order whose current copy the payments stage has (or found paid).
    pub fn forget(&self, key: &str) {
        self.keys.lock().remove(key);
    }

    /// Whether the stored copy of `order` may miss a change Magento made: the payments stage
    /// checks Magento's current copy before calling it unpaid, and [`forget`](Self::forget)s
    /// it once Magento has answered (not before: a failed read must be retried).
    pub fn needs_check(&self, order: &EntityState) -> bool {
        order.created_at_ms < self.started_ms || self.keys.lock().contains(&order.key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::EntityKind;
    use serde_json::json;

    fn order(id: &str, created_at_ms: i64) -> EntityState {
        let mut s = EntityState::new(EntityKind::Order, id, json!({}));
        s.created_at_ms = created_at_ms;
        s
    }

    #[test]
    fn only_changes_passed_during_an_invoice_call_or_before_a_restart_are_rechecked() {
        let p = PassedOver::new(1_000);
        let (a, b, c) = (order("a", 2_000), order("b", 2_000), order("c", 500));
        p.note(&a.key, Stage::InvoicePosting);
        p.note(&b.key, Stage::WrittenBack);
        assert!(
            p.needs_check(&a),
            "a change passed while the invoice was in flight"
        );
        assert!(p.needs_check(&a), "still marked until Magento has answered");
        p.forget(&a.key);
        assert!(!p.needs_check(&a), "checked once");
        assert!(
            !p.needs_check(&b),
            "a change after the payment decision is not the payments stage's"
        );
        assert!(
            p.needs_check(&c),
            "ingested before this process started: its change may be lost"
        );
    }
}
