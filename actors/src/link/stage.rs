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

use ractor::concurrency::JoinHandle;
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

    /// When work that no kick will announce falls due (a failed entity's retry time), in Unix
    /// milliseconds; `None` when only kicks or the idle tick bring work. Asked after a round
    /// that found nothing, so an idle stage sleeps until exactly then instead of polling.
    fn next_due_ms(&self) -> impl Future<Output = Option<i64>> + Send {
        async { None }
    }
}

/// When a stage runs without being kicked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schedule {
    /// On a fixed period, whatever happened (polling a remote system: Magento orders, stock).
    Every(Duration),
    /// At the worker's [`StageWorker::next_due_ms`], else after `idle`; never sooner than
    /// `floor` after a round (a due time already past, e.g. of another stage's entity, must not
    /// turn into a busy loop). Work that arrives by kick starts at once either way.
    WhenDue { idle: Duration, floor: Duration },
}

impl Schedule {
    /// How long to sleep after an idle round, given the next due time and now (Unix ms).
    pub fn sleep_for(self, next_due_ms: Option<i64>, now_ms: i64) -> Duration {
        match self {
            Schedule::Every(d) => d,
            Schedule::WhenDue { idle, floor } => match next_due_ms {
                Some(at) => Duration::from_millis(u64::try_from(at - now_ms).unwrap_or(0))
                    .clamp(floor, idle.max(floor)),
                None => idle.max(floor),
            },
        }
    }
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
    /// A round finished; with the worker's next due time when it found nothing to do.
    RoundDone(Result<RoundReport, RoundError>, Option<i64>),
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
    /// When to look for work without being kicked.
    pub schedule: Schedule,
}

pub struct StageState<W> {
    name: String,
    worker: Arc<W>,
    stats: Arc<StageStats>,
    downstream: Vec<String>,
    schedule: Schedule,
    /// The pending wake-up of a [`Schedule::WhenDue`] stage; replaced after every idle round.
    wake: Option<JoinHandle<Result<(), ractor::MessagingErr<StageMsg>>>>,
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
        let ask_due = matches!(self.schedule, Schedule::WhenDue { .. });
        tokio::spawn(async move {
            // A panic inside the round becomes an error for the actor, not a silent hang.
            let result = tokio::spawn({
                let worker = worker.clone();
                async move { worker.round().await }
            })
            .await
            .unwrap_or_else(|e| Err(RoundError(format!("round panicked: {e}"))));
            let due = match &result {
                Ok(r) if ask_due && r.picked == 0 => worker.next_due_ms().await,
                _ => None,
            };
            let _ = me.cast(StageMsg::RoundDone(result, due));
        });
    }

    /// Arms the one wake-up of an idle `WhenDue` stage (a kick may come first; the round it
    /// starts re-arms it).
    fn sleep_until_due(&mut self, myself: &ActorRef<StageMsg>, next_due_ms: Option<i64>) {
        if let Some(old) = self.wake.take() {
            old.abort();
        }
        let now = chrono::Utc::now().timestamp_millis();
        let after = self.schedule.sleep_for(next_due_ms, now);
        self.wake = Some(myself.send_after(after, || StageMsg::Kick));
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
        if let Schedule::Every(period) = args.schedule {
            myself.send_interval(period, || StageMsg::Kick);
        }
        let _ = myself.cast(StageMsg::Kick);
        args.stats.running.store(false, Ordering::Relaxed);
        Ok(StageState {
            name: args.name,
            worker: args.worker,
            stats: args.stats,
            downstream: args.downstream,
            schedule: args.schedule,
            wake: None,
            running: false,
            kicked_while_running: false,
        })
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<StageMsg>,
        state: &mut StageState<W>,
    ) -> Result<(), ActorProcessingErr> {
        if let Some(wake) = state.wake.take() {
            wake.abort();
        }
        Ok(())
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
            StageMsg::RoundDone(result, next_due) => {
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
                // Keep going while there is work; otherwise wait for a kick or the schedule.
                if report.picked > 0 || state.kicked_while_running {
                    state.start_round(&myself);
                } else if matches!(state.schedule, Schedule::WhenDue { .. }) {
                    state.sleep_until_due(&myself, next_due);
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
                schedule: Schedule::Every(Duration::from_secs(60)),
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
                schedule: Schedule::Every(Duration::from_secs(60)),
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

    #[test]
    fn an_idle_stage_sleeps_until_the_next_due_time_within_its_floor_and_idle_tick() {
        let s = Schedule::WhenDue {
            idle: Duration::from_secs(30),
            floor: Duration::from_secs(1),
        };
        let now = 1_000_000;
        assert_eq!(s.sleep_for(None, now), Duration::from_secs(30));
        assert_eq!(
            s.sleep_for(Some(now + 3_500), now),
            Duration::from_millis(3_500)
        );
        assert_eq!(
            s.sleep_for(Some(now - 10), now),
            Duration::from_secs(1),
            "past: floor"
        );
        assert_eq!(
            s.sleep_for(Some(now + 3_600_000), now),
            Duration::from_secs(30)
        );
        assert_eq!(
            Schedule::Every(Duration::from_secs(5)).sleep_for(Some(now), now),
            Duration::from_secs(5)
        );
    }

    /// Nothing to do until `due_at` (Unix ms); then one item.
    struct DueLater {
        due_at: i64,
        done: AtomicBool,
    }

    impl StageWorker for DueLater {
        async fn round(&self) -> Result<RoundReport, RoundError> {
            let now = chrono::Utc::now().timestamp_millis();
            if now < self.due_at || self.done.swap(true, Ordering::SeqCst) {
                return Ok(RoundReport::default());
            }
            Ok(RoundReport {
                picked: 1,
                done: 1,
                ..Default::default()
            })
        }

        async fn next_due_ms(&self) -> Option<i64> {
            (!self.done.load(Ordering::SeqCst)).then_some(self.due_at)
        }
    }

    #[tokio::test]
    async fn a_when_due_stage_wakes_for_a_retry_without_a_kick_and_otherwise_stays_asleep() {
        let worker = Arc::new(DueLater {
            due_at: chrono::Utc::now().timestamp_millis() + 300,
            done: AtomicBool::new(false),
        });
        let stats = Arc::new(StageStats::default());
        let (actor, handle) = Actor::spawn(
            None,
            StageActor::<DueLater>::default(),
            StageArgs {
                name: "test".into(),
                worker,
                stats: stats.clone(),
                downstream: vec![],
                // Without the due time the retry would wait a minute.
                schedule: Schedule::WhenDue {
                    idle: Duration::from_secs(60),
                    floor: Duration::from_millis(10),
                },
            },
        )
        .await
        .unwrap();
        for _ in 0..1000 {
            if stats.snapshot().done == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(stats.snapshot().done, 1, "woken at the due time");
        // Nothing is due any more: no round runs until a kick (the idle tick is a minute).
        tokio::time::sleep(Duration::from_millis(100)).await;
        let rounds = stats.snapshot().rounds;
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(
            stats.snapshot().rounds,
            rounds,
            "an idle stage does not poll"
        );
        actor.cast(StageMsg::Kick).unwrap();
        for _ in 0..1000 {
            if stats.snapshot().rounds > rounds {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(stats.snapshot().rounds, rounds + 1, "a kick runs at once");
        actor.stop(None);
        handle.await.unwrap();
    }
}
