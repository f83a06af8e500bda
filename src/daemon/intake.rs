//! Queues between the webhook handlers and the engine.
//!
//! Xero wants an answer within 5 seconds and the engine's reaction to an event is a Xero API call
//! that may wait on the rate budget for much longer, so handlers only enqueue and a worker per
//! source feeds the engine. A full queue answers 503, which makes the sender retry later rather
//! than losing the event.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Events waiting per source before handlers start answering 503.
pub const QUEUE_CAPACITY: usize = 4096;

/// The sending half, held by the handlers.
pub struct Intake<T> {
    tx: mpsc::Sender<T>,
    /// Enqueued and not yet handed to the engine (the engine call may still be running).
    pending: Arc<AtomicUsize>,
}

impl<T> Clone for Intake<T> {
    fn clone(&self) -> Self {
        Self {
            tx: self.tx.clone(),
            pending: self.pending.clone(),
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum EnqueueError {
    Full,
    Closed,
}

impl<T: Send + 'static> Intake<T> {
    /// Starts the worker: `deliver` is awaited for one item at a time, in arrival order. When
    /// `stop` fires the queue is closed to new items and what is already in it is still delivered.
    pub fn spawn<F, Fut>(
        name: &'static str,
        stop: CancellationToken,
        deliver: F,
    ) -> (Self, JoinHandle<()>)
    where
        F: Fn(T) -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), String>> + Send,
    {
        let (tx, mut rx) = mpsc::channel::<T>(QUEUE_CAPACITY);
        let pending = Arc::new(AtomicUsize::new(0));
        let counter = pending.clone();
        let worker = tokio::spawn(async move {
            let mut closed = false;
            loop {
                let next = if closed {
                    rx.recv().await
                } else {
                    tokio::select! {
                        biased;
                        item = rx.recv() => item,
                        () = stop.cancelled() => {
                            rx.close();
                            closed = true;
                            continue;
                        }
                    }
                };
                let Some(item) = next else { break };
                if let Err(e) = deliver(item).await {
                    tracing::warn!(source = name, error = %e, "Engine refused a webhook event.");
                }
                counter.fetch_sub(1, Ordering::AcqRel);
            }
        });
        (Self { tx, pending }, worker)
    }

    pub fn try_enqueue(&self, item: T) -> Result<(), EnqueueError> {
        self.pending.fetch_add(1, Ordering::AcqRel);
        self.tx.try_send(item).map_err(|e| {
            self.pending.fetch_sub(1, Ordering::AcqRel);
            match e {
                mpsc::error::TrySendError::Full(_) => EnqueueError::Full,
                mpsc::error::TrySendError::Closed(_) => EnqueueError::Closed,
            }
        })
    }

    /// Items accepted but not yet fully handed to the engine.
    pub fn pending(&self) -> usize {
        self.pending.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[tokio::test]
    async fn stop_closes_the_queue_but_delivers_what_was_in_it() {
        let got = Arc::new(Mutex::new(Vec::new()));
        let stop = CancellationToken::new();
        let sink = got.clone();
        let (intake, worker) = Intake::spawn("test", stop.clone(), move |n: u32| {
            let sink = sink.clone();
            async move {
                sink.lock().unwrap().push(n);
                Ok(())
            }
        });
        for n in 0..5 {
            intake.try_enqueue(n).unwrap();
        }
        stop.cancel();
        worker.await.unwrap();
        assert_eq!(*got.lock().unwrap(), vec![0, 1, 2, 3, 4]);
        assert_eq!(intake.try_enqueue(9), Err(EnqueueError::Closed));
        assert_eq!(intake.pending(), 0);
    }
}
