//! Maps the link's status and ledger into the console's view model.

use std::collections::VecDeque;

use tally_actors::ledger::{AuditEntry, DeadLetter, EntityState, Stage};
use tally_actors::link::LinkStatus;
use tally_tui::state::{
    ActorRow, ActorStatus, BudgetView, ConsoleState, EntityView, ErrorItem, HealthRow, LogLevel,
    LogLine, QueueItem, TrailEntry,
};

/// Everything one snapshot is built from.
pub struct ViewInputs<'a> {
    pub link_name: &'a str,
    pub status: &'a LinkStatus,
    pub queue: &'a [EntityState],
    pub letters: &'a [DeadLetter],
    pub audit_tail: &'a [AuditEntry],
    pub throughput: &'a std::collections::HashMap<String, VecDeque<u64>>,
    pub paused: &'a [String],
    pub health: Vec<HealthRow>,
    pub entity: Option<EntityView>,
    pub search_results: Vec<String>,
    pub discrepancies_open: u64,
    pub discrepancies_by_kind: std::collections::BTreeMap<String, u64>,
    pub discrepancies_acknowledged: u64,
    pub discrepancies: Vec<tally_tui::state::DiscrepancyItem>,
    pub notice: Option<tally_tui::state::Notice>,
    pub now_ms: i64,
}

pub fn format_ms(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

fn op_for(stage: Stage) -> &'static str {
    match stage {
        Stage::Seen => "find or create contact",
        Stage::ContactReady => "PUT Invoices",
        Stage::InvoicePosting => "PUT Invoices (in flight)",
        Stage::Invoiced => "PUT Payments",
        Stage::PaymentPosting => "PUT Payments (in flight)",
        Stage::Paid => "Magento writeback",
        Stage::ContactPending | Stage::ContactPosting => "PUT Contacts",
        _ => "",
    }
}

/// The actor whose work the entity `key` in `stage` waits for (an order buried at ingest
/// waits at `seen`, so it is counted against contacts).
fn actor_for(key: &str, stage: Stage) -> &'static str {
    if key.starts_with("stock:") {
        return "stock";
    }
    match stage {
        Stage::ContactReady | Stage::InvoicePosting => "invoices",
        Stage::Invoiced | Stage::PaymentPosting => "payments",
        Stage::Paid => "writeback",
        _ => "contacts",
    }
}

/// The Xero budget as the console shows it; cheap (in memory), so an idle engine can keep the
/// gauges and the snapshot time current without rebuilding the whole view.
pub fn budget_view(b: &tally_actors::budget::BudgetSnapshot) -> BudgetView {
    BudgetView {
        minute_used: u64::from(b.minute_used),
        minute_limit: u64::from(b.minute_limit),
        day_used: u64::from(b.day_used),
        day_limit: u64::from(b.day_limit),
        forecast_exhausted_at: b
            .day_forecast_exhausted_at
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
        in_flight: u64::from(b.in_flight),
        in_flight_limit: u64::from(b.concurrent_limit),
        paused_until: b
            .paused_until
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
        throttled_total: b.throttled_total,
    }
}

pub fn state_from(i: ViewInputs<'_>) -> ConsoleState {
    let actors = i
        .status
        .stages
        .iter()
        .map(|s| ActorRow {
            name: s.name.clone(),
            status: if !s.running {
                ActorStatus::Restarting
            } else if s.stats.paused || i.paused.contains(&s.name) {
                ActorStatus::Paused
            } else {
                ActorStatus::Running
            },
            queued: s.queued,
            in_flight: u64::from(s.stats.busy),
            done: s.stats.done,
            // What waits now, not how often it happened: the stage counters only grow, so an
            // operator's retry or drop would never bring the header, /metrics or alerts down.
            failed: i
                .queue
                .iter()
                .filter(|e| e.last_error.is_some() && e.attempts > 0)
                .filter(|e| actor_for(&e.key, e.stage) == s.name)
                .count() as u64,
            dead: i
                .letters
                .iter()
                .filter(|l| actor_for(&l.key, l.stage_at_death.unwrap_or(Stage::Seen)) == s.name)
                .count() as u64,
            throughput: i
                .throughput
                .get(&s.name)
                .map(|d| d.iter().copied().collect())
                .unwrap_or_default(),
            last_error: s.stats.last_error.clone(),
        })
        .collect();
    let budget = budget_view(&i.status.budget);
    let queue = i
        .queue
        .iter()
        .map(|e| QueueItem {
            key: e.key.clone(),
            stage: e.stage.as_str().to_owned(),
            op: op_for(e.stage).to_owned(),
            attempts: e.attempts,
            next_retry: e.retry_at_ms.filter(|t| *t > i.now_ms).map(format_ms),
            age: u64::try_from((i.now_ms - e.created_at_ms.max(0)) / 1000).unwrap_or(0),
        })
        .collect();
    let mut errors: Vec<ErrorItem> = i
        .letters
        .iter()
        .map(|l| ErrorItem {
            key: l.key.clone(),
            record: l.record.clone(),
            field: l.field.clone().unwrap_or_default(),
            message: l.message.clone(),
            remote_message: l.remote_message.clone().unwrap_or_default(),
            attempts: l.attempts,
            stage: l
                .stage_at_death
                .map(|s| s.as_str().to_owned())
                .unwrap_or_default(),
            at: format_ms(l.dead_at_ms),
            dead: true,
        })
        .collect();
    errors.extend(
        i.queue
            .iter()
            .filter(|e| e.last_error.is_some() && e.attempts > 0)
            .map(|e| ErrorItem {
                key: e.key.clone(),
                record: e.key.replacen(':', " ", 1),
                field: String::new(),
                message: e.last_error.clone().unwrap_or_default(),
                remote_message: String::new(),
                attempts: e.attempts,
                stage: e.stage.as_str().to_owned(),
                at: format_ms(e.updated_at_ms),
                dead: false,
            }),
    );
    let log = i
        .audit_tail
        .iter()
        .map(|a| LogLine {
            at: format_ms(a.at_ms),
            level: if a.to == Stage::Dead {
                LogLevel::Error
            } else {
                LogLevel::Info
            },
            message: format!(
                "{} {} → {}: {}",
                a.entity,
                a.from.map(|s| s.as_str()).unwrap_or("new"),
                a.to.as_str(),
                a.detail
            ),
        })
        .collect();
    ConsoleState {
        link: i.link_name.to_owned(),
        actors,
        budget,
        health: i.health,
        queue,
        errors,
        entity: i.entity,
        search_results: i.search_results,
        discrepancies_open: i.discrepancies_open,
        discrepancies_by_kind: i.discrepancies_by_kind,
        discrepancies_acknowledged: i.discrepancies_acknowledged,
        discrepancies: i.discrepancies,
        notice: i.notice,
        log,
        generated_at: format_ms(i.now_ms),
    }
}

/// The audit trail of one entity, with which system each step touched.
pub fn trail(entries: &[AuditEntry]) -> Vec<TrailEntry> {
    entries
        .iter()
        .map(|a| TrailEntry {
            at: format_ms(a.at_ms),
            system: match a.actor.as_str() {
                "ingest" | "writeback" => "magento",
                "contacts" | "invoices" | "payments" | "xero-webhook" => "xero",
                _ => "tally",
            }
            .to_owned(),
            from: a.from.map(|s| s.as_str().to_owned()).unwrap_or_default(),
            to: a.to.as_str().to_owned(),
            detail: a.detail.clone(),
        })
        .collect()
}
