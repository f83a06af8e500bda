//! What the log says while redb repairs the ledger at open.
//!
//! A ledger not closed cleanly (a crash, a SIGKILL, a power cut) is checked before it opens:
//! without quick repair (`LedgerOptions`), redb walks the whole file, which takes seconds on
//! a large ledger. An operator watching a restart hang for that long deserves to know why,
//! and how far it has got.

use parking_lot::Mutex;
use std::path::{Path, PathBuf};
use std::time::Instant;

pub(crate) struct RepairLog {
    path: PathBuf,
    state: Mutex<Progress>,
}

#[derive(Default)]
struct Progress {
    started: Option<Instant>,
    /// The last tenth of the file reported, so a long repair logs ten lines, not thousands.
    tenth: u64,
}

impl RepairLog {
    pub(crate) fn new(path: &Path) -> Self {
        Self {
            path: path.to_owned(),
            state: Mutex::new(Progress::default()),
        }
    }

    /// redb's repair callback: `fraction` of the file checked so far. Returns the percentage
    /// a progress line was logged for, if one was.
    pub(crate) fn progress(&self, fraction: f64) -> Option<u64> {
        let mut state = self.state.lock();
        if state.started.is_none() {
            state.started = Some(Instant::now());
            tracing::warn!(
                path = %self.path.display(),
                "the ledger was not closed cleanly: checking the whole file before it opens"
            );
        }
        // Truncation wanted: whole tenths done.
        let tenth = (fraction.clamp(0.0, 1.0) * 10.0) as u64;
        if tenth <= state.tenth {
            return None;
        }
        state.tenth = tenth;
        tracing::info!(path = %self.path.display(), done_percent = tenth * 10, "ledger check");
        Some(tenth * 10)
    }

    /// Called once the file is open; logs how long the repair took, if there was one.
    pub(crate) fn finished(&self) -> bool {
        let state = self.state.lock();
        let Some(started) = state.started else {
            return false;
        };
        tracing::info!(
            path = %self.path.display(),
            elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            "ledger checked and repaired; nothing committed was lost"
        );
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repair_logs_at_most_a_line_per_tenth_and_says_it_happened() {
        let log = RepairLog::new(Path::new("t.redb"));
        assert_eq!(
            log.progress(0.0),
            None,
            "started: the warning, no progress line yet"
        );
        assert_eq!(log.progress(0.04), None);
        assert_eq!(log.progress(0.34), Some(30));
        assert_eq!(log.progress(0.36), None, "still in the same tenth");
        assert_eq!(log.progress(1.0), Some(100));
        assert!(log.finished(), "a repair happened");
        assert!(
            !RepairLog::new(Path::new("t.redb")).finished(),
            "no callback, no repair"
        );
    }
}
