//! Xero webhook events: re-fetch the invoice and act on what Xero says now.
//!
//! Events carry ids only and may arrive twice or out of order, so nothing is taken from the
//! event itself: an INVOICE event re-reads the invoice; if Xero has it PAID and the order was
//! waiting for payment, the order moves to `Paid` and Magento is written back.

use serde_json::Value;
use tally_actors::budget::Priority;
use tally_actors::ledger::{Stage, Write};
use tally_actors::link::Link;

use crate::daemon::XeroEvent;

pub async fn apply(link: &Link, event: XeroEvent) -> Result<(), String> {
    if event.event_category != "INVOICE" {
        tracing::debug!(category = %event.event_category, "Xero event ignored.");
        return Ok(());
    }
    let ctx = &link.ctx;
    let invoices = ctx
        .xero
        .get_invoices_by_ids(std::slice::from_ref(&event.resource_id), Priority::Payment)
        .await
        .map_err(|e| e.to_string())?;
    let Some(invoice) = invoices.into_iter().next() else {
        return Ok(());
    };
    let orders = ctx
        .ledger
        .by_link("invoice_id", &event.resource_id)
        .await
        .map_err(|e| e.to_string())?;
    let status = invoice
        .get("Status")
        .and_then(Value::as_str)
        .unwrap_or_default();
    for mut order in orders {
        match (status, order.stage) {
            ("PAID", Stage::Skipped | Stage::Invoiced) => {
                order.stage = Stage::Paid;
                order.retry_at_ms = None;
                ctx.ledger
                    .commit(vec![Write::Put {
                        state: order,
                        actor: "xero-webhook".into(),
                        detail: "invoice PAID in Xero".into(),
                    }])
                    .await
                    .map_err(|e| e.to_string())?;
                link.kick_all();
            }
            ("VOIDED" | "DELETED", _) => {
                let key = format!("voided:{}", order.key);
                let value = serde_json::json!({
                    "kind": "invoice_voided_in_xero",
                    "order": order.key,
                    "invoice_id": event.resource_id,
                    "detail": format!("the Xero invoice of {} was {status} by someone in Xero", order.key),
                });
                ctx.ledger
                    .commit(vec![Write::PutDiscrepancy { key, value }])
                    .await
                    .map_err(|e| e.to_string())?;
            }
            _ => {}
        }
    }
    Ok(())
}
