//! The reconciler's round: every invoice Xero changed since the last pass (all of them on
//! the first), each compared with the order tally posted it for.
//!
//! Reading back by `If-Modified-Since` costs one call per hundred changed invoices, at the
//! lowest priority of the shared budget, so live orders always go first; a webhook that was
//! never delivered is caught here, because the change still shows in the sweep. The cursor
//! is Xero's own newest `UpdatedDateUTC` (not this machine's clock), stepped back a minute
//! so an invoice changed in the same instant is read again rather than missed. The first pass
//! starts where the ledger did, not at the organisation's beginning.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::diff::{MagentoSide, Verdict, findings, judged as judged_stage};
use super::kinds;
use crate::budget::Priority;
use crate::ledger::{EntityKind, EntityState, Stage, Write};
use crate::link::LinkContext;
use crate::link::stage::{RoundError, RoundReport, StageWorker, kick};
use crate::xero::parse_ms_date;

/// The ledger cursor: the newest `UpdatedDateUTC` a pass has compared (RFC 3339).
pub const CURSOR: &str = "xero.invoices.reconciled_through";
const OVERLAP: chrono::TimeDelta = chrono::TimeDelta::minutes(1);
/// Allowance for this machine's clock running ahead of Xero's on the first pass.
const FIRST_PASS_MARGIN: chrono::TimeDelta = chrono::TimeDelta::hours(1);
const ACTOR: &str = "reconciler";

pub struct ReconcileWorker {
    ctx: Arc<LinkContext>,
    /// Ignore the cursor: compare every invoice since the ledger began.
    full: bool,
}

impl ReconcileWorker {
    pub fn new(ctx: Arc<LinkContext>) -> Self {
        Self { ctx, full: false }
    }

    /// A worker whose passes compare every invoice since the ledger began, whatever the
    /// cursor says: for an operator who wants everything checked again (after restoring the
    /// ledger from a backup, or after upgrading tally's rules). Costs one call per hundred
    /// invoices, at the lowest priority.
    pub fn full(ctx: Arc<LinkContext>) -> Self {
        Self { ctx, full: true }
    }

    /// Where this pass starts reading: the cursor less [`OVERLAP`]; on the first pass, the
    /// ledger's creation less [`FIRST_PASS_MARGIN`] (no invoice tally posted is older, so an
    /// organisation's years of history are not read); everything if neither is known.
    async fn since(&self) -> Result<Option<DateTime<Utc>>, RoundError> {
        let ledger = &self.ctx.ledger;
        let cursor = match self.full {
            true => None,
            false => ledger.cursor(CURSOR).await.map_err(|e| e.to_string())?,
        };
        if let Some(t) = cursor
            .as_ref()
            .and_then(Value::as_str)
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        {
            return Ok(Some(t.with_timezone(&Utc) - OVERLAP));
        }
        let created = ledger.created_at_ms().await.map_err(|e| e.to_string())?;
        Ok(created
            .and_then(|ms| i64::try_from(ms).ok())
            .and_then(DateTime::from_timestamp_millis)
            .map(|t| t - FIRST_PASS_MARGIN))
    }
}

/// An order the pass will act on, with what it was judged from.
struct Judged {
    order: EntityState,
    invoice_id: String,
    magento: MagentoSide,
    verdict: Verdict,
}

/// What one pass did: for `tally reconcile`'s summary and the stage's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct PassSummary {
    /// Invoices Xero changed since the last pass, each compared with its order.
    pub invoices_compared: usize,
    /// Discrepancies raised or changed (an unchanged open one is not counted).
    pub raised: usize,
    /// Discrepancies closed because both sides agree again.
    pub closed: usize,
    /// Orders moved to `Paid` because Xero has their invoice paid.
    pub moved_to_paid: usize,
    /// Why the pass stopped early (a Xero failure); nothing was committed, and the next pass
    /// starts from the same place.
    pub gave_up: Option<String>,
}

impl PassSummary {
    fn report(&self) -> RoundReport {
        RoundReport {
            done: self.raised + self.closed + self.moved_to_paid,
            retrying: usize::from(self.gave_up.is_some()),
            ..Default::default()
        }
    }
}

/// A pass given up on a Xero failure. Nothing is committed, so the next pass reads from the
/// same cursor and nothing is skipped.
fn next_pass(what: &str, e: &crate::xero::XeroError, invoices_compared: usize) -> PassSummary {
    tracing::warn!(error = %e, "Reconciliation {what}; the next pass tries again.");
    PassSummary {
        invoices_compared,
        gave_up: Some(format!("{what}: {e}")),
        ..Default::default()
    }
}

/// Whether `verdict` would raise (or change) a discrepancy for `order`.
fn raises(
    order: &EntityState,
    verdict: &Verdict,
    open: &HashMap<String, Value>,
    now: DateTime<Utc>,
) -> bool {
    verdict
        .open
        .iter()
        .any(|f| f.changes(open.get(&kinds::key(f.kind, &order.key)), now))
}

impl StageWorker for ReconcileWorker {
    async fn round(&self) -> Result<RoundReport, RoundError> {
        self.pass().await.map(|p| p.report())
    }
}

impl ReconcileWorker {
    /// One pass: every invoice Xero changed since the last one, compared with its order.
    pub async fn pass(&self) -> Result<PassSummary, RoundError> {
        let ctx = &self.ctx;
        let since = self.since().await?;
        let open: HashMap<String, Value> = ctx
            .ledger
            .discrepancies()
            .await
            .map_err(|e| e.to_string())?
            .into_iter()
            .collect();
        let now = Utc::now();
        let mut newest = None;
        let mut judged = Vec::new();
        let mut invoices_read = 0usize;
        // A page at a time: a first pass over a large organisation must not hold every
        // invoice, only the orders that will change something.
        for page in 1usize.. {
            let (invoices, more) = match ctx
                .xero
                .list_page("Invoices", &[], since, page, Priority::Backfill)
                .await
            {
                Ok(r) => r,
                Err(e) => {
                    return Ok(next_pass(
                        "could not read Xero's invoices",
                        &e,
                        invoices_read,
                    ));
                }
            };
            invoices_read += invoices.len();
            let mut ids = Vec::with_capacity(invoices.len());
            for invoice in &invoices {
                if let Some(t) = invoice
                    .get("UpdatedDateUTC")
                    .and_then(Value::as_str)
                    .and_then(parse_ms_date)
                {
                    newest = newest.max(Some(t));
                }
                if let Some(id) = invoice.get("InvoiceID").and_then(Value::as_str) {
                    ids.push((id.to_owned(), invoice));
                }
            }
            // The page's orders in one ledger read.
            let orders = ctx
                .ledger
                .by_links("invoice_id", ids.iter().map(|(id, _)| id.clone()).collect())
                .await
                .map_err(|e| e.to_string())?;
            for ((invoice_id, invoice), orders) in ids.into_iter().zip(orders) {
                for order in orders {
                    if order.kind != EntityKind::Order || !judged_stage(order.stage) {
                        continue;
                    }
                    let magento = MagentoSide::of(&order.data);
                    let verdict = findings(&order, magento, invoice);
                    let has_open = kinds::RECONCILED
                        .iter()
                        .any(|k| open.contains_key(&kinds::key(k, &order.key)));
                    if has_open || verdict.paid_in_xero || !verdict.open.is_empty() {
                        judged.push(Judged {
                            order,
                            invoice_id: invoice_id.clone(),
                            magento,
                            verdict,
                        });
                    }
                }
            }
            if !more {
                break;
            }
        }
        // The list was read before the orders: a payment tally made in between would look
        // missing. So whatever would be raised is read from Xero once more, now that the
        // orders are read, and raised only if it still holds (closing needs no second look:
        // an agreement seen is an agreement).
        let suspects: Vec<String> = judged
            .iter()
            .filter(|j| raises(&j.order, &j.verdict, &open, now))
            .map(|j| j.invoice_id.clone())
            .collect();
        if !suspects.is_empty() {
            let fresh = match ctx
                .xero
                .get_invoices_by_ids(&suspects, Priority::Backfill)
                .await
            {
                Ok(v) => v,
                Err(e) => {
                    return Ok(next_pass(
                        "could not confirm what it found",
                        &e,
                        invoices_read,
                    ));
                }
            };
            let by_id: HashMap<&str, &Value> = fresh
                .iter()
                .filter_map(|v| Some((v.get("InvoiceID")?.as_str()?, v)))
                .collect();
            for j in &mut judged {
                if let Some(invoice) = by_id.get(j.invoice_id.as_str()) {
                    j.verdict = findings(&j.order, j.magento, invoice);
                }
            }
        }
        let mut writes = Vec::new();
        let mut moves = Vec::new();
        let mut summary = PassSummary {
            invoices_compared: invoices_read,
            ..Default::default()
        };
        for Judged { order, verdict, .. } in judged {
            for kind in kinds::RECONCILED {
                let key = kinds::key(kind, &order.key);
                let stored = open.get(&key);
                match verdict.open.iter().find(|f| f.kind == kind) {
                    Some(f) if f.changes(stored, now) => {
                        tracing::warn!(order = %order.key, kind, "Discrepancy raised.");
                        writes.push(f.clone().raise(ACTOR));
                        summary.raised += 1;
                    }
                    Some(_) => {}
                    None if stored.is_some() => {
                        writes.push(Write::RemoveDiscrepancy {
                            key,
                            actor: ACTOR.into(),
                        });
                        summary.closed += 1;
                    }
                    None => {}
                }
            }
            if verdict.paid_in_xero {
                let mut order = order;
                order.stage = Stage::Paid;
                order.retry_at_ms = None;
                moves.push(vec![Write::Put {
                    state: order,
                    actor: ACTOR.into(),
                    detail: "invoice PAID in Xero (found by reconciliation)".into(),
                }]);
            }
        }
        // Each move on its own: one refused (a stage moved the order meanwhile) must not
        // hold back the others. The cursor only passes invoices whose orders all moved, so a
        // refused one is compared again next pass.
        let mut all_moved = true;
        if !moves.is_empty() {
            for r in ctx.ledger.commit_each(moves).await {
                match r {
                    Ok(_) => summary.moved_to_paid += 1,
                    Err(e) => {
                        all_moved = false;
                        tracing::debug!(error = %e, "Paid-in-Xero move not committed; next pass.");
                    }
                }
            }
            kick(&ctx.names.of("writeback"));
        }
        if let Some(t) = newest.filter(|_| all_moved) {
            writes.push(Write::SetCursor {
                name: CURSOR.into(),
                value: json!(t.to_rfc3339()),
            });
        }
        if !writes.is_empty() {
            ctx.ledger.commit(writes).await.map_err(|e| e.to_string())?;
        }
        tracing::info!(
            invoices = invoices_read,
            raised = summary.raised,
            closed = summary.closed,
            moved_to_paid = summary.moved_to_paid,
            "Reconciliation pass done."
        );
        Ok(summary)
    }
}
