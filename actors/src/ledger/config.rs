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
    /// Whether commits that hold no intent are made durable at once too (see
    /// [`LedgerOptions`]).
    #[serde(default)]
    pub fsync_every_commit: bool,
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
    /// Off (the default), a commit that holds no intent (an outcome, an ingested order, a
    /// cursor) skips its fsync and reaches the disk with the next commit that holds one, or
    /// within 50 ms of the writer falling idle (`ledger/durability.rs`). A crash can lose
    /// such a commit; its intent then remains, and a restart resolves it by lookup as after
    /// any crash between a call and its outcome. On, every commit waits for its fsync.
    pub fsync_every_commit: bool,
}

impl LedgerConfig {
    /// Opens (or creates) the ledger. Blocking: call it at startup, or in `spawn_blocking`.
    pub fn open(&self) -> Result<Ledger, LedgerError> {
        Ledger::open_with(&self.path, self.options())
    }

    pub fn options(&self) -> LedgerOptions {
        LedgerOptions {
            quick_repair: self.quick_repair,
            fsync_every_commit: self.fsync_every_commit,
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
        assert!(!quick.options().fsync_every_commit);
        let every: LedgerConfig =
            toml::from_str("path = \"t.redb\"\nfsync_every_commit = true").unwrap();
        assert!(every.options().fsync_every_commit);
        assert!(toml::from_str::<LedgerConfig>("path = \"t\"\nquick_repare = true").is_err());
    }
}
