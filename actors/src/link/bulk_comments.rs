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
use crate::magento::{MagentoError, OperationState};

use super::context::LinkContext;

/// Elements per bulk request: Magento's async input limit is 5,000 when limits are on; a
/// round holds at most `round_limit` (500 by default) anyway.
const BULK_MAX: usize = 1_000;
/// First pause between status reads; doubles up to [`POLL_MAX`].
const POLL_FIRST: Duration = Duration::from_millis(20);
const POLL_MAX: Duration = Duration::from_secs(1);

/// An order whose comment Magento applied, with the bulk that carried it (for the audit).
pub type Commented = (EntityState, String);

/// Comments every `(state, entity id, comment)` through the bulk API; each order's outcome,
/// in order: `Ok` once Magento applied its comment, else why not.
pub async fn comment_in_bulk(
    ctx: &LinkContext,
    orders: Vec<(EntityState, u64, String)>,
) -> Vec<Result<Commented, (EntityState, String)>> {
    let mut out = Vec::with_capacity(orders.len());
    let mut orders = orders.into_iter().peekable();
    while orders.peek().is_some() {
        let chunk: Vec<_> = orders.by_ref().take(BULK_MAX).collect();
        out.extend(one_bulk(ctx, chunk).await);
    }
    out
}

async fn one_bulk(
    ctx: &LinkContext,
    chunk: Vec<(EntityState, u64, String)>,
) -> Vec<Result<Commented, (EntityState, String)>> {
    let comments: Vec<(u64, String)> = chunk
        .iter()
        .map(|(_, id, comment)| (*id, comment.clone()))
        .collect();
    let accepted = match ctx.magento.add_order_comments_bulk(&comments).await {
        Ok(a) => a,
        Err(e) => {
            let reason = e.to_string();
            return chunk
                .into_iter()
                .map(|(s, ..)| Err((s, reason.clone())))
                .collect();
        }
    };
    let states = match wait_for(ctx, &accepted.uuid, &accepted.items).await {
        Ok(states) => states,
        Err(e) => {
            let reason = format!(
                "the comment was queued in Magento bulk {} but its status could not be read: {e}",
                accepted.uuid
            );
            return chunk
                .into_iter()
                .map(|(s, ..)| Err((s, reason.clone())))
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
                return Err((s, format!("Magento refused the comment: {refused}")));
            }
            match states.get(i) {
                Some(OperationState::Complete) => Ok((s, accepted.uuid.clone())),
                Some(OperationState::Failed(m)) => Err((s, format!("Magento bulk comment: {m}"))),
                Some(OperationState::Open) => Err((
                    s,
                    format!(
                        "the comment is queued in Magento bulk {} and was not applied within \
                         {waited} s; is Magento's async.operations.all consumer running?",
                        accepted.uuid
                    ),
                )),
                None => Err((
                    s,
                    format!("Magento bulk {} does not list this comment", accepted.uuid),
                )),
            }
        })
        .collect()
}

/// Reads the bulk's status until no accepted operation is open or `bulk_wait` has passed.
async fn wait_for(
    ctx: &LinkContext,
    uuid: &str,
    items: &[Result<(), String>],
) -> Result<Vec<OperationState>, MagentoError> {
    let deadline = Instant::now() + ctx.settings.bulk_wait;
    let mut pause = POLL_FIRST;
    loop {
        tokio::time::sleep(pause).await;
        let states = ctx.magento.bulk_status(uuid).await?;
        let open = items.iter().enumerate().any(|(i, item)| {
            item.is_ok() && matches!(states.get(i), Some(OperationState::Open))
        });
        if !open || Instant::now() >= deadline {
            return Ok(states);
        }
        pause = (pause * 2).min(POLL_MAX);
    }
}
