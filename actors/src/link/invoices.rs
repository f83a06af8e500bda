//! Invoices: one ACCREC invoice per order, posted in batches of up to 50.
//!
//! The plan (lines, tax, rounding line) comes from `mapping::invoice_for`, which replicates
//! Xero's arithmetic so the invoice's `Total` equals Magento's `grand_total` before it is
//! sent. The intent (with the batch's idempotency key) is committed before the PUT; an order
//! found in `InvoicePosting` at the start of a round — a crash, or a call whose outcome was
//! lost — is first looked up by its InvoiceNumber (the Magento increment id) and adopted if
//! Xero has it, and only re-sent if Xero does not. Xero itself refuses a second ACCREC
//! invoice with the same number, which is the last line of defence against duplicates.

use std::collections::HashMap;
use std::sync::Arc;

use rust_decimal::Decimal;
use serde_json::Value;

use super::contacts::chunk;
use super::context::{LinkContext, bury, fail_or_bury, now_ms, record_name};
use super::intents::{Sendable, commit_intents, fail_sent, put_batch};
use super::keys::batch_digests;
use super::parsed_orders::Stored;
use super::payments::PAYMENT_OP;
use super::stage::{RoundError, RoundReport, StageWorker};
use crate::budget::Priority;
use crate::ledger::Record;
use crate::ledger::{EntityState, Intent, Stage, Write};
use crate::mapping::invoice_for;
use crate::model::RecordError;
use crate::model::money::parse_money;
use crate::xero::ElementOutcome;

const ACTOR: &str = "invoices";

pub struct InvoicesWorker {
    ctx: Arc<LinkContext>,
}

impl InvoicesWorker {
    pub fn new(ctx: Arc<LinkContext>) -> Self {
        Self { ctx }
    }
}

/// Moves an order to `Invoiced`, recording Xero's ids and checking its total.
fn invoiced(
    mut order: EntityState,
    xero: &Value,
    expected_total: Option<Decimal>,
    how: &str,
) -> Write {
    let id = xero
        .get("InvoiceID")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let total = xero.get("Total").and_then(|t| parse_money(t).ok());
    order.stage = Stage::Invoiced;
    order.intent = None;
    order.retry_at_ms = None;
    order.last_error = None;
    order.attempts = 0;
    order.links.insert("invoice_id".into(), id.clone());
    if let Some(n) = xero.get("InvoiceNumber").and_then(Value::as_str) {
        order.links.insert("invoice_number".into(), n.to_owned());
    }
    if let Some(t) = total {
        order.links.insert("xero_total".into(), t.to_string());
    }
    let mut detail = format!("{how}: InvoiceID={id}");
    if let (Some(t), Some(e)) = (total, expected_total) {
        if t == e {
            detail.push_str(&format!(", Total {t} equals Magento's grand total"));
        } else {
            detail.push_str(&format!(
                ", WARNING Total {t} differs from Magento's grand total {e}"
            ));
            tracing::warn!(order = %order.key, xero_total = %t, magento_total = %e, "Invoice total differs from Magento.");
        }
    }
    Write::Put {
        state: order,
        actor: ACTOR.into(),
        detail,
    }
}

impl InvoicesWorker {
    /// Orders left in `InvoicePosting`: adopt the ones Xero has, return the rest for sending.
    async fn resolve(
        &self,
        stale: Vec<EntityState>,
        writes: &mut Vec<Vec<Write>>,
        report: &mut RoundReport,
    ) -> Result<Vec<EntityState>, RoundError> {
        if stale.is_empty() {
            return Ok(stale);
        }
        let numbers: Vec<String> = stale
            .iter()
            .map(|s| s.key.trim_start_matches("order:").to_owned())
            .collect();
        let found = match self
            .ctx
            .xero
            .find_invoices_by_numbers(&numbers, Priority::Invoice)
            .await
        {
            Ok(v) => v,
            Err(e) => {
                let reason = format!("invoice lookup failed: {e}");
                for s in stale {
                    let (w, dead) = fail_or_bury(&self.ctx, s, ACTOR, &reason, None);
                    report.retrying += usize::from(!dead);
                    report.dead += usize::from(dead);
                    writes.push(vec![w]);
                }
                return Ok(Vec::new());
            }
        };
        let by_number: HashMap<String, Value> = found
            .into_iter()
            .filter(|v| {
                !matches!(
                    v.get("Status").and_then(Value::as_str),
                    Some("VOIDED" | "DELETED")
                )
            })
            .filter_map(|v| Some((v.get("InvoiceNumber")?.as_str()?.to_owned(), v)))
            .collect();
        let mut resend = Vec::new();
        for s in stale {
            let number = s.key.trim_start_matches("order:").to_owned();
            match by_number.get(&number) {
                Some(v) => {
                    writes.push(vec![invoiced(
                        s,
                        v,
                        None,
                        "found in Xero after an interrupted post",
                    )]);
                    report.done += 1;
                }
                None => resend.push(s),
            }
        }
        Ok(resend)
    }

    async fn post(
        &self,
        batch: Vec<(EntityState, Value, Decimal)>,
    ) -> Result<RoundReport, RoundError> {
        let ctx = &self.ctx;
        let mut report = RoundReport::default();
        let Sendable {
            key,
            bodies: send_bodies,
            entities: sendable,
        } = commit_intents(
            ctx,
            ACTOR,
            "invoices",
            "PUT Invoices",
            Stage::InvoicePosting,
            batch,
        )
        .await;
        if sendable.is_empty() {
            return Ok(report);
        }
        let outcome = put_batch(ctx, "Invoices", send_bodies, &key, Priority::Invoice).await;
        let mut writes = Vec::new();
        match outcome {
            Ok(results) => {
                let mut taken = Vec::new();
                for ((s, total), r) in sendable.into_iter().zip(results) {
                    match r {
                        ElementOutcome::Ok { value } => {
                            writes.push(vec![invoiced(s, &value, Some(total), "created in Xero")]);
                            report.done += 1;
                        }
                        ElementOutcome::Rejected { messages, .. } => {
                            let text = messages.join("; ");
                            if text.contains("must be unique") {
                                // Xero already has this number: the next round adopts it.
                                taken.push(s);
                                continue;
                            }
                            let err = RecordError::new(
                                record_name(&s.key),
                                "invoice",
                                "Xero refused the invoice".to_owned(),
                            );
                            writes.push(vec![bury(&s, ACTOR, &err, Some(text))]);
                            report.dead += 1;
                        }
                    }
                }
                let mut resend = self.resolve(taken, &mut writes, &mut report).await?;
                for s in resend.drain(..) {
                    // Refused as a duplicate yet not found: a voided or deleted invoice holds the number.
                    let err = RecordError::new(
                        record_name(&s.key),
                        "increment_id",
                        "invoice number is taken in Xero by a voided or deleted invoice".to_owned(),
                    );
                    writes.push(vec![bury(&s, ACTOR, &err, None)]);
                    report.dead += 1;
                }
            }
            Err(e) => fail_sent(
                ctx,
                ACTOR,
                "invoice",
                sendable.into_iter().map(|(s, _)| s).collect(),
                &e,
                &mut writes,
                &mut report,
            ),
        }
        let fresh = with_payment_intents(ctx, &mut writes);
        let committed = commit_all(ctx, writes).await;
        if let Some((batch, members)) = fresh {
            if members.iter().all(|&i| committed[i]) {
                ctx.fresh_payments.confirm(&batch);
            } else {
                ctx.fresh_payments.forget_batch(&batch);
            }
        }
        Ok(report)
    }
}

/// Orders this batch invoiced that Magento says are paid move on to `PaymentPosting` in the
/// same write, with the intents of one payment batch, noted as not yet sent (see
/// `fresh_payments`): one ledger transition fewer per paid order, and the intent is still
/// committed before the payment call. Unpaid orders, and any the payment plan refuses, stay
/// `Invoiced` for the payments stage, which decides as it always has. Returns the noted
/// batch's key and the positions of its writes.
fn with_payment_intents(
    ctx: &LinkContext,
    writes: &mut [Vec<Write>],
) -> Option<(String, Vec<usize>)> {
    let rules = ctx.rules();
    let mut members = Vec::new();
    for (i, w) in writes.iter().enumerate() {
        if let [Write::Put { state, .. }] = w.as_slice()
            && state.stage == Stage::Invoiced
            && let Ok(Some((body, amount))) = super::payments::plan(ctx, state, &rules)
        {
            members.push((i, body, amount));
        }
    }
    if members.is_empty() {
        return None;
    }
    let (key, hashes) = batch_digests("payments", members.iter().map(|m| &m.1));
    let now = now_ms();
    let mut noted = Vec::with_capacity(members.len());
    let mut positions = Vec::with_capacity(members.len());
    for ((i, body, amount), body_sha256) in members.into_iter().zip(hashes) {
        let [Write::Put { state, detail, .. }] = writes[i].as_mut_slice() else {
            continue;
        };
        state.stage = Stage::PaymentPosting;
        state.intent = Some(Intent {
            op: PAYMENT_OP.to_owned(),
            idempotency_key: format!("{key}/{}", state.key),
            body_sha256,
            batch_id: key.clone(),
            committed_at_ms: now,
        });
        detail.push_str(&format!("; intent {PAYMENT_OP} key={key}"));
        ctx.passed_over.forget(&state.key);
        ctx.parsed_orders.forget(&state.key);
        // The ledger stores a written state at the version read plus one.
        noted.push((state.key.clone(), state.version + 1, body, amount));
        positions.push(i);
    }
    ctx.fresh_payments.note(&key, noted);
    Some((key, positions))
}

/// Commits each request on its own; says which committed (a refused one is redone next
/// round from what the ledger then holds).
pub(crate) async fn commit_all(ctx: &LinkContext, writes: Vec<Vec<Write>>) -> Vec<bool> {
    let results = ctx.ledger.commit_each(writes).await;
    results
        .into_iter()
        .map(|r| match r {
            Ok(_) => true,
            Err(e) => {
                tracing::debug!(error = %e, "Outcome not committed; the entity is redone next round.");
                false
            }
        })
        .collect()
}

impl StageWorker for InvoicesWorker {
    async fn round(&self) -> Result<RoundReport, RoundError> {
        let ctx = &self.ctx;
        let stale = ctx.due_in(Stage::InvoicePosting).await?;
        let ready = ctx.due_in(Stage::ContactReady).await?;
        if stale.is_empty() && ready.is_empty() {
            return Ok(RoundReport::default());
        }
        let mut report = RoundReport {
            picked: stale.len() + ready.len(),
            ..Default::default()
        };
        let mut writes = Vec::new();
        let mut candidates = self.resolve(stale, &mut writes, &mut report).await?;
        candidates.extend(ready);
        let records: Vec<Record> = candidates.iter().map(|o| o.data.clone()).collect();
        let stored = ctx.stored_orders(&candidates, &records);
        if let Err(e) = ctx.ensure_skus(&Stored::trees(&stored)).await {
            tracing::warn!(error = %e, "Could not describe SKUs; invoices wait.");
            commit_all(ctx, writes).await;
            return Ok(report);
        }
        let rules = ctx.rules();
        let org = ctx.org();
        let mut planned = Vec::with_capacity(candidates.len());
        for (s, stored) in candidates.into_iter().zip(stored) {
            let order = match stored {
                Stored::Parsed(order) => Ok(order),
                Stored::Tree(value) => ctx.parse_stored(&s, &value),
            };
            let plan = order.and_then(|order| {
                let contact = s.links.get("contact_id").cloned().unwrap_or_default();
                invoice_for(&order, &contact, &rules, &org)
            });
            match plan.and_then(|p| {
                serde_json::to_value(&p.invoice)
                    .map(|v| (v, p.expected_total))
                    .map_err(|e| RecordError::new(record_name(&s.key), "invoice", e.to_string()))
            }) {
                Ok((body, total)) => planned.push((s, body, total)),
                Err(e) => {
                    writes.push(vec![bury(&s, ACTOR, &e, None)]);
                    report.dead += 1;
                }
            }
        }
        commit_all(ctx, writes).await;
        let batches = chunk(planned, ctx.settings.batch_size);
        let results = futures::future::join_all(batches.into_iter().map(|b| self.post(b))).await;
        for r in results {
            report.add(r?);
        }
        Ok(report)
    }
}
