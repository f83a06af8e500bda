//! The fix for a payment tally applied and someone removed in Xero, while Magento still has
//! the order paid: the payment is applied again, built as the payments stage builds it, once
//! per removal, and the replacement becomes the order's `payment_id`.

use serde_json::Value;

use super::{ACTOR, FixError, close, note_request, read_invoice, send_one};
use crate::budget::Priority;
use crate::ledger::{EntityState, LedgerError, Write};
use crate::link::LinkContext;
use crate::model::money::parse_money;
use crate::xero::WriteMethod;

/// Applies again the payment tally applied to a paid order, which Xero no longer shows.
pub(super) async fn reapply_payment(
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

    note_request(
        ctx,
        &order_key,
        format!(
            "asked to apply {amount} again to Xero invoice {invoice_id}: Xero no longer shows PaymentID {removed}"
        ),
    )
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
        let value = send_one(
            ctx,
            (WriteMethod::Put, "Payments"),
            body,
            // One replacement per removal: a repeat of this attempt replays its answer, and
            // a replacement removed in its turn makes the next attempt a new key.
            &format!(
                "repay-{invoice_id}-{}",
                payments.iter().filter(|p| is_removed(p)).count()
            ),
            Priority::Payment,
            &format!("apply the payment to invoice {number}"),
        )
        .await?;
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
