//! Stock: Xero's tracked-item quantities brought back to Magento's stock items.
//!
//! Xero is the book of record for inventory once purchases are entered there, so Magento's
//! saleable quantity follows Xero's `QuantityOnHand`. The write is an absolute quantity (not a
//! delta), so repeating it is harmless; the ledger keeps the last level pushed per SKU and
//! only a changed level causes a Magento call. Xero has no item webhooks, so Items are read on
//! a slow interval at the lowest budget priority.

use std::sync::Arc;

use rust_decimal::Decimal;
use serde_json::{Value, json};

use super::context::{LinkContext, fail_or_bury, now_ms};
use super::invoices::commit_all;
use super::stage::{RoundError, RoundReport, StageWorker};
use crate::budget::Priority;
use crate::ledger::{EntityKind, EntityState, Intent, Stage, Write};
use crate::model::money::parse_decimal;

const ACTOR: &str = "stock";

pub struct StockWorker {
    ctx: Arc<LinkContext>,
}

impl StockWorker {
    pub fn new(ctx: Arc<LinkContext>) -> Self {
        Self { ctx }
    }

    /// Pushes one level; returns the write that records it.
    async fn push(
        &self,
        mut state: EntityState,
        qty: Decimal,
    ) -> Result<Write, (EntityState, String)> {
        let sku = state.key.trim_start_matches("stock:").to_owned();
        let item = self
            .ctx
            .magento
            .get_stock_item(&sku)
            .await
            .map_err(|e| (state.clone(), e.to_string()))?;
        let item_id = item.get("item_id").and_then(Value::as_u64).ok_or_else(|| {
            (
                state.clone(),
                "Magento stock item has no item_id".to_owned(),
            )
        })?;
        let current = item.get("qty").and_then(|q| parse_decimal(q, 4).ok());
        if current != Some(qty) {
            self.ctx
                .magento
                .set_stock_qty(&sku, item_id, qty)
                .await
                .map_err(|e| (state.clone(), e.to_string()))?;
        }
        state.stage = Stage::WrittenBack;
        state.intent = None;
        state.attempts = 0;
        state.last_error = None;
        state.retry_at_ms = None;
        state.data = json!({ "qty": qty.to_string() }).into();
        let detail = match current {
            Some(c) if c == qty => format!("Magento already at {qty}"),
            Some(c) => format!("Magento stock {c} → {qty} (Xero QuantityOnHand)"),
            None => format!("Magento stock set to {qty} (Xero QuantityOnHand)"),
        };
        Ok(Write::Put {
            state,
            actor: ACTOR.into(),
            detail,
        })
    }
}

impl StageWorker for StockWorker {
    async fn round(&self) -> Result<RoundReport, RoundError> {
        let ctx = &self.ctx;
        let items = match ctx.xero.items(Priority::Backfill).await {
            Ok(items) => items,
            Err(e) => {
                tracing::warn!(error = %e, "Xero items not read; stock sync waits for the next interval.");
                return Ok(RoundReport::default());
            }
        };
        let mut report = RoundReport::default();
        let mut changed = Vec::new();
        for item in &items {
            if item.get("IsTrackedAsInventory").and_then(Value::as_bool) != Some(true) {
                continue;
            }
            let (Some(code), Some(qty)) = (
                item.get("Code").and_then(Value::as_str),
                item.get("QuantityOnHand")
                    .and_then(|q| parse_decimal(q, 4).ok()),
            ) else {
                continue;
            };
            if ctx.catalogue.read().product(code).is_none() {
                continue;
            }
            let key = EntityKind::StockItem.key(code);
            let existing = ctx.ledger.get(&key).await.map_err(|e| e.to_string())?;
            let last = existing
                .as_ref()
                .and_then(|s| s.data.field("qty"))
                .and_then(|q| q.as_str().map(str::to_owned))
                .and_then(|q| q.parse::<Decimal>().ok());
            let due = existing
                .as_ref()
                .is_none_or(|s| s.retry_at_ms.is_none_or(|t| t <= now_ms()));
            if last == Some(qty)
                && existing
                    .as_ref()
                    .is_some_and(|s| s.stage == Stage::WrittenBack)
                || !due
            {
                continue;
            }
            let mut state = existing
                .unwrap_or_else(|| EntityState::new(EntityKind::StockItem, code, Value::Null));
            state.stage = Stage::Seen;
            state.intent = Some(Intent {
                op: "PUT stockItems".into(),
                idempotency_key: format!("stock/{code}/{qty}"),
                body_sha256: String::new(),
                batch_id: String::new(),
                committed_at_ms: now_ms(),
            });
            changed.push((state, qty));
        }
        if changed.is_empty() {
            return Ok(report);
        }
        report.picked = changed.len();
        // Intent first: the level we are about to push.
        let intents = changed
            .iter()
            .map(|(s, q)| {
                vec![Write::Put {
                    state: s.clone(),
                    actor: ACTOR.into(),
                    detail: format!("Xero QuantityOnHand {q}"),
                }]
            })
            .collect();
        let results = ctx.ledger.commit_each(intents).await;
        let mut writes = Vec::new();
        for ((mut s, qty), r) in changed.into_iter().zip(results) {
            let Ok(info) = r else { continue };
            s.version = info.versions.get(&s.key).copied().unwrap_or(s.version + 1);
            match self.push(s, qty).await {
                Ok(w) => {
                    report.done += 1;
                    writes.push(vec![w]);
                }
                Err((s, reason)) => {
                    let (w, dead) = fail_or_bury(ctx, s, ACTOR, &reason, None);
                    report.retrying += usize::from(!dead);
                    report.dead += usize::from(dead);
                    writes.push(vec![w]);
                }
            }
        }
        commit_all(ctx, writes).await;
        // Levels are re-read on the next interval, not in a tight loop.
        report.picked = 0;
        Ok(report)
    }
}
