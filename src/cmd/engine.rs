//! Turning a config file into a running link.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use serde::Deserialize;
use tally_actors::ledger::{Ledger, LedgerConfig, LedgerOptions};
use tally_actors::link::{Link, LinkConfig, LinkContext, LinkSettings};
use tally_actors::magento::MagentoConfig;
use tally_actors::mapping::MappingRules;
use tally_actors::xero::XeroConfig;

use crate::config::RawConfig;

/// Optional `[sync]` tunables; everything has a production default.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncTable {
    pub batch_size: Option<usize>,
    pub max_attempts: Option<u32>,
    pub retry_base_ms: Option<u64>,
    pub writeback: Option<bool>,
    /// Writeback comments through Magento's bulk API (needs its consumers running).
    pub bulk_comments: Option<bool>,
    pub bulk_wait_secs: Option<u64>,
    /// Batches in flight per stage, and entities a stage round picks up.
    pub concurrent_batches: Option<usize>,
    pub round_limit: Option<usize>,
    pub stock: Option<bool>,
    pub stock_interval_secs: Option<u64>,
}

impl SyncTable {
    /// Overrides the defaults in `settings` with what the table sets, clamped to sense.
    fn apply(&self, settings: &mut LinkSettings) {
        if let Some(n) = self.batch_size {
            settings.batch_size = n.clamp(1, 50);
        }
        if let Some(n) = self.max_attempts {
            settings.max_attempts = n.max(1);
        }
        if let Some(ms) = self.retry_base_ms {
            settings.retry_base = Duration::from_millis(ms);
        }
        if let Some(w) = self.writeback {
            settings.writeback = w;
        }
        if let Some(b) = self.bulk_comments {
            settings.bulk_comments = b;
        }
        if let Some(secs) = self.bulk_wait_secs {
            settings.bulk_wait = Duration::from_secs(secs);
        }
        if let Some(n) = self.concurrent_batches {
            settings.concurrent_batches = n.max(1);
        }
        if let Some(n) = self.round_limit {
            settings.round_limit = n.max(1);
        }
        if let Some(s) = self.stock {
            settings.stock = s;
        }
        if let Some(secs) = self.stock_interval_secs {
            settings.stock_interval = Duration::from_secs(secs.max(1));
        }
    }
}

/// Optional `[reconcile]`: the reconciler runs in the daemon and the console by default.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReconcileTable {
    pub enabled: Option<bool>,
    /// Seconds between passes (each reads only what Xero changed since the last one).
    pub every_secs: Option<u64>,
}

impl ReconcileTable {
    fn apply(&self, settings: &mut LinkSettings) {
        settings.reconcile = self.enabled.unwrap_or(true);
        if let Some(secs) = self.every_secs {
            settings.reconcile_interval = Duration::from_secs(secs.max(1));
        }
    }
}

/// Reads every table the engine needs and validates the mapping rules.
pub fn link_config(raw: &RawConfig) -> anyhow::Result<LinkConfig> {
    let ledger: LedgerConfig = raw.table("ledger")?;
    let magento: MagentoConfig = raw.table("magento")?;
    let xero: XeroConfig = raw.table("xero")?;
    let mapping: MappingRules = raw.table("mapping")?;
    let problems = mapping.validate();
    if !problems.is_empty() {
        let list: Vec<String> = problems.iter().map(|p| format!("  - {p}")).collect();
        anyhow::bail!(
            "{}: the [mapping] rules are invalid:\n{}",
            raw.path.display(),
            list.join("\n")
        );
    }
    let sync: SyncTable = raw.table_or_default("sync")?;
    let mut settings = LinkSettings {
        poll_interval: Duration::from_secs(magento.poll_interval_secs.max(1)),
        ..LinkSettings::default()
    };
    sync.apply(&mut settings);
    let reconcile: ReconcileTable = raw.table_or_default("reconcile")?;
    reconcile.apply(&mut settings);
    Ok(LinkConfig {
        name: "link".into(),
        ledger_path: raw.resolve(&ledger.path),
        ledger_options: ledger.options(),
        magento,
        xero,
        mapping,
        settings,
    })
}

/// Opens the ledger off the async runtime.
pub async fn open_ledger(path: &Path, options: LedgerOptions) -> anyhow::Result<Ledger> {
    let p = path.to_owned();
    tokio::task::spawn_blocking(move || Ledger::open_with(&p, options))
        .await?
        .with_context(|| format!("cannot open the ledger {}", path.display()))
}

/// Loads the config, connects to both systems and returns the shared context (not started).
pub async fn connect(config: &Path) -> anyhow::Result<(RawConfig, Arc<LinkContext>)> {
    connect_tuned(config, |_| {}).await
}

/// [`connect`] with the settings adjusted first (`sync --once` runs no reconciler).
pub async fn connect_tuned(
    config: &Path,
    tune: impl FnOnce(&mut LinkSettings),
) -> anyhow::Result<(RawConfig, Arc<LinkContext>)> {
    let raw = RawConfig::load(config)?;
    let mut cfg = link_config(&raw)?;
    tune(&mut cfg.settings);
    let ledger = open_ledger(&cfg.ledger_path, cfg.ledger_options).await?;
    let ctx = Link::connect_with(cfg, ledger)
        .await
        .context("cannot reach Magento and Xero")?;
    Ok((raw, ctx))
}

/// Logs to stderr: JSON when stderr is not a terminal (collectors), human text otherwise.
pub fn init_logging() {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new("warn,tally=info,tally_actors=info")
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if std::io::stderr().is_terminal() {
        builder.try_init()
    } else {
        builder.json().try_init()
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sync_table_overrides_only_what_it_sets() {
        let table: SyncTable = toml::from_str(
            "bulk_comments = false\nbulk_wait_secs = 5\nconcurrent_batches = 0\nround_limit = 200\nbatch_size = 80",
        )
        .unwrap();
        let mut settings = LinkSettings::default();
        table.apply(&mut settings);
        assert!(!settings.bulk_comments);
        assert_eq!(settings.bulk_wait, Duration::from_secs(5));
        assert_eq!(
            settings.concurrent_batches, 1,
            "at least one batch in flight"
        );
        assert_eq!(settings.round_limit, 200);
        assert_eq!(settings.batch_size, 50, "Xero's 50 per request");
        assert_eq!(settings.max_attempts, LinkSettings::default().max_attempts);
        assert!(
            toml::from_str::<SyncTable>("bulk_comment = true").is_err(),
            "a misspelt key is refused"
        );
    }
}
