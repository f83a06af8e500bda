//! One order against its Xero invoice: which discrepancies are open, and whether the order
//! should move on because Xero has it paid.

use rust_decimal::Decimal;
use serde_json::{Value, json};

use super::kinds;
use crate::ledger::{EntityState, Stage};
use crate::model::money::parse_money;

/// A discrepancy that is open for an order, as it is stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub key: String,
    pub kind: &'static str,
    pub value: Value,
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

fn money(invoice: &Value, field: &str) -> Option<Decimal> {
    invoice.get(field).and_then(|v| parse_money(v).ok())
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

/// Compares `order` (with Magento's `grand_total`, in the order's currency) with `invoice`,
/// Xero's current copy of the invoice tally posted for it.
pub fn findings(order: &EntityState, grand_total: Option<Decimal>, invoice: &Value) -> Verdict {
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
    if matches!(status, "VOIDED" | "DELETED") {
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
    let paid_in_xero = status == "PAID" || due.is_some_and(|d| d.is_zero());
    match order.stage {
        Stage::Invoiced | Stage::Skipped if status == "PAID" => verdict.paid_in_xero = true,
        Stage::Paid | Stage::WrittenBack
            if order.links.contains_key("payment_id") && !paid_in_xero =>
        {
            verdict.open.push(finding(
                kinds::PAYMENT_MISSING_IN_XERO,
                order,
                invoice_id,
                format!(
                    "tally applied the payment of order {name} (PaymentID {}), but Xero invoice {number} is {status} with {} still due",
                    order.links.get("payment_id").map_or("", String::as_str),
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
            let v = findings(
                &order(stage, paid),
                Some(dec!(10.00)),
                &invoice(status, "10.00", due),
            );
            assert_eq!(v, Verdict::default(), "{stage:?} {status}");
        }
    }

    #[test]
    fn a_voided_invoice_is_one_discrepancy_under_the_webhooks_key() {
        let v = findings(
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
        let v = findings(
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
        let v = findings(
            &order(Stage::Invoiced, false),
            Some(dec!(10)),
            &invoice("AUTHORISED", "10.00", "10.00"),
        );
        assert!(v.open.is_empty());
    }

    #[test]
    fn a_payment_removed_in_xero_is_raised_and_one_made_in_xero_moves_the_order() {
        let v = findings(
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
        let v = findings(
            &order(Stage::Invoiced, false),
            Some(dec!(10)),
            &invoice("PAID", "10.00", "0.00"),
        );
        assert!(v.paid_in_xero && v.open.is_empty());
    }

    #[test]
    fn orders_with_a_write_in_flight_or_dead_are_not_judged() {
        for stage in [
            Stage::InvoicePosting,
            Stage::PaymentPosting,
            Stage::Dead,
            Stage::Seen,
        ] {
            let v = findings(
                &order(stage, true),
                Some(dec!(10)),
                &invoice("VOIDED", "1.00", "1.00"),
            );
            assert_eq!(v, Verdict::default(), "{stage:?}");
        }
    }
}
