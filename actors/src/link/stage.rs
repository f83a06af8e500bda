//! The shell shared by every entity actor: scheduling, pause/resume and statistics.
//!
//! The work of a stage (contacts, invoices, payments, ...) is a [`StageWorker`] round: pick
//! ready entities from the ledger, call the remote system in batches, commit outcomes. A
//! round can wait a long time on the Xero budget, so it runs as a task beside the actor and
//! reports back with a message; the actor's mailbox therefore stays free for pause, resume
//! and status while work is in flight. A round that returns an error (the ledger failed, an
//! invariant broke) fails the actor, and the link supervisor restarts it.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef};
use serde::Serialize;

/// What one round did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RoundReport {
    /// Entities picked up this round.
    pub picked: usize,
    /// Entities that moved forward.
    pub done: usize,
    /// Entities that failed and will be retried.
    pub retrying: usize,
    /// Entities dead-lettered.
    pub dead: usize,
}

impl RoundReport {
    pub fn add(&mut self, other: RoundReport) {
        self.picked += other.picked;
        self.done += other.done;
        self.retrying += other.retrying;
        self.dead += other.dead;
    }
}

/// One stage's work, independent of the actor machinery so it can be tested directly.
pub trait StageWorker: Send + Sync + 'static {
    fn round(&self) -> impl Future<Output = Result<RoundReport, RoundError>> + Send;
}

/// Why a round failed as a whole: shown in the console and handed to the supervisor.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct RoundError(pub String);

impl From<&str> for RoundError {
    fn from(s: &str) -> Self {
        Self(s.to_owned())
    }
}

impl From<String> for RoundError {
    fn from(s: String) -> Self {
        Self(s)
    }
}

/// Live counters of one stage, shared with the status publisher.
#[derive(Debug, Default)]
pub struct StageStats {
    pub paused: AtomicBool,
    pub running: AtomicBool,
    pub in_flight: AtomicU64,
    pub done: AtomicU64,
    pub retrying: AtomicU64,
    pub dead: AtomicU64,
    pub rounds: AtomicU64,
    pub last_error: parking_lot::Mutex<Option<String>>,
}

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct StageSnapshot {
    pub paused: bool,
    pub busy: bool,
    pub in_flight: u64,
    pub done: u64,
    pub retrying: u64,
    pub dead: u64,
    pub rounds: u64,
    pub last_error: Option<String>,
}

impl StageStats {
    pub fn snapshot(&self) -> StageSnapshot {
        StageSnapshot {
            paused: self.paused.load(Ordering::Relaxed),
            busy: self.running.load(Ordering::Relaxed),
            in_flight: self.in_flight.load(Ordering::Relaxed),
            done: self.done.load(Ordering::Relaxed),
            retrying: self.retrying.load(Ordering::Relaxed),
            dead: self.dead.load(Ordering::Relaxed),
            rounds: self.rounds.load(Ordering::Relaxed),
            last_error: self.last_error.lock().clone(),
        }
    }
}

pub enum StageMsg {
    /// Work may be waiting: start a round unless one is running or the stage is paused.
    Kick,
    RoundDone(Result<RoundReport, RoundError>),
    Pause,
    Resume,
}

pub struct StageActor<W>(std::marker::PhantomData<W>);

impl<W> Default for StageActor<W> {
    fn default() -> Self {
        Self(std::marker::PhantomData)
    }
}

pub struct StageArgs<W> {
    /// The stage's short name (`invoices`), used as the metrics label.
    pub name: String,
    pub worker: Arc<W>,
    pub stats: Arc<StageStats>,
    /// Registered names of the stages to kick after progress (the next steps of the flow).
    pub downstream: Vec<String>,
    /// How often to look for work that became due (retries) without being kicked.
    pub tick: Duration,
}

pub struct StageState<W> {
    name: String,
    worker: Arc<W>,
    stats: Arc<StageStats>,
    downstream: Vec<String>,
    running: bool,
    kicked_while_running: bool,
}

/// Sends `Kick` to a stage by its registered name; silently skips a stage that is restarting.
pub fn kick(name: &str) {
    if let Some(cell) = ractor::registry::where_is(name) {
        let _ = ActorRef::<StageMsg>::from(cell).cast(StageMsg::Kick);
    }
}

impl<W: StageWorker> StageState<W> {
    fn start_round(&mut self, myself: &ActorRef<StageMsg>) {
        if self.running || self.stats.paused.load(Ordering::Relaxed) {
            self.kicked_while_running |= self.running;
            return;
        }
        self.running = true;
        self.kicked_while_running = false;
        self.stats.running.store(true, Ordering::Relaxed);
        let worker = self.worker.clone();
        let me = myself.clone();
        tokio::spawn(async move {
            // A panic inside the round becomes an error for the actor, not a silent hang.
            let result = tokio::spawn(async move { worker.round().await })
                .await
                .unwrap_or_else(|e| Err(RoundError(format!("round panicked: {e}"))));
            let _ = me.cast(StageMsg::RoundDone(result));
        });
    }
}

impl<W: StageWorker> Actor for StageActor<W> {
    type Msg = StageMsg;
    type State = StageState<W>;
    type Arguments = StageArgs<W>;

    async fn pre_start(
        &self,
        myself: ActorRef<StageMsg>,
        args: StageArgs<W>,
    ) -> Result<StageState<W>, ActorProcessingErr> {
        myself.send_interval(args.tick, || StageMsg::Kick);
        let _ = myself.cast(StageMsg::Kick);
        args.stats.running.store(false, Ordering::Relaxed);
        Ok(StageState {
            name: args.name,
            worker: args.worker,
            stats: args.stats,
            downstream: args.downstream,
            running: false,
            kicked_while_running: false,
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<StageMsg>,
        msg: StageMsg,
        state: &mut StageState<W>,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            StageMsg::Kick => state.start_round(&myself),
            StageMsg::Pause => state.stats.paused.store(true, Ordering::Relaxed),
            StageMsg::Resume => {
                state.stats.paused.store(false, Ordering::Relaxed);
                state.start_round(&myself);
            }
            StageMsg::RoundDone(result) => {
                state.running = false;
                state.stats.running.store(false, Ordering::Relaxed);
                state.stats.rounds.fetch_add(1, Ordering::Relaxed);
                let report = match result {
                    Ok(r) => r,
                    Err(e) => {
                        *state.stats.last_error.lock() = Some(e.0.clone());
                        return Err(e.into());
                    }
                };
                state
                    .stats
                    .done
                    .fetch_add(report.done as u64, Ordering::Relaxed);
                state
                    .stats
                    .retrying
                    .fetch_add(report.retrying as u64, Ordering::Relaxed);
                state
                    .stats
                    .dead
                    .fetch_add(report.dead as u64, Ordering::Relaxed);
                for (outcome, n) in [
                    ("done", report.done),
                    ("retrying", report.retrying),
                    ("dead", report.dead),
                ] {
                    if n > 0 {
                        metrics::counter!("tally_operations_total", "actor" => state.name.clone(), "outcome" => outcome)
                            .increment(n as u64);
                    }
                }
                if report.done > 0 {
                    for name in &state.downstream {
                        kick(name);
                    }
                }
                // Keep going while there is work; otherwise wait for a kick or the tick.
                if report.picked > 0 || state.kicked_while_running {
                    state.start_round(&myself);
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use super::*;

    /// A worker with `pending` items that processes up to 3 per round.
    struct Countdown {
        pending: AtomicUsize,
        fail_once: AtomicBool,
    }

    impl StageWorker for Countdown {
        async fn round(&self) -> Result<RoundReport, RoundError> {
            if self.fail_once.swap(false, Ordering::SeqCst) {
                return Err("ledger unavailable".into());
            }
            let left = self.pending.load(Ordering::SeqCst);
            let n = left.min(3);
            self.pending.fetch_sub(n, Ordering::SeqCst);
            Ok(RoundReport {
                picked: n,
                done: n,
                ..Default::default()
            })
        }
    }

    #[tokio::test]
    async fn rounds_repeat_until_drained_and_pause_stops_them() {
        let worker = Arc::new(Countdown {
            pending: AtomicUsize::new(10),
            fail_once: AtomicBool::new(false),
        });
        let stats = Arc::new(StageStats::default());
        let (actor, handle) = Actor::spawn(
            None,
            StageActor::<Countdown>::default(),
            StageArgs {
                name: "test".into(),
                worker: worker.clone(),
                stats: stats.clone(),
                downstream: vec![],
                tick: Duration::from_secs(60),
            },
        )
        .await
        .unwrap();
        for _ in 0..200 {
            if stats.snapshot().done == 10 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(stats.snapshot().done, 10);
        actor.cast(StageMsg::Pause).unwrap();
        worker.pending.store(5, Ordering::SeqCst);
        actor.cast(StageMsg::Kick).unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(stats.snapshot().done, 10, "paused stage must not run");
        actor.cast(StageMsg::Resume).unwrap();
        for _ in 0..200 {
            if stats.snapshot().done == 15 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(stats.snapshot().done, 15);
        actor.stop(None);
        handle.await.unwrap();
    }

    #[tokio::test]
    async fn a_failed_round_fails_the_actor_for_its_supervisor() {
        let worker = Arc::new(Countdown {
            pending: AtomicUsize::new(1),
            fail_once: AtomicBool::new(true),
        });
        let stats = Arc::new(StageStats::default());
        let (_actor, handle) = Actor::spawn(
            None,
            StageActor::<Countdown>::default(),
            StageArgs {
                name: "test".into(),
                worker,
                stats: stats.clone(),
                downstream: vec![],
                tick: Duration::from_secs(60),
            },
        )
        .await
        .unwrap();
        tokio::time::timeout(Duration::from_secs(2), handle)
            .await
            .expect("actor exits")
            .unwrap();
        assert_eq!(
            stats.snapshot().last_error.as_deref(),
            Some("ledger unavailable")
        );
    }
}
