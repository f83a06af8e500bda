//! The budget's state as the console and the metrics exporter see it.

use chrono::{DateTime, Utc};
use serde::Serialize;

/// Durations are real (wall-clock) time; the `*_at` fields are the same instants on the
/// wall clock, for display.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BudgetSnapshot {
    /// Calls counted in the current sliding minute (ours or, if higher, Xero's count).
    pub minute_used: u32,
    pub minute_limit: u32,
    pub day_used: u32,
    pub day_limit: u32,
    /// How long until the day allowance runs out if calls keep coming at the recent rate;
    /// `None` when idle.
    pub day_forecast_exhausted_in_secs: Option<f64>,
    pub day_forecast_exhausted_at: Option<DateTime<Utc>>,
    pub in_flight: u32,
    pub concurrent_limit: u32,
    /// Set while a 429 has paused the whole tenant.
    pub paused_until: Option<DateTime<Utc>>,
    pub paused_for_secs: Option<f64>,
    /// The limit Xero named in `X-Rate-Limit-Problem` for the current pause.
    pub pause_problem: Option<String>,
    pub calls_total: u64,
    /// 429 responses received.
    pub throttled_total: u64,
    /// Callers queued in `acquire`.
    pub waiting: u32,
}
