//! One order against its Xero invoice: which discrepancies are open, and whether the order
//! should move on because Xero has it paid.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde_json::{Value, json};

use super::kinds;
use crate::ledger::discrepancy::merged;
use crate::ledger::{EntityState, Record, Stage, Write};
use crate::model::money::parse_money;

/// A discrepancy that is open for an order, as it is stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub key: String,
    pub kind: &'static str,
    pub value: Value,
}

impl Finding {
    /// The write that raises it (or keeps it: the writer merges it into the stored one, see
    /// [`crate::ledger::discrepancy::merged`]), by `actor`.
    pub fn raise(self, actor: &str) -> Write {
        Write::PutDiscrepancy {
            key: self.key,
            value: self.value,
            actor: actor.to_owned(),
        }
    }

    /// Whether raising it over `stored` changes anything (a quiet pass writes nothing).
    pub fn changes(&self, stored: Option<&Value>, now: DateTime<Utc>) -> bool {
        stored != Some(&merged(&self.value, stored, now.timestamp_millis()))
    }
}

/// What Magento says of an order, as its stored record has it.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct MagentoSide {
    /// `grand_total`, in the order's currency (the invoice's).
    pub grand_total: Option<Decimal>,
    /// `payment.amount_paid`: what tally's payment applied.
    pub amount_paid: Option<Decimal>,
    /// Magento cancelled the order.
    pub cancelled: bool,
}

impl MagentoSide {
    /// Read from an order's stored record (one pass over its text).
    pub fn of(record: &Record) -> MagentoSide {
        let [grand_total, payment, state] = record.fields(["grand_total", "payment", "state"]);
        let money = |v: Option<&Value>| v.and_then(|v| parse_money(v).ok());
        MagentoSide {
            grand_total: money(grand_total.as_ref()),
            amount_paid: money(payment.as_ref().and_then(|p| p.get("amount_paid"))),
            cancelled: is_cancelled(state.as_ref().and_then(Value::as_str)),
        }
    }
}

/// What one order's comparison says.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Verdict {
    /// Every discrepancy open for the order now; any other reconciled kind is closed.
    pub open: Vec<Finding>,
    /// Xero has the invoice paid and the ledger still waits for a payment: the order moves
    /// to `Paid` and Magento is written back, as a webhook would have done.
    pub paid_in_xero: bool,
}

/// Whether the reconciler may judge an order in `stage`. A write in flight (`*Posting`) is
/// left to its stage, whose outcome would race the comparison; an order not yet invoiced,
/// or dead-lettered, has nothing in Xero to compare.
pub fn judged(stage: Stage) -> bool {
    matches!(
        stage,
        Stage::Invoiced | Stage::Skipped | Stage::Paid | Stage::WrittenBack
    )
}

/// A money field of a Xero document, exact (never through a float).
pub(crate) fn money(invoice: &Value, field: &str) -> Option<Decimal> {
    invoice.get(field).and_then(|v| parse_money(v).ok())
}

/// The discrepancy of an order cancelled in Magento whose invoice Xero still holds: built in
/// one place so ingest (which reads the cancellation) and the reconciler (which keeps it open
/// until Xero agrees) store the same value.
pub fn cancelled_in_magento(order: &EntityState, invoice_id: &str, number: &str) -> Finding {
    let name = order.key.trim_start_matches("order:");
    finding(
        kinds::ORDER_CANCELLED_IN_MAGENTO,
        order,
        invoice_id,
        format!(
            "order {name} was cancelled in Magento after tally posted Xero invoice {number}; void or credit it in Xero"
        ),
    )
}

/// Whether a stored order record says Magento cancelled the order.
pub fn is_cancelled(record_state: Option<&str>) -> bool {
    record_state == Some("canceled")
}

fn finding(kind: &'static str, order: &EntityState, invoice_id: &str, detail: String) -> Finding {
    Finding {
        key: kinds::key(kind, &order.key),
        kind,
        value: json!({
            "kind": kind,
            "order": order.key,
            "invoice_id": invoice_id,
            "detail": detail,
        }),
    }
}

/// Compares `order` and what Magento says of it with `invoice`, Xero's current copy of the
/// invoice tally posted.
pub fn findings(order: &EntityState, magento: MagentoSide, invoice: &Value) -> Verdict {
    let MagentoSide {
        grand_total,
        amount_paid,
        cancelled,
    } = magento;
    let mut verdict = Verdict::default();
    if !judged(order.stage) {
        return verdict;
    }
    let name = order.key.trim_start_matches("order:");
    let invoice_id = invoice
        .get("InvoiceID")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let number = invoice
        .get("InvoiceNumber")
        .and_then(Value::as_str)
        .unwrap_or(name);
    let status = invoice
        .get("Status")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let voided = matches!(status, "VOIDED" | "DELETED");
    if cancelled {
        // Both sides agree once Xero's invoice is voided; until then only the cancellation
        // is the discrepancy (its total and payment no longer matter).
        if !voided {
            verdict
                .open
                .push(cancelled_in_magento(order, invoice_id, number));
        }
        return verdict;
    }
    if voided {
        verdict.open.push(finding(
            kinds::INVOICE_VOIDED_IN_XERO,
            order,
            invoice_id,
            format!(
                "Xero invoice {number} of order {name} is {status}; Magento still has the order"
            ),
        ));
        return verdict;
    }
    let total = money(invoice, "Total");
    if let (Some(xero), Some(magento)) = (total, grand_total)
        && xero != magento
    {
        verdict.open.push(finding(
            kinds::INVOICE_TOTAL_DIFFERS,
            order,
            invoice_id,
            format!(
                "Xero invoice {number} totals {xero}, order {name}'s grand total is {magento} (difference {})",
                xero - magento
            ),
        ));
    }
    let due = money(invoice, "AmountDue");
    let xero_paid = money(invoice, "AmountPaid");
    // A partial payment in Magento is a partial payment in Xero: what tally applied must be
    // there, not the whole total. Without amounts, a paid invoice is the test.
    let payment_there = match (xero_paid, amount_paid) {
        (Some(x), Some(m)) => x >= m,
        _ => status == "PAID" || due.is_some_and(|d| d.is_zero()),
    };
    match order.stage {
        Stage::Invoiced | Stage::Skipped if status == "PAID" => verdict.paid_in_xero = true,
        Stage::Paid | Stage::WrittenBack
            if order.links.contains_key("payment_id") && !payment_there =>
        {
            verdict.open.push(finding(
                kinds::PAYMENT_MISSING_IN_XERO,
                order,
                invoice_id,
                format!(
                    "tally applied {} to order {name} (PaymentID {}), but Xero invoice {number} is {status} with {} paid and {} due",
                    amount_paid.map_or_else(|| "the payment".to_owned(), |m| m.to_string()),
                    order.links.get("payment_id").map_or("", String::as_str),
                    xero_paid.map_or_else(|| "nothing".to_owned(), |d| d.to_string()),
                    due.map_or_else(|| "an amount".to_owned(), |d| d.to_string()),
                ),
            ));
        }
        _ => {}
    }
    verdict
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::EntityKind;
    use rust_decimal_macros::dec;

    fn order(stage: Stage, paid_by_tally: bool) -> EntityState {
        let mut s = EntityState::new(
            EntityKind::Order,
            "100000042",
            crate::ledger::Record::null(),
        );
        s.stage = stage;
        s.links.insert("invoice_id".into(), "inv-1".into());
        if paid_by_tally {
            s.links.insert("payment_id".into(), "pay-1".into());
        }
        s
    }

    fn invoice(status: &str, total: &str, due: &str) -> Value {
        json!({"InvoiceID": "inv-1", "InvoiceNumber": "100000042", "Status": status,
               "Total": total, "AmountDue": due})
    }

    fn findings_(order: &EntityState, total: Option<Decimal>, invoice: &Value) -> Verdict {
        let magento = MagentoSide {
            grand_total: total,
            ..MagentoSide::default()
        };
        findings(order, magento, invoice)
    }

    fn cancelled(total: Decimal) -> MagentoSide {
        MagentoSide {
            grand_total: Some(total),
            amount_paid: None,
            cancelled: true,
        }
    }

    fn kinds_of(v: &Verdict) -> Vec<&str> {
        v.open.iter().map(|f| f.kind).collect()
    }

    #[test]
    fn an_invoice_that_agrees_opens_nothing() {
        for (stage, paid, status, due) in [
            (Stage::Invoiced, false, "AUTHORISED", "10.00"),
            (Stage::Skipped, false, "AUTHORISED", "10.00"),
            (Stage::Paid, true, "PAID", "0.00"),
            (Stage::WrittenBack, true, "PAID", "0.00"),
            // Paid in Xero and seen by a webhook: no payment of tally's to miss.
            (Stage::WrittenBack, false, "PAID", "0.00"),
        ] {
            let v = findings_(
                &order(stage, paid),
                Some(dec!(10.00)),
                &invoice(status, "10.00", due),
            );
            assert_eq!(v, Verdict::default(), "{stage:?} {status}");
        }
    }

    #[test]
    fn a_voided_invoice_is_one_discrepancy_under_the_webhooks_key() {
        let v = findings_(
            &order(Stage::WrittenBack, true),
            Some(dec!(10)),
            &invoice("VOIDED", "10.00", "0.00"),
        );
        assert_eq!(kinds_of(&v), [kinds::INVOICE_VOIDED_IN_XERO]);
        assert_eq!(v.open[0].key, "voided:order:100000042");
        assert!(
            v.open[0].value["detail"]
                .as_str()
                .unwrap()
                .contains("VOIDED")
        );
        assert!(!v.paid_in_xero);
    }

    #[test]
    fn a_total_edited_in_xero_names_both_totals_and_the_difference() {
        let v = findings_(
            &order(Stage::Invoiced, false),
            Some(dec!(10.00)),
            &invoice("AUTHORISED", "9.95", "9.95"),
        );
        assert_eq!(kinds_of(&v), [kinds::INVOICE_TOTAL_DIFFERS]);
        let detail = v.open[0].value["detail"].as_str().unwrap();
        assert!(
            detail.contains("9.95") && detail.contains("10.00") && detail.contains("-0.05"),
            "{detail}"
        );
        // Equal to the cent, however written: no discrepancy.
        let v = findings_(
            &order(Stage::Invoiced, false),
            Some(dec!(10)),
            &invoice("AUTHORISED", "10.00", "10.00"),
        );
        assert!(v.open.is_empty());
    }

    #[test]
    fn a_payment_removed_in_xero_is_raised_and_one_made_in_xero_moves_the_order() {
        let v = findings_(
            &order(Stage::WrittenBack, true),
            Some(dec!(10)),
            &invoice("AUTHORISED", "10.00", "10.00"),
        );
        assert_eq!(kinds_of(&v), [kinds::PAYMENT_MISSING_IN_XERO]);
        assert!(
            v.open[0].value["detail"]
                .as_str()
                .unwrap()
                .contains("pay-1")
        );
        let v = findings_(
            &order(Stage::Invoiced, false),
            Some(dec!(10)),
            &invoice("PAID", "10.00", "0.00"),
        );
        assert!(v.paid_in_xero && v.open.is_empty());
    }

    #[test]
    fn a_cancelled_order_is_open_until_xero_voids_its_invoice_and_then_nothing_is() {
        let o = order(Stage::Skipped, false);
        let v = findings(
            &o,
            cancelled(dec!(10)),
            &invoice("AUTHORISED", "10.00", "10.00"),
        );
        assert_eq!(kinds_of(&v), [kinds::ORDER_CANCELLED_IN_MAGENTO]);
        assert_eq!(v.open[0], cancelled_in_magento(&o, "inv-1", "100000042"));
        assert_eq!(v.open[0].key, "cancelled:order:100000042");
        // Paid in Xero or not, a cancelled order does not move on.
        let v = findings(&o, cancelled(dec!(10)), &invoice("PAID", "10.00", "0.00"));
        assert_eq!(kinds_of(&v), [kinds::ORDER_CANCELLED_IN_MAGENTO]);
        assert!(!v.paid_in_xero);
        let v = findings(&o, cancelled(dec!(10)), &invoice("VOIDED", "10.00", "0.00"));
        assert_eq!(
            v,
            Verdict::default(),
            "cancelled and voided: the books agree"
        );
        assert!(
            is_cancelled(Some("canceled"))
                && !is_cancelled(Some("complete"))
                && !is_cancelled(None)
        );
    }

    #[test]
    fn a_partial_payment_is_judged_by_what_tally_applied() {
        let o = order(Stage::WrittenBack, true);
        let side = |paid: Decimal| MagentoSide {
            grand_total: Some(dec!(10)),
            amount_paid: Some(paid),
            cancelled: false,
        };
        let mut inv = invoice("AUTHORISED", "10.00", "6.00");
        inv["AmountPaid"] = json!("4.00");
        assert_eq!(
            findings(&o, side(dec!(4.00)), &inv),
            Verdict::default(),
            "4 of 10, as in Magento"
        );
        let v = findings(&o, side(dec!(10.00)), &inv);
        assert_eq!(kinds_of(&v), [kinds::PAYMENT_MISSING_IN_XERO]);
        let detail = v.open[0].value["detail"].as_str().unwrap();
        assert!(
            detail.contains("applied 10.00")
                && detail.contains("4.00 paid")
                && detail.contains("6.00 due"),
            "{detail}"
        );
    }

    #[test]
    fn magentos_side_is_read_from_the_stored_record() {
        let record = crate::ledger::Record::from_value(&json!({
            "grand_total": "10.50", "state": "canceled",
            "payment": {"amount_paid": "4.00", "method": "checkmo"}, "items": []
        }));
        assert_eq!(
            MagentoSide::of(&record),
            MagentoSide {
                grand_total: Some(dec!(10.50)),
                amount_paid: Some(dec!(4.00)),
                cancelled: true,
            }
        );
        let unpaid = crate::ledger::Record::from_value(&json!({"grand_total": "3", "payment": {}}));
        assert_eq!(
            MagentoSide::of(&unpaid),
            MagentoSide {
                grand_total: Some(dec!(3)),
                ..MagentoSide::default()
            }
        );
        assert_eq!(
            MagentoSide::of(&crate::ledger::Record::null()),
            MagentoSide::default()
        );
    }

    #[test]
    fn orders_with_a_write_in_flight_or_dead_are_not_judged() {
        for stage in [
            Stage::InvoicePosting,
            Stage::PaymentPosting,
            Stage::Dead,
            Stage::Seen,
        ] {
            let v = findings_(
                &order(stage, true),
                Some(dec!(10)),
                &invoice("VOIDED", "1.00", "1.00"),
            );
            assert_eq!(v, Verdict::default(), "{stage:?}");
        }
    }
}
