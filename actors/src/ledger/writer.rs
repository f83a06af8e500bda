//! The single writer: one OS thread owns every redb write transaction.
//!
//! redb allows one write transaction at a time and each commit costs an fsync (two with quick
//! repair), so the writer drains every request queued at that moment into ONE transaction
//! (group commit): under load the fsync is shared by hundreds of state transitions. A request
//! that is invalid on its own (stale version, illegal move) is rolled back alone through an
//! undo log and the rest of the group still commits; only a storage failure fails the group.
//! It runs on its own thread, not the tokio runtime, because `commit` blocks on disk I/O.

use super::audit::AuditEntry;
use super::codec;
use super::config::LedgerOptions;
use super::dead_letter::DeadLetter;
use super::derived::Derived;
use super::discrepancy;
use super::durability::{HARDEN_AFTER, needs_durability};
use super::entity::{EntityState, StateHeader, StoredState};
use super::error::LedgerError;
use super::intent_index::IntentIndex;
use super::link_index::{LinkChange, link_key};
use super::record::Record;
use super::stage::{Stage, can_move};
use super::stage_index::StageMove;
use super::tables::*;
use super::write::{CommitInfo, LedgerStats, Write};
use crate::fast_map::FastMap;
use redb::{Database, Durability, ReadableTable, Table, WriteTransaction};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use tokio::sync::oneshot;

/// Bounds one transaction so a flood of requests cannot build an unboundedly large commit.
const MAX_GROUP: usize = 4096;

pub(crate) struct Request {
    pub writes: Vec<Write>,
    pub reply: oneshot::Sender<Result<CommitInfo, LedgerError>>,
}

pub(crate) enum Msg {
    /// Requests that must share one transaction (plus whatever else is queued).
    Batch(Vec<Request>),
    Shutdown,
}

#[derive(Default)]
pub(crate) struct Counters {
    transactions: AtomicU64,
    commits: AtomicU64,
    rejected: AtomicU64,
    failed_transactions: AtomicU64,
    largest_group: AtomicU64,
    durable: AtomicU64,
    hardened: AtomicU64,
}

impl Counters {
    pub fn snapshot(&self) -> LedgerStats {
        LedgerStats {
            transactions: self.transactions.load(Ordering::Relaxed),
            commits: self.commits.load(Ordering::Relaxed),
            rejected: self.rejected.load(Ordering::Relaxed),
            failed_transactions: self.failed_transactions.load(Ordering::Relaxed),
            largest_group: self.largest_group.load(Ordering::Relaxed),
            durable_transactions: self.durable.load(Ordering::Relaxed),
            hardened: self.hardened.load(Ordering::Relaxed),
        }
    }
}

pub(crate) fn spawn(
    db: Arc<Database>,
    counters: Arc<Counters>,
    index: Derived,
    options: LedgerOptions,
) -> std::io::Result<(mpsc::Sender<Msg>, std::thread::JoinHandle<()>)> {
    let (tx, rx) = mpsc::channel();
    let handle = std::thread::Builder::new()
        .name("tally-ledger-writer".into())
        .spawn(move || run(&db, &rx, &counters, &index, options))?;
    Ok((tx, handle))
}

fn run(
    db: &Database,
    rx: &mpsc::Receiver<Msg>,
    counters: &Counters,
    index: &Derived,
    options: LedgerOptions,
) {
    let mut headers = HeaderCache::default();
    // Whether a commit since the last durable one skipped its fsync (see `durability`).
    let mut pending = false;
    loop {
        let next = if pending {
            match rx.recv_timeout(HARDEN_AFTER) {
                Ok(m) => Ok(m),
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    pending = !harden(db, counters);
                    continue;
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => Err(()),
            }
        } else {
            rx.recv().map_err(|_| ())
        };
        let mut group = match next {
            Ok(Msg::Batch(b)) => b,
            Ok(Msg::Shutdown) | Err(()) => {
                if pending {
                    harden(db, counters);
                }
                return;
            }
        };
        let mut shutdown = false;
        while group.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(Msg::Batch(b)) => group.extend(b),
                Ok(Msg::Shutdown) => {
                    shutdown = true;
                    break;
                }
                Err(_) => break,
            }
        }
        let durable = options.fsync_every_commit
            || group.iter().flat_map(|r| &r.writes).any(needs_durability);
        if commit_group(db, group, counters, &mut headers, index, options, durable) {
            pending = !durable;
        }
        if shutdown {
            if pending {
                harden(db, counters);
            }
            return;
        }
    }
}

/// An empty durable commit: persists every undurable commit before it. `false` if it failed
/// (they stay pending, and the next durable commit or idle moment tries again).
/// A discrepancy's `detail`, for its order's audit trail.
fn detail_of(discrepancy: &serde_json::Value) -> &str {
    discrepancy
        .get("detail")
        .and_then(serde_json::Value::as_str)
        .unwrap_or_default()
}

fn harden(db: &Database, counters: &Counters) -> bool {
    let result = (|| -> Result<(), LedgerError> {
        let mut txn = db.begin_write()?;
        txn.set_durability(Durability::Immediate)?;
        txn.commit()?;
        Ok(())
    })();
    match result {
        Ok(()) => {
            counters.hardened.fetch_add(1, Ordering::Relaxed);
            true
        }
        Err(e) => {
            tracing::error!(error = %e, "making the ledger's earlier commits durable failed");
            false
        }
    }
}

fn commit_group(
    db: &Database,
    group: Vec<Request>,
    counters: &Counters,
    headers: &mut HeaderCache,
    index: &Derived,
    options: LedgerOptions,
    durable: bool,
) -> bool {
    let size = group.len();
    let (writes, replies): (Vec<_>, Vec<_>) =
        group.into_iter().map(|r| (r.writes, r.reply)).unzip();
    match run_transaction(db, writes, now_ms(), headers, index, options, durable) {
        Ok(results) => {
            let transaction = counters.transactions.fetch_add(1, Ordering::Relaxed) + 1;
            if durable {
                counters.durable.fetch_add(1, Ordering::Relaxed);
            }
            counters
                .largest_group
                .fetch_max(size as u64, Ordering::Relaxed);
            for (result, reply) in results.into_iter().zip(replies) {
                let result = result.map(|mut info| {
                    info.transaction = transaction;
                    info.group_size = size;
                    info
                });
                match &result {
                    Ok(_) => counters.commits.fetch_add(1, Ordering::Relaxed),
                    Err(_) => counters.rejected.fetch_add(1, Ordering::Relaxed),
                };
                // A requester that stopped waiting is not the writer's problem.
                let _ = reply.send(result);
            }
            true
        }
        Err(e) => {
            counters.failed_transactions.fetch_add(1, Ordering::Relaxed);
            tracing::error!(error = %e, requests = size, "ledger write transaction failed");
            for reply in replies {
                let _ = reply.send(Err(e.clone()));
            }
            false
        }
    }
}

pub(crate) fn now_ms() -> i64 {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// One transaction for the whole group; per-request results, or the error that sank it all.
fn run_transaction(
    db: &Database,
    groups: Vec<Vec<Write>>,
    now: i64,
    headers: &mut HeaderCache,
    index: &Derived,
    options: LedgerOptions,
    durable: bool,
) -> Result<Vec<Result<CommitInfo, LedgerError>>, LedgerError> {
    let mut txn = db.begin_write()?;
    txn.set_durability(if durable {
        Durability::Immediate
    } else {
        Durability::None
    })?;
    txn.set_quick_repair(options.quick_repair);
    let (results, written, moves, intents, links) = {
        let mut tx = Tx::open(&txn, now, headers, &index.intents)?;
        let mut results = Vec::with_capacity(groups.len());
        for writes in groups {
            // A lone `Put` checks everything that can refuse it before it changes anything
            // (see `Tx::put`), so it needs no undo log: copying every overwritten value for
            // a rollback that cannot happen was a good part of the writer's allocations.
            tx.undoable = !matches!(writes.as_slice(), [Write::Put { .. }]);
            let mark = Mark {
                undo: tx.undo.len(),
                next_seq: tx.next_seq,
                moves: tx.moves.len(),
                links: tx.link_changes.len(),
            };
            let mut info = CommitInfo::default();
            let outcome = writes.into_iter().try_for_each(|w| tx.apply(w, &mut info));
            match outcome {
                Ok(()) => {
                    tx.undo.clear();
                    results.push(Ok(info));
                }
                Err(LedgerError::Storage(e)) => return Err(LedgerError::Storage(e)),
                Err(e) => {
                    tx.rollback_to(mark)?;
                    // The refused request may have stored states before it failed: every
                    // header noted in this transaction is read back from the table instead.
                    tx.written.values_mut().for_each(|h| *h = None);
                    results.push(Err(e));
                }
            }
        }
        (
            results,
            std::mem::take(&mut tx.written),
            std::mem::take(&mut tx.moves),
            std::mem::take(&mut tx.intent_changes),
            std::mem::take(&mut tx.link_changes),
        )
    };
    txn.commit()?;
    headers.committed(written);
    // Before anyone hears of the commit: a stage kicked by it finds its entities listed.
    index.stages.committed(moves);
    index.intents.committed(intents);
    index.links.committed(links);
    Ok(results)
}

/// The headers of recently written entities as last committed, so the writer checks a
/// transition without reading and decoding the previous state: an order is written about
/// six times within seconds, and that read was a tenth of the writer's work. Only the
/// writer thread writes the file, so what it committed is what the file holds; an entry is
/// replaced or dropped only after the transaction that changed it commits.
#[derive(Default)]
struct HeaderCache {
    map: FastMap<String, StateHeader>,
    /// Keys in first-insertion order: the oldest leaves first once `HEADER_CACHE` is reached.
    order: std::collections::VecDeque<String>,
}

/// Headers kept: a few rounds of every stage's work.
const HEADER_CACHE: usize = 16_384;

impl HeaderCache {
    fn get(&self, key: &str) -> Option<&StateHeader> {
        self.map.get(key)
    }

    /// Applies a committed transaction: `Some` is the entity's header now, `None` an entity
    /// whose header was not noted (it is read from the file next time).
    fn committed(&mut self, written: FastMap<String, Option<StateHeader>>) {
        for (key, header) in written {
            match header {
                Some(h) => {
                    if self.map.insert(key.clone(), h).is_none() {
                        self.order.push_back(key);
                    }
                }
                None => {
                    self.map.remove(&key);
                }
            }
        }
        while self.map.len() > HEADER_CACHE || self.order.len() > 2 * HEADER_CACHE {
            let Some(oldest) = self.order.pop_front() else {
                break;
            };
            self.map.remove(&oldest);
        }
    }
}

#[derive(Clone, Copy)]
enum BytesTable {
    States,
    Records,
    DeadLetters,
    Discrepancies,
    Cursors,
    Tokens,
}

/// The inverse of one table mutation, to roll a single rejected request out of a group.
enum Undo {
    Bytes(BytesTable, String, Option<Vec<u8>>),
    Due(i64, String, bool),
    Intent(String, Option<String>),
    Audit(u64),
    EntityAudit(String, u64),
}

/// Where a request started in the transaction, to roll it alone back to there.
#[derive(Clone, Copy)]
struct Mark {
    undo: usize,
    next_seq: u64,
    moves: usize,
    links: usize,
}

type BytesT<'t> = Table<'t, &'static str, &'static [u8]>;

struct Tx<'t> {
    now: i64,
    /// Headers as of the last commit (read-only here).
    cache: &'t HeaderCache,
    /// The header of every entity stored in this transaction (`None`: read it from the
    /// table), for later writes in the same transaction and for the cache after commit.
    written: FastMap<String, Option<StateHeader>>,
    next_seq: u64,
    /// Whether mutations are recorded in `undo` (see `run_transaction`).
    undoable: bool,
    undo: Vec<Undo>,
    states: BytesT<'t>,
    records: BytesT<'t>,
    dead: BytesT<'t>,
    discrepancies: BytesT<'t>,
    cursors: BytesT<'t>,
    tokens: BytesT<'t>,
    /// Stage moves made in this transaction, for the in-memory index once it commits.
    moves: Vec<StageMove>,
    due: Table<'t, (i64, &'static str), ()>,
    /// Idempotency key holders as last committed (read-only here).
    intents: &'t IntentIndex,
    /// This transaction's changes to them (`None`: the key was freed), read before `intents`.
    intent_changes: FastMap<String, Option<String>>,
    /// Links gained and lost in this transaction, for the in-memory index once it commits.
    link_changes: Vec<LinkChange>,
    audit: Table<'t, u64, &'static [u8]>,
    entity_audit: Table<'t, (&'static str, u64), ()>,
}

fn illegal(
    state_key: &str,
    kind: super::stage::EntityKind,
    from: Option<Stage>,
    to: Stage,
    reason: &'static str,
) -> LedgerError {
    LedgerError::IllegalTransition {
        key: state_key.to_owned(),
        kind,
        from,
        to,
        reason,
    }
}

impl<'t> Tx<'t> {
    fn open(
        txn: &'t WriteTransaction,
        now: i64,
        cache: &'t HeaderCache,
        intents: &'t IntentIndex,
    ) -> Result<Self, LedgerError> {
        let audit = txn.open_table(AUDIT)?;
        let next_seq = audit.last()?.map(|(k, _)| k.value() + 1).unwrap_or(1);
        Ok(Tx {
            now,
            cache,
            written: Default::default(),
            next_seq,
            undoable: true,
            undo: Vec::new(),
            states: txn.open_table(ENTITY_TO_STATE)?,
            records: txn.open_table(ENTITY_TO_RECORD)?,
            dead: txn.open_table(DEAD_LETTERS)?,
            discrepancies: txn.open_table(DISCREPANCIES)?,
            cursors: txn.open_table(CURSORS)?,
            tokens: txn.open_table(TOKENS)?,
            moves: Vec::new(),
            due: txn.open_table(DUE_TO_ENTITY)?,
            intents,
            intent_changes: Default::default(),
            link_changes: Vec::new(),
            audit,
            entity_audit: txn.open_table(ENTITY_TO_AUDIT)?,
        })
    }

    fn apply(&mut self, write: Write, info: &mut CommitInfo) -> Result<(), LedgerError> {
        match write {
            Write::Put {
                state,
                actor,
                detail,
            } => self.put(state, &actor, &detail, info),
            Write::Note { key, actor, detail } => match self.load_header(&key)? {
                Some(h) => self.append_audit(&key, Some(h.stage), h.stage, &actor, &detail, info),
                None => Err(LedgerError::NotFound { key }),
            },
            Write::SetLink {
                key,
                name,
                expected,
                value,
                actor,
            } => self.set_link_of(&key, &name, &expected, value, &actor, info),
            Write::DeadLetter { letter, actor } => self.dead_letter(letter, &actor, info),
            Write::Revive { key, to, actor } => self.revive(&key, to, &actor, info),
            Write::DropDeadLetter { key, actor } => self.drop_dead_letter(&key, &actor, info),
            Write::SetCursor { name, value } => {
                let bytes = codec::encode("cursor", &value)?;
                self.set_bytes(BytesTable::Cursors, &name, Some(&bytes))
            }
            Write::SetToken { name, bytes } => {
                self.set_bytes(BytesTable::Tokens, &name, Some(&bytes))
            }
            Write::PutDiscrepancy { key, value, actor } => {
                self.put_discrepancy(&key, &value, &actor, info)
            }
            Write::RemoveDiscrepancy { key, actor } => {
                let Some(stored) = self.stored_discrepancy(&key)? else {
                    return Ok(());
                };
                self.set_bytes(BytesTable::Discrepancies, &key, None)?;
                let line = format!("discrepancy {key} closed: Magento and Xero agree");
                self.note_on_order(&stored, &line, &actor, info)
            }
            Write::AcknowledgeDiscrepancy { key, actor, note } => {
                self.acknowledge_discrepancy(&key, &actor, note.as_deref(), info)
            }
        }
    }

    fn put(
        &mut self,
        mut state: EntityState,
        actor: &str,
        detail: &str,
        info: &mut CommitInfo,
    ) -> Result<(), LedgerError> {
        let old = self.load_header(&state.key)?;
        let kind = state.kind;
        let from = old.as_ref().map(|o| o.stage);
        if !kind.uses(state.stage) {
            return Err(illegal(
                &state.key,
                kind,
                from,
                state.stage,
                "the stage is not part of this kind's life",
            ));
        }
        match &old {
            None => {
                if state.version != 0 {
                    return Err(LedgerError::VersionConflict {
                        key: state.key,
                        expected: state.version,
                        found: 0,
                    });
                }
                let initial = kind.initial_stage();
                if state.stage == Stage::Dead {
                    return Err(illegal(
                        &state.key,
                        kind,
                        from,
                        state.stage,
                        "an entity enters Dead only through Write::DeadLetter",
                    ));
                }
                if state.stage != initial && !can_move(kind, initial, state.stage) {
                    return Err(illegal(
                        &state.key,
                        kind,
                        from,
                        state.stage,
                        "a new entity starts in its kind's initial stage or one step after it",
                    ));
                }
            }
            Some(o) => {
                if o.version != state.version {
                    return Err(LedgerError::VersionConflict {
                        key: state.key,
                        expected: state.version,
                        found: o.version,
                    });
                }
                if o.kind != kind {
                    return Err(LedgerError::KindMismatch {
                        key: state.key,
                        stored: o.kind,
                        given: kind,
                    });
                }
                if o.stage == Stage::Dead && state.stage != Stage::Dead {
                    return Err(illegal(
                        &state.key,
                        kind,
                        from,
                        state.stage,
                        "a dead entity leaves Dead only through Write::Revive",
                    ));
                }
                if state.stage == Stage::Dead && o.stage != Stage::Dead {
                    return Err(illegal(
                        &state.key,
                        kind,
                        from,
                        state.stage,
                        "an entity enters Dead only through Write::DeadLetter",
                    ));
                }
                if !can_move(kind, o.stage, state.stage) {
                    return Err(illegal(
                        &state.key,
                        kind,
                        from,
                        state.stage,
                        "not a legal move",
                    ));
                }
            }
        }
        if let Some(intent) = &state.intent {
            let holder = self.intent_holder(&intent.idempotency_key);
            if let Some(holder) = holder
                && holder != state.key
            {
                return Err(LedgerError::DuplicateIdempotencyKey {
                    idempotency_key: intent.idempotency_key.clone(),
                    key: state.key,
                    holder,
                });
            }
        }
        state.version = old.as_ref().map_or(1, |o| o.version + 1);
        state.created_at_ms = old.as_ref().map_or(self.now, |o| o.created_at_ms);
        state.updated_at_ms = self.now;
        // Everything that can fail other than storage happens above this line (the state is
        // encoded first thing in `store_state`): a lone `Put` runs without an undo log.
        let audit = (from != Some(state.stage) || !detail.is_empty())
            .then(|| self.audit_entry(&state.key, from, state.stage, actor, detail))
            .transpose()?;
        self.store_state(&state, old.as_ref())?;
        info.versions.insert(state.key.clone(), state.version);
        if let Some(bytes) = audit {
            self.insert_audit(&state.key, &bytes, info)?;
        }
        Ok(())
    }

    fn stored_discrepancy(&self, key: &str) -> Result<Option<serde_json::Value>, LedgerError> {
        self.discrepancies
            .get(key)?
            .map(|g| codec::decode("discrepancy", key, g.value()))
            .transpose()
    }

    /// Raises (or changes) a discrepancy, merged into the stored one (see
    /// `discrepancy::merged`); its order's trail says when it was raised and when its detail
    /// changed, not every pass that found it again.
    fn put_discrepancy(
        &mut self,
        key: &str,
        raised: &serde_json::Value,
        actor: &str,
        info: &mut CommitInfo,
    ) -> Result<(), LedgerError> {
        let stored = self.stored_discrepancy(key)?;
        let value = discrepancy::merged(raised, stored.as_ref(), self.now);
        if stored.as_ref() == Some(&value) {
            return Ok(());
        }
        let bytes = codec::encode("discrepancy", &value)?;
        self.set_bytes(BytesTable::Discrepancies, key, Some(&bytes))?;
        let change = match &stored {
            None => "raised",
            Some(s) if s.get("detail") != value.get("detail") => "changed",
            Some(_) => return Ok(()),
        };
        let line = format!("discrepancy {key} {change}: {}", detail_of(&value));
        self.note_on_order(&value, &line, actor, info)
    }

    /// A line in the audit trail of the order a discrepancy is about (when that order is in
    /// the ledger), without moving it: the order's trail tells its whole story.
    fn note_on_order(
        &mut self,
        discrepancy: &serde_json::Value,
        line: &str,
        actor: &str,
        info: &mut CommitInfo,
    ) -> Result<(), LedgerError> {
        let Some(order) = discrepancy.get("order").and_then(serde_json::Value::as_str) else {
            return Ok(());
        };
        match self.load_header(order)? {
            Some(header) => {
                self.append_audit(order, Some(header.stage), header.stage, actor, line, info)
            }
            None => Ok(()),
        }
    }

    /// Marks the discrepancy acknowledged and says so in its order's audit trail (when the
    /// order is in the ledger), so the trail shows who accepted which difference and when.
    fn acknowledge_discrepancy(
        &mut self,
        key: &str,
        actor: &str,
        note: Option<&str>,
        info: &mut CommitInfo,
    ) -> Result<(), LedgerError> {
        let stored = self
            .stored_discrepancy(key)?
            .ok_or_else(|| LedgerError::NotFound {
                key: key.to_owned(),
            })?;
        if discrepancy::is_acknowledged(&stored) {
            return Ok(());
        }
        let value = discrepancy::acknowledged(&stored, actor, note, self.now);
        let bytes = codec::encode("discrepancy", &value)?;
        self.set_bytes(BytesTable::Discrepancies, key, Some(&bytes))?;
        let mut line = format!("discrepancy {key} acknowledged: {}", detail_of(&stored));
        if let Some(note) = note.filter(|n| !n.trim().is_empty()) {
            line.push_str(&format!(" (reason: {})", note.trim()));
        }
        self.note_on_order(&stored, &line, actor, info)
    }

    fn set_link_of(
        &mut self,
        key: &str,
        name: &str,
        expected: &str,
        value: String,
        actor: &str,
        info: &mut CommitInfo,
    ) -> Result<(), LedgerError> {
        let Some(old) = self.load_state(key)? else {
            return Err(LedgerError::NotFound {
                key: key.to_owned(),
            });
        };
        if old.links.get(name).map(String::as_str) != Some(expected) {
            return Ok(());
        }
        let mut new = old.clone();
        let detail = format!("{name} {expected} replaced by {value}");
        new.links.insert(name.to_owned(), value);
        new.version = old.version + 1;
        new.updated_at_ms = self.now;
        self.store_state(&new, Some(&StateHeader::of(&old)))?;
        info.versions.insert(key.to_owned(), new.version);
        self.append_audit(key, Some(new.stage), new.stage, actor, &detail, info)
    }

    fn dead_letter(
        &mut self,
        mut letter: DeadLetter,
        actor: &str,
        info: &mut CommitInfo,
    ) -> Result<(), LedgerError> {
        let old = self.load_state(&letter.key)?;
        letter.dead_at_ms = self.now;
        let from = old.as_ref().map(|o| o.stage);
        if let Some(o) = &old {
            if o.stage != Stage::Dead {
                letter.stage_at_death = Some(o.stage);
            }
            let mut dead = o.clone();
            dead.stage = Stage::Dead;
            dead.retry_at_ms = None;
            dead.last_error = Some(letter.message.clone());
            dead.attempts = dead.attempts.max(letter.attempts);
            dead.version = o.version + 1;
            dead.updated_at_ms = self.now;
            self.store_state(&dead, Some(&StateHeader::of(o)))?;
            info.versions.insert(dead.key.clone(), dead.version);
        }
        let bytes = codec::encode("dead letter", &letter)?;
        self.set_bytes(BytesTable::DeadLetters, &letter.key, Some(&bytes))?;
        let detail = match &letter.remote_message {
            Some(remote) => format!("dead letter: {} (remote: {remote})", letter.message),
            None => format!("dead letter: {}", letter.message),
        };
        self.append_audit(&letter.key, from, Stage::Dead, actor, &detail, info)
    }

    fn revive(
        &mut self,
        key: &str,
        to: Stage,
        actor: &str,
        info: &mut CommitInfo,
    ) -> Result<(), LedgerError> {
        let old = self.load_state(key)?;
        let has_letter = self.dead.get(key)?.is_some();
        match old {
            Some(o) => {
                if o.stage != Stage::Dead {
                    return Err(illegal(
                        key,
                        o.kind,
                        Some(o.stage),
                        to,
                        "only a dead entity can be revived",
                    ));
                }
                if to == Stage::Dead || !o.kind.uses(to) {
                    return Err(illegal(
                        key,
                        o.kind,
                        Some(o.stage),
                        to,
                        "revive to a live stage of the entity's kind",
                    ));
                }
                let mut revived = o.clone();
                revived.stage = to;
                revived.attempts = 0;
                revived.retry_at_ms = None;
                revived.last_error = None;
                revived.version = o.version + 1;
                revived.updated_at_ms = self.now;
                self.store_state(&revived, Some(&StateHeader::of(&o)))?;
                info.versions.insert(key.to_owned(), revived.version);
                if has_letter {
                    self.set_bytes(BytesTable::DeadLetters, key, None)?;
                }
                self.append_audit(
                    key,
                    Some(Stage::Dead),
                    to,
                    actor,
                    "revived from the dead-letter queue",
                    info,
                )
            }
            None if has_letter => {
                self.set_bytes(BytesTable::DeadLetters, key, None)?;
                self.append_audit(key, None, to, actor, "dead letter removed; no entity was stored, so the record is ingested again from its source", info)
            }
            None => Err(LedgerError::NotFound {
                key: key.to_owned(),
            }),
        }
    }

    fn drop_dead_letter(
        &mut self,
        key: &str,
        actor: &str,
        info: &mut CommitInfo,
    ) -> Result<(), LedgerError> {
        if self.dead.get(key)?.is_none() {
            return Err(LedgerError::NotFound {
                key: key.to_owned(),
            });
        }
        let stage = self.load_header(key)?.map(|s| s.stage);
        self.set_bytes(BytesTable::DeadLetters, key, None)?;
        self.append_audit(
            key,
            stage,
            stage.unwrap_or(Stage::Dead),
            actor,
            "dead letter dropped by an operator; the entity stays dead",
            info,
        )
    }

    /// The stored entity as `T`: [`StateHeader`] on the hot path (every write), the whole
    /// [`EntityState`] only where the record itself is copied (dead letter, revive).
    fn load<T: serde::de::DeserializeOwned>(&self, key: &str) -> Result<Option<T>, LedgerError> {
        match self.states.get(key)? {
            Some(g) => Ok(Some(codec::decode("entity", key, g.value())?)),
            None => Ok(None),
        }
    }

    fn load_header(&self, key: &str) -> Result<Option<StateHeader>, LedgerError> {
        match self.written.get(key) {
            Some(Some(h)) => return Ok(Some(h.clone())),
            Some(None) => return self.load(key),
            None => {}
        }
        match self.cache.get(key) {
            Some(h) => Ok(Some(h.clone())),
            None => self.load(key),
        }
    }

    /// The whole state, with its record, for writes that copy it (dead letter, revive).
    fn load_state(&self, key: &str) -> Result<Option<EntityState>, LedgerError> {
        let mut state: Option<EntityState> = self.load(key)?;
        if let Some(s) = &mut state
            && let Some(g) = self.records.get(key)?
        {
            s.data = Record::from_stored(key, g.value())?;
        }
        Ok(state)
    }

    /// Writes the state and moves it in every index it appears in.
    fn store_state(
        &mut self,
        new: &EntityState,
        old: Option<&StateHeader>,
    ) -> Result<(), LedgerError> {
        let key = new.key.as_str();
        let bytes = codec::encode("entity", &StoredState::of(new))?;
        self.set_bytes(BytesTable::States, key, Some(&bytes))?;
        self.written
            .insert(key.to_owned(), Some(StateHeader::stored(new)));
        let record = new.data.json().as_bytes();
        // A record read from this entity's row, written at the version it was read with, is
        // that row's text (see `Record`): no need to read the row to compare.
        let unchanged = (old.is_some() && new.data.read_from() == Some(key))
            || self.records.get(key)?.is_some_and(|g| g.value() == record);
        if !unchanged {
            self.set_bytes(BytesTable::Records, key, Some(record))?;
        }

        let old_stage = old.map(|o| o.stage);
        if old_stage != Some(new.stage) {
            self.moves.push(StageMove {
                key: key.to_owned(),
                from: old_stage,
                to: new.stage,
            });
        }

        let old_due = old.and_then(|o| o.retry_at_ms);
        if old_due != new.retry_at_ms {
            if let Some(at) = old_due {
                self.set_due(at, key, false)?;
            }
            if let Some(at) = new.retry_at_ms {
                self.set_due(at, key, true)?;
            }
        }

        let old_intent = old
            .and_then(|o| o.intent.as_ref())
            .map(|i| i.idempotency_key.as_str());
        let new_intent = new.intent.as_ref().map(|i| i.idempotency_key.as_str());
        if old_intent != new_intent {
            if let Some(ik) = old_intent {
                self.set_intent(ik, None)?;
            }
            if let Some(ik) = new_intent {
                self.set_intent(ik, Some(key))?;
            }
        }

        // Most writes keep every link: only the ones that changed are formatted and moved.
        let empty = BTreeMap::new();
        let old_links = old.map_or(&empty, |o| &o.links);
        for (n, v) in old_links {
            if new.links.get(n) != Some(v) && INDEXED_LINKS.contains(&n.as_str()) {
                self.set_link(link_key(n, v), key, false);
            }
        }
        for (n, v) in &new.links {
            if old_links.get(n) != Some(v) && INDEXED_LINKS.contains(&n.as_str()) {
                self.set_link(link_key(n, v), key, true);
            }
        }
        Ok(())
    }

    fn append_audit(
        &mut self,
        key: &str,
        from: Option<Stage>,
        to: Stage,
        actor: &str,
        detail: &str,
        info: &mut CommitInfo,
    ) -> Result<(), LedgerError> {
        let bytes = self.audit_entry(key, from, to, actor, detail)?;
        self.insert_audit(key, &bytes, info)
    }

    /// The next audit entry, encoded; nothing is written yet.
    fn audit_entry(
        &self,
        key: &str,
        from: Option<Stage>,
        to: Stage,
        actor: &str,
        detail: &str,
    ) -> Result<Vec<u8>, LedgerError> {
        let entry = AuditEntry {
            seq: self.next_seq,
            at_ms: self.now,
            entity: key.to_owned(),
            from,
            to,
            actor: actor.to_owned(),
            detail: detail.to_owned(),
        };
        codec::encode("audit entry", &entry)
    }

    /// Appends the entry [`audit_entry`](Self::audit_entry) encoded last.
    fn insert_audit(
        &mut self,
        key: &str,
        bytes: &[u8],
        info: &mut CommitInfo,
    ) -> Result<(), LedgerError> {
        let seq = self.next_seq;
        self.audit.insert(seq, bytes)?;
        self.next_seq += 1;
        self.entity_audit.insert((key, seq), ())?;
        if self.undoable {
            self.undo.push(Undo::Audit(seq));
            self.undo.push(Undo::EntityAudit(key.to_owned(), seq));
        }
        info.audit_seqs.push(seq);
        Ok(())
    }

    fn bytes_table(&mut self, which: BytesTable) -> &mut BytesT<'t> {
        match which {
            BytesTable::States => &mut self.states,
            BytesTable::Records => &mut self.records,
            BytesTable::DeadLetters => &mut self.dead,
            BytesTable::Discrepancies => &mut self.discrepancies,
            BytesTable::Cursors => &mut self.cursors,
            BytesTable::Tokens => &mut self.tokens,
        }
    }

    fn set_bytes(
        &mut self,
        which: BytesTable,
        key: &str,
        value: Option<&[u8]>,
    ) -> Result<(), LedgerError> {
        let undoable = self.undoable;
        let table = self.bytes_table(which);
        let old = match value {
            Some(v) => table
                .insert(key, v)?
                .filter(|_| undoable)
                .map(|g| g.value().to_vec()),
            None => table
                .remove(key)?
                .filter(|_| undoable)
                .map(|g| g.value().to_vec()),
        };
        if undoable {
            self.undo.push(Undo::Bytes(which, key.to_owned(), old));
        }
        Ok(())
    }

    fn set_due(&mut self, at: i64, key: &str, present: bool) -> Result<(), LedgerError> {
        let before = if present {
            self.due.insert((at, key), ())?.is_some()
        } else {
            self.due.remove((at, key))?.is_some()
        };
        if self.undoable {
            self.undo.push(Undo::Due(at, key.to_owned(), before));
        }
        Ok(())
    }

    /// Who holds `idempotency_key` at this point of the transaction.
    fn intent_holder(&self, idempotency_key: &str) -> Option<String> {
        match self.intent_changes.get(idempotency_key) {
            Some(changed) => changed.clone(),
            None => self.intents.holder(idempotency_key),
        }
    }

    fn set_intent(
        &mut self,
        idempotency_key: &str,
        holder: Option<&str>,
    ) -> Result<(), LedgerError> {
        let before = self.undoable.then(|| self.intent_holder(idempotency_key));
        self.intent_changes
            .insert(idempotency_key.to_owned(), holder.map(str::to_owned));
        if let Some(before) = before {
            self.undo
                .push(Undo::Intent(idempotency_key.to_owned(), before));
        }
        Ok(())
    }

    fn set_link(&mut self, link: String, key: &str, present: bool) {
        self.link_changes.push(LinkChange {
            link,
            key: key.to_owned(),
            present,
        });
    }

    /// Reverts every mutation made after `mark`.
    fn rollback_to(&mut self, mark: Mark) -> Result<(), LedgerError> {
        self.moves.truncate(mark.moves);
        self.link_changes.truncate(mark.links);
        while self.undo.len() > mark.undo {
            let Some(undo) = self.undo.pop() else { break };
            match undo {
                Undo::Bytes(which, key, old) => {
                    if matches!(which, BytesTable::States) {
                        self.written.insert(key.clone(), None);
                    }
                    let table = self.bytes_table(which);
                    match old {
                        Some(v) => {
                            table.insert(key.as_str(), v.as_slice())?;
                        }
                        None => {
                            table.remove(key.as_str())?;
                        }
                    }
                }
                Undo::Due(at, key, before) => {
                    if before {
                        self.due.insert((at, key.as_str()), ())?;
                    } else {
                        self.due.remove((at, key.as_str()))?;
                    }
                }
                Undo::Intent(ik, before) => {
                    self.intent_changes.insert(ik, before);
                }
                Undo::Audit(seq) => {
                    self.audit.remove(seq)?;
                }
                Undo::EntityAudit(key, seq) => {
                    self.entity_audit.remove((key.as_str(), seq))?;
                }
            }
        }
        self.next_seq = mark.next_seq;
        Ok(())
    }
}
