//! Committing a batch's intents before the call: the step invoices and payments share.

use serde_json::Value;

use super::context::{LinkContext, now_ms};
use super::keys::{batch_digests, batch_key};
use crate::ledger::{EntityState, Intent, Stage, Write};

/// What may be sent after the intents were committed.
pub struct Sendable<T> {
    /// The `Idempotency-Key` for exactly `bodies`.
    pub key: String,
    pub bodies: Vec<Value>,
    /// The entities whose intent is durable, at their new version, with the caller's extra.
    pub entities: Vec<(EntityState, T)>,
}

/// Moves every planned entity to `posting` with an intent naming the batch key, one ledger
/// request each (a concurrent update fails only its own entity). An entity whose intent did
/// not commit is not sent; it is picked up again next round.
pub async fn commit_intents<T>(
    ctx: &LinkContext,
    actor: &str,
    what: &str,
    op: &str,
    posting: Stage,
    batch: Vec<(EntityState, Value, T)>,
) -> Sendable<T> {
    let planned = batch.len();
    let (key, body_hashes) = batch_digests(what, batch.iter().map(|(_, b, _)| b));
    let intents = batch
        .iter()
        .zip(body_hashes)
        .map(|((s, _, _), body_sha256)| {
            let mut s = s.clone();
            s.stage = posting;
            s.intent = Some(Intent {
                op: op.to_owned(),
                // The HTTP key covers the batch; the ledger's key names this element of it.
                idempotency_key: format!("{key}/{}", s.key),
                body_sha256,
                batch_id: key.clone(),
                committed_at_ms: now_ms(),
            });
            vec![Write::Put {
                state: s,
                actor: actor.to_owned(),
                detail: format!("intent {op} key={key}"),
            }]
        })
        .collect();
    let results = ctx.ledger.commit_each(intents).await;
    let mut entities = Vec::new();
    let mut sent = Vec::new();
    for ((mut s, body, extra), r) in batch.into_iter().zip(results) {
        match r {
            Ok(info) => {
                s.version = info.versions.get(&s.key).copied().unwrap_or(s.version + 1);
                s.stage = posting;
                sent.push(body);
                entities.push((s, extra));
            }
            Err(e) => {
                tracing::debug!(entity = %s.key, error = %e, "Intent not committed; retried next round.")
            }
        }
    }
    // A key always describes exactly one body: a smaller batch gets its own.
    let key = if sent.len() == planned {
        key
    } else {
        batch_key(what, &sent)
    };
    Sendable {
        key,
        bodies: sent,
        entities,
    }
}

/// The PUT of a batch whose intents are committed, timed for `tally_xero_call_seconds`.
pub async fn put_batch(
    ctx: &LinkContext,
    resource: &str,
    bodies: Vec<Value>,
    key: &str,
    priority: crate::budget::Priority,
) -> Result<Vec<crate::xero::ElementOutcome>, crate::xero::XeroError> {
    let started = std::time::Instant::now();
    let outcome = ctx
        .xero
        .batch_write(
            crate::xero::WriteMethod::Put,
            resource,
            bodies,
            key,
            priority,
        )
        .await;
    let op = format!("PUT {resource}");
    metrics::histogram!("tally_xero_call_seconds", "op" => op)
        .record(started.elapsed().as_secs_f64());
    outcome
}

/// A batch call that failed as a whole: a permanent refusal dead-letters every entity (a
/// person must look), anything else leaves them in `posting` for a retry — the outcome may be
/// unknown, so the next round looks Xero up before sending again.
pub fn fail_sent(
    ctx: &LinkContext,
    actor: &str,
    field: &str,
    entities: Vec<EntityState>,
    err: &crate::xero::XeroError,
    writes: &mut Vec<Vec<Write>>,
    report: &mut super::stage::RoundReport,
) {
    let permanent = err.failure().is_permanent();
    let reason = format!("{field}: the Xero call failed: {err}");
    for s in entities {
        if permanent {
            let e = crate::model::RecordError::new(
                super::context::record_name(&s.key),
                field,
                reason.clone(),
            );
            writes.push(vec![super::context::bury(
                &s,
                actor,
                &e,
                Some(err.to_string()),
            )]);
            report.dead += 1;
        } else {
            let (w, dead) = super::context::fail_or_bury(ctx, s, actor, &reason, None);
            report.retrying += usize::from(!dead);
            report.dead += usize::from(dead);
            writes.push(vec![w]);
        }
    }
}
