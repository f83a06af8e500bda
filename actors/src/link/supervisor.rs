//! The link supervisor: restarts failed children with backoff and a restart-intensity limit.
//!
//! ractor only *notifies* a parent when a child dies (its default is to stop the parent), so
//! restart policy is ours: a child that fails is respawned after an exponential backoff; if
//! children fail more than `max_restarts` times within `window`, something is structurally
//! wrong (bad credentials, a corrupt ledger) and the supervisor stops itself with a reason
//! instead of spinning, which the binary reports.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef, SpawnErr, SupervisionEvent};
use serde::Serialize;

/// Spawns one child linked to the given supervisor cell.
pub type SpawnFn = Arc<
    dyn Fn(ActorCell) -> Pin<Box<dyn Future<Output = Result<ActorCell, SpawnErr>> + Send>>
        + Send
        + Sync,
>;

/// How to start one child, by name.
#[derive(Clone)]
pub struct ChildSpec {
    pub name: String,
    pub spawn: SpawnFn,
}

impl ChildSpec {
    pub fn new<F, Fut>(name: impl Into<String>, spawn: F) -> Self
    where
        F: Fn(ActorCell) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<ActorCell, SpawnErr>> + Send + 'static,
    {
        Self {
            name: name.into(),
            spawn: Arc::new(move |cell| Box::pin(spawn(cell))),
        }
    }
}

/// Erlang-style restart intensity with exponential backoff between attempts.
#[derive(Debug, Clone, Copy)]
pub struct RestartPolicy {
    pub max_restarts: usize,
    pub window: Duration,
    pub base_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for RestartPolicy {
    fn default() -> Self {
        Self {
            max_restarts: 10,
            window: Duration::from_secs(60),
            base_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(10),
        }
    }
}

impl RestartPolicy {
    fn backoff(&self, recent_failures: usize) -> Duration {
        let exp = recent_failures.saturating_sub(1).min(16) as u32;
        self.base_backoff
            .saturating_mul(2u32.saturating_pow(exp))
            .min(self.max_backoff)
    }
}

/// What the console and `tally status` show for each child.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ChildStatus {
    pub name: String,
    pub running: bool,
    pub restarts: u64,
    pub last_failure: Option<String>,
}

/// Shared view of the children's health, readable without messaging the supervisor.
#[derive(Clone, Default)]
pub struct SupervisorView(Arc<Mutex<Vec<ChildStatus>>>);

impl SupervisorView {
    pub fn children(&self) -> Vec<ChildStatus> {
        self.0.lock().clone()
    }

    /// Changes whenever a child stops, restarts or comes back, without cloning the list.
    pub fn mark(&self) -> u64 {
        self.0.lock().iter().fold(0u64, |acc, c| {
            acc.wrapping_mul(31)
                .wrapping_add(c.restarts * 2 + u64::from(c.running))
        })
    }
}

pub struct LinkSupervisor;

pub struct SupervisorArgs {
    pub children: Vec<ChildSpec>,
    pub policy: RestartPolicy,
    pub view: SupervisorView,
}

pub enum SupervisorMsg {
    /// Respawn a child once its backoff has passed.
    Respawn(String),
}

struct Child {
    spec: ChildSpec,
    cell: Option<ActorCell>,
    failures: VecDeque<Instant>,
    restarts: u64,
    last_failure: Option<String>,
}

pub struct SupervisorState {
    children: Vec<Child>,
    by_id: HashMap<ractor::ActorId, usize>,
    policy: RestartPolicy,
    view: SupervisorView,
}

impl SupervisorState {
    fn publish(&self) {
        *self.view.0.lock() = self
            .children
            .iter()
            .map(|c| ChildStatus {
                name: c.spec.name.clone(),
                running: c.cell.is_some(),
                restarts: c.restarts,
                last_failure: c.last_failure.clone(),
            })
            .collect();
    }

    async fn spawn(
        &mut self,
        idx: usize,
        myself: &ActorRef<SupervisorMsg>,
    ) -> Result<(), SpawnErr> {
        let cell = (self.children[idx].spec.spawn)(myself.get_cell()).await?;
        self.by_id.insert(cell.get_id(), idx);
        self.children[idx].cell = Some(cell);
        self.publish();
        Ok(())
    }

    /// Records a failure; returns the backoff before respawning, or `None` when the restart
    /// intensity is exceeded.
    fn on_failure(&mut self, idx: usize, reason: String) -> Option<Duration> {
        let now = Instant::now();
        let policy = self.policy;
        let child = &mut self.children[idx];
        child.cell = None;
        child.last_failure = Some(reason);
        child.failures.push_back(now);
        while child
            .failures
            .front()
            .is_some_and(|t| now.duration_since(*t) > policy.window)
        {
            child.failures.pop_front();
        }
        let recent = child.failures.len();
        self.publish();
        (recent <= policy.max_restarts).then(|| policy.backoff(recent))
    }
}

impl Actor for LinkSupervisor {
    type Msg = SupervisorMsg;
    type State = SupervisorState;
    type Arguments = SupervisorArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: SupervisorArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        let mut state = SupervisorState {
            children: args
                .children
                .into_iter()
                .map(|spec| Child {
                    spec,
                    cell: None,
                    failures: VecDeque::new(),
                    restarts: 0,
                    last_failure: None,
                })
                .collect(),
            by_id: HashMap::new(),
            policy: args.policy,
            view: args.view,
        };
        for idx in 0..state.children.len() {
            state.spawn(idx, &myself).await?;
        }
        Ok(state)
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        msg: SupervisorMsg,
        state: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        let SupervisorMsg::Respawn(name) = msg;
        let Some(idx) = state.children.iter().position(|c| c.spec.name == name) else {
            return Ok(());
        };
        if state.children[idx].cell.is_some() {
            return Ok(());
        }
        state.children[idx].restarts += 1;
        if let Err(e) = state.spawn(idx, &myself).await {
            tracing::warn!(child = %name, error = %e, "Child failed to restart.");
            match state.on_failure(idx, format!("restart failed: {e}")) {
                Some(delay) => {
                    myself.send_after(delay, move || SupervisorMsg::Respawn(name));
                }
                None => myself.stop(Some(format!("{name}: restart intensity exceeded"))),
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<Self::Msg>,
        event: SupervisionEvent,
        state: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        let (cell, reason) = match event {
            SupervisionEvent::ActorFailed(cell, err) => (cell, format!("failed: {err}")),
            SupervisionEvent::ActorTerminated(cell, _, reason) => (
                cell,
                format!("stopped: {}", reason.unwrap_or_else(|| "no reason".into())),
            ),
            _ => return Ok(()),
        };
        let Some(idx) = state.by_id.remove(&cell.get_id()) else {
            return Ok(());
        };
        let name = state.children[idx].spec.name.clone();
        tracing::warn!(child = %name, %reason, "Child actor exited; restarting.");
        match state.on_failure(idx, reason) {
            Some(delay) => {
                myself.send_after(delay, move || SupervisorMsg::Respawn(name));
            }
            None => {
                tracing::error!(child = %name, "Restart intensity exceeded; stopping the link.");
                myself.stop(Some(format!("{name}: restart intensity exceeded")));
            }
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<Self::Msg>,
        state: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        for child in &mut state.children {
            if let Some(cell) = child.cell.take() {
                cell.stop(Some("link stopping".into()));
            }
        }
        state.publish();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    struct Flaky;
    enum FlakyMsg {
        Crash,
    }

    impl Actor for Flaky {
        type Msg = FlakyMsg;
        type State = ();
        type Arguments = Arc<AtomicUsize>;
        async fn pre_start(
            &self,
            _: ActorRef<FlakyMsg>,
            starts: Arc<AtomicUsize>,
        ) -> Result<(), ActorProcessingErr> {
            starts.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
        async fn handle(
            &self,
            _: ActorRef<FlakyMsg>,
            msg: FlakyMsg,
            _: &mut (),
        ) -> Result<(), ActorProcessingErr> {
            match msg {
                FlakyMsg::Crash => Err("boom".into()),
            }
        }
    }

    fn flaky_spec(starts: Arc<AtomicUsize>) -> ChildSpec {
        ChildSpec::new("flaky", move |sup| {
            let starts = starts.clone();
            async move {
                let (r, _) = Actor::spawn_linked(
                    Some(format!("flaky-{}", uuid::Uuid::new_v4())),
                    Flaky,
                    starts,
                    sup,
                )
                .await?;
                Ok(r.get_cell())
            }
        })
    }

    async fn wait_for(cond: impl Fn() -> bool) {
        for _ in 0..200 {
            if cond() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("condition not reached");
    }

    #[tokio::test]
    async fn failed_child_is_restarted_and_counted() {
        let starts = Arc::new(AtomicUsize::new(0));
        let view = SupervisorView::default();
        let policy = RestartPolicy {
            base_backoff: Duration::from_millis(5),
            ..Default::default()
        };
        let (sup, handle) = Actor::spawn(
            None,
            LinkSupervisor,
            SupervisorArgs {
                children: vec![flaky_spec(starts.clone())],
                policy,
                view: view.clone(),
            },
        )
        .await
        .unwrap();
        assert_eq!(starts.load(Ordering::SeqCst), 1);
        for round in 1..=3 {
            let child = sup
                .get_children()
                .into_iter()
                .next()
                .expect("child running");
            ractor::ActorRef::<FlakyMsg>::from(child)
                .cast(FlakyMsg::Crash)
                .unwrap();
            wait_for(|| starts.load(Ordering::SeqCst) == round + 1).await;
        }
        wait_for(|| {
            view.children()
                .first()
                .is_some_and(|c| c.running && c.restarts == 3)
        })
        .await;
        assert!(
            view.children()[0]
                .last_failure
                .as_deref()
                .unwrap()
                .contains("boom")
        );
        sup.stop(None);
        handle.await.unwrap();
    }

    #[tokio::test]
    async fn restart_intensity_stops_the_supervisor() {
        let starts = Arc::new(AtomicUsize::new(0));
        let policy = RestartPolicy {
            max_restarts: 2,
            window: Duration::from_secs(60),
            base_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(2),
        };
        let (sup, handle) = Actor::spawn(
            None,
            LinkSupervisor,
            SupervisorArgs {
                children: vec![flaky_spec(starts.clone())],
                policy,
                view: SupervisorView::default(),
            },
        )
        .await
        .unwrap();
        for _ in 0..3 {
            let Some(child) = sup.get_children().into_iter().next() else {
                break;
            };
            let before = starts.load(Ordering::SeqCst);
            ractor::ActorRef::<FlakyMsg>::from(child)
                .cast(FlakyMsg::Crash)
                .unwrap();
            let _ = tokio::time::timeout(Duration::from_secs(1), async {
                while starts.load(Ordering::SeqCst) == before {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            })
            .await;
        }
        tokio::time::timeout(Duration::from_secs(2), handle)
            .await
            .expect("supervisor stopped")
            .unwrap();
        assert_eq!(
            starts.load(Ordering::SeqCst),
            3,
            "initial start plus two restarts"
        );
    }
}
