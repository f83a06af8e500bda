//! `Ledger`: the handle every actor holds. Cheap to clone; writes go to the single writer
//! thread, reads to the reader threads (`reader_pool`).

use super::audit::AuditEntry;
use super::config::LedgerOptions;
use super::dead_letter::DeadLetter;
use super::derived;
use super::entity::EntityState;
use super::error::LedgerError;
use super::reader_pool::{self, ReaderPool};
use super::reads::LedgerReader;
use super::repair_log::RepairLog;
use super::schema;
use super::stage::{EntityKind, Stage};
use super::write::{CommitInfo, LedgerStats, Write};
use super::writer::{self, Counters, Msg, Request};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, mpsc};
use tokio::sync::oneshot;

#[derive(Clone)]
pub struct Ledger {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    reader: LedgerReader,
    readers: ReaderPool,
    sender: mpsc::Sender<Msg>,
    writer: Option<std::thread::JoinHandle<()>>,
    counters: Arc<Counters>,
    /// Whether redb had to repair the file when it was opened (it was not closed cleanly).
    repaired: bool,
}

impl Drop for Inner {
    /// Lets the readers and the writer finish what is queued, then waits for them, so the
    /// file is closed (and can be reopened) as soon as the last handle is gone.
    fn drop(&mut self) {
        self.readers.shutdown();
        let _ = self.sender.send(Msg::Shutdown);
        if let Some(handle) = self.writer.take() {
            let _ = handle.join();
        }
    }
}

impl std::fmt::Debug for Ledger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ledger")
            .field("path", &self.inner.path)
            .finish_non_exhaustive()
    }
}

/// redb's page cache. Its default (1 GiB) let a 10,000-order backfill grow the engine to
/// ~300 MB for pages it would rarely read again: the hot set is the stage indexes and the
/// entities of the current rounds. 16 MiB keeps a 100,000-order backfill under 200 MB at the
/// same throughput as 32 MiB (948 vs 949 orders/s; README, Benchmarks).
const CACHE_BYTES: usize = 16 * 1024 * 1024;

impl Ledger {
    /// Opens or creates the ledger file with the default [`LedgerOptions`]; see `open_with`.
    pub fn open(path: impl AsRef<Path>) -> Result<Ledger, LedgerError> {
        Self::open_with(path, LedgerOptions::default())
    }

    /// Opens or creates the ledger file, checks its schema version and starts the writer
    /// thread. Blocking (it may repair the file after a crash): call it at startup or in
    /// `spawn_blocking`.
    pub fn open_with(
        path: impl AsRef<Path>,
        options: LedgerOptions,
    ) -> Result<Ledger, LedgerError> {
        let path = path.as_ref().to_owned();
        let repair = Arc::new(RepairLog::new(&path));
        let log = repair.clone();
        let db = redb::Builder::new()
            .set_cache_size(CACHE_BYTES)
            .set_repair_callback(move |session| {
                log.progress(session.progress());
            })
            .create(&path)
            .map_err(|e| LedgerError::Open {
                path: path.clone(),
                source: Arc::new(e),
            })?;
        let repaired = repair.finished();
        schema::prepare(&db, &path, options)?;
        let index = derived::build(&db)?;
        let db = Arc::new(db);
        let counters = Arc::new(Counters::default());
        let (sender, handle) = writer::spawn(db.clone(), counters.clone(), index.clone(), options)
            .map_err(|e| LedgerError::Storage(Arc::new(redb::Error::Io(e))))?;
        let reader = LedgerReader::new(db, index);
        let readers = ReaderPool::start(&reader, reader_pool::default_threads())
            .map_err(|e| LedgerError::Storage(Arc::new(redb::Error::Io(e))))?;
        Ok(Ledger {
            inner: Arc::new(Inner {
                path,
                reader,
                readers,
                sender,
                writer: Some(handle),
                counters,
                repaired,
            }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Whether the file had to be repaired when it was opened: it was not closed cleanly
    /// and was written without quick repair.
    pub fn repaired_at_open(&self) -> bool {
        self.inner.repaired
    }

    /// Commits `writes` atomically and durably (fsync'd when this returns Ok), sharing the
    /// transaction with whatever else is queued. An error means none of `writes` happened.
    pub async fn commit(&self, writes: Vec<Write>) -> Result<CommitInfo, LedgerError> {
        let rx = self
            .send(vec![writes])
            .pop()
            .ok_or(LedgerError::WriterGone)?;
        rx.await.map_err(|_| LedgerError::WriterGone)?
    }

    /// Several independent commits guaranteed to share one transaction (one fsync), each
    /// accepted or rejected on its own: e.g. the per-order outcomes of one Xero batch call,
    /// where one stale order must not lose the other 49.
    pub async fn commit_each(
        &self,
        commits: Vec<Vec<Write>>,
    ) -> Vec<Result<CommitInfo, LedgerError>> {
        let mut out = Vec::new();
        for rx in self.send(commits) {
            out.push(rx.await.unwrap_or(Err(LedgerError::WriterGone)));
        }
        out
    }

    /// `commit` for non-async callers (the CLI). Panics if called from inside an async runtime
    /// thread; async code uses [`Ledger::commit`].
    pub fn commit_blocking(&self, writes: Vec<Write>) -> Result<CommitInfo, LedgerError> {
        let rx = self
            .send(vec![writes])
            .pop()
            .ok_or(LedgerError::WriterGone)?;
        rx.blocking_recv().map_err(|_| LedgerError::WriterGone)?
    }

    fn send(
        &self,
        commits: Vec<Vec<Write>>,
    ) -> Vec<oneshot::Receiver<Result<CommitInfo, LedgerError>>> {
        let mut requests = Vec::with_capacity(commits.len());
        let mut receivers = Vec::with_capacity(commits.len());
        for writes in commits {
            let (reply, rx) = oneshot::channel();
            requests.push(Request { writes, reply });
            receivers.push(rx);
        }
        // If the writer is gone the requests (and their reply senders) are dropped, and each
        // receiver reports `WriterGone`.
        let _ = self.inner.sender.send(Msg::Batch(requests));
        receivers
    }

    /// Writer counters since open (transactions vs. commits shows how well commits group).
    pub fn stats(&self) -> LedgerStats {
        self.inner.counters.snapshot()
    }

    /// A blocking reader for non-async callers. It keeps the file open while it lives.
    pub fn reader(&self) -> LedgerReader {
        self.inner.reader.clone()
    }

    async fn read<T, F>(&self, f: F) -> Result<T, LedgerError>
    where
        T: Send + 'static,
        F: FnOnce(&LedgerReader) -> Result<T, LedgerError> + Send + 'static,
    {
        self.inner.readers.read(f).await
    }

    pub async fn get(&self, key: &str) -> Result<Option<EntityState>, LedgerError> {
        let key = key.to_owned();
        self.read(move |r| r.get(&key)).await
    }

    /// [`LedgerReader::get_many`] off the async runtime.
    pub async fn get_many(
        &self,
        keys: Vec<String>,
    ) -> Result<Vec<Option<EntityState>>, LedgerError> {
        self.read(move |r| r.get_many(&keys)).await
    }

    /// See [`LedgerReader::stages_of`].
    pub async fn stages_of(&self, keys: Vec<String>) -> Result<Vec<Option<Stage>>, LedgerError> {
        self.read(move |r| r.stages_of(&keys)).await
    }

    pub async fn by_stage(
        &self,
        stage: Stage,
        limit: usize,
    ) -> Result<Vec<EntityState>, LedgerError> {
        self.read(move |r| r.by_stage(stage, limit)).await
    }

    pub async fn count_in_stage(&self, stage: Stage, kind: EntityKind) -> Result<u64, LedgerError> {
        self.read(move |r| r.count_in_stage(stage, kind)).await
    }

    pub async fn due_before(
        &self,
        now_ms: i64,
        limit: usize,
    ) -> Result<Vec<EntityState>, LedgerError> {
        self.read(move |r| r.due_before(now_ms, limit)).await
    }

    pub async fn next_due_ms(&self) -> Result<Option<i64>, LedgerError> {
        self.read(|r| r.next_due_ms()).await
    }

    pub async fn with_intent(&self) -> Result<Vec<EntityState>, LedgerError> {
        self.read(|r| r.with_intent()).await
    }

    pub async fn by_idempotency_key(
        &self,
        idempotency_key: &str,
    ) -> Result<Option<EntityState>, LedgerError> {
        let ik = idempotency_key.to_owned();
        self.read(move |r| r.by_idempotency_key(&ik)).await
    }

    pub async fn by_link(&self, name: &str, value: &str) -> Result<Vec<EntityState>, LedgerError> {
        let (name, value) = (name.to_owned(), value.to_owned());
        self.read(move |r| r.by_link(&name, &value)).await
    }

    pub async fn by_links(
        &self,
        name: &str,
        values: Vec<String>,
    ) -> Result<Vec<Vec<EntityState>>, LedgerError> {
        let name = name.to_owned();
        self.read(move |r| r.by_links(&name, &values)).await
    }

    pub async fn counts_by_stage(&self) -> Result<BTreeMap<Stage, u64>, LedgerError> {
        self.read(|r| r.counts_by_stage()).await
    }

    pub async fn dead_letters(&self) -> Result<Vec<DeadLetter>, LedgerError> {
        self.read(|r| r.dead_letters()).await
    }

    pub async fn dead_letter(&self, key: &str) -> Result<Option<DeadLetter>, LedgerError> {
        let key = key.to_owned();
        self.read(move |r| r.dead_letter(&key)).await
    }

    pub async fn audit_for(&self, key: &str) -> Result<Vec<AuditEntry>, LedgerError> {
        let key = key.to_owned();
        self.read(move |r| r.audit_for(&key)).await
    }

    pub async fn audit_tail(&self, n: usize) -> Result<Vec<AuditEntry>, LedgerError> {
        self.read(move |r| r.audit_tail(n)).await
    }

    /// See [`LedgerReader::audit_matching`].
    pub async fn audit_matching(
        &self,
        needle: &str,
        since_ms: i64,
        until_ms: i64,
    ) -> Result<Vec<AuditEntry>, LedgerError> {
        let needle = needle.to_owned();
        self.read(move |r| r.audit_matching(&needle, since_ms, until_ms))
            .await
    }

    pub async fn created_at_ms(&self) -> Result<Option<u64>, LedgerError> {
        self.read(|r| r.created_at_ms()).await
    }

    pub async fn cursor(&self, name: &str) -> Result<Option<serde_json::Value>, LedgerError> {
        let name = name.to_owned();
        self.read(move |r| r.cursor(&name)).await
    }

    pub async fn token(&self, name: &str) -> Result<Option<Vec<u8>>, LedgerError> {
        let name = name.to_owned();
        self.read(move |r| r.token(&name)).await
    }

    pub async fn discrepancies(&self) -> Result<Vec<(String, serde_json::Value)>, LedgerError> {
        self.read(|r| r.discrepancies()).await
    }

    pub async fn search(&self, query: &str, limit: usize) -> Result<Vec<EntityState>, LedgerError> {
        let query = query.to_owned();
        self.read(move |r| r.search(&query, limit)).await
    }

    /// For the Xero client's `TokenStore`: the persisted token bytes under `name`.
    pub async fn load_token(&self, name: &str) -> Result<Option<Vec<u8>>, LedgerError> {
        self.token(name).await
    }

    /// For the Xero client's `TokenStore`: durably replaces the token bytes under `name`
    /// (returns only after the fsync, so a rotated refresh token is never lost).
    pub async fn save_token(&self, name: &str, bytes: Vec<u8>) -> Result<(), LedgerError> {
        self.commit(vec![Write::SetToken {
            name: name.to_owned(),
            bytes,
        }])
        .await
        .map(|_| ())
    }
}
