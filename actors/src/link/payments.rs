//! Payments: applies what the customer paid to the order's Xero invoice, into the bank
//! account mapped for the Magento payment method, in batches of up to 50.
//!
//! Same discipline as invoices: intent before the PUT, lookup before any re-send. Xero also
//! refuses a payment above the amount still due, so a lost-response retry that slipped past
//! the lookup cannot pay an invoice twice; that refusal is resolved by looking the payment up.

use std::collections::HashMap;
use std::sync::Arc;

use rust_decimal::Decimal;
use serde_json::Value;

use super::contacts::chunk;
use super::context::{LinkContext, bury, fail_or_bury, record_name};
use super::fresh_payments::{FreshBatch, whole_batches};
use super::intents::{Sendable, commit_intents, fail_sent, put_batch};
use super::invoices::commit_all;
use super::stage::{RoundError, RoundReport, StageWorker};
use crate::budget::Priority;
use crate::ledger::{EntityState, Record, Stage, Write};
use crate::magento::{MagentoError, order_entity_id};
use crate::mapping::payment_for;
use crate::mapping::rules::MappingRules;
use crate::model::money::parse_money;
use crate::model::order_fields::project_record;
use crate::model::{Json, RecordError};
use crate::xero::ElementOutcome;

const ACTOR: &str = "payments";

/// The operation a payment intent names (see `intents::commit_intents`).
pub(super) const PAYMENT_OP: &str = "PUT Payments";

pub struct PaymentsWorker {
    ctx: Arc<LinkContext>,
}

impl PaymentsWorker {
    pub fn new(ctx: Arc<LinkContext>) -> Self {
        Self { ctx }
    }
}

/// The `Paid` outcome, committed with the writeback's intent: the intent is in the ledger
/// before the writeback's call (the protocol), and the order moves once instead of twice.
/// [`commit_noting_writebacks`] tells the writeback stage the intent is fresh.
fn paid(mut order: EntityState, payment: &Value, how: &str) -> Write {
    let id = payment
        .get("PaymentID")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    order.stage = Stage::Paid;
    order.intent = Some(super::writeback::intent_for(&order.key));
    order.retry_at_ms = None;
    order.last_error = None;
    order.attempts = 0;
    order.links.insert("payment_id".into(), id.clone());
    let amount = payment
        .get("Amount")
        .map(|a| a.to_string())
        .unwrap_or_default();
    Write::Put {
        state: order,
        actor: ACTOR.into(),
        detail: format!("{how}: PaymentID={id} Amount={amount}; intent Magento writeback"),
    }
}

/// Commits each request on its own, noting the writeback intents of the `Paid` outcomes as
/// fresh (see `fresh_intents`) and forgetting those whose commit failed.
async fn commit_noting_writebacks(ctx: &LinkContext, writes: Vec<Vec<Write>>) {
    let fresh: Vec<Option<String>> = writes
        .iter()
        .map(|w| match w.as_slice() {
            [Write::Put { state, .. }] if state.stage == Stage::Paid => {
                let key = state
                    .intent
                    .as_ref()
                    .filter(|i| i.op == super::writeback::WRITEBACK_OP)?
                    .idempotency_key
                    .clone();
                // The ledger stores a written state at the version read plus one.
                ctx.fresh_intents.note(&key, state.version + 1);
                Some(key)
            }
            _ => None,
        })
        .collect();
    for (committed, key) in commit_all(ctx, writes).await.into_iter().zip(fresh) {
        if let (false, Some(key)) = (committed, key) {
            ctx.fresh_intents.forget(&key);
        }
    }
}

impl PaymentsWorker {
    /// Orders left in `PaymentPosting`: adopt a payment Xero already holds; the rest are resent.
    async fn resolve(
        &self,
        stale: Vec<EntityState>,
        writes: &mut Vec<Vec<Write>>,
        report: &mut RoundReport,
    ) -> Vec<EntityState> {
        if stale.is_empty() {
            return stale;
        }
        let ids: Vec<String> = stale
            .iter()
            .filter_map(|s| s.links.get("invoice_id").cloned())
            .collect();
        let found = match self
            .ctx
            .xero
            .get_payments_for_invoices(&ids, Priority::Payment)
            .await
        {
            Ok(v) => v,
            Err(e) => {
                let reason = format!("payment lookup failed: {e}");
                for s in stale {
                    let (w, dead) = fail_or_bury(&self.ctx, s, ACTOR, &reason, None);
                    report.retrying += usize::from(!dead);
                    report.dead += usize::from(dead);
                    writes.push(vec![w]);
                }
                return Vec::new();
            }
        };
        let mut by_invoice: HashMap<String, Value> = HashMap::new();
        for p in found {
            if p.get("Status").and_then(Value::as_str) == Some("DELETED") {
                continue;
            }
            if let Some(inv) = p.pointer("/Invoice/InvoiceID").and_then(Value::as_str) {
                by_invoice.insert(inv.to_owned(), p);
            }
        }
        let mut resend = Vec::new();
        for s in stale {
            match s.links.get("invoice_id").and_then(|id| by_invoice.get(id)) {
                Some(p) => {
                    writes.push(vec![paid(s, p, "found in Xero after an interrupted post")]);
                    report.done += 1;
                }
                None => resend.push(s),
            }
        }
        resend
    }

    async fn post(
        &self,
        batch: Vec<(EntityState, Value, Decimal)>,
    ) -> Result<RoundReport, RoundError> {
        let ctx = &self.ctx;
        let Sendable {
            key,
            bodies: send_bodies,
            entities,
        } = commit_intents(
            ctx,
            ACTOR,
            "payments",
            PAYMENT_OP,
            Stage::PaymentPosting,
            batch,
        )
        .await;
        let sendable: Vec<EntityState> = entities.into_iter().map(|(s, _)| s).collect();
        if sendable.is_empty() {
            return Ok(RoundReport::default());
        }
        self.send(key, send_bodies, sendable).await
    }

    /// The PUT of a batch whose intents are committed (by `post`, or with the invoices'
    /// outcomes), and its outcomes.
    async fn send(
        &self,
        key: String,
        send_bodies: Vec<Value>,
        sendable: Vec<EntityState>,
    ) -> Result<RoundReport, RoundError> {
        let ctx = &self.ctx;
        let mut report = RoundReport::default();
        let outcome = put_batch(ctx, "Payments", send_bodies, &key, Priority::Payment).await;
        let mut writes = Vec::new();
        match outcome {
            Ok(results) => {
                let mut recheck = Vec::new();
                for (s, r) in sendable.into_iter().zip(results) {
                    match r {
                        ElementOutcome::Ok { value } => {
                            writes.push(vec![paid(s, &value, "applied in Xero")]);
                            report.done += 1;
                        }
                        ElementOutcome::Rejected { messages, .. } => {
                            let text = messages.join("; ");
                            if text.contains("exceeds the amount outstanding") {
                                recheck.push((s, text));
                                continue;
                            }
                            let err = RecordError::new(
                                record_name(&s.key),
                                "payment",
                                "Xero refused the payment".to_owned(),
                            );
                            writes.push(vec![bury(&s, ACTOR, &err, Some(text))]);
                            report.dead += 1;
                        }
                    }
                }
                let texts: HashMap<String, String> = recheck
                    .iter()
                    .map(|(s, t)| (s.key.clone(), t.clone()))
                    .collect();
                let left = self
                    .resolve(
                        recheck.into_iter().map(|(s, _)| s).collect(),
                        &mut writes,
                        &mut report,
                    )
                    .await;
                for s in left {
                    let err = RecordError::new(
                        record_name(&s.key),
                        "payment.amount_paid",
                        "the payment is more than the invoice still owes".to_owned(),
                    );
                    let remote = texts.get(&s.key).cloned();
                    writes.push(vec![bury(&s, ACTOR, &err, remote)]);
                    report.dead += 1;
                }
            }
            Err(e) => fail_sent(
                ctx,
                ACTOR,
                "payment",
                sendable,
                &e,
                &mut writes,
                &mut report,
            ),
        }
        commit_noting_writebacks(ctx, writes).await;
        Ok(report)
    }
}

impl PaymentsWorker {
    /// The confirmed noted batches whose members are all still as their commit left them.
    async fn fresh_batches(&self) -> Result<Vec<FreshBatch>, RoundError> {
        let taken = self.ctx.fresh_payments.take_confirmed();
        if taken.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = taken
            .iter()
            .flat_map(|(_, members)| members.iter().map(|m| m.0.clone()))
            .collect();
        let current = self
            .ctx
            .ledger
            .get_many(keys)
            .await
            .map_err(|e| e.to_string())?;
        Ok(whole_batches(taken, current))
    }

    /// Magento's current copies (projected) of `orders`, by entity id.
    async fn current_copies(
        &self,
        orders: &[EntityState],
    ) -> Result<HashMap<u64, Record>, MagentoError> {
        let ids: Vec<u64> = orders
            .iter()
            .filter_map(|s| s.links.get("magento_entity_id")?.parse().ok())
            .collect();
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let found = self.ctx.magento.orders_by_id(&ids).await?;
        Ok(found
            .iter()
            .filter_map(|o| {
                let tree = Json::parse(o.get()).ok()?;
                Some((order_entity_id(&tree)?, project_record(&tree)))
            })
            .collect())
    }
}

/// The payment body and amount for an order (its stored record), `None` when nothing is
/// paid. The payment is the last use of the parsed order: the caller forgets it once the
/// order is planned for good.
pub(crate) fn plan(
    ctx: &LinkContext,
    s: &EntityState,
    rules: &MappingRules,
) -> Result<Option<(Value, Decimal)>, RecordError> {
    let invoice_id = s.links.get("invoice_id").cloned().unwrap_or_default();
    let order = match ctx.parsed_order(s) {
        Some(order) => Ok(order),
        None => ctx.parse_order(&s.data.tree()).map(Arc::new),
    };
    let Some(p) = order.and_then(|order| payment_for(&order, &invoice_id, rules))? else {
        return Ok(None);
    };
    let body = serde_json::to_value(&p)
        .map_err(|e| RecordError::new(record_name(&s.key), "payment", e.to_string()))?;
    let amount = body
        .get("Amount")
        .and_then(|a| parse_money(a).ok())
        .unwrap_or_default();
    Ok(Some((body, amount)))
}

/// Nothing paid yet (e.g. bank transfer): wait for Magento or Xero to say so.
fn skipped(mut s: EntityState) -> Write {
    s.stage = Stage::Skipped;
    s.intent = None;
    Write::Put {
        state: s,
        actor: ACTOR.into(),
        detail: "awaiting payment: nothing paid in Magento yet".into(),
    }
}

impl StageWorker for PaymentsWorker {
    async fn round(&self) -> Result<RoundReport, RoundError> {
        let ctx = &self.ctx;
        // Batches the invoices stage committed and nobody sent: no lookup (`fresh_payments`).
        // Taken first and read by key, so a batch is never split by the round's limit.
        let fresh = self.fresh_batches().await?;
        let sending: std::collections::HashSet<&str> = fresh
            .iter()
            .flat_map(|b| b.members.iter().map(|(s, _, _)| s.key.as_str()))
            .collect();
        let stale: Vec<EntityState> = ctx
            .due_in(Stage::PaymentPosting)
            .await?
            .into_iter()
            // Ours now, or still waiting for their invoices round to confirm them.
            .filter(|s| !sending.contains(s.key.as_str()) && !ctx.fresh_payments.holds(&s.key))
            .collect();
        drop(sending);
        let ready = ctx.due_in(Stage::Invoiced).await?;
        if stale.is_empty() && ready.is_empty() && fresh.is_empty() {
            return Ok(RoundReport::default());
        }
        let mut report = RoundReport {
            picked: stale.len()
                + ready.len()
                + fresh.iter().map(|b| b.members.len()).sum::<usize>(),
            ..Default::default()
        };
        let mut writes = Vec::new();
        let mut candidates = self.resolve(stale, &mut writes, &mut report).await;
        candidates.extend(ready);
        let rules = ctx.rules();
        let mut planned = Vec::new();
        let mut unpaid = Vec::new();
        for s in candidates {
            let planned_now = plan(ctx, &s, &rules);
            ctx.parsed_orders.forget(&s.key);
            match planned_now {
                Ok(Some((body, amount))) => {
                    ctx.passed_over.forget(&s.key);
                    planned.push((s, body, amount));
                }
                Ok(None) => unpaid.push(s),
                Err(e) => {
                    writes.push(vec![bury(&s, ACTOR, &e, None)]);
                    report.dead += 1;
                }
            }
        }
        // The stored copy says nothing is paid. Ingest does not take a change while the
        // invoice call is in flight, so a payment Magento took then is missing from it: for
        // those orders (`passed_over`), ask Magento for the current copies, in one search,
        // before calling them unpaid.
        let (mut recheck, settled): (Vec<_>, Vec<_>) = unpaid
            .into_iter()
            .partition(|s| ctx.passed_over.needs_check(s));
        for s in settled {
            writes.push(vec![skipped(s)]);
            report.done += 1;
        }
        let current = match self.current_copies(&recheck).await {
            Ok(current) => current,
            Err(e) => {
                // Unconfirmed is not unpaid: these wait for their retry, still marked.
                let reason =
                    format!("could not read the order from Magento to confirm it is unpaid: {e}");
                for s in recheck.drain(..) {
                    let (w, dead) = fail_or_bury(ctx, s, ACTOR, &reason, None);
                    report.retrying += usize::from(!dead);
                    report.dead += usize::from(dead);
                    writes.push(vec![w]);
                }
                HashMap::new()
            }
        };
        for mut s in recheck {
            ctx.passed_over.forget(&s.key);
            let fresh = s
                .links
                .get("magento_entity_id")
                .and_then(|id| id.parse::<u64>().ok())
                .and_then(|id| current.get(&id))
                .filter(|record| **record != s.data)
                .cloned();
            let Some(record) = fresh else {
                writes.push(vec![skipped(s)]);
                report.done += 1;
                continue;
            };
            s.data = record;
            match plan(ctx, &s, &rules) {
                Ok(Some((body, amount))) => planned.push((s, body, amount)),
                Ok(None) => {
                    writes.push(vec![skipped(s)]);
                    report.done += 1;
                }
                Err(e) => {
                    writes.push(vec![bury(&s, ACTOR, &e, None)]);
                    report.dead += 1;
                }
            }
        }
        commit_noting_writebacks(ctx, writes).await;
        let batches = chunk(planned, ctx.settings.batch_size);
        let posts = batches
            .into_iter()
            .map(|b| futures::future::Either::Left(self.post(b)));
        let sends = fresh.into_iter().map(|f| {
            let (states, bodies): (Vec<EntityState>, Vec<Value>) =
                f.members.into_iter().map(|(s, body, _)| (s, body)).unzip();
            futures::future::Either::Right(self.send(f.key, bodies, states))
        });
        let results = futures::future::join_all(posts.chain(sends)).await;
        for r in results {
            report.add(r?);
        }
        Ok(report)
    }
}
