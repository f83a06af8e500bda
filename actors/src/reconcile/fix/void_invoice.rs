//! The fix for an order Magento cancelled after tally posted its invoice: the invoice is
//! voided in Xero, once (`void-{InvoiceID}`), and only while no money is applied to it.

use serde_json::json;

use super::{FixError, close, note_request, read_invoice, send_one};
use crate::budget::Priority;
use crate::ledger::EntityState;
use crate::link::LinkContext;
use crate::reconcile::diff::MagentoSide;
use crate::xero::WriteMethod;

pub(super) async fn void_invoice(
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

    note_request(
        ctx,
        order_key,
        format!("asked to void Xero invoice {invoice_id}: the order was cancelled in Magento"),
    )
    .await?;

    let invoice = read_invoice(ctx, &invoice_id).await?;
    let (number, status) = (&invoice.number, &invoice.status);
    let done = if matches!(status.as_str(), "VOIDED" | "DELETED") {
        format!("Xero invoice {number} was already {status}; nothing sent")
    } else {
        if invoice.settled() {
            return Err(FixError::Refused(format!(
                "Xero invoice {number} has payments or credits applied; Xero voids only an invoice without them: remove them in Xero, or raise a credit note there"
            )));
        }
        send_one(
            ctx,
            (WriteMethod::Post, "Invoices"),
            json!({"InvoiceID": invoice_id, "Status": "VOIDED"}),
            &format!("void-{invoice_id}"),
            Priority::Invoice,
            &format!("void invoice {number}"),
        )
        .await?;
        format!("Xero invoice {number} voided")
    };

    // Both sides now agree: the cancellation closes, with the outcome in the order's trail.
    // Were Magento to un-cancel the order meanwhile, the void changed the invoice, so the next
    // sweep reads it and raises the voided invoice instead.
    let done = format!("{done} (the order was cancelled in Magento)");
    close(ctx, key, order_key, done, Vec::new()).await
}
