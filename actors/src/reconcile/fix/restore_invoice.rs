//! The fix for an invoice someone edited in Xero: tally posts again what it planned for the
//! order, once per edit, while the invoice is approved and no money is applied to it.

use serde_json::{Value, json};

use super::{FixError, close, note_request, read_invoice, send_one};
use crate::budget::Priority;
use crate::ledger::EntityState;
use crate::link::LinkContext;
use crate::xero::WriteMethod;

/// Posts again the invoice tally planned for the order (the lines, tax and rounding line the
/// invoices stage sends) over the one someone edited in Xero.
pub(super) async fn restore_invoice(
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

    note_request(
        ctx,
        &order_key,
        format!("asked to restore Xero invoice {invoice_id} as tally posted it (total {expected})"),
    )
    .await?;

    let invoice = read_invoice(ctx, &invoice_id).await?;
    let (number, status) = (&invoice.number, &invoice.status);
    let done = if invoice.money("Total") == Some(expected) {
        format!("Xero invoice {number} already totals {expected}; nothing sent")
    } else {
        if status != "AUTHORISED" {
            return Err(FixError::Refused(format!(
                "Xero invoice {number} is {status}; only an approved, unpaid invoice can be restored"
            )));
        }
        if invoice.settled() {
            return Err(FixError::Refused(format!(
                "Xero invoice {number} has payments or credits applied; Xero keeps its lines once money is applied: credit the difference there (or acknowledge it)"
            )));
        }
        // One restore per edit: a repeat replays its answer; a later edit changes the
        // invoice's UpdatedDateUTC and so the key.
        let edited_at = invoice
            .value
            .get("UpdatedDateUTC")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let value = send_one(
            ctx,
            (WriteMethod::Post, "Invoices"),
            body,
            &format!("restore-{invoice_id}-{edited_at}"),
            Priority::Invoice,
            &format!("restore invoice {number}"),
        )
        .await?;
        let total = crate::reconcile::diff::money(&value, "Total");
        if total != Some(expected) {
            return Err(FixError::Refused(format!(
                "Xero invoice {number} restored but totals {}, not {expected}: compare it in Xero",
                total.map_or_else(|| "nothing".to_owned(), |t| t.to_string())
            )));
        }
        format!("Xero invoice {number} restored as tally posted it: total {expected}")
    };
    close(ctx, key, &order_key, done, Vec::new()).await
}
