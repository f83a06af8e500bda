//! What an operator can fix from tally itself: an order Magento cancelled after tally posted
//! its invoice has the invoice voided in Xero, the one change that makes both sides agree.
//!
//! The other kinds have no fix tally could safely make: an edited total or a deleted payment
//! was someone's decision in Xero, and re-posting a voided invoice would break its number.
//! Those are refused with what to do instead.
//!
//! Crash safety: the request is written to the order's audit trail before the call, and a
//! void is checked for by reading the invoice first, so a repeat after a crash (or after
//! someone voided it in Xero meanwhile) finds it done and sends nothing. The call carries an
//! Idempotency-Key derived from the invoice id: an invoice is voided at most once.

use serde_json::{Value, json};

use super::diff::MagentoSide;
use super::kinds;
use crate::budget::Priority;
use crate::ledger::{LedgerError, Write};
use crate::link::LinkContext;
use crate::model::money::parse_money;
use crate::xero::{ElementOutcome, WriteMethod, XeroError};

/// Why a discrepancy was not fixed: each says what the operator can do.
#[derive(Debug, thiserror::Error)]
pub enum FixError {
    #[error("no open discrepancy {0}")]
    NotOpen(String),
    #[error("{kind} has no fix tally can make: {advice}")]
    NoFix { kind: String, advice: &'static str },
    #[error("{0}")]
    Refused(String),
    #[error("Xero: {0}")]
    Xero(#[from] XeroError),
    #[error("ledger: {0}")]
    Ledger(#[from] LedgerError),
}

/// What an operator can do about a kind tally does not fix itself.
fn advice(kind: &str) -> &'static str {
    match kind {
        kinds::INVOICE_TOTAL_DIFFERS => {
            "someone changed the invoice in Xero; correct it there (or acknowledge it)"
        }
        kinds::PAYMENT_MISSING_IN_XERO => {
            "the payment was removed in Xero; apply it again there (or acknowledge it)"
        }
        kinds::INVOICE_VOIDED_IN_XERO => {
            "the invoice was voided in Xero; cancel the order in Magento or re-create the invoice in Xero (or acknowledge it)"
        }
        _ => "look at both systems (or acknowledge it)",
    }
}

const ACTOR: &str = "operator";

/// Fixes the open discrepancy `key` if tally can: today, voids the Xero invoice of an order
/// Magento cancelled. The answer is what happened, for the operator.
pub async fn fix(ctx: &LinkContext, key: &str) -> Result<String, FixError> {
    let open = ctx.ledger.discrepancies().await?;
    let (_, value) = open
        .into_iter()
        .find(|(k, _)| k == key)
        .ok_or_else(|| FixError::NotOpen(key.to_owned()))?;
    let kind = value
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or("unknown");
    if kind != kinds::ORDER_CANCELLED_IN_MAGENTO {
        return Err(FixError::NoFix {
            kind: kind.to_owned(),
            advice: advice(kind),
        });
    }
    let order_key = value
        .get("order")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let order = ctx
        .ledger
        .get(order_key)
        .await?
        .ok_or_else(|| FixError::Refused(format!("{order_key} is not in the ledger")))?;
    if !MagentoSide::of(&order.data).cancelled {
        return Err(FixError::Refused(format!(
            "Magento no longer has {order_key} cancelled; nothing to void (`tally reconcile --full` closes this)"
        )));
    }
    let invoice_id = order
        .links
        .get("invoice_id")
        .cloned()
        .ok_or_else(|| FixError::Refused(format!("{order_key} has no Xero invoice")))?;

    ctx.ledger
        .commit(vec![Write::Note {
            key: order.key.clone(),
            actor: ACTOR.into(),
            detail: format!(
                "asked to void Xero invoice {invoice_id}: the order was cancelled in Magento"
            ),
        }])
        .await?;

    let invoice = ctx
        .xero
        .get_invoices_by_ids(std::slice::from_ref(&invoice_id), Priority::Invoice)
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| FixError::Refused(format!("Xero has no invoice {invoice_id}")))?;
    let number = invoice
        .get("InvoiceNumber")
        .and_then(Value::as_str)
        .unwrap_or(&invoice_id)
        .to_owned();
    let status = invoice
        .get("Status")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let done = if matches!(status, "VOIDED" | "DELETED") {
        format!("Xero invoice {number} was already {status}; nothing sent")
    } else {
        let paid = ["AmountPaid", "AmountCredited"]
            .iter()
            .filter_map(|f| invoice.get(*f).and_then(|v| parse_money(v).ok()))
            .any(|a| !a.is_zero());
        if paid {
            return Err(FixError::Refused(format!(
                "Xero invoice {number} has payments or credits applied; Xero voids only an invoice without them: remove them in Xero, or raise a credit note there"
            )));
        }
        let outcome = ctx
            .xero
            .batch_write(
                WriteMethod::Post,
                "Invoices",
                vec![json!({"InvoiceID": invoice_id, "Status": "VOIDED"})],
                &format!("void-{invoice_id}"),
                Priority::Invoice,
            )
            .await?;
        match outcome.into_iter().next() {
            Some(ElementOutcome::Ok { .. }) => format!("Xero invoice {number} voided"),
            Some(ElementOutcome::Rejected { messages, .. }) => {
                return Err(FixError::Refused(format!(
                    "Xero refused to void invoice {number}: {}",
                    messages.join("; ")
                )));
            }
            None => return Err(FixError::Refused("Xero answered with nothing".into())),
        }
    };

    // Both sides now agree: the cancellation closes, with the outcome in the order's trail.
    // Were Magento to un-cancel the order meanwhile, the void changed the invoice, so the next
    // sweep reads it and raises the voided invoice instead.
    ctx.ledger
        .commit(vec![
            Write::Note {
                key: order.key.clone(),
                actor: ACTOR.into(),
                detail: format!("{done} (the order was cancelled in Magento)"),
            },
            Write::RemoveDiscrepancy {
                key: key.to_owned(),
                actor: ACTOR.into(),
            },
        ])
        .await?;
    tracing::info!(discrepancy = %key, invoice = %number, "Discrepancy fixed by the operator.");
    Ok(format!("{done}; {key} closed"))
}
