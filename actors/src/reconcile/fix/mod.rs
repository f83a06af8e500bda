//! What an operator can fix from tally itself, each the one change that makes both sides
//! agree: an order Magento cancelled after tally posted its invoice has the invoice voided in
//! Xero; a payment tally applied and someone removed in Xero is applied again, as Magento
//! still has the order paid; an invoice someone edited in Xero gets back the lines tally
//! posted, while no money is applied to it.
//!
//! A voided invoice has no fix tally could safely make: re-posting it would need its number,
//! which the voided one keeps. It is refused with what to do instead.
//!
//! Crash safety: the request is written to the order's audit trail before the call, and the
//! invoice is read first, so a repeat after a crash (or after someone did it in Xero
//! meanwhile) finds it done and sends nothing. Each call carries an Idempotency-Key derived
//! from what it changes: an invoice is voided at most once (`void-{InvoiceID}`), and each
//! payment removed from an invoice is replaced at most once (`repay-{InvoiceID}-{how many
//! payments the invoice has had removed}`): a replacement removed in its turn gets a new key,
//! even if a crash kept the order from naming the replacement. An edit is undone at most once
//! (`restore-{InvoiceID}-{the edit's UpdatedDateUTC}`).
//!
//! One file per fix (`void_invoice`, `reapply_payment`, `restore_invoice`); what they share
//! (the request noted first, the invoice read first, one element sent, the discrepancy
//! closed with the outcome) is here.

mod reapply_payment;
mod restore_invoice;
mod void_invoice;

use serde_json::Value;

use super::kinds;
use crate::budget::Priority;
use crate::ledger::{LedgerError, Write};
use crate::link::LinkContext;
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
        kinds::INVOICE_VOIDED_IN_XERO => {
            "the invoice was voided in Xero; cancel the order in Magento or re-create the invoice in Xero (or acknowledge it)"
        }
        _ => "look at both systems (or acknowledge it)",
    }
}

pub(super) const ACTOR: &str = "operator";

/// Fixes the open discrepancy `key` if tally can: voids the Xero invoice of an order Magento
/// cancelled, applies again a payment removed in Xero, or restores an invoice edited in Xero.
/// The answer is what happened, for the operator.
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
    if ![
        kinds::ORDER_CANCELLED_IN_MAGENTO,
        kinds::PAYMENT_MISSING_IN_XERO,
        kinds::INVOICE_TOTAL_DIFFERS,
    ]
    .contains(&kind)
    {
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
    match kind {
        kinds::PAYMENT_MISSING_IN_XERO => reapply_payment::reapply_payment(ctx, key, order).await,
        kinds::INVOICE_TOTAL_DIFFERS => restore_invoice::restore_invoice(ctx, key, order).await,
        _ => void_invoice::void_invoice(ctx, key, order).await,
    }
}

/// An invoice as Xero has it now, read before any fix writes.
pub(super) struct XeroInvoice {
    pub value: Value,
    /// The number, for the operator's messages (the id when it has none).
    pub number: String,
    pub status: String,
}

impl XeroInvoice {
    pub fn money(&self, field: &str) -> Option<rust_decimal::Decimal> {
        super::diff::money(&self.value, field)
    }

    /// Whether any payment or credit is applied: Xero then neither voids it nor changes its
    /// lines.
    pub fn settled(&self) -> bool {
        ["AmountPaid", "AmountCredited"]
            .iter()
            .filter_map(|f| self.money(f))
            .any(|a| !a.is_zero())
    }
}

/// Reads one invoice.
pub(super) async fn read_invoice(
    ctx: &LinkContext,
    invoice_id: &str,
) -> Result<XeroInvoice, FixError> {
    let value = ctx
        .xero
        .get_invoices_by_ids(&[invoice_id.to_owned()], Priority::Invoice)
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| FixError::Refused(format!("Xero has no invoice {invoice_id}")))?;
    let text = |field: &str| value.get(field).and_then(Value::as_str).map(str::to_owned);
    Ok(XeroInvoice {
        number: text("InvoiceNumber").unwrap_or_else(|| invoice_id.to_owned()),
        status: text("Status").unwrap_or_default(),
        value,
    })
}

/// Writes the outcome to the order's trail and closes the discrepancy, in one commit with
/// what the fix learned (`learned`, e.g. a new link): both sides agree.
pub(super) async fn close(
    ctx: &LinkContext,
    key: &str,
    order: &str,
    done: String,
    mut learned: Vec<Write>,
) -> Result<String, FixError> {
    learned.extend([
        Write::Note {
            key: order.to_owned(),
            actor: ACTOR.into(),
            detail: done.clone(),
        },
        Write::RemoveDiscrepancy {
            key: key.to_owned(),
            actor: ACTOR.into(),
        },
    ]);
    ctx.ledger.commit(learned).await?;
    tracing::info!(discrepancy = %key, order = %order, "Discrepancy fixed by the operator.");
    Ok(format!("{done}; {key} closed"))
}

/// Writes what the operator asked for to the order's trail, before any call: a crash after
/// the call leaves the request on record.
pub(super) async fn note_request(
    ctx: &LinkContext,
    order: &str,
    detail: String,
) -> Result<(), FixError> {
    ctx.ledger
        .commit(vec![Write::Note {
            key: order.to_owned(),
            actor: ACTOR.into(),
            detail,
        }])
        .await?;
    Ok(())
}

/// Sends one element and returns Xero's copy of it; a refusal carries Xero's words, after
/// `what` ("void invoice INV-0001").
pub(super) async fn send_one(
    ctx: &LinkContext,
    (method, resource): (WriteMethod, &str),
    body: Value,
    idempotency_key: &str,
    priority: Priority,
    what: &str,
) -> Result<Value, FixError> {
    let outcome = ctx
        .xero
        .batch_write(method, resource, vec![body], idempotency_key, priority)
        .await?;
    match outcome.into_iter().next() {
        Some(ElementOutcome::Ok { value }) => Ok(value),
        Some(ElementOutcome::Rejected { messages, .. }) => Err(FixError::Refused(format!(
            "Xero refused to {what}: {}",
            messages.join("; ")
        ))),
        None => Err(FixError::Refused("Xero answered with nothing".into())),
    }
}
