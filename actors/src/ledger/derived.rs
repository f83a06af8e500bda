//! The ledger's in-memory indexes (`stage_index`, `intent_index`, `link_index`), read from
//! the stored states in one pass when the ledger opens.

use std::sync::Arc;

use redb::{Database, ReadableDatabase, ReadableTable};

use super::codec;
use super::entity::StateHeader;
use super::error::LedgerError;
use super::intent_index::IntentIndex;
use super::link_index::{LinkIndex, link_key};
use super::stage_index::StageIndex;
use super::tables::ENTITY_TO_STATE;

/// The indexes, shared by the reader and the writer thread.
#[derive(Debug, Clone)]
pub(crate) struct Derived {
    pub stages: Arc<StageIndex>,
    pub intents: Arc<IntentIndex>,
    pub links: Arc<LinkIndex>,
}

/// Reads every state's header (not its record) in one read transaction. A state this build
/// cannot read fails the open, naming it, before any stage works from a misread ledger.
pub(crate) fn build(db: &Database) -> Result<Derived, LedgerError> {
    let rtx = db.begin_read()?;
    let states = rtx.open_table(ENTITY_TO_STATE)?;
    let mut stages = Vec::new();
    let mut intents = Vec::new();
    let mut links = Vec::new();
    for item in states.iter()? {
        let (k, v) = item?;
        let key = k.value();
        let header: StateHeader = codec::decode("entity", key, v.value())?;
        if let Some(intent) = header.intent {
            intents.push((intent.idempotency_key, key.to_owned()));
        }
        for (name, value) in header.links {
            links.push((link_key(&name, &value), key.to_owned()));
        }
        stages.push((header.stage, key.to_owned()));
    }
    Ok(Derived {
        stages: Arc::new(StageIndex::build(stages)),
        intents: Arc::new(IntentIndex::build(intents)),
        links: Arc::new(LinkIndex::build(links)),
    })
}
