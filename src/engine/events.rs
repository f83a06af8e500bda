//! Xero webhook events: re-fetch the invoice and act on what Xero says now.
//!
//! Events carry ids only and may arrive twice or out of order, so nothing is taken from the
//! event itself: an INVOICE event re-reads the invoice; if Xero has it PAID and the order was
//! waiting for payment, the order moves to `Paid` and Magento is written back. An event can
//! overtake our own bookkeeping (the invoice is paid in Xero before the invoices actor has
//! committed its outcome), so such an order is looked at again a few times before giving up.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tally_actors::budget::Priority;
use tally_actors::ledger::{EntityKind, EntityState, Stage, Write};
use tally_actors::link::LinkContext;
use tally_actors::link::stage::kick;
use tally_actors::reconcile::diff::{MagentoSide, findings};

use crate::daemon::XeroEvent;

/// How long an event waits for an order still being invoiced.
const SETTLE_TRIES: u32 = 20;
const SETTLE_EVERY: Duration = Duration::from_millis(500);

pub async fn apply(ctx: Arc<LinkContext>, event: XeroEvent) -> Result<(), String> {
    if event.event_category != "INVOICE" {
        tracing::debug!(category = %event.event_category, "Xero event ignored.");
        return Ok(());
    }
    let invoices = ctx
        .xero
        .get_invoices_by_ids(std::slice::from_ref(&event.resource_id), Priority::Payment)
        .await
        .map_err(|e| e.to_string())?;
    let Some(invoice) = invoices.into_iter().next() else {
        return Ok(());
    };
    let status = invoice
        .get("Status")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let number = invoice
        .get("InvoiceNumber")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let orders = find_orders(&ctx, &event.resource_id, &number).await?;
    let mut waiting = Vec::new();
    for order in orders {
        if status == "PAID"
            && matches!(
                order.stage,
                Stage::Seen | Stage::ContactReady | Stage::InvoicePosting
            )
        {
            waiting.push(order.key.clone());
            continue;
        }
        act(&ctx, order, &status, &invoice).await?;
    }
    if !waiting.is_empty() {
        // Let the invoices actor finish; re-check in the background so the webhook queue moves on.
        tokio::spawn(async move {
            for _ in 0..SETTLE_TRIES {
                tokio::time::sleep(SETTLE_EVERY).await;
                let mut still = Vec::new();
                for key in &waiting {
                    match ctx.ledger.get(key).await {
                        Ok(Some(o)) if matches!(o.stage, Stage::Invoiced | Stage::Skipped) => {
                            if let Err(e) = act(&ctx, o, &status, &invoice).await {
                                tracing::warn!(order = %key, error = %e, "Paid-in-Xero update not recorded.");
                            }
                        }
                        Ok(Some(o))
                            if matches!(
                                o.stage,
                                Stage::Seen | Stage::ContactReady | Stage::InvoicePosting
                            ) =>
                        {
                            still.push(key.clone())
                        }
                        _ => {}
                    }
                }
                if still.is_empty() {
                    return;
                }
                waiting = still;
            }
            tracing::warn!(orders = ?waiting, "Xero says paid, but these orders never reached invoiced; the reconciler must catch them.");
        });
    }
    Ok(())
}

/// The orders of an invoice: by the InvoiceID we recorded, else by its number (the increment
/// id), which also finds an order whose outcome is not committed yet.
async fn find_orders(
    ctx: &LinkContext,
    invoice_id: &str,
    number: &str,
) -> Result<Vec<EntityState>, String> {
    let orders = ctx
        .ledger
        .by_link("invoice_id", invoice_id)
        .await
        .map_err(|e| e.to_string())?;
    if !orders.is_empty() || number.is_empty() {
        return Ok(orders);
    }
    Ok(ctx
        .ledger
        .get(&EntityKind::Order.key(number))
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .collect())
}

async fn act(
    ctx: &LinkContext,
    mut order: EntityState,
    status: &str,
    invoice: &Value,
) -> Result<(), String> {
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
            kick(&ctx.names.of("writeback"));
        }
        // The reconciler's own judgement, so both paths raise the same discrepancy (and a
        // cancelled order's voided invoice raises none).
        ("VOIDED" | "DELETED", _) => {
            let verdict = findings(&order, MagentoSide::of(&order.data), invoice);
            let writes: Vec<Write> = verdict
                .open
                .into_iter()
                .map(|f| f.raise("xero-webhook"))
                .collect();
            if !writes.is_empty() {
                ctx.ledger.commit(writes).await.map_err(|e| e.to_string())?;
            }
        }
        _ => {}
    }
    Ok(())
}
