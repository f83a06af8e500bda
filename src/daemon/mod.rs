//! The headless daemon: webhooks in, a control API, health, metrics and alerts out, all on one
//! listener, talking to the engine only through [`DaemonEngine`].
//!
//! Routes:
//!
//! | route | auth | purpose |
//! |---|---|---|
//! | `POST /webhooks/xero` | `x-xero-signature` | Xero webhooks and intent-to-receive |
//! | `POST /webhooks/magento` | `x-adobe-commerce-webhook-signature` (RSA) or `x-tally-signature` (HMAC, hex or base64) | pushed order changes |
//! | `GET /api/v1/state` | bearer | the console state as JSON |
//! | `GET /api/v1/state/stream` | bearer | server-sent events, one `state` event per change (≤ 10/s) |
//! | `POST /api/v1/commands` | bearer | a `ConsoleCommand` → `{ok, message}` |
//! | `POST /api/v1/reload` | bearer | re-read the mapping rules |
//! | `POST /api/v1/reconcile` | bearer | a reconciliation pass now |
//! | `GET /api/v1/discrepancies` | bearer | the open discrepancies (what `tally report` exports) |
//! | `POST /api/v1/discrepancies/{key}/acknowledge` | bearer | accept one for now (`tally ack`) |
//! | `POST /api/v1/discrepancies/{key}/fix` | bearer | fix one where tally can (the console's `f`) |
//! | `GET /metrics` | bearer (when a token is set) | Prometheus text; names in [`metrics`] |
//! | `GET /healthz` | none | the process is alive |
//! | `GET /readyz` | none | ledger open and both systems reached; 503 lists failing checks |
//!
//! Signals: SIGTERM/SIGINT stop the daemon (see [`server`] for the order), SIGHUP reloads the
//! mapping rules.

pub mod alerts;
pub mod attach;
pub mod client;
pub mod commands;
pub mod config;
pub mod control;
pub mod dedup;
pub mod engine;
pub mod intake;
pub mod logging;
pub mod metrics;
pub mod server;
pub mod signals;
pub mod signature;
pub mod sse;
pub mod webhooks;

use std::sync::Arc;

pub use config::{AlertsConfig, ConfigError, DaemonConfig};
pub use engine::{DaemonEngine, MagentoChange, Readiness, XeroEvent};
pub use server::{Daemon, DaemonError, Settings, ShutdownReport};

/// Runs the daemon until SIGTERM or SIGINT, reloading on SIGHUP: the whole of `tally daemon`
/// once the engine is built.
pub async fn run_daemon(
    settings: Settings,
    engine: Arc<dyn DaemonEngine>,
    listen: Option<&str>,
) -> anyhow::Result<ShutdownReport> {
    let daemon = Daemon::start(settings, engine.clone(), listen).await?;
    let signals = tokio::spawn(signals::handle(engine, daemon.trigger()));
    let report = daemon.wait().await;
    signals.abort();
    Ok(report)
}
