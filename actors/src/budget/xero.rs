//! The per-tenant Xero budget.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use reqwest::header::HeaderMap;
use serde::Deserialize;
use tokio::time::Instant;

use super::gate::{Gate, GateConfig, GatePermit};
use super::priority::Priority;
use super::snapshot::BudgetSnapshot;

/// Xero's published per-tenant limits. `time_scale` is simulated seconds per real second:
/// the sandbox can run its clock faster, and the budget must count in the same time.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct XeroLimits {
    pub per_minute: u32,
    pub concurrent: u32,
    pub per_day: u32,
    pub time_scale: f64,
}

impl Default for XeroLimits {
    fn default() -> Self {
        Self {
            per_minute: 60,
            concurrent: 5,
            per_day: 5000,
            time_scale: 1.0,
        }
    }
}

impl XeroLimits {
    fn scale(&self) -> f64 {
        if self.time_scale.is_finite() && self.time_scale > 0.0 {
            self.time_scale
        } else {
            1.0
        }
    }

    /// Real duration of `secs` simulated seconds.
    pub fn real(&self, simulated_secs: f64) -> Duration {
        Duration::from_secs_f64(simulated_secs / self.scale())
    }
}

/// Paces every call to one Xero tenant. Cheap to clone; all clones share one budget.
#[derive(Debug, Clone)]
pub struct XeroBudget {
    gate: Arc<Gate>,
    limits: Arc<XeroLimits>,
}

/// Held for the duration of one call; dropping it frees the in-flight slot.
#[derive(Debug)]
pub struct BudgetPermit {
    _inner: GatePermit,
}

/// A window slot is held until the minute has passed after the call *completed* (see the
/// gate's module doc); this small extra margin absorbs clock granularity so the remote
/// never sees two calls exactly one window apart as both inside its window.
const WINDOW_MARGIN_FRACTION: f64 = 0.005;
const DAY_SECS: f64 = 86_400.0;
const FORECAST_HORIZON_SECS: f64 = 600.0;

impl XeroBudget {
    pub fn new(limits: XeroLimits) -> Self {
        let minute = limits.real(60.0 * (1.0 + WINDOW_MARGIN_FRACTION));
        let cfg = GateConfig {
            concurrent: limits.concurrent.max(1),
            window: Some((minute, limits.per_minute.max(1))),
            day: Some((limits.real(DAY_SECS), limits.per_day.max(1))),
            forecast_horizon: limits.real(FORECAST_HORIZON_SECS),
        };
        Self {
            gate: Arc::new(Gate::new(cfg)),
            limits: Arc::new(limits),
        }
    }

    pub fn limits(&self) -> &XeroLimits {
        &self.limits
    }

    /// Waits until a call may be made now without breaking any limit, serving the most
    /// urgent waiter first. Cancel-safe.
    pub async fn acquire(&self, priority: Priority) -> BudgetPermit {
        BudgetPermit {
            _inner: self.gate.acquire(priority).await,
        }
    }

    /// Folds Xero's own count back in: if `X-MinLimit-Remaining` / `X-DayLimit-Remaining`
    /// say fewer calls remain than we think (another app instance, a restart that lost our
    /// counts), believe Xero.
    pub fn observe(&self, headers: &HeaderMap) {
        let remaining = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u32>().ok())
        };
        let minute_used =
            remaining("x-minlimit-remaining").map(|r| self.limits.per_minute.saturating_sub(r));
        let day_used =
            remaining("x-daylimit-remaining").map(|r| self.limits.per_day.saturating_sub(r));
        if minute_used.is_some() || day_used.is_some() {
            self.gate.align_used(minute_used, day_used);
        }
    }

    /// After a 429: every acquirer of this tenant waits until `until`. `problem` is
    /// Xero's `X-Rate-Limit-Problem` (minute, day, concurrent, appminute).
    pub fn pause_until(&self, until: Instant, problem: &str) {
        tracing::warn!(problem, pause = ?until.saturating_duration_since(Instant::now()), "Xero rate limit hit; pausing the tenant");
        self.gate.pause_until(until, problem);
    }

    pub fn snapshot(&self) -> BudgetSnapshot {
        let v = self.gate.view();
        let now = Instant::now();
        let wall = |d: Duration| chrono::Duration::from_std(d).ok().map(|d| Utc::now() + d);
        let paused_for = v.paused_until.map(|p| p.saturating_duration_since(now));
        BudgetSnapshot {
            minute_used: v.window_used,
            minute_limit: self.limits.per_minute,
            day_used: v.day_used,
            day_limit: self.limits.per_day,
            day_forecast_exhausted_in_secs: v.day_exhausted_in.map(|d| d.as_secs_f64()),
            day_forecast_exhausted_at: v.day_exhausted_in.and_then(wall),
            in_flight: v.in_flight,
            concurrent_limit: self.limits.concurrent,
            paused_until: paused_for.and_then(wall),
            paused_for_secs: paused_for.map(|d| d.as_secs_f64()),
            pause_problem: v.pause_problem,
            calls_total: v.calls_total,
            throttled_total: v.throttled_total,
            waiting: v.waiting,
        }
    }
}
