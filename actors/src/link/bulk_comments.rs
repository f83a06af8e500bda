//! Writeback comments sent through Magento's bulk API: one request for a round's orders
//! instead of one each, then the outcome read back once Magento's consumer has applied them.
//!
//! Only an order's first attempt goes this way (see `writeback`): nothing can have commented
//! on it yet, so no lookup is owed. An order whose operation fails, or is still open when the
//! wait ends, keeps its intent and is retried through the lookup path, which first waits for
//! every open comment operation: an operation applied after the lookup would otherwise
//! comment twice.

use std::time::{Duration, Instant};

use crate::ledger::EntityState;
use crate::magento::{COMMENT_TOPIC, MagentoError, OperationState};
use crate::mapping::{CheckProblem, Severity};

use super::context::LinkContext;

/// Elements per bulk request: Magento's async input limit is 5,000 when limits are on; a
/// round holds at most `round_limit` (500 by default) anyway.
const BULK_MAX: usize = 1_000;
/// First pause between reads of the open count; grows by half up to [`POLL_MAX`]. A
/// sandbox consumer finishes a round's bulk in milliseconds and a cron-run one in up to a
/// minute: a short first pause keeps the first case from idling, the growth keeps the
/// second from polling hard.
const POLL_FIRST: Duration = Duration::from_millis(5);
const POLL_MAX: Duration = Duration::from_secs(1);

/// What became of one order's comment.
pub enum BulkOutcome {
    /// Magento applied it; `bulk` names the request that carried it, for the audit.
    Commented { state: EntityState, bulk: String },
    /// Not applied (yet): the order is retried through the lookup path.
    NotCommented { state: EntityState, reason: String },
    /// Nothing was sent: the store has no bulk API (`Magento_AsynchronousOperations` is
    /// disabled, so the route is unknown). Still a first attempt.
    Unsent { state: EntityState },
}

fn not_commented(state: EntityState, reason: String) -> BulkOutcome {
    BulkOutcome::NotCommented { state, reason }
}

/// Comments every `(state, entity id, comment)` through the bulk API; each order's outcome,
/// in order. After a 404 for the bulk route, the rest are not tried (`Unsent`).
pub async fn comment_in_bulk(
    ctx: &LinkContext,
    orders: Vec<(EntityState, u64, String)>,
) -> Vec<BulkOutcome> {
    let mut out = Vec::with_capacity(orders.len());
    let mut orders = orders.into_iter().peekable();
    while orders.peek().is_some() {
        let chunk: Vec<_> = orders.by_ref().take(BULK_MAX).collect();
        let outcomes = one_bulk(ctx, chunk).await;
        let unsent = matches!(outcomes.first(), Some(BulkOutcome::Unsent { .. }));
        out.extend(outcomes);
        if unsent {
            out.extend(orders.map(|(state, ..)| BulkOutcome::Unsent { state }));
            break;
        }
    }
    out
}

async fn one_bulk(ctx: &LinkContext, chunk: Vec<(EntityState, u64, String)>) -> Vec<BulkOutcome> {
    let comments: Vec<(u64, &str)> = chunk
        .iter()
        .map(|(_, id, comment)| (*id, comment.as_str()))
        .collect();
    let accepted = match ctx.magento.add_order_comments_bulk(&comments).await {
        Ok(a) => a,
        Err(e) if e.is_not_found() => {
            return chunk
                .into_iter()
                .map(|(state, ..)| BulkOutcome::Unsent { state })
                .collect();
        }
        Err(e) => {
            let reason = e.to_string();
            return chunk
                .into_iter()
                .map(|(s, ..)| not_commented(s, reason.clone()))
                .collect();
        }
    };
    let states = match wait_for(ctx, &accepted.uuid).await {
        Ok(states) => states,
        Err(e) => {
            let reason = format!(
                "the comment was queued in Magento bulk {} but its status could not be read: {e}",
                accepted.uuid
            );
            return chunk
                .into_iter()
                .map(|(s, ..)| not_commented(s, reason.clone()))
                .collect();
        }
    };
    let waited = ctx.settings.bulk_wait.as_secs();
    chunk
        .into_iter()
        .zip(accepted.items)
        .enumerate()
        .map(|(i, ((s, ..), item))| {
            if let Err(refused) = item {
                return not_commented(s, format!("Magento refused the comment: {refused}"));
            }
            match states.get(i) {
                Some(OperationState::Complete) => BulkOutcome::Commented {
                    state: s,
                    bulk: accepted.uuid.clone(),
                },
                Some(OperationState::Failed(m)) => {
                    not_commented(s, format!("Magento bulk comment: {m}"))
                }
                Some(OperationState::Open) => not_commented(
                    s,
                    format!(
                        "the comment is queued in Magento bulk {} and was not applied within \
                         {waited} s; is Magento's async.operations.all consumer running?",
                        accepted.uuid
                    ),
                ),
                None => not_commented(
                    s,
                    format!("Magento bulk {} does not list this comment", accepted.uuid),
                ),
            }
        })
        .collect()
}

/// Waits until none of the bulk's operations is open or `bulk_wait` has passed, then
/// reads each operation's outcome.
async fn wait_for(ctx: &LinkContext, uuid: &str) -> Result<Vec<OperationState>, MagentoError> {
    let deadline = Instant::now() + ctx.settings.bulk_wait;
    let mut pause = POLL_FIRST;
    loop {
        tokio::time::sleep(pause).await;
        if ctx.magento.open_in_bulk(uuid).await? == 0 || Instant::now() >= deadline {
            return ctx.magento.bulk_status(uuid).await;
        }
        pause = pause.mul_f32(1.5).min(POLL_MAX);
    }
}

/// What `tally check` says about the bulk writeback: nothing when it is off or Magento's
/// queue is empty; a warning when the store has no bulk API (comments then go one request
/// each) or comment operations are waiting for Magento's consumer (retries wait for them).
pub async fn check(ctx: &LinkContext) -> Option<CheckProblem> {
    if !ctx.settings.bulk_comments {
        return None;
    }
    let warning = |message: String, suggestion: Option<&str>| CheckProblem {
        severity: Severity::Warning,
        key: "sync.bulk_comments".into(),
        message,
        suggestion: suggestion.map(str::to_owned),
    };
    match ctx.magento.open_operations(COMMENT_TOPIC).await {
        Ok(0) => None,
        Ok(n) => Some(warning(
            format!(
                "{n} writeback comment operation(s) are open in Magento's bulk queue; retries \
                 wait for them. Is Magento's async.operations.all consumer running?"
            ),
            Some(
                "bin/magento queue:consumers:start async.operations.all, or bulk_comments = false",
            ),
        )),
        Err(e) if e.is_not_found() => Some(warning(
            "Magento has no async bulk API (Magento_AsynchronousOperations disabled?); \
             writeback comments will go one request per order"
                .into(),
            Some("bulk_comments = false"),
        )),
        Err(e) => Some(warning(
            format!("could not read Magento's bulk queue: {e}"),
            None,
        )),
    }
}
