//! Starting, observing and commanding one link.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use parking_lot::RwLock;
use ractor::{Actor, ActorRef};
use serde::Serialize;
use tokio::task::JoinHandle;

use super::contacts::ContactsWorker;
use super::context::{ContextError, LinkContext, LinkNames, LinkSettings};
use super::ingest::IngestWorker;
use super::invoices::InvoicesWorker;
use super::payments::PaymentsWorker;
use super::stage::{
    Schedule, StageActor, StageArgs, StageMsg, StageSnapshot, StageStats, StageWorker,
};
use super::stock::StockWorker;
use super::supervisor::{
    ChildSpec, ChildStatus, LinkSupervisor, RestartPolicy, SupervisorArgs, SupervisorMsg,
    SupervisorView,
};
use super::token_store::LedgerTokenStore;
use super::writeback::WritebackWorker;
use crate::budget::BudgetSnapshot;
use crate::ledger::{DeadLetter, Ledger, LedgerOptions, Stage, Write};
use crate::magento::{MagentoClient, MagentoConfig};
use crate::mapping::{MappingRules, OrgContext};
use crate::model::Catalogue;
use crate::reconcile::ReconcileWorker;
use crate::xero::{XeroClient, XeroConfig};

/// Everything needed to run a link, as read from the config file.
#[derive(Debug, Clone)]
pub struct LinkConfig {
    pub name: String,
    pub ledger_path: PathBuf,
    pub ledger_options: LedgerOptions,
    pub magento: MagentoConfig,
    pub xero: XeroConfig,
    pub mapping: MappingRules,
    pub settings: LinkSettings,
}

/// How long a flow stage with nothing due sleeps before looking anyway. Work normally arrives by
/// kick (ingest → contacts → invoices → payments → writeback, webhooks, operator commands) and
/// retries wake the stage at their due time, so this only bounds how long something nobody
/// announced (an entity changed by hand in the ledger) can wait.
pub const IDLE_TICK: Duration = Duration::from_secs(30);

/// A flow stage's worker, woken at the ledger's earliest retry time when idle.
struct DueFromLedger<W> {
    inner: Arc<W>,
    ledger: Ledger,
}

impl<W: StageWorker> StageWorker for DueFromLedger<W> {
    async fn round(&self) -> Result<super::stage::RoundReport, super::stage::RoundError> {
        self.inner.round().await
    }

    async fn next_due_ms(&self) -> Option<i64> {
        match self.ledger.next_due_ms().await {
            Ok(due) => due,
            Err(e) => {
                tracing::debug!(error = %e, "Next retry time unreadable; waking on the floor tick.");
                Some(0)
            }
        }
    }
}

/// The stages in flow order, with the ledger stage each one consumes.
pub const STAGES: &[(&str, Option<Stage>)] = &[
    ("ingest", None),
    ("contacts", Some(Stage::Seen)),
    ("invoices", Some(Stage::ContactReady)),
    ("payments", Some(Stage::Invoiced)),
    ("writeback", Some(Stage::Paid)),
    ("stock", None),
    ("reconcile", None),
];

#[derive(Debug, Clone, Serialize)]
pub struct StageStatus {
    pub name: String,
    /// Entities waiting in this stage's input (from the ledger).
    pub queued: u64,
    pub stats: StageSnapshot,
    pub running: bool,
    pub restarts: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct LinkStatus {
    pub name: String,
    pub stages: Vec<StageStatus>,
    pub by_stage: BTreeMap<String, u64>,
    pub dead_letters: u64,
    pub budget: BudgetSnapshot,
    pub caught_up: bool,
    pub supervisor_alive: bool,
}

pub struct Link {
    pub ctx: Arc<LinkContext>,
    supervisor: ActorRef<SupervisorMsg>,
    join: parking_lot::Mutex<Option<JoinHandle<()>>>,
    stats: Vec<(String, Arc<StageStats>)>,
    view: SupervisorView,
    caught_up: Arc<AtomicBool>,
}

impl Link {
    /// Opens the ledger, builds the clients and reads the organisation and catalogue.
    pub async fn connect(cfg: LinkConfig) -> Result<Arc<LinkContext>, ContextError> {
        let path = cfg.ledger_path.clone();
        let options = cfg.ledger_options;
        let ledger = tokio::task::spawn_blocking(move || Ledger::open_with(path, options))
            .await
            .map_err(|e| ContextError::Invalid(format!("ledger open panicked: {e}")))??;
        Self::connect_with(cfg, ledger).await
    }

    pub async fn connect_with(
        cfg: LinkConfig,
        ledger: Ledger,
    ) -> Result<Arc<LinkContext>, ContextError> {
        let store = Arc::new(LedgerTokenStore {
            ledger: ledger.clone(),
            name: format!("xero:{}", cfg.xero.client_id),
        });
        let xero = XeroClient::new(cfg.xero, store)?;
        let magento_base = cfg.magento.base_url.trim_end_matches('/').to_owned();
        let magento = MagentoClient::new(&cfg.magento)?;
        let ctx = Arc::new(LinkContext {
            ledger,
            xero,
            magento,
            rules: RwLock::new(Arc::new(cfg.mapping)),
            org: RwLock::new(Arc::new(OrgContext::default())),
            catalogue: RwLock::new(Catalogue::default()),
            catalogue_sources: RwLock::new((serde_json::Value::Null, Vec::new())),
            settings: cfg.settings,
            magento_base,
            passed_over: super::passed_over::PassedOver::new(super::context::now_ms()),
            fresh_intents: Default::default(),
            fresh_payments: Default::default(),
            parsed_orders: Default::default(),
            names: LinkNames {
                prefix: format!("{}-{}", cfg.name, uuid::Uuid::new_v4().simple()),
            },
        });
        ctx.load_org().await?;
        ctx.load_catalogue().await?;
        Ok(ctx)
    }

    /// Starts the supervised actors.
    pub async fn start(ctx: Arc<LinkContext>) -> Result<Link, ContextError> {
        let caught_up = Arc::new(AtomicBool::new(false));
        let mut stats = Vec::new();
        let mut children = Vec::new();
        let when_due = Schedule::WhenDue {
            idle: IDLE_TICK,
            floor: ctx.settings.tick,
        };
        let ledger = ctx.ledger.clone();
        fn due_from<W>(inner: Arc<W>, ledger: &Ledger) -> Arc<DueFromLedger<W>> {
            Arc::new(DueFromLedger {
                inner,
                ledger: ledger.clone(),
            })
        }
        let n = |s: &str| ctx.names.of(s);
        let ingest_stats = Arc::new(StageStats::default());
        stats.push(("ingest".to_owned(), ingest_stats.clone()));
        // A poll can also change orders further down the flow (paid in Magento since it was
        // invoiced), and idle flow stages no longer poll the ledger, so ingest wakes them all.
        children.push(spec(
            n("ingest"),
            Arc::new(IngestWorker::new(ctx.clone(), caught_up.clone())),
            ingest_stats,
            ["contacts", "invoices", "payments", "writeback"]
                .iter()
                .map(|s| n(s))
                .collect(),
            Schedule::Every(ctx.settings.poll_interval),
        ));
        let flows: [(&str, Vec<String>); 4] = [
            ("contacts", vec![n("invoices")]),
            ("invoices", vec![n("payments")]),
            ("payments", vec![n("writeback")]),
            ("writeback", vec![]),
        ];
        for (name, downstream) in flows {
            let st = Arc::new(StageStats::default());
            stats.push((name.to_owned(), st.clone()));
            let child = match name {
                "contacts" => spec(
                    n(name),
                    due_from(Arc::new(ContactsWorker::new(ctx.clone())), &ledger),
                    st,
                    downstream,
                    when_due,
                ),
                "invoices" => spec(
                    n(name),
                    due_from(Arc::new(InvoicesWorker::new(ctx.clone())), &ledger),
                    st,
                    downstream,
                    when_due,
                ),
                "payments" => spec(
                    n(name),
                    due_from(Arc::new(PaymentsWorker::new(ctx.clone())), &ledger),
                    st,
                    downstream,
                    when_due,
                ),
                _ => {
                    if !ctx.settings.writeback {
                        continue;
                    }
                    spec(
                        n(name),
                        due_from(Arc::new(WritebackWorker::new(ctx.clone())), &ledger),
                        st,
                        downstream,
                        when_due,
                    )
                }
            };
            children.push(child);
        }
        if ctx.settings.stock {
            let st = Arc::new(StageStats::default());
            stats.push(("stock".to_owned(), st.clone()));
            children.push(spec(
                n("stock"),
                Arc::new(StockWorker::new(ctx.clone())),
                st,
                vec![],
                Schedule::Every(ctx.settings.stock_interval),
            ));
        }
        if ctx.settings.reconcile {
            let st = Arc::new(StageStats::default());
            stats.push(("reconcile".to_owned(), st.clone()));
            children.push(spec(
                n("reconcile"),
                Arc::new(ReconcileWorker::new(ctx.clone())),
                st,
                vec![],
                Schedule::Every(ctx.settings.reconcile_interval),
            ));
        }
        let view = SupervisorView::default();
        let (supervisor, join) = Actor::spawn(
            Some(ctx.names.of("supervisor")),
            LinkSupervisor,
            SupervisorArgs {
                children,
                policy: RestartPolicy::default(),
                view: view.clone(),
            },
        )
        .await
        .map_err(|e| ContextError::Invalid(format!("link supervisor did not start: {e}")))?;
        Ok(Link {
            ctx,
            supervisor,
            join: parking_lot::Mutex::new(Some(join)),
            stats,
            view,
            caught_up,
        })
    }

    /// Changes when a stage is paused or resumed or its actor stops or restarts: what the
    /// console shows besides the ledger and the Xero budget, read from memory so a publisher
    /// can poll it cheaply. (Not a round starting: ingest polls every few seconds.)
    pub fn shape_mark(&self) -> u64 {
        let stages = self.stats.iter().fold(0u64, |acc, (_, st)| {
            acc.wrapping_mul(2)
                .wrapping_add(u64::from(st.paused.load(Ordering::Relaxed)))
        });
        stages ^ self.view.mark().rotate_left(32)
    }

    pub fn stage_names(&self) -> Vec<String> {
        self.stats.iter().map(|(n, _)| n.clone()).collect()
    }

    fn send(&self, stage: &str, msg: StageMsg) -> Result<(), String> {
        let cell = ractor::registry::where_is(self.ctx.names.of(stage))
            .ok_or_else(|| format!("no running actor named {stage}"))?;
        ActorRef::<StageMsg>::from(cell)
            .cast(msg)
            .map_err(|e| e.to_string())
    }

    pub fn pause(&self, stage: &str) -> Result<(), String> {
        self.send(stage, StageMsg::Pause)
    }

    pub fn resume(&self, stage: &str) -> Result<(), String> {
        self.send(stage, StageMsg::Resume)
    }

    /// Wakes every stage (after a retry, a push event, or a fix).
    pub fn kick_all(&self) {
        for (name, _) in &self.stats {
            let _ = self.send(name, StageMsg::Kick);
        }
    }

    /// Sends a dead letter back into the flow at the step where it died.
    pub async fn retry(&self, key: &str) -> Result<String, String> {
        let letter = self
            .ctx
            .ledger
            .dead_letter(key)
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("no dead letter {key}"))?;
        let to = revive_stage(&letter);
        self.ctx
            .ledger
            .commit(vec![Write::Revive {
                key: key.to_owned(),
                to,
                actor: "operator".into(),
            }])
            .await
            .map_err(|e| e.to_string())?;
        self.kick_all();
        Ok(format!("{key} sent back to {}", to.as_str()))
    }

    pub async fn retry_all(&self) -> Result<String, String> {
        let letters = self
            .ctx
            .ledger
            .dead_letters()
            .await
            .map_err(|e| e.to_string())?;
        let writes: Vec<Write> = letters
            .iter()
            .map(|l| Write::Revive {
                key: l.key.clone(),
                to: revive_stage(l),
                actor: "operator".into(),
            })
            .collect();
        let n = writes.len();
        if n > 0 {
            self.ctx
                .ledger
                .commit(writes)
                .await
                .map_err(|e| e.to_string())?;
        }
        self.kick_all();
        Ok(format!("{n} dead letters sent back"))
    }

    /// Sends these dead letters back into the flow in one commit (after a mapping fix);
    /// keys that are not dead letters are skipped. Returns the keys revived.
    pub async fn retry_many(&self, letters: &[DeadLetter]) -> Result<Vec<String>, String> {
        let keys = revive_letters(&self.ctx.ledger, letters, "operator (fix)").await?;
        self.kick_all();
        Ok(keys)
    }

    pub async fn drop_letter(&self, key: &str) -> Result<String, String> {
        self.ctx
            .ledger
            .commit(vec![Write::DropDeadLetter {
                key: key.to_owned(),
                actor: "operator".into(),
            }])
            .await
            .map_err(|e| e.to_string())?;
        Ok(format!("{key} dropped"))
    }

    pub async fn status(&self) -> Result<LinkStatus, String> {
        let counts = self
            .ctx
            .ledger
            .counts_by_stage()
            .await
            .map_err(|e| e.to_string())?;
        let children = self.view.children();
        let child = |name: &str| -> Option<ChildStatus> {
            children
                .iter()
                .find(|c| c.name == self.ctx.names.of(name))
                .cloned()
        };
        let stages = self
            .stats
            .iter()
            .map(|(name, st)| {
                let input = STAGES.iter().find(|(n, _)| n == name).and_then(|(_, s)| *s);
                let queued = input
                    .map(|s| counts.get(&s).copied().unwrap_or(0))
                    .unwrap_or(0);
                let c = child(name);
                StageStatus {
                    name: name.clone(),
                    queued,
                    stats: st.snapshot(),
                    running: c.as_ref().is_some_and(|c| c.running),
                    restarts: c.map(|c| c.restarts).unwrap_or(0),
                }
            })
            .collect();
        Ok(LinkStatus {
            name: self.ctx.names.prefix.clone(),
            stages,
            by_stage: counts
                .iter()
                .map(|(k, v)| (k.as_str().to_owned(), *v))
                .collect(),
            dead_letters: counts.get(&Stage::Dead).copied().unwrap_or(0),
            budget: self.ctx.xero.budget().snapshot(),
            caught_up: self.caught_up.load(Ordering::Relaxed),
            supervisor_alive: self.join.lock().as_ref().is_some_and(|j| !j.is_finished()),
        })
    }

    /// True when Magento's backlog is read and nothing is left to do now: every order is
    /// written back, awaiting payment, or dead-lettered (entities waiting on a retry count
    /// as work, so this waits for them).
    pub async fn is_idle(&self) -> Result<bool, String> {
        if !self.caught_up.load(Ordering::Relaxed) {
            return Ok(false);
        }
        let counts = self
            .ctx
            .ledger
            .counts_by_stage()
            .await
            .map_err(|e| e.to_string())?;
        let busy = [
            Stage::Seen,
            Stage::ContactReady,
            Stage::InvoicePosting,
            Stage::Invoiced,
            Stage::PaymentPosting,
            Stage::ContactPosting,
        ]
        .iter()
        .chain(self.ctx.settings.writeback.then_some(&Stage::Paid))
        .any(|s| counts.get(s).copied().unwrap_or(0) > 0);
        let running = self.stats.iter().any(|(_, st)| st.snapshot().busy);
        Ok(!busy && !running)
    }

    /// Waits until [`is_idle`](Self::is_idle) holds twice in a row, or the link stopped.
    pub async fn wait_idle(&self, timeout: Duration) -> Result<bool, String> {
        let deadline = Instant::now() + timeout;
        let mut streak = 0;
        while Instant::now() < deadline {
            if self.join.lock().as_ref().is_none_or(|j| j.is_finished()) {
                return Err("the link supervisor stopped (restart intensity exceeded?)".into());
            }
            if self.is_idle().await? {
                streak += 1;
                if streak >= 2 {
                    return Ok(true);
                }
            } else {
                streak = 0;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(false)
    }

    pub async fn dead_letters(&self) -> Result<Vec<DeadLetter>, String> {
        self.ctx
            .ledger
            .dead_letters()
            .await
            .map_err(|e| e.to_string())
    }

    /// Stops the actors; in-flight rounds finish their current commit or are abandoned with
    /// their intents in the ledger, which the next start resolves by lookup.
    pub async fn stop(self) {
        self.stop_in_place().await;
    }

    /// Like [`stop`](Self::stop), for a link shared behind an `Arc`.
    pub async fn stop_in_place(&self) {
        self.supervisor.stop(Some("link stopping".into()));
        let join = self.join.lock().take();
        if let Some(join) = join {
            let _ = tokio::time::timeout(Duration::from_secs(5), join).await;
        }
    }
}

/// Commits the revival of `letters` in one transaction, for a running link or a CLI acting on
/// the ledger directly; the caller wakes the stages.
pub async fn revive_letters(
    ledger: &Ledger,
    letters: &[DeadLetter],
    actor: &str,
) -> Result<Vec<String>, String> {
    if letters.is_empty() {
        return Ok(Vec::new());
    }
    let writes = letters
        .iter()
        .map(|l| Write::Revive {
            key: l.key.clone(),
            to: revive_stage(l),
            actor: actor.to_owned(),
        })
        .collect();
    ledger.commit(writes).await.map_err(|e| e.to_string())?;
    Ok(letters.iter().map(|l| l.key.clone()).collect())
}

/// Where an operator's retry sends a dead letter: back to the step it died at, minus any
/// intent (the worker looks Xero up before re-sending anyway).
pub fn revive_stage(letter: &DeadLetter) -> Stage {
    match letter.stage_at_death {
        Some(Stage::InvoicePosting) => Stage::ContactReady,
        Some(Stage::PaymentPosting) => Stage::Invoiced,
        Some(Stage::ContactPosting) => Stage::ContactPending,
        Some(s) => s,
        None => Stage::Seen,
    }
}

fn spec<W: StageWorker>(
    name: String,
    worker: Arc<W>,
    stats: Arc<StageStats>,
    downstream: Vec<String>,
    schedule: Schedule,
) -> ChildSpec {
    ChildSpec::new(name.clone(), move |sup| {
        let args = StageArgs {
            name: name.rsplit('/').next().unwrap_or_default().to_owned(),
            worker: worker.clone(),
            stats: stats.clone(),
            downstream: downstream.clone(),
            schedule,
        };
        let name = name.clone();
        async move {
            let (r, _) =
                Actor::spawn_linked(Some(name), StageActor::<W>::default(), args, sup).await?;
            Ok(r.get_cell())
        }
    })
}
