//! The threads that run the ledger's reads for async callers.
//!
//! A read is a short CPU-bound job (a redb lookup and a JSON decode). On tokio's blocking
//! pool they ran on up to four threads on a 2-core machine, next to the two runtime workers
//! and the writer: more threads than cores, all busy, each with its own allocator pages. A
//! backfill ran 7 % faster with one reading thread than with four (README, Benchmarks).
//! Apart from tokio's pool, a read also never queues behind what else uses that pool (a DNS
//! lookup, a file write) and that never queues behind the reads.

use super::error::LedgerError;
use super::reads::LedgerReader;
use parking_lot::Mutex;
use std::sync::{Arc, mpsc};
use tokio::sync::oneshot;

type Job = Box<dyn FnOnce(&LedgerReader) + Send>;

pub(crate) struct ReaderPool {
    /// `None` once shut down: the threads see the channel close and stop.
    sender: Mutex<Option<mpsc::Sender<Job>>>,
    threads: Mutex<Vec<std::thread::JoinHandle<()>>>,
}

/// Half the cores, at least one: the runtime's workers and the writer need the rest.
pub(crate) fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1))
}

impl ReaderPool {
    pub(crate) fn start(reader: &LedgerReader, threads: usize) -> std::io::Result<Self> {
        let (sender, receiver) = mpsc::channel::<Job>();
        let receiver = Arc::new(Mutex::new(receiver));
        let mut handles = Vec::new();
        for i in 0..threads.max(1) {
            let reader = reader.clone();
            let receiver = receiver.clone();
            let handle = std::thread::Builder::new()
                .name(format!("tally-ledger-rd{i}"))
                .spawn(move || {
                    loop {
                        // The lock is held only while waiting for the next job.
                        let job = receiver.lock().recv();
                        let Ok(job) = job else { return };
                        // A read that panics drops its reply (the caller gets an error);
                        // the thread carries on with the next one.
                        let _ =
                            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(&reader)));
                    }
                })?;
            handles.push(handle);
        }
        Ok(Self {
            sender: Mutex::new(Some(sender)),
            threads: Mutex::new(handles),
        })
    }

    /// Runs `f` on a reader thread and waits for its answer.
    pub(crate) async fn read<T, F>(&self, f: F) -> Result<T, LedgerError>
    where
        T: Send + 'static,
        F: FnOnce(&LedgerReader) -> Result<T, LedgerError> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |reader| {
            let _ = tx.send(f(reader));
        });
        let sent = match self.sender.lock().as_ref() {
            Some(sender) => sender.send(job).is_ok(),
            None => false,
        };
        if !sent {
            return Err(LedgerError::ReadTask("the ledger is closed".into()));
        }
        rx.await
            .map_err(|_| LedgerError::ReadTask("the read panicked".into()))?
    }

    /// Stops the threads once the reads queued so far are done, and waits for them, so the
    /// file is closed when the ledger is.
    pub(crate) fn shutdown(&self) {
        self.sender.lock().take();
        for handle in self.threads.lock().drain(..) {
            let _ = handle.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::Ledger;

    #[tokio::test]
    async fn a_panicking_read_fails_alone_and_reads_go_on() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::open(dir.path().join("t.redb")).unwrap();
        let pool = ReaderPool::start(&ledger.reader(), 1).unwrap();
        let failed = pool
            .read(|_| -> Result<(), LedgerError> { panic!("a bug in a read") })
            .await;
        assert!(
            matches!(failed, Err(LedgerError::ReadTask(_))),
            "{failed:?}"
        );
        let count = pool.read(|r| r.counts_by_stage()).await.unwrap();
        assert!(count.values().all(|n| *n == 0));
        pool.shutdown();
        let closed = pool.read(|r| r.counts_by_stage()).await;
        assert!(
            matches!(closed, Err(LedgerError::ReadTask(_))),
            "{closed:?}"
        );
    }
}
