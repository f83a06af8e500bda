//! Loading the TOML config, with environment overrides for secrets.
//!
//! Each engine module owns the shape of its own table (`[magento]`, `[xero]`, `[mapping]`,
//! `[ledger]`); this module only finds the file, applies `TALLY_<TABLE>_<KEY>` environment
//! overrides (so secrets need not live in the file), and hands each table to its owner.
//! Errors name the file and the table, never a value.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::de::DeserializeOwned;

/// The parsed config file, tables still untyped.
#[derive(Debug, Clone)]
pub struct RawConfig {
    pub path: PathBuf,
    root: toml::Table,
}

/// Tables the binary knows; anything else is a typo worth stopping for.
const KNOWN_TABLES: &[&str] = &[
    "ledger",
    "magento",
    "xero",
    "mapping",
    "sync",
    "daemon",
    "alerts",
    "reconcile",
];

impl RawConfig {
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
        let mut cfg = Self::parse(path, &text)?;
        cfg.apply_env(std::env::vars());
        warn_if_readable_by_others(path);
        Ok(cfg)
    }

    pub fn parse(path: &Path, text: &str) -> anyhow::Result<Self> {
        let root: toml::Table = toml::from_str(text)
            .with_context(|| format!("{} is not valid TOML", path.display()))?;
        for key in root.keys() {
            if !KNOWN_TABLES.contains(&key.as_str()) {
                bail!(
                    "{}: unknown table [{key}] (known: {})",
                    path.display(),
                    KNOWN_TABLES.join(", ")
                );
            }
        }
        Ok(Self {
            path: path.to_owned(),
            root,
        })
    }

    /// `TALLY_XERO_CLIENT_SECRET=...` sets `[xero] client_secret`.
    pub fn apply_env(&mut self, vars: impl IntoIterator<Item = (String, String)>) {
        for (name, value) in vars {
            let Some(rest) = name.strip_prefix("TALLY_") else {
                continue;
            };
            let lower = rest.to_ascii_lowercase();
            let Some((table, key)) = lower.split_once('_') else {
                continue;
            };
            if !KNOWN_TABLES.contains(&table) || key.is_empty() {
                continue;
            }
            let entry = self
                .root
                .entry(table.to_owned())
                .or_insert_with(|| toml::Value::Table(Default::default()));
            if let toml::Value::Table(t) = entry {
                t.insert(key.to_owned(), toml::Value::String(value));
            }
        }
    }

    pub fn has(&self, table: &str) -> bool {
        self.root.contains_key(table)
    }

    /// Deserializes one table into its owner's type; a missing table is an error.
    pub fn table<T: DeserializeOwned>(&self, table: &str) -> anyhow::Result<T> {
        let value = self
            .root
            .get(table)
            .cloned()
            .with_context(|| format!("{}: missing table [{table}]", self.path.display()))?;
        value
            .try_into()
            .with_context(|| format!("{}: invalid [{table}] table", self.path.display()))
    }

    /// Like [`table`](Self::table) but an absent table yields the type's default.
    pub fn table_or_default<T: DeserializeOwned + Default>(
        &self,
        table: &str,
    ) -> anyhow::Result<T> {
        if self.has(table) {
            self.table(table)
        } else {
            Ok(T::default())
        }
    }

    /// Relative paths in the config (the ledger file) are relative to the config file.
    pub fn resolve(&self, p: &Path) -> PathBuf {
        if p.is_absolute() {
            p.to_owned()
        } else {
            self.path
                .parent()
                .map(|d| d.join(p))
                .unwrap_or_else(|| p.to_owned())
        }
    }
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(path = %path.display(), "Config file is readable by other users; it may hold secrets (chmod 600).");
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_path: &Path) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    struct Xero {
        client_id: String,
        client_secret: String,
    }

    #[test]
    fn env_overrides_a_secret_and_unknown_tables_are_refused() {
        let p = Path::new("t.toml");
        let mut cfg =
            RawConfig::parse(p, "[xero]\nclient_id = \"a\"\nclient_secret = \"file\"\n").unwrap();
        cfg.apply_env([
            ("TALLY_XERO_CLIENT_SECRET".to_owned(), "env".to_owned()),
            ("OTHER".to_owned(), "x".to_owned()),
        ]);
        let x: Xero = cfg.table("xero").unwrap();
        assert_eq!(
            (x.client_id.as_str(), x.client_secret.as_str()),
            ("a", "env")
        );
        let err = RawConfig::parse(p, "[xeroo]\n").unwrap_err().to_string();
        assert!(err.contains("unknown table [xeroo]"), "{err}");
    }

    #[test]
    fn missing_table_is_named() {
        let cfg = RawConfig::parse(Path::new("c.toml"), "").unwrap();
        let err = cfg.table::<toml::Table>("magento").unwrap_err().to_string();
        assert!(err.contains("missing table [magento]"), "{err}");
    }
}
