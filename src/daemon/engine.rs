//! The one seam between the daemon's HTTP surface and the sync engine.
//!
//! The daemon never reaches into the engine's actors or ledger: everything it needs goes through
//! [`DaemonEngine`], which keeps the HTTP layer testable with a fake engine and lets the engine
//! change shape without touching webhooks, auth or metrics.

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use tally_tui::{ConsoleCommand, ConsoleState};
use tokio::sync::watch;

/// What the daemon asks of the engine that runs one link (a Magento store ↔ a Xero organisation).
pub trait DaemonEngine: Send + Sync + 'static {
    /// The console view, updated continuously by the engine; metrics, alerts, the state stream
    /// and attached consoles are all derived from it, so the engine publishes one model only.
    fn state(&self) -> watch::Receiver<ConsoleState>;

    /// An operator command (retry, retry all, drop, pause, resume, search, open, reconcile now);
    /// `Ok(message)` or `Err(message)`, both shown to the operator verbatim.
    fn command(&self, cmd: ConsoleCommand) -> BoxFuture<'_, Result<String, String>>;

    /// A Magento order changed (push): the engine fetches and ingests it. The push carries ids
    /// only, because the payload of a webhook is not trusted as the order's current state.
    fn magento_order_changed(&self, change: MagentoChange) -> BoxFuture<'_, Result<(), String>>;

    /// A verified, de-duplicated Xero webhook event. Events carry ids only and may arrive out of
    /// order, so the engine re-fetches the resource instead of trusting the event's order.
    fn xero_event(&self, event: XeroEvent) -> BoxFuture<'_, Result<(), String>>;

    /// The open discrepancies (key and stored value), for `tally report` while the daemon holds
    /// the ledger. An engine without a ledger has none.
    fn discrepancies(&self) -> BoxFuture<'_, Result<Vec<(String, serde_json::Value)>, String>> {
        Box::pin(async { Ok(Vec::new()) })
    }

    /// Every discrepancy raised, changed, acknowledged or closed in `[since_ms, until_ms)`,
    /// for `tally report --history` while the daemon holds the ledger.
    fn discrepancy_history(
        &self,
        _since_ms: i64,
        _until_ms: i64,
    ) -> BoxFuture<'_, Result<Vec<crate::engine::discrepancy_history::HistoryRow>, String>> {
        Box::pin(async { Ok(Vec::new()) })
    }

    /// Re-read and validate the mapping rules; `Err` leaves the old rules in place.
    fn reload(&self) -> BoxFuture<'_, Result<String, String>>;

    /// Ledger open and both systems reached recently.
    fn ready(&self) -> Readiness;

    /// Stop intake, finish or park in-flight work, commit; resolves when done. The daemon bounds
    /// the wait by `shutdown_grace_secs`, so a hang here delays exit but never prevents it.
    fn shutdown(&self) -> BoxFuture<'_, ()>;
}

/// A pushed Magento order change; at least one of the two ids is present.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MagentoChange {
    pub entity_id: Option<u64>,
    pub increment_id: Option<String>,
}

/// One event of a Xero webhook delivery, as Xero spells it on the wire.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct XeroEvent {
    pub resource_id: String,
    #[serde(default)]
    pub resource_url: String,
    #[serde(default)]
    pub tenant_id: String,
    /// CONTACT, INVOICE, CREDITNOTE or SUBSCRIPTION.
    pub event_category: String,
    /// CREATE or UPDATE.
    pub event_type: String,
    /// Kept as Xero's text so de-duplication compares exactly what Xero sent.
    pub event_date_utc: String,
}

/// The answer behind `/readyz`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Readiness {
    pub ready: bool,
    /// `(name, ok, detail)`, e.g. `("ledger", true, "open")` or `("xero", false, "401 reconnect")`.
    pub checks: Vec<(String, bool, String)>,
}
