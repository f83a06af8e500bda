//! A small budget for one Magento host: a cap on calls in flight and an optional rate.
//!
//! Magento publishes no rate limits of its own, but a shop's PHP workers are few; the cap
//! keeps the engine from starving the storefront. Same acquire/permit shape as the Xero
//! budget, so the clients treat both alike.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::gate::{Gate, GateConfig, GatePermit};
use super::priority::Priority;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MagentoLimits {
    pub concurrent: u32,
    /// Calls per second; `None` means only the concurrency cap applies.
    pub per_second: Option<f64>,
}

impl Default for MagentoLimits {
    fn default() -> Self {
        Self {
            concurrent: 4,
            per_second: None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct MagentoBudget {
    gate: Arc<Gate>,
    limits: Arc<MagentoLimits>,
}

#[derive(Debug)]
pub struct MagentoPermit {
    _inner: GatePermit,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MagentoBudgetSnapshot {
    pub in_flight: u32,
    pub concurrent_limit: u32,
    pub waiting: u32,
    pub calls_total: u64,
}

impl MagentoBudget {
    pub fn new(limits: MagentoLimits) -> Self {
        // A fractional rate becomes "n calls per n/rate seconds" so the window stays exact.
        let window = limits
            .per_second
            .filter(|r| r.is_finite() && *r > 0.0)
            .map(|rate| {
                let per_window = rate.ceil().max(1.0);
                (
                    Duration::from_secs_f64(per_window / rate),
                    per_window as u32,
                )
            });
        let cfg = GateConfig {
            concurrent: limits.concurrent.max(1),
            window,
            day: None,
            forecast_horizon: Duration::ZERO,
        };
        Self {
            gate: Arc::new(Gate::new(cfg)),
            limits: Arc::new(limits),
        }
    }

    pub async fn acquire(&self, priority: Priority) -> MagentoPermit {
        MagentoPermit {
            _inner: self.gate.acquire(priority).await,
        }
    }

    pub fn snapshot(&self) -> MagentoBudgetSnapshot {
        let v = self.gate.view();
        MagentoBudgetSnapshot {
            in_flight: v.in_flight,
            concurrent_limit: self.limits.concurrent,
            waiting: v.waiting,
            calls_total: v.calls_total,
        }
    }
}
