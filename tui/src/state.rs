//! The console's view model.
//!
//! The console never looks inside the engine: the engine (in-process) or the daemon's control API
//! (over HTTP) maps its own state into this shape, which is why everything here is plain data with
//! serde derives. Timestamps arrive pre-formatted so the console needs no clock or time zone
//! logic of its own and two consoles attached to one daemon show the same text.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Everything one frame of the console shows.
///
/// Every field defaults when absent, so a console and a daemon of different versions still
/// understand each other's state.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ConsoleState {
    /// Which store↔organisation pair this is, e.g. "Magento default ↔ Xero Tally Sandbox Ltd".
    pub link: String,
    pub actors: Vec<ActorRow>,
    pub budget: BudgetView,
    pub health: Vec<HealthRow>,
    /// Pending and in-flight operations; may hold hundreds of thousands of rows, so views only
    /// ever turn the visible window into widgets.
    pub queue: Vec<QueueItem>,
    /// Dead letters and retrying items, in any order: the Errors view sorts newest first.
    pub errors: Vec<ErrorItem>,
    /// The entity last asked for with [`crate::command::ConsoleCommand::Open`].
    pub entity: Option<EntityView>,
    /// Entity keys answering the last [`crate::command::ConsoleCommand::Search`].
    pub search_results: Vec<String>,
    /// Open discrepancies found by the reconciler (and Xero webhooks) that no operator has
    /// acknowledged: what needs attention, and what alerts count.
    pub discrepancies_open: u64,
    /// Those open discrepancies by their stable kind (e.g. `invoice_voided_in_xero`); kinds
    /// with none open are absent.
    pub discrepancies_by_kind: BTreeMap<String, u64>,
    /// Open discrepancies an operator acknowledged: the systems still disagree, accepted.
    pub discrepancies_acknowledged: u64,
    /// Every open discrepancy, acknowledged or not, oldest first (bounded by the engine).
    pub discrepancies: Vec<DiscrepancyItem>,
    /// The engine's answer to the latest operator command, so the console that sent it (and
    /// any other attached console) can show what happened.
    pub notice: Option<Notice>,
    /// Recent log lines, oldest first (the Log view shows newest first).
    pub log: Vec<LogLine>,
    /// When the engine produced this snapshot; shown so a stale console is noticeable.
    pub generated_at: String,
}

/// The outcome of an operator command.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notice {
    /// Grows with every command, so a console can tell a new answer from one it has shown.
    pub seq: u64,
    pub ok: bool,
    pub message: String,
}

/// One entity actor of the link and its work counters.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ActorRow {
    /// ingest, contacts, invoices, payments, stock, writeback or reconciler.
    pub name: String,
    pub status: ActorStatus,
    pub queued: u64,
    pub in_flight: u64,
    pub done: u64,
    /// Failed and waiting for a retry.
    pub failed: u64,
    /// Given up on: waiting for an operator.
    pub dead: u64,
    /// Completed operations per second, oldest sample first.
    pub throughput: Vec<u64>,
    pub last_error: Option<String>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActorStatus {
    #[default]
    Running,
    Paused,
    Restarting,
    Failed,
}

impl ActorStatus {
    pub fn label(self) -> &'static str {
        match self {
            ActorStatus::Running => "running",
            ActorStatus::Paused => "paused",
            ActorStatus::Restarting => "restarting",
            ActorStatus::Failed => "failed",
        }
    }
}

/// The Xero rate budget of the link's tenant (60/min, 5,000/day, 5 in flight).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BudgetView {
    pub minute_used: u64,
    pub minute_limit: u64,
    pub day_used: u64,
    pub day_limit: u64,
    /// When, at the current pace, the daily budget runs out; `None` when it will not today.
    pub forecast_exhausted_at: Option<String>,
    pub in_flight: u64,
    pub in_flight_limit: u64,
    /// Set while Xero has told us to back off (429 with Retry-After).
    pub paused_until: Option<String>,
    /// 429 responses received since start.
    pub throttled_total: u64,
}

/// Reachability of one of the two systems.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct HealthRow {
    /// "Magento" or "Xero".
    pub system: String,
    pub ok: bool,
    /// What the last check said, e.g. "200 OK" or "401 token expired".
    pub detail: String,
    /// `None` when the last check got no answer at all.
    pub latency_ms: Option<u64>,
}

/// One pending or in-flight operation in the outbox.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct QueueItem {
    /// The entity it belongs to, e.g. "order 000000123".
    pub key: String,
    /// Where the entity is in its life, e.g. "contact_ready".
    pub stage: String,
    /// What will be sent, e.g. "create invoice".
    pub op: String,
    pub attempts: u32,
    pub next_retry: Option<String>,
    /// Seconds since the operation was queued.
    pub age: u64,
}

/// A failed operation: retrying (`dead == false`) or dead-lettered.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ErrorItem {
    /// The entity key, which is what Retry/Drop/Open take.
    pub key: String,
    /// The record in the remote system, e.g. "Invoice INV-000123" or "Contact jo@example.com".
    pub record: String,
    /// The offending field, e.g. "LineItems[2].AccountCode"; empty when the error is not about one.
    pub field: String,
    /// tally's own explanation of what went wrong and what to do.
    pub message: String,
    /// What the remote system said, verbatim, so nothing is hidden behind a summary.
    pub remote_message: String,
    pub attempts: u32,
    pub stage: String,
    pub at: String,
    pub dead: bool,
}

/// One way Magento and Xero disagree about an order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DiscrepancyItem {
    /// What [`crate::command::ConsoleCommand::Acknowledge`] takes, e.g. `total:order:000000123`.
    pub key: String,
    /// The stable kind, e.g. `invoice_total_differs`.
    pub kind: String,
    /// The order's entity key (what Open takes), e.g. `order:000000123`.
    pub order: String,
    /// Both sides' values and what to do, in words.
    pub detail: String,
    pub raised_at: String,
    /// Set once an operator accepted it; it stays listed until the systems agree.
    pub acknowledged_at: Option<String>,
    pub acknowledged_by: Option<String>,
    /// The operator's reason for accepting it, when they gave one.
    pub acknowledged_note: Option<String>,
}

/// One entity with its full audit trail across both systems.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EntityView {
    pub key: String,
    /// Label/value pairs, e.g. ("Xero invoice", "INV-000123").
    pub summary: Vec<(String, String)>,
    /// Oldest first.
    pub trail: Vec<TrailEntry>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TrailEntry {
    pub at: String,
    /// "magento", "xero" or "tally".
    pub system: String,
    pub from: String,
    pub to: String,
    pub detail: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LogLine {
    pub at: String,
    pub level: LogLevel,
    pub message: String,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogLevel {
    Error,
    Warn,
    #[default]
    Info,
    Debug,
}

impl LogLevel {
    pub fn label(self) -> &'static str {
        match self {
            LogLevel::Error => "ERROR",
            LogLevel::Warn => "WARN",
            LogLevel::Info => "INFO",
            LogLevel::Debug => "DEBUG",
        }
    }
}
