//! Ingest: polls Magento for new and changed orders and records them in the ledger.
//!
//! An order enters the ledger in the same commit as the cursor that read it, so a crash
//! re-reads orders rather than skipping them. Bad input is dead-lettered here, at the door,
//! with the record and field named, and never holds up the orders around it.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::contacts::{known_contacts, link_contact};
use super::context::{LinkContext, bury, now_ms};
use super::stage::{RoundError, RoundReport, StageWorker};
use crate::ledger::{EntityKind, EntityState, LedgerError, Stage, Write};
use crate::magento::PolledOrder;
use crate::magento::{ChangedOrder, OrderCursor, OrderPoller};
use crate::mapping::contact::contact_number;
use crate::model::order_fields::project_record;
use crate::model::{Json, JsonView, Order};
use crate::reconcile::diff::{cancelled_in_magento, is_cancelled};

pub const CURSOR: &str = "magento.orders";
const ACTOR: &str = "ingest";

pub struct IngestWorker {
    ctx: Arc<LinkContext>,
    poller: OrderPoller,
    /// Set once a poll came back empty: the backlog is read (used by `sync --once`).
    caught_up: Arc<AtomicBool>,
}

impl IngestWorker {
    pub fn new(ctx: Arc<LinkContext>, caught_up: Arc<AtomicBool>) -> Self {
        let overlap = std::time::Duration::from_secs(120);
        let poller = OrderPoller::new(ctx.magento.clone(), overlap)
            .with_page_size(ctx.magento.page_size())
            .with_max_per_poll(ctx.settings.round_limit.max(100));
        Self {
            ctx,
            poller,
            caught_up,
        }
    }
}

/// Whether a Magento change to an order in `stage` can matter to the engine: before its
/// invoice is sent, after it is invoiced while the payment is undecided or awaited, and
/// while it is dead-lettered. [`merge`] takes the change only then, and the poll reads an
/// order whole only then (or when the ledger has never seen it).
fn takes_updates(stage: Stage) -> bool {
    matches!(
        stage,
        Stage::Seen | Stage::ContactReady | Stage::Invoiced | Stage::Skipped | Stage::Dead
    )
}

/// An order of this poll that parsed, on its way to the ledger.
struct Fresh {
    state: EntityState,
    order: Order,
    was_new: bool,
    /// Stored as `skipped` (cancelled before it was invoiced) and looked at again.
    was_skipped: bool,
    /// An invoiced order whose stored copy Magento had already cancelled: its cancellation
    /// was raised when it was first read (see [`cancelled_after_invoicing`]).
    was_cancelled: bool,
    /// The catalogue revision the parse used (see `parsed_orders`), when it may be kept.
    revision: Option<u64>,
}

/// What an incoming Magento order means for the entity already in the ledger.
fn merge(existing: Option<EntityState>, raw: &Json, increment_id: &str) -> Option<EntityState> {
    let record = || project_record(raw);
    if existing.as_ref().is_some_and(|s| !takes_updates(s.stage)) {
        return None;
    }
    match existing {
        None => Some(EntityState::new(EntityKind::Order, increment_id, record())),
        Some(mut s) => match s.stage {
            // Not yet sent anywhere: take the newer copy.
            Stage::Seen | Stage::ContactReady => {
                s.data = record();
                Some(s)
            }
            // Invoiced, and the payments stage has not yet decided: it decides from the
            // stored copy, so a payment Magento took meanwhile must reach it, or it would
            // mark the order unpaid from the stale copy and the payment would never sync.
            // Nothing is in flight for an invoiced order (its invoice intent is resolved),
            // so the newer copy replaces the old; a payments round that read the old one
            // meets a version conflict and reads this one next round.
            Stage::Invoiced => {
                let fresh = record();
                (fresh != s.data).then(|| {
                    s.data = fresh;
                    s
                })
            }
            // Cancelled before it was invoiced: looked at again from the start (ingest skips
            // it again while Magento still has it cancelled).
            Stage::Skipped if !s.links.contains_key("invoice_id") => {
                s.data = record();
                s.stage = Stage::Seen;
                s.retry_at_ms = None;
                Some(s)
            }
            // Invoiced but unpaid: a payment may have arrived in Magento.
            Stage::Skipped => {
                let paid = raw.at("/payment/amount_paid").is_some_and(|v| !is_zero(v));
                s.data = record();
                if paid {
                    s.stage = Stage::Invoiced;
                    s.retry_at_ms = None;
                }
                Some(s)
            }
            // Keep the fresh copy so an operator's retry uses the corrected order.
            Stage::Dead => {
                s.data = record();
                Some(s)
            }
            _ => None,
        },
    }
}

fn is_zero(v: &impl JsonView) -> bool {
    crate::model::money::parse_money(v)
        .map(|d| d.is_zero())
        .unwrap_or(true)
}

impl StageWorker for IngestWorker {
    async fn round(&self) -> Result<RoundReport, RoundError> {
        let ctx = &self.ctx;
        let cursor: OrderCursor =
            match ctx.ledger.cursor(CURSOR).await.map_err(|e| e.to_string())? {
                Some(v) => serde_json::from_value(v)
                    .map_err(|e| format!("stored order cursor is unreadable: {e}"))?,
                None => OrderCursor::default(),
            };
        let ledger = &ctx.ledger;
        let passed_over = &ctx.passed_over;
        let wanted = |changed: Vec<ChangedOrder>| async move {
            let keyed: Vec<(u64, Option<String>)> = changed
                .into_iter()
                .map(|c| {
                    (
                        c.entity_id,
                        c.increment_id.map(|id| EntityKind::Order.key(&id)),
                    )
                })
                .collect();
            let keys = keyed.iter().filter_map(|(_, k)| k.clone()).collect();
            // A failed read fetches everything: merge decides as it always did.
            let stored = ledger.stages_of(keys).await.unwrap_or_default();
            let mut stages = stored.into_iter();
            keyed
                .into_iter()
                .filter(|(_, key)| {
                    // Orders without an increment id are fetched; ingest names them.
                    let Some(key) = key else { return true };
                    match stages.next().flatten() {
                        Some(stage) if !takes_updates(stage) => {
                            passed_over.note(key, stage);
                            false
                        }
                        _ => true,
                    }
                })
                .map(|(id, _)| id)
                .collect()
        };
        let (orders, next) = match self.poller.poll_wanted(&cursor, wanted).await {
            Ok(r) => r,
            Err(e) => {
                // Magento unreachable: nothing to record; the tick tries again.
                tracing::warn!(error = %e, "Magento order poll failed.");
                return Ok(RoundReport::default());
            }
        };
        if orders.is_empty() {
            self.caught_up.store(true, Ordering::Relaxed);
            if next != cursor {
                let value = serde_json::to_value(&next).map_err(|e| e.to_string())?;
                ctx.ledger
                    .commit(vec![Write::SetCursor {
                        name: CURSOR.into(),
                        value,
                    }])
                    .await
                    .map_err(|e| e.to_string())?;
            }
            return Ok(RoundReport::default());
        }
        self.caught_up.store(false, Ordering::Relaxed);
        let trees: Vec<Json> = orders.iter().map(PolledOrder::tree).collect();
        let refs: Vec<&Json> = trees.iter().collect();
        if let Err(e) = ctx.ensure_skus(&refs).await {
            tracing::warn!(error = %e, "Could not describe new SKUs; retrying on the next poll.");
            return Ok(RoundReport::default());
        }
        let mut report = RoundReport {
            picked: orders.len(),
            ..Default::default()
        };
        let mut writes = Vec::with_capacity(orders.len() + 1);
        let mut incoming = Vec::with_capacity(orders.len());
        for raw in &trees {
            match raw
                .member("increment_id")
                .and_then(JsonView::text)
                .map(str::to_owned)
            {
                Some(increment_id) => incoming.push((increment_id, raw)),
                None => {
                    tracing::warn!("Magento returned an order without increment_id; skipped.")
                }
            }
        }
        // One read transaction for the whole poll, not one per order.
        let keys = incoming
            .iter()
            .map(|(id, _)| EntityKind::Order.key(id))
            .collect();
        let stored = ctx.ledger.get_many(keys).await.map_err(|e| e.to_string())?;
        let mut good = Vec::with_capacity(incoming.len());
        for ((increment_id, raw), existing) in incoming.into_iter().zip(stored) {
            let was_new = existing.is_none();
            let was_dead = existing.as_ref().is_some_and(|s| s.stage == Stage::Dead);
            // Re-evaluated after a cancellation: the ledger allows it `Skipped → Seen` only, so
            // the contacts stage links it, not this write.
            let was_skipped = existing.as_ref().is_some_and(|s| s.stage == Stage::Skipped);
            // The stored copy of an invoiced order, to tell a new cancellation (a shared text,
            // not a copy).
            let prior = existing
                .as_ref()
                .filter(|s| matches!(s.stage, Stage::Invoiced | Stage::Skipped))
                .map(|s| s.data.clone());
            let Some(mut state) = merge(existing, raw, &increment_id) else {
                continue;
            };
            // Parsed only for an invoiced order that really changed: not on a backfill's path.
            let was_cancelled = prior.is_some_and(|data| {
                is_cancelled(data.field("state").as_ref().and_then(|v| v.as_str()))
            });
            if was_dead {
                // Refresh the stored copy only; the operator decides when to retry.
                writes.push(Write::Put {
                    state,
                    actor: ACTOR.into(),
                    detail: "Magento order updated while dead-lettered".into(),
                });
                continue;
            }
            match ctx.parse_keepable(raw) {
                Ok((order, revision)) => {
                    state
                        .links
                        .insert("magento_entity_id".into(), order.entity_id.to_string());
                    state
                        .links
                        .insert("email".into(), order.customer.email_key.clone());
                    good.push(Fresh {
                        state,
                        order,
                        was_new,
                        was_skipped,
                        was_cancelled,
                        revision,
                    });
                    report.done += 1;
                }
                Err(err) => {
                    state.updated_at_ms = now_ms();
                    let letter = bury(&state, ACTOR, &err, None);
                    if was_new {
                        writes.push(Write::Put {
                            state,
                            actor: ACTOR.into(),
                            detail: "seen in Magento".into(),
                        });
                    }
                    writes.push(letter);
                    report.dead += 1;
                }
            }
        }
        // An order whose customer the ledger already holds as a Xero contact is linked to it
        // in the same write that records it: the contacts stage would only copy the
        // ContactID over, at the cost of a second transition and a second parse.
        let numbers: BTreeSet<String> = good
            .iter()
            .filter(|f| f.state.stage == Stage::Seen && !f.was_skipped)
            .map(|f| contact_number(&f.order))
            .collect();
        let known = if numbers.is_empty() {
            Default::default()
        } else {
            known_contacts(ctx, numbers)
                .await
                .map_err(|e| e.to_string())?
        };
        for Fresh {
            mut state,
            order,
            was_new,
            was_skipped,
            was_cancelled,
            revision,
        } in good
        {
            let cancelled = cancelled_after_invoicing(&state, &order, was_new, was_cancelled);
            let mut detail = if was_new {
                "seen in Magento".to_owned()
            } else {
                "Magento order updated".to_owned()
            };
            if matches!(state.stage, Stage::Seen | Stage::ContactReady)
                && is_cancelled(order.state.as_deref())
            {
                // Nothing owed, nothing to invoice: no contact, invoice or payment is sent.
                state.stage = Stage::Skipped;
                state.retry_at_ms = None;
                ctx.parsed_orders.forget(&state.key);
                writes.push(Write::Put {
                    state,
                    actor: ACTOR.into(),
                    detail: format!(
                        "{detail}; cancelled in Magento before it was invoiced: nothing is sent to Xero"
                    ),
                });
                continue;
            }
            if state.stage == Stage::Seen && !was_skipped {
                let number = contact_number(&order);
                if let Some(id) = known.get(&number) {
                    detail = format!("{detail}; {}", link_contact(&mut state, id, &number));
                    // Invoices reads it next, soon: keeping it spares that stage a parse.
                    ctx.keep_parsed(&state, Arc::new(order), revision);
                }
            }
            if let Some(w) = cancelled {
                detail.push_str("; cancelled in Magento after it was invoiced");
                writes.push(w);
            }
            writes.push(Write::Put {
                state,
                actor: ACTOR.into(),
                detail,
            });
        }
        let value = serde_json::to_value(&next).map_err(|e| e.to_string())?;
        writes.push(Write::SetCursor {
            name: CURSOR.into(),
            value,
        });
        settle(ctx.ledger.commit(writes).await.map(drop), report)
    }
}

/// The discrepancy an update raises when Magento cancelled an order whose invoice tally
/// already posted (and which has no payment to refund: a paid order takes no updates). The
/// reconciler closes it once Xero's invoice is voided. Raised once, when the cancellation is
/// first read: a later update of an order whose stored copy was already cancelled
/// (`was_cancelled`) must not raise again what Xero may since have resolved, which no pass
/// would close (a voided invoice does not change again, so no sweep reads it).
fn cancelled_after_invoicing(
    state: &EntityState,
    order: &Order,
    was_new: bool,
    was_cancelled: bool,
) -> Option<Write> {
    let invoiced = matches!(state.stage, Stage::Invoiced | Stage::Skipped);
    if was_new || was_cancelled || !invoiced || !is_cancelled(order.state.as_deref()) {
        return None;
    }
    let invoice_id = state.links.get("invoice_id")?;
    let number = state
        .links
        .get("invoice_number")
        .map_or(order.increment_id.as_str(), String::as_str);
    Some(cancelled_in_magento(state, invoice_id, number).raise(ACTOR))
}

/// The round's result once its commit is done.
fn settle(
    committed: Result<(), LedgerError>,
    report: RoundReport,
) -> Result<RoundReport, RoundError> {
    match committed {
        Ok(()) => Ok(report),
        // Another stage moved one of these orders between the read and this commit. The
        // commit is all or nothing and the cursor did not move, so the next poll reads the
        // same changes again against the newer states; failing the round would only restart
        // the actor for a race it already recovers from.
        Err(LedgerError::VersionConflict { key, .. }) => {
            tracing::debug!(%key, "Order moved on while ingest read it; polling again.");
            Ok(RoundReport::default())
        }
        Err(e) => Err(format!("ledger: {e}").into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    /// [`merge`] of an order given as a value, read the way the poll hands it over.
    fn merge(existing: Option<EntityState>, raw: &Value, id: &str) -> Option<EntityState> {
        let text = raw.to_string();
        super::merge(existing, &Json::parse(&text).unwrap(), id)
    }

    fn stored(stage: Stage, data: Value) -> EntityState {
        let mut s = EntityState::new(EntityKind::Order, "000000001", data);
        s.stage = stage;
        s.version = 4;
        s
    }

    #[tokio::test]
    async fn a_commit_beaten_by_another_stage_is_a_re_poll_not_a_failed_round() {
        use crate::ledger::Ledger;
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::open(dir.path().join("t.redb")).unwrap();
        let put = |state: EntityState| Write::Put {
            state,
            actor: "t".into(),
            detail: String::new(),
        };
        let first = EntityState::new(EntityKind::Order, "000000001", json!({"a": 1}));
        ledger.commit(vec![put(first)]).await.unwrap();
        let stale = ledger.get("order:000000001").await.unwrap().unwrap();
        let mut moved = stale.clone();
        moved.stage = Stage::ContactReady;
        ledger.commit(vec![put(moved)]).await.unwrap();

        // Ingest's commit: its stale copy of the order and the cursor past it.
        let mut refreshed = stale;
        refreshed.data = json!({"a": 2}).into();
        let cursor = Write::SetCursor {
            name: CURSOR.into(),
            value: json!({"updated_at": "2024-01-01 00:00:00", "seen": []}),
        };
        let committed = ledger.commit(vec![put(refreshed), cursor]).await.map(drop);
        let report = RoundReport {
            picked: 1,
            done: 1,
            ..Default::default()
        };
        assert_eq!(settle(committed, report).unwrap(), RoundReport::default());
        assert_eq!(
            ledger.cursor(CURSOR).await.unwrap(),
            None,
            "the cursor did not move"
        );
        let stored = ledger.get("order:000000001").await.unwrap().unwrap();
        assert_eq!(
            (stored.stage, stored.data.value()),
            (Stage::ContactReady, json!({"a": 1}))
        );

        let other = Err(LedgerError::NotFound { key: "x".into() });
        assert!(
            settle(other, report).is_err(),
            "any other ledger error fails the round"
        );
        assert_eq!(settle(Ok(()), report).unwrap(), report);
    }

    #[test]
    fn a_payment_taken_while_invoiced_reaches_the_payments_stage() {
        let old = json!({"increment_id": "000000001", "payment": {"amount_paid": "0.00"}});
        let new = json!({"increment_id": "000000001", "payment": {"amount_paid": "12.50"}});
        let merged = merge(Some(stored(Stage::Invoiced, old)), &new, "000000001").unwrap();
        assert_eq!(merged.stage, Stage::Invoiced);
        assert_eq!(merged.version, 4, "written over the version that was read");
        assert_eq!(merged.data.value(), new);
        let same = stored(Stage::Invoiced, new.clone());
        assert!(
            merge(Some(same), &new, "000000001").is_none(),
            "an unchanged copy is not rewritten"
        );
    }

    /// An order skipped after it was invoiced (unpaid), as the payments stage leaves it.
    fn invoiced_and_skipped(data: Value) -> EntityState {
        let mut s = stored(Stage::Skipped, data);
        s.links.insert("invoice_id".into(), "inv-1".into());
        s
    }

    #[test]
    fn a_payment_taken_after_the_order_was_skipped_revives_it() {
        let old = json!({"payment": {"amount_paid": "0.00"}});
        let new = json!({"payment": {"amount_paid": "12.50"}});
        let mut skipped = invoiced_and_skipped(old.clone());
        skipped.retry_at_ms = Some(1);
        let merged = merge(Some(skipped), &new, "000000001").unwrap();
        assert_eq!((merged.stage, merged.retry_at_ms), (Stage::Invoiced, None));
        let still = merge(Some(invoiced_and_skipped(old.clone())), &old, "000000001").unwrap();
        assert_eq!(still.stage, Stage::Skipped);
    }

    #[test]
    fn an_order_skipped_before_it_was_invoiced_is_looked_at_again_from_the_start() {
        let cancelled = json!({"state": "canceled"});
        let again = json!({"state": "processing"});
        let merged = merge(Some(stored(Stage::Skipped, cancelled)), &again, "000000001").unwrap();
        assert_eq!((merged.stage, merged.data.value()), (Stage::Seen, again));
    }

    #[test]
    fn orders_with_a_call_in_flight_or_done_keep_their_copy() {
        let new = json!({"payment": {"amount_paid": "12.50"}});
        for stage in [
            Stage::InvoicePosting,
            Stage::PaymentPosting,
            Stage::Paid,
            Stage::WrittenBack,
        ] {
            assert!(
                merge(Some(stored(stage, json!({}))), &new, "000000001").is_none(),
                "{stage:?}"
            );
        }
        let order_stages = Stage::ALL.iter().filter(|s| EntityKind::Order.uses(**s));
        for stage in order_stages {
            let changed = json!({"payment": {"amount_paid": "1.00"}});
            assert_eq!(
                merge(Some(stored(*stage, json!({}))), &changed, "000000001").is_some(),
                takes_updates(*stage),
                "the poll reads whole exactly the orders merge takes a change for: {stage:?}"
            );
        }
        let fresh = merge(None, &new, "000000001").unwrap();
        assert_eq!((fresh.stage, fresh.version), (Stage::Seen, 0));
    }
}
