//! The `[ledger]` table of the config file.

use super::error::LedgerError;
use super::handle::Ledger;
use serde::Deserialize;
use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LedgerConfig {
    /// The redb file; created on first open. Relative paths are relative to the working
    /// directory (the binary resolves them against the config file's directory if it wants).
    pub path: PathBuf,
}

impl LedgerConfig {
    /// Opens (or creates) the ledger. Blocking: call it at startup, or in `spawn_blocking`.
    pub fn open(&self) -> Result<Ledger, LedgerError> {
        Ledger::open(&self.path)
    }
}
