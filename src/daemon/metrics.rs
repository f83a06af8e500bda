//! Prometheus metrics served at `GET /metrics`.
//!
//! The daemon derives its gauges from the engine's `ConsoleState` on every change, so the console
//! and the metrics can never disagree. Names (all prefixed `tally_`):
//!
//! | name | type | labels | source |
//! |---|---|---|---|
//! | `tally_queue_depth` | gauge | `actor` | daemon, from `ActorRow::queued` |
//! | `tally_in_flight` | gauge | `actor` | daemon, from `ActorRow::in_flight` |
//! | `tally_dead_letters` | gauge | | daemon, dead letters waiting for an operator |
//! | `tally_xero_budget_minute_remaining` | gauge | | daemon, Xero calls left this minute |
//! | `tally_xero_budget_day_remaining` | gauge | | daemon, Xero calls left today |
//! | `tally_discrepancies_open` | gauge | `kind` (`all`, or a discrepancy kind such as `invoice_voided_in_xero`) | daemon; open and not acknowledged by an operator; a kind's gauge drops to 0 when its last one closes or is acknowledged |
//! | `tally_discrepancies_acknowledged` | gauge | | daemon; open, but accepted by an operator |
//! | `tally_webhooks_total` | counter | `source` (xero, magento), `outcome` | daemon |
//! | `tally_operations_total` | counter | `actor`, `outcome` | engine, through the `metrics` facade |
//! | `tally_xero_call_seconds` | histogram | | engine, through the `metrics` facade |
//!
//! `outcome` of `tally_webhooks_total` is one of `accepted`, `duplicate`, `unauthorized`,
//! `too_large`, `bad_request`, `unavailable` (shutting down or queue full), `not_configured`.

use std::collections::BTreeSet;
use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tally_tui::ConsoleState;

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Every discrepancy kind exported so far: a kind absent from the latest state had its last
/// discrepancy closed, and its gauge must say 0 rather than keep its last count.
static KINDS_SEEN: parking_lot::Mutex<BTreeSet<String>> = parking_lot::Mutex::new(BTreeSet::new());

/// Buckets for `tally_xero_call_seconds`: Xero answers in tens of milliseconds to seconds, and a
/// call that waited on the rate budget can take a minute.
const XERO_CALL_BUCKETS: &[f64] = &[0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];

/// The process-wide recorder. The `metrics` facade allows one global recorder per process, so
/// this installs it on first use; if something else installed one first, the daemon still
/// renders its own (then the engine's facade metrics go to that other recorder).
pub fn prometheus() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Full("tally_xero_call_seconds".into()), XERO_CALL_BUCKETS)
                .expect("bucket list is not empty");
            let handle = match builder.install_recorder() {
                Ok(h) => h,
                Err(e) => {
                    tracing::warn!(error = %e, "A metrics recorder was already installed; /metrics shows only the daemon's own.");
                    PrometheusBuilder::new().build_recorder().handle()
                }
            };
            describe();
            handle
        })
        .clone()
}

fn describe() {
    metrics::describe_gauge!("tally_queue_depth", "Operations queued per actor.");
    metrics::describe_gauge!("tally_in_flight", "Operations in flight per actor.");
    metrics::describe_gauge!(
        "tally_dead_letters",
        "Dead letters waiting for an operator."
    );
    metrics::describe_gauge!(
        "tally_xero_budget_minute_remaining",
        "Xero API calls left in the current minute."
    );
    metrics::describe_gauge!(
        "tally_xero_budget_day_remaining",
        "Xero API calls left today."
    );
    metrics::describe_gauge!(
        "tally_discrepancies_open",
        "Open discrepancies found by the reconciler that no operator acknowledged."
    );
    metrics::describe_gauge!(
        "tally_discrepancies_acknowledged",
        "Open discrepancies an operator acknowledged (the systems still disagree)."
    );
    metrics::describe_counter!(
        "tally_webhooks_total",
        "Webhook deliveries by source and outcome."
    );
    metrics::describe_counter!(
        "tally_operations_total",
        "Engine operations by actor and outcome."
    );
    metrics::describe_histogram!(
        "tally_xero_call_seconds",
        metrics::Unit::Seconds,
        "Duration of Xero API calls."
    );
}

/// Dead letters waiting: the larger of the actors' counters and the dead rows in the error list,
/// since either may be what the engine keeps current.
pub fn dead_letters(state: &ConsoleState) -> u64 {
    let by_actor: u64 = state.actors.iter().map(|a| a.dead).sum();
    let listed = state.errors.iter().filter(|e| e.dead).count() as u64;
    by_actor.max(listed)
}

/// Sets every gauge from one snapshot.
pub fn record_state(state: &ConsoleState) {
    for a in &state.actors {
        metrics::gauge!("tally_queue_depth", "actor" => a.name.clone()).set(a.queued as f64);
        metrics::gauge!("tally_in_flight", "actor" => a.name.clone()).set(a.in_flight as f64);
    }
    metrics::gauge!("tally_dead_letters").set(dead_letters(state) as f64);
    let b = &state.budget;
    metrics::gauge!("tally_xero_budget_minute_remaining")
        .set(b.minute_limit.saturating_sub(b.minute_used) as f64);
    metrics::gauge!("tally_xero_budget_day_remaining")
        .set(b.day_limit.saturating_sub(b.day_used) as f64);
    metrics::gauge!("tally_discrepancies_open", "kind" => "all")
        .set(state.discrepancies_open as f64);
    metrics::gauge!("tally_discrepancies_acknowledged")
        .set(state.discrepancies_acknowledged as f64);
    let mut seen = KINDS_SEEN.lock();
    seen.extend(state.discrepancies_by_kind.keys().cloned());
    for kind in seen.iter().filter(|k| k.as_str() != "all") {
        let open = state.discrepancies_by_kind.get(kind).copied().unwrap_or(0);
        metrics::gauge!("tally_discrepancies_open", "kind" => kind.clone()).set(open as f64);
    }
}

pub fn count_webhook(source: &'static str, outcome: &'static str) {
    metrics::counter!("tally_webhooks_total", "source" => source, "outcome" => outcome)
        .increment(1);
}
