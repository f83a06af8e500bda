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
//! even if a crash kept the order from naming the replacement.

use serde_json::{Value, json};

use super::diff::MagentoSide;
use super::kinds;
use crate::budget::Priority;
use crate::ledger::{EntityState, LedgerError, Write};
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
        kinds::INVOICE_VOIDED_IN_XERO => {
            "the invoice was voided in Xero; cancel the order in Magento or re-create the invoice in Xero (or acknowledge it)"
        }
        _ => "look at both systems (or acknowledge it)",
    }
}

const ACTOR: &str = "operator";

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
        kinds::PAYMENT_MISSING_IN_XERO => reapply_payment(ctx, key, order).await,
        kinds::INVOICE_TOTAL_DIFFERS => restore_invoice(ctx, key, order).await,
        _ => void_invoice(ctx, key, order).await,
    }
}

/// Reads one invoice, with its number for the operator's messages.
async fn read_invoice(ctx: &LinkContext, invoice_id: &str) -> Result<(Value, String), FixError> {
    let invoice = ctx
        .xero
        .get_invoices_by_ids(&[invoice_id.to_owned()], Priority::Invoice)
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| FixError::Refused(format!("Xero has no invoice {invoice_id}")))?;
    let number = invoice
        .get("InvoiceNumber")
        .and_then(Value::as_str)
        .unwrap_or(invoice_id)
        .to_owned();
    Ok((invoice, number))
}

/// Writes the outcome to the order's trail and closes the discrepancy: both sides agree.
async fn close(
    ctx: &LinkContext,
    key: &str,
    order: &str,
    done: String,
) -> Result<String, FixError> {
    ctx.ledger
        .commit(vec![
            Write::Note {
                key: order.to_owned(),
                actor: ACTOR.into(),
                detail: done.clone(),
            },
            Write::RemoveDiscrepancy {
                key: key.to_owned(),
                actor: ACTOR.into(),
            },
        ])
        .await?;
    tracing::info!(discrepancy = %key, order = %order, "Discrepancy fixed by the operator.");
    Ok(format!("{done}; {key} closed"))
}

async fn void_invoice(
    ctx: &LinkContext,
    key: &str,
    order: EntityState,
) -> Result<String, FixError> {
    let order_key = order.key.as_str();
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

    let (invoice, number) = read_invoice(ctx, &invoice_id).await?;
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
    let done = format!("{done} (the order was cancelled in Magento)");
    close(ctx, key, order_key, done).await
}

/// Applies again the payment tally applied to a paid order, which Xero no longer shows.
async fn reapply_payment(
    ctx: &LinkContext,
    key: &str,
    order: EntityState,
) -> Result<String, FixError> {
    let order_key = order.key.clone();
    let (Some(invoice_id), Some(removed)) = (
        order.links.get("invoice_id").cloned(),
        order.links.get("payment_id").cloned(),
    ) else {
        return Err(FixError::Refused(format!(
            "{order_key} has no Xero invoice and payment on record"
        )));
    };
    let Some((body, amount)) = crate::link::payments::plan(ctx, &order, &ctx.rules())
        .map_err(|e| FixError::Refused(e.to_string()))?
    else {
        return Err(FixError::Refused(format!(
            "Magento shows nothing paid on {order_key}; nothing to apply (`tally reconcile --full` closes this)"
        )));
    };

    ctx.ledger
        .commit(vec![Write::Note {
            key: order_key.clone(),
            actor: ACTOR.into(),
            detail: format!(
                "asked to apply {amount} again to Xero invoice {invoice_id}: Xero no longer shows PaymentID {removed}"
            ),
        }])
        .await?;

    let (invoice, number) = read_invoice(ctx, &invoice_id).await?;
    let status = invoice
        .get("Status")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if matches!(status, "VOIDED" | "DELETED") {
        return Err(FixError::Refused(format!(
            "Xero invoice {number} is {status}; a payment cannot be applied to it"
        )));
    }
    let paid = invoice
        .get("AmountPaid")
        .and_then(|v| parse_money(v).ok())
        .unwrap_or_default();
    let payments = ctx
        .xero
        .get_payments_for_invoices(std::slice::from_ref(&invoice_id), Priority::Payment)
        .await?;
    let is_removed = |p: &Value| p.get("Status").and_then(Value::as_str) == Some("DELETED");
    let (done, replacement) = if paid >= amount {
        // Applied again already (by someone in Xero, or by this fix before a crash): adopt
        // the live payment on the invoice, so the order names it.
        let live = payments
            .iter()
            .filter(|p| !is_removed(p))
            .filter_map(|p| p.get("PaymentID").and_then(Value::as_str))
            .rfind(|id| *id != removed)
            .map(str::to_owned);
        (
            format!("Xero invoice {number} already shows {paid} paid; nothing sent"),
            live,
        )
    } else {
        let outcome = ctx
            .xero
            .batch_write(
                WriteMethod::Put,
                "Payments",
                vec![body],
                // One replacement per removal: a repeat of this attempt replays its answer,
                // and a replacement removed in its turn makes the next attempt a new key.
                &format!(
                    "repay-{invoice_id}-{}",
                    payments.iter().filter(|p| is_removed(p)).count()
                ),
                Priority::Payment,
            )
            .await?;
        match outcome.into_iter().next() {
            Some(ElementOutcome::Ok { value }) => {
                let id = value
                    .get("PaymentID")
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                (
                    format!(
                        "{amount} applied again to Xero invoice {number}: PaymentID {}",
                        id.as_deref().unwrap_or("?")
                    ),
                    id,
                )
            }
            Some(ElementOutcome::Rejected { messages, .. }) => {
                return Err(FixError::Refused(format!(
                    "Xero refused the payment to invoice {number}: {}",
                    messages.join("; ")
                )));
            }
            None => return Err(FixError::Refused("Xero answered with nothing".into())),
        }
    };
    if let Some(id) = replacement {
        relink_payment(ctx, &order_key, &removed, &id).await?;
    }
    close(ctx, key, &order_key, done).await
}

/// Points the order's `payment_id` at the payment that replaced `removed`, unless a stage
/// changed it meanwhile. Retried on a version conflict: the stages may write the order too.
async fn relink_payment(
    ctx: &LinkContext,
    order_key: &str,
    removed: &str,
    replacement: &str,
) -> Result<(), FixError> {
    for _ in 0..5 {
        let Some(mut state) = ctx.ledger.get(order_key).await? else {
            return Ok(());
        };
        if state.links.get("payment_id").map(String::as_str) != Some(removed) {
            return Ok(());
        }
        state
            .links
            .insert("payment_id".into(), replacement.to_owned());
        match ctx
            .ledger
            .commit(vec![Write::Put {
                state,
                actor: ACTOR.into(),
                detail: format!("PaymentID {removed} replaced by {replacement}"),
            }])
            .await
        {
            Err(LedgerError::VersionConflict { .. }) => continue,
            other => return other.map(drop).map_err(FixError::from),
        }
    }
    Err(FixError::Refused(format!(
        "{order_key} kept changing; its payment_id still names {removed}"
    )))
}

/// Posts again the invoice tally planned for the order (the lines, tax and rounding line the
/// invoices stage sends) over the one someone edited in Xero.
async fn restore_invoice(
    ctx: &LinkContext,
    key: &str,
    order: EntityState,
) -> Result<String, FixError> {
    let order_key = order.key.clone();
    let Some(invoice_id) = order.links.get("invoice_id").cloned() else {
        return Err(FixError::Refused(format!(
            "{order_key} has no Xero invoice"
        )));
    };
    let parsed = match ctx.parsed_order(&order) {
        Some(parsed) => parsed,
        None => std::sync::Arc::new(
            ctx.parse_order(&order.data.tree())
                .map_err(|e| FixError::Refused(e.to_string()))?,
        ),
    };
    let contact = order.links.get("contact_id").cloned().unwrap_or_default();
    let plan = crate::mapping::invoice_for(&parsed, &contact, &ctx.rules(), &ctx.org())
        .map_err(|e| FixError::Refused(e.to_string()))?;
    let mut body = serde_json::to_value(&plan.invoice)
        .map_err(|e| FixError::Refused(format!("{order_key}: {e}")))?;
    body["InvoiceID"] = json!(invoice_id);
    let expected = plan.expected_total;

    ctx.ledger
        .commit(vec![Write::Note {
            key: order_key.clone(),
            actor: ACTOR.into(),
            detail: format!(
                "asked to restore Xero invoice {invoice_id} as tally posted it (total {expected})"
            ),
        }])
        .await?;

    let (invoice, number) = read_invoice(ctx, &invoice_id).await?;
    let money = |field: &str| invoice.get(field).and_then(|v| parse_money(v).ok());
    let status = invoice
        .get("Status")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let done = if money("Total") == Some(expected) {
        format!("Xero invoice {number} already totals {expected}; nothing sent")
    } else {
        if status != "AUTHORISED" {
            return Err(FixError::Refused(format!(
                "Xero invoice {number} is {status}; only an approved, unpaid invoice can be restored"
            )));
        }
        let settled = ["AmountPaid", "AmountCredited"]
            .iter()
            .filter_map(|f| money(f))
            .any(|a| !a.is_zero());
        if settled {
            return Err(FixError::Refused(format!(
                "Xero invoice {number} has payments or credits applied; Xero keeps its lines once money is applied: credit the difference there (or acknowledge it)"
            )));
        }
        // One restore per edit: a repeat replays its answer; a later edit changes the
        // invoice's UpdatedDateUTC and so the key.
        let edited_at = invoice
            .get("UpdatedDateUTC")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let outcome = ctx
            .xero
            .batch_write(
                WriteMethod::Post,
                "Invoices",
                vec![body],
                &format!("restore-{invoice_id}-{edited_at}"),
                Priority::Invoice,
            )
            .await?;
        match outcome.into_iter().next() {
            Some(ElementOutcome::Ok { value }) => {
                let total = value.get("Total").and_then(|v| parse_money(v).ok());
                if total != Some(expected) {
                    return Err(FixError::Refused(format!(
                        "Xero invoice {number} restored but totals {}, not {expected}: compare it in Xero",
                        total.map_or_else(|| "nothing".to_owned(), |t| t.to_string())
                    )));
                }
                format!("Xero invoice {number} restored as tally posted it: total {expected}")
            }
            Some(ElementOutcome::Rejected { messages, .. }) => {
                return Err(FixError::Refused(format!(
                    "Xero refused to restore invoice {number}: {}",
                    messages.join("; ")
                )));
            }
            None => return Err(FixError::Refused("Xero answered with nothing".into())),
        }
    };
    close(ctx, key, &order_key, done).await
}
