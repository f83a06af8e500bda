//! Which entities are in which stage, held in memory and rebuilt from the states at open.
//!
//! Every stage actor asks "up to N entities in stage X" each round, and every transition moves
//! its entity between two stages. Kept as a redb table, that move was two B-tree writes per
//! transition (a removal and an insert, each copying and later writing a page), a third of
//! the writer's table work, for an index the states already imply: each state records its
//! stage. So the index lives here instead. It is derived data: the file holds no copy, a crash
//! loses nothing, and `derived::build` reads it back from the states when the ledger opens.
//!
//! Only the writer thread changes it, and only after the transaction that moved the entities
//! committed: a reader that finds a key here and then reads the state sees that commit or a
//! later one. A state that moved on since the key was listed is dropped by the reader
//! (`LedgerReader::by_stage` checks each state's stage), so a listing is never wrong, only
//! possibly one commit behind.

use std::collections::{BTreeSet, HashMap};

use parking_lot::RwLock;

use super::stage::Stage;

/// One entity's move, as the writer noted it in a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StageMove {
    pub key: String,
    pub from: Option<Stage>,
    pub to: Stage,
}

/// Entity keys by stage, each stage's keys in order (the order the table kept).
#[derive(Debug, Default)]
pub(crate) struct StageIndex {
    stages: RwLock<HashMap<Stage, BTreeSet<String>>>,
}

impl StageIndex {
    /// The index of `(stage, entity key)` pairs read from the stored states.
    pub(crate) fn build(pairs: impl IntoIterator<Item = (Stage, String)>) -> Self {
        let mut stages: HashMap<Stage, BTreeSet<String>> = HashMap::new();
        for (stage, key) in pairs {
            stages.entry(stage).or_default().insert(key);
        }
        Self {
            stages: RwLock::new(stages),
        }
    }

    /// Applies the moves of a committed transaction, in the order they were made.
    pub(crate) fn committed(&self, moves: Vec<StageMove>) {
        if moves.is_empty() {
            return;
        }
        let mut stages = self.stages.write();
        for m in moves {
            if let Some(from) = m.from
                && let Some(keys) = stages.get_mut(&from)
            {
                keys.remove(&m.key);
            }
            stages.entry(m.to).or_default().insert(m.key);
        }
    }

    /// Up to `limit` keys in `stage`, in key order.
    pub(crate) fn keys(&self, stage: Stage, limit: usize) -> Vec<String> {
        self.stages
            .read()
            .get(&stage)
            .map(|keys| keys.iter().take(limit).cloned().collect())
            .unwrap_or_default()
    }

    /// How many keys are in `stage`.
    pub(crate) fn count(&self, stage: Stage) -> u64 {
        self.stages
            .read()
            .get(&stage)
            .map_or(0, |keys| keys.len() as u64)
    }

    /// How many keys in `stage` start with `prefix`.
    pub(crate) fn count_with_prefix(&self, stage: Stage, prefix: &str) -> u64 {
        self.stages.read().get(&stage).map_or(0, |keys| {
            keys.range::<str, _>((
                std::ops::Bound::Included(prefix),
                std::ops::Bound::Unbounded,
            ))
            .take_while(|k| k.starts_with(prefix))
            .count() as u64
        })
    }

    /// Every (stage, key) pair, for comparing with a rebuild.
    pub(crate) fn snapshot(&self) -> Vec<(Stage, String)> {
        let stages = self.stages.read();
        let mut all: Vec<(Stage, String)> = stages
            .iter()
            .flat_map(|(s, keys)| keys.iter().map(move |k| (*s, k.clone())))
            .collect();
        all.sort();
        all
    }
}
