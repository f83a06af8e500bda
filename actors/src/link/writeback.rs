//! Writeback: tells Magento when the Xero invoice is paid.
//!
//! Magento gets a sales invoice (captured) if it has none yet — the order then moves on as
//! Magento moves it — and a status-history comment naming the Xero invoice. Both writes are
//! guarded by a lookup: the existing invoices of the order, and our own marker in the order's
//! comments, so a crash between the call and the commit never writes twice.
//!
//! The lookup is skipped on an order's first attempt when the copy in the ledger is already
//! invoiced in full: Magento never un-invoices an order, and no earlier attempt can have
//! commented (the attempt's intent was committed just now, and a crashed or failed attempt
//! leaves its intent behind, which sends the next attempt through the lookup). That halves
//! the Magento calls of a backfill's writeback. Those first-attempt comments go through
//! Magento's bulk API, a round's worth per request (`bulk_comments`); a retry goes through
//! the lookup, after every comment still queued in Magento's bulk API has been applied.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use futures::StreamExt;
use serde_json::Value;

use super::bulk_comments::{BulkOutcome, comment_in_bulk};
use super::context::{LinkContext, fail_or_bury, is_due, now_ms};
use super::invoices::commit_all;
use super::stage::{RoundError, RoundReport, StageWorker};
use crate::ledger::{EntityState, Intent, Stage, Write};
use crate::magento::COMMENT_TOPIC;

const ACTOR: &str = "writeback";
/// Marks our comments so a retry can see that the comment is already there.
pub const MARKER: &str = "[tally]";

pub struct WritebackWorker {
    ctx: Arc<LinkContext>,
    /// The store answered the bulk route with 404: comment one by one from then on.
    no_bulk_api: AtomicBool,
}

impl WritebackWorker {
    pub fn new(ctx: Arc<LinkContext>) -> Self {
        Self {
            ctx,
            no_bulk_api: AtomicBool::new(false),
        }
    }

    async fn one(&self, (s, first): (EntityState, bool)) -> Result<Write, (EntityState, String)> {
        let ctx = &self.ctx;
        let Some(entity_id) = entity_id(&s) else {
            return Err((s, "the order has no Magento entity id".into()));
        };
        let comment = comment_for(&s);
        if first && invoiced_in_full(&s) {
            ctx.magento
                .add_order_comment(entity_id, &comment, None)
                .await
                .map_err(|e| (s.clone(), e.to_string()))?;
            return Ok(written_back(s, COMMENTED));
        }
        let order = ctx
            .magento
            .get_order_fields(entity_id, "grand_total,total_invoiced,status_histories")
            .await
            .map_err(|e| (s.clone(), e.to_string()))?;
        let grand = order
            .get("grand_total")
            .and_then(|v| crate::model::money::parse_money(v).ok());
        let invoiced = order
            .get("total_invoiced")
            .and_then(|v| crate::model::money::parse_money(v).ok());
        let needs_invoice = match (grand, invoiced) {
            (Some(g), Some(i)) => i < g,
            (Some(_), None) => true,
            _ => false,
        };
        if needs_invoice {
            let existing = ctx
                .magento
                .invoices_for_order(entity_id)
                .await
                .map_err(|e| (s.clone(), e.to_string()))?;
            if existing.is_empty() {
                ctx.magento
                    .create_invoice(entity_id, true, Some(&comment))
                    .await
                    .map_err(|e| (s.clone(), e.to_string()))?;
            }
        }
        let commented = order
            .get("status_histories")
            .and_then(Value::as_array)
            .is_some_and(|h| {
                h.iter().any(|c| {
                    c.get("comment")
                        .and_then(Value::as_str)
                        .is_some_and(|t| t.starts_with(MARKER))
                })
            });
        if !commented && !needs_invoice {
            ctx.magento
                .add_order_comment(entity_id, &comment, None)
                .await
                .map_err(|e| (s.clone(), e.to_string()))?;
        }
        let detail = if needs_invoice {
            "Magento invoiced (captured) and commented"
        } else {
            COMMENTED
        };
        Ok(written_back(s, detail))
    }
}

fn entity_id(s: &EntityState) -> Option<u64> {
    s.links
        .get("magento_entity_id")
        .and_then(|v| v.parse::<u64>().ok())
}

/// The comment naming the Xero invoice, marked so a retry recognises it.
fn comment_for(s: &EntityState) -> String {
    let number = s.links.get("invoice_number").map_or("", String::as_str);
    let invoice_id = s.links.get("invoice_id").map_or("", String::as_str);
    format!("{MARKER} Paid in Xero: invoice {number} ({invoice_id}).")
}

/// The ledger's copy of the order says Magento invoiced all of it. Reads the two totals
/// only; serde skips the rest of the stored order without building it.
fn invoiced_in_full(s: &EntityState) -> bool {
    #[derive(serde::Deserialize)]
    struct Totals {
        grand_total: Option<Value>,
        total_invoiced: Option<Value>,
    }
    let Ok(t) = serde_json::from_str::<Totals>(s.data.json()) else {
        return false;
    };
    let money = |v: Option<Value>| v.and_then(|v| crate::model::money::parse_money(&v).ok());
    match (money(t.grand_total), money(t.total_invoiced)) {
        (Some(grand), Some(invoiced)) => invoiced >= grand,
        _ => false,
    }
}

const COMMENTED: &str = "Magento order commented";

/// The order's writeback is done; `detail` goes to the audit trail.
fn written_back(mut s: EntityState, detail: impl Into<String>) -> Write {
    s.stage = Stage::WrittenBack;
    s.intent = None;
    s.retry_at_ms = None;
    s.last_error = None;
    s.attempts = 0;
    Write::Put {
        state: s,
        actor: ACTOR.into(),
        detail: detail.into(),
    }
}

/// The writeback intent of order `key`: one per order, so a retry is recognised.
pub fn intent_for(key: &str) -> Intent {
    Intent {
        op: WRITEBACK_OP.into(),
        idempotency_key: format!("writeback-{key}"),
        body_sha256: String::new(),
        batch_id: String::new(),
        committed_at_ms: now_ms(),
    }
}

/// The operation named in a writeback intent.
pub const WRITEBACK_OP: &str = "Magento writeback";

impl WritebackWorker {
    /// Commits the intent of every order of the round that has none yet, all in one
    /// transaction (one fsync) before any Magento call; each order is accepted or refused on
    /// its own. Returns the orders whose intent is in the ledger, each with whether this is
    /// its first attempt (its intent was committed just now, here or by the payments stage
    /// with the `Paid` outcome: `fresh_intents`), and the ones whose intent
    /// could not be committed (they make no call this round).
    async fn with_intents(
        &self,
        paid: Vec<EntityState>,
    ) -> (Vec<(EntityState, bool)>, Vec<(EntityState, String)>) {
        let (again, mut fresh): (Vec<_>, Vec<_>) =
            paid.into_iter().partition(|s| s.intent.is_some());
        // An intent the payments stage committed with the `Paid` outcome in this process,
        // untouched since, is a first attempt; any other was left by an attempt that may
        // have reached Magento.
        let mut ready: Vec<(EntityState, bool)> = again
            .into_iter()
            .map(|s| {
                let first = s
                    .intent
                    .as_ref()
                    .is_some_and(|i| self.ctx.fresh_intents.take(&i.idempotency_key, s.version));
                (s, first)
            })
            .collect();
        for s in &mut fresh {
            s.intent = Some(intent_for(&s.key));
        }
        let commits = fresh
            .iter()
            .map(|s| {
                vec![Write::Put {
                    state: s.clone(),
                    actor: ACTOR.into(),
                    detail: "intent Magento writeback".into(),
                }]
            })
            .collect();
        let results = self.ctx.ledger.commit_each(commits).await;
        let mut refused = Vec::new();
        for (mut s, r) in fresh.into_iter().zip(results) {
            match r {
                Ok(info) => {
                    s.version = info.versions.get(&s.key).copied().unwrap_or(s.version + 1);
                    ready.push((s, true));
                }
                Err(e) => {
                    // The intent is not in the ledger, so the failure is recorded against
                    // the order as it was read.
                    s.intent = None;
                    refused.push((s, format!("ledger: {e}")));
                }
            }
        }
        (ready, refused)
    }
}

impl WritebackWorker {
    /// Holds back the retries (orders whose earlier attempt may have reached Magento) while
    /// Magento's bulk queue still holds comments: one of them may be the retried order's,
    /// and the lookup would not see it yet. First attempts pass, as does everything when
    /// the store has no bulk API (nothing can be queued there).
    async fn unless_comments_queued(
        &self,
        ready: Vec<(EntityState, bool)>,
    ) -> (Vec<(EntityState, bool)>, Vec<(EntityState, String)>) {
        if ready.iter().all(|(_, first)| *first) {
            return (ready, Vec::new());
        }
        let reason = match self.ctx.magento.open_operations(COMMENT_TOPIC).await {
            Ok(0) => return (ready, Vec::new()),
            Err(e) if e.is_not_found() => return (ready, Vec::new()),
            Ok(n) => format!(
                "waiting for Magento to apply {n} queued bulk comment(s) before checking this \
                 order again; is Magento's async.operations.all consumer running?"
            ),
            Err(e) => format!("could not read Magento's bulk queue: {e}"),
        };
        let (go, wait): (Vec<_>, Vec<_>) = ready.into_iter().partition(|(_, first)| *first);
        let held = wait.into_iter().map(|(s, _)| (s, reason.clone())).collect();
        (go, held)
    }
}

impl StageWorker for WritebackWorker {
    async fn round(&self) -> Result<RoundReport, RoundError> {
        let ctx = &self.ctx;
        let now = now_ms();
        let paid: Vec<EntityState> = ctx
            .ledger
            .by_stage(Stage::Paid, ctx.settings.round_limit)
            .await
            .map_err(|e| e.to_string())?
            .into_iter()
            .filter(|s| is_due(s, now))
            .collect();
        if paid.is_empty() {
            return Ok(RoundReport::default());
        }
        let mut report = RoundReport {
            picked: paid.len(),
            ..Default::default()
        };
        let (ready, refused) = self.with_intents(paid).await;
        let bulk_on = ctx.settings.bulk_comments && !self.no_bulk_api.load(Ordering::Relaxed);
        let mut bulk = Vec::new();
        let mut single = Vec::new();
        for (s, first) in ready {
            match entity_id(&s) {
                Some(id) if bulk_on && first && invoiced_in_full(&s) => {
                    let comment = comment_for(&s);
                    bulk.push((s, id, comment));
                }
                _ => single.push((s, first)),
            }
        }
        let (single, held) = self.unless_comments_queued(single).await;
        let singles = futures::stream::iter(single.into_iter().map(|s| self.one(s)))
            .buffer_unordered(16)
            .collect::<Vec<_>>();
        let (mut singles, bulked) = futures::join!(singles, comment_in_bulk(ctx, bulk));
        let mut done = Vec::with_capacity(report.picked);
        let mut failed = held;
        failed.extend(refused);
        let mut unsent = Vec::new();
        for o in bulked {
            match o {
                BulkOutcome::Commented { state, bulk } => {
                    done.push(written_back(state, format!("{COMMENTED} (bulk {bulk})")));
                }
                BulkOutcome::NotCommented { state, reason } => failed.push((state, reason)),
                BulkOutcome::Unsent { state } => unsent.push((state, true)),
            }
        }
        if !unsent.is_empty() {
            if !self.no_bulk_api.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    "Magento has no async bulk API (404); writeback comments go one request \
                     per order"
                );
            }
            let one_by_one: Vec<_> = futures::stream::iter(unsent.into_iter().map(|s| self.one(s)))
                .buffer_unordered(16)
                .collect()
                .await;
            singles.extend(one_by_one);
        }
        for o in singles {
            match o {
                Ok(w) => done.push(w),
                Err(f) => failed.push(f),
            }
        }
        report.done = done.len();
        let mut writes: Vec<Vec<Write>> = done.into_iter().map(|w| vec![w]).collect();
        for (s, reason) in failed {
            let (w, dead) = fail_or_bury(ctx, s, ACTOR, &reason, None);
            report.retrying += usize::from(!dead);
            report.dead += usize::from(dead);
            writes.push(vec![w]);
        }
        commit_all(ctx, writes).await;
        Ok(report)
    }
}
