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
    /// Whether every commit also saves redb's allocator state (see [`LedgerOptions`]).
    #[serde(default)]
    pub quick_repair: bool,
}

/// How the ledger commits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LedgerOptions {
    /// redb's quick repair: each commit also saves the allocator state and is made durable
    /// in two phases (two fsyncs), so a restart after a crash opens at once. Off, a commit
    /// is one fsync, and a restart after a crash first checks the whole file (measured: 0.7 s
    /// for a 600 MB ledger of ~80,000 orders with the file in the page cache, 4.6 s from a
    /// cold disk; README, Benchmarks). Off by default: every transition of every order waits
    /// for its commit, and on cloud disks, where one fsync takes milliseconds, the second
    /// one doubles that wait on every order, all the time, to shorten a restart that only
    /// follows a crash. Either way nothing committed is lost.
    pub quick_repair: bool,
}

impl LedgerConfig {
    /// Opens (or creates) the ledger. Blocking: call it at startup, or in `spawn_blocking`.
    pub fn open(&self) -> Result<Ledger, LedgerError> {
        Ledger::open_with(&self.path, self.options())
    }

    pub fn options(&self) -> LedgerOptions {
        LedgerOptions {
            quick_repair: self.quick_repair,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quick_repair_is_off_unless_the_config_turns_it_on() {
        let plain: LedgerConfig = toml::from_str(r#"path = "t.redb""#).unwrap();
        assert_eq!(plain.options(), LedgerOptions::default());
        assert!(!plain.options().quick_repair);
        let quick: LedgerConfig = toml::from_str("path = \"t.redb\"\nquick_repair = true").unwrap();
        assert!(quick.options().quick_repair);
        assert!(toml::from_str::<LedgerConfig>("path = \"t\"\nquick_repare = true").is_err());
    }
}
