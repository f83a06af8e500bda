//! The fix for a payment tally applied and someone removed in Xero, while Magento still has
//! the order paid: the payment is applied again, built as the payments stage builds it, once
//! per removal, and the replacement becomes the order's `payment_id`.

use serde_json::Value;

use super::{ACTOR, FixError, close, note_request, read_invoice, send_one};
use crate::budget::Priority;
use crate::ledger::{EntityState, Write};
use crate::link::LinkContext;
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

    let invoice = read_invoice(ctx, &invoice_id).await?;
    let (number, status) = (&invoice.number, &invoice.status);
    if matches!(status.as_str(), "VOIDED" | "DELETED") {
        return Err(FixError::Refused(format!(
            "Xero invoice {number} is {status}; a payment cannot be applied to it"
        )));
    }
    let paid = invoice.money("AmountPaid").unwrap_or_default();
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
    // The order names the replacement, unless a stage changed its payment_id meanwhile.
    let relink = replacement.map(|value| Write::SetLink {
        key: order_key.clone(),
        name: "payment_id".into(),
        expected: removed,
        value,
        actor: ACTOR.into(),
    });
    close(ctx, key, &order_key, done, relink.into_iter().collect()).await
}
