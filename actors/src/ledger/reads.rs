//! Read queries. Each runs in its own redb read transaction (a consistent snapshot that never
//! blocks the writer). These are blocking calls: async code goes through `Ledger`, which runs
//! them on its reader threads (`reader_pool`); the CLI can call them directly.

use super::audit::AuditEntry;
use super::codec;
use super::dead_letter::DeadLetter;
use super::derived::{self, Derived};
use super::entity::{EntityState, StateHeader};
use super::error::LedgerError;
use super::link_index::link_key;
use super::record::Record;
use super::stage::{EntityKind, Stage};
use super::tables::*;
use redb::{Database, ReadOnlyTable, ReadTransaction, ReadableDatabase, ReadableTable};
use std::collections::BTreeMap;
use std::sync::Arc;

/// A cheap, cloneable reader over the ledger file.
#[derive(Clone)]
pub struct LedgerReader {
    db: Arc<Database>,
    index: Derived,
}

impl std::fmt::Debug for LedgerReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LedgerReader").finish_non_exhaustive()
    }
}

type BytesTable = ReadOnlyTable<&'static str, &'static [u8]>;

/// A stored state with its record: from `ENTITY_TO_RECORD`, or, for a state written before
/// schema version 2, the one it carries.
fn decode_state(records: &BytesTable, key: &str, bytes: &[u8]) -> Result<EntityState, LedgerError> {
    let mut state: EntityState = codec::decode("entity", key, bytes)?;
    if let Some(g) = records.get(key)? {
        state.data = Record::from_stored(key, g.value())?;
    }
    Ok(state)
}

fn state_at(rtx: &ReadTransaction, key: &str) -> Result<Option<EntityState>, LedgerError> {
    let states = rtx.open_table(ENTITY_TO_STATE)?;
    let records = rtx.open_table(ENTITY_TO_RECORD)?;
    match states.get(key)? {
        Some(g) => Ok(Some(decode_state(&records, key, g.value())?)),
        None => Ok(None),
    }
}

fn states_for(
    rtx: &ReadTransaction,
    keys: impl IntoIterator<Item = String>,
) -> Result<Vec<EntityState>, LedgerError> {
    let states = rtx.open_table(ENTITY_TO_STATE)?;
    let records = rtx.open_table(ENTITY_TO_RECORD)?;
    let mut out = Vec::new();
    for key in keys {
        if let Some(g) = states.get(key.as_str())? {
            out.push(decode_state(&records, &key, g.value())?);
        }
    }
    Ok(out)
}

impl LedgerReader {
    pub(crate) fn new(db: Arc<Database>, index: Derived) -> Self {
        LedgerReader { db, index }
    }

    pub fn get(&self, key: &str) -> Result<Option<EntityState>, LedgerError> {
        state_at(&self.db.begin_read()?, key)
    }

    /// Several entities read in one transaction (one consistent snapshot), in the order of
    /// `keys`: a round that looks up hundreds of keys pays for one transaction, not hundreds.
    pub fn get_many(&self, keys: &[String]) -> Result<Vec<Option<EntityState>>, LedgerError> {
        let rtx = self.db.begin_read()?;
        let states = rtx.open_table(ENTITY_TO_STATE)?;
        let records = rtx.open_table(ENTITY_TO_RECORD)?;
        let mut out = Vec::with_capacity(keys.len());
        for key in keys {
            out.push(match states.get(key.as_str())? {
                Some(g) => Some(decode_state(&records, key, g.value())?),
                None => None,
            });
        }
        Ok(out)
    }

    /// The stage of each of `keys` (`None`: not in the ledger), in one transaction. Reads
    /// only each state's header, not its record: for a caller deciding whether to look
    /// further, such as the order poll choosing which changed orders to fetch.
    pub fn stages_of(&self, keys: &[String]) -> Result<Vec<Option<Stage>>, LedgerError> {
        let rtx = self.db.begin_read()?;
        let states = rtx.open_table(ENTITY_TO_STATE)?;
        let mut out = Vec::with_capacity(keys.len());
        for key in keys {
            out.push(match states.get(key.as_str())? {
                Some(g) => Some(codec::decode::<StateHeader>("entity", key, g.value())?.stage),
                None => None,
            });
        }
        Ok(out)
    }

    /// Up to `limit` entities in `stage`, in key order. The keys come from the in-memory
    /// index (`stage_index`), which the writer updates once a move is committed; the read
    /// snapshot is taken after them, so an entity that moved on in between reads in its new
    /// stage and is left out here rather than handed to the wrong stage.
    pub fn by_stage(&self, stage: Stage, limit: usize) -> Result<Vec<EntityState>, LedgerError> {
        let keys = self.index.stages.keys(stage, limit);
        let rtx = self.db.begin_read()?;
        let mut states = states_for(&rtx, keys)?;
        states.retain(|s| s.stage == stage);
        Ok(states)
    }

    /// How many entities of `kind` are in `stage`: a key-only count of the stage index (no
    /// state is read), for reports that must not count stock items as orders.
    pub fn count_in_stage(&self, stage: Stage, kind: EntityKind) -> Result<u64, LedgerError> {
        Ok(self
            .index
            .stages
            .count_with_prefix(stage, &format!("{}:", kind.prefix())))
    }

    /// Whether the in-memory indexes (stages, intents, links) say exactly what the stored states
    /// say: a rebuild compared with what the writer kept up to date.
    pub fn derived_indexes_are_exact(&self) -> Result<bool, LedgerError> {
        let rebuilt = derived::build(&self.db)?;
        Ok(rebuilt.stages.snapshot() == self.index.stages.snapshot()
            && rebuilt.intents.snapshot() == self.index.intents.snapshot()
            && rebuilt.links.snapshot() == self.index.links.snapshot())
    }

    /// Up to `limit` failed entities whose retry time is at or before `now_ms`, earliest first.
    pub fn due_before(&self, now_ms: i64, limit: usize) -> Result<Vec<EntityState>, LedgerError> {
        let rtx = self.db.begin_read()?;
        let index = rtx.open_table(DUE_TO_ENTITY)?;
        let mut keys = Vec::new();
        for item in index.iter()? {
            if keys.len() >= limit {
                break;
            }
            let (k, _) = item?;
            let (at, key) = k.value();
            if at > now_ms {
                break;
            }
            keys.push(key.to_owned());
        }
        states_for(&rtx, keys)
    }

    /// The earliest pending retry time, so a scheduler can sleep exactly until then.
    pub fn next_due_ms(&self) -> Result<Option<i64>, LedgerError> {
        let rtx = self.db.begin_read()?;
        let index = rtx.open_table(DUE_TO_ENTITY)?;
        Ok(index.first()?.map(|(k, _)| k.value().0))
    }

    /// Every entity holding an intent without an outcome: after a crash, each of these must be
    /// resolved by a lookup on the remote side before anything is re-sent.
    pub fn with_intent(&self) -> Result<Vec<EntityState>, LedgerError> {
        let keys = self.index.intents.holders();
        let rtx = self.db.begin_read()?;
        let mut states = states_for(&rtx, keys)?;
        // Listed before the snapshot: an outcome committed in between cleared the intent.
        states.retain(|s| s.intent.is_some());
        Ok(states)
    }

    /// The entity holding this idempotency key's intent, if any.
    pub fn by_idempotency_key(
        &self,
        idempotency_key: &str,
    ) -> Result<Option<EntityState>, LedgerError> {
        let Some(key) = self.index.intents.holder(idempotency_key) else {
            return Ok(None);
        };
        let state = state_at(&self.db.begin_read()?, key.as_str())?;
        Ok(state.filter(|s| {
            s.intent
                .as_ref()
                .is_some_and(|i| i.idempotency_key == idempotency_key)
        }))
    }

    /// Entities whose `links[name] == value`, e.g. (`invoice_id`, a Xero InvoiceID). Only
    /// for a name in [`INDEXED_LINKS`]; any other is refused, not answered from a partial
    /// index.
    pub fn by_link(&self, name: &str, value: &str) -> Result<Vec<EntityState>, LedgerError> {
        Ok(self
            .by_links(name, &[value.to_owned()])?
            .pop()
            .unwrap_or_default())
    }

    /// [`by_link`](Self::by_link) for many values in one read transaction: the entities
    /// holding each value, in the order of `values`.
    pub fn by_links(
        &self,
        name: &str,
        values: &[String],
    ) -> Result<Vec<Vec<EntityState>>, LedgerError> {
        if !INDEXED_LINKS.contains(&name) {
            return Err(LedgerError::NotIndexed {
                link: name.to_owned(),
            });
        }
        let rtx = self.db.begin_read()?;
        values
            .iter()
            .map(|value| states_for(&rtx, self.index.links.keys(&link_key(name, value))))
            .collect()
    }

    /// The number of entities in every stage (zero included), from the in-memory index.
    pub fn counts_by_stage(&self) -> Result<BTreeMap<Stage, u64>, LedgerError> {
        Ok(Stage::ALL
            .into_iter()
            .map(|s| (s, self.index.stages.count(s)))
            .collect())
    }

    pub fn dead_letters(&self) -> Result<Vec<DeadLetter>, LedgerError> {
        let rtx = self.db.begin_read()?;
        let table = rtx.open_table(DEAD_LETTERS)?;
        let mut out = Vec::new();
        for item in table.iter()? {
            let (k, v) = item?;
            out.push(codec::decode("dead letter", k.value(), v.value())?);
        }
        Ok(out)
    }

    pub fn dead_letter(&self, key: &str) -> Result<Option<DeadLetter>, LedgerError> {
        let rtx = self.db.begin_read()?;
        let table = rtx.open_table(DEAD_LETTERS)?;
        match table.get(key)? {
            Some(g) => Ok(Some(codec::decode("dead letter", key, g.value())?)),
            None => Ok(None),
        }
    }

    /// One entity's audit trail, oldest first.
    pub fn audit_for(&self, key: &str) -> Result<Vec<AuditEntry>, LedgerError> {
        let rtx = self.db.begin_read()?;
        let index = rtx.open_table(ENTITY_TO_AUDIT)?;
        let audit = rtx.open_table(AUDIT)?;
        let mut out = Vec::new();
        for item in index.range((key, 0u64)..=(key, u64::MAX))? {
            let (k, _) = item?;
            let seq = k.value().1;
            if let Some(g) = audit.get(seq)? {
                out.push(codec::decode("audit entry", &seq.to_string(), g.value())?);
            }
        }
        Ok(out)
    }

    /// The last `n` audit entries of the whole ledger, oldest first.
    pub fn audit_tail(&self, n: usize) -> Result<Vec<AuditEntry>, LedgerError> {
        let rtx = self.db.begin_read()?;
        let audit = rtx.open_table(AUDIT)?;
        let mut out = Vec::with_capacity(n);
        for item in audit.iter()?.rev().take(n) {
            let (k, v) = item?;
            out.push(codec::decode(
                "audit entry",
                &k.value().to_string(),
                v.value(),
            )?);
        }
        out.reverse();
        Ok(out)
    }

    /// Every audit entry made in `[since_ms, until_ms)` whose stored text holds `needle`,
    /// oldest first. A whole-ledger scan for exports (a period's discrepancy history): the
    /// text is searched before an entry is decoded, so entries that do not match cost a
    /// byte search, not a parse.
    pub fn audit_matching(
        &self,
        needle: &str,
        since_ms: i64,
        until_ms: i64,
    ) -> Result<Vec<AuditEntry>, LedgerError> {
        let rtx = self.db.begin_read()?;
        let audit = rtx.open_table(AUDIT)?;
        let needle = needle.as_bytes();
        let mut out = Vec::new();
        for item in audit.iter()? {
            let (k, v) = item?;
            let bytes = v.value();
            if needle.is_empty() || !bytes.windows(needle.len()).any(|w| w == needle) {
                continue;
            }
            let entry: AuditEntry = codec::decode("audit entry", &k.value().to_string(), bytes)?;
            if (since_ms..until_ms).contains(&entry.at_ms) {
                out.push(entry);
            }
        }
        Ok(out)
    }

    /// When this ledger file was created (ms since the epoch): nothing tally wrote anywhere
    /// is older. `None` for a file from before the field existed.
    pub fn created_at_ms(&self) -> Result<Option<u64>, LedgerError> {
        let rtx = self.db.begin_read()?;
        let meta = rtx.open_table(META)?;
        Ok(meta.get(META_CREATED_AT_MS)?.map(|g| g.value()))
    }

    pub fn cursor(&self, name: &str) -> Result<Option<serde_json::Value>, LedgerError> {
        let rtx = self.db.begin_read()?;
        let table = rtx.open_table(CURSORS)?;
        match table.get(name)? {
            Some(g) => Ok(Some(codec::decode("cursor", name, g.value())?)),
            None => Ok(None),
        }
    }

    /// Opaque token bytes. The caller owns their meaning and their secrecy.
    pub fn token(&self, name: &str) -> Result<Option<Vec<u8>>, LedgerError> {
        let rtx = self.db.begin_read()?;
        let table = rtx.open_table(TOKENS)?;
        Ok(table.get(name)?.map(|g| g.value().to_vec()))
    }

    /// Every open discrepancy, by key.
    pub fn discrepancies(&self) -> Result<Vec<(String, serde_json::Value)>, LedgerError> {
        let rtx = self.db.begin_read()?;
        let table = rtx.open_table(DISCREPANCIES)?;
        let mut out = Vec::new();
        for item in table.iter()? {
            let (k, v) = item?;
            out.push((
                k.value().to_owned(),
                codec::decode("discrepancy", k.value(), v.value())?,
            ));
        }
        Ok(out)
    }

    /// Entities whose key, a link value or a value inside `data` contains `query`
    /// (case-insensitive): an order number, an email, a SKU, a Xero id. A scan, stopped
    /// after `limit` matches; the raw record is checked first so most entities are never
    /// decoded.
    pub fn search(&self, query: &str, limit: usize) -> Result<Vec<EntityState>, LedgerError> {
        let needle = query.trim().to_lowercase();
        if needle.is_empty() {
            return Ok(Vec::new());
        }
        let rtx = self.db.begin_read()?;
        let table = rtx.open_table(ENTITY_TO_STATE)?;
        let records = rtx.open_table(ENTITY_TO_RECORD)?;
        let mut out = Vec::new();
        for item in table.iter()? {
            if out.len() >= limit {
                break;
            }
            let (k, v) = item?;
            let record = records.get(k.value())?;
            let raw = |b: &[u8]| String::from_utf8_lossy(b).to_lowercase().contains(&needle);
            if !raw(v.value()) && !record.as_ref().is_some_and(|r| raw(r.value())) {
                continue;
            }
            let state = decode_state(&records, k.value(), v.value())?;
            let hit = state.key.to_lowercase().contains(&needle)
                || state
                    .links
                    .values()
                    .any(|l| l.to_lowercase().contains(&needle))
                || value_contains(&state.data.value(), &needle);
            if hit {
                out.push(state);
            }
        }
        Ok(out)
    }
}

fn value_contains(value: &serde_json::Value, needle: &str) -> bool {
    use serde_json::Value;
    match value {
        Value::String(s) => s.to_lowercase().contains(needle),
        Value::Number(n) => n.to_string().contains(needle),
        Value::Array(items) => items.iter().any(|v| value_contains(v, needle)),
        Value::Object(map) => map.values().any(|v| value_contains(v, needle)),
        Value::Bool(_) | Value::Null => false,
    }
}
