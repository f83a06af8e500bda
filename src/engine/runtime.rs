//! The engine behind the console and the daemon.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use parking_lot::Mutex;
use tally_actors::ledger::Stage;
use tally_actors::link::Link;
use tally_tui::ConsoleCommand;
use tally_tui::state::{ConsoleState, EntityView, HealthRow, Notice};
use tokio::sync::watch;

use super::view::{ViewInputs, state_from, trail};
use crate::daemon::{DaemonEngine, MagentoChange, Readiness, XeroEvent};

/// How often the console view is rebuilt; the console redraws on change.
const PUBLISH_EVERY: Duration = Duration::from_millis(500);
/// Queue rows shipped to the console per snapshot (it virtualises, but the snapshot is cloned).
const QUEUE_ROWS: usize = 20_000;
/// Discrepancy rows shipped to the console per snapshot; the counts cover all of them.
const DISCREPANCY_ROWS: usize = 5_000;
const THROUGHPUT_SAMPLES: usize = 60;
/// With nothing happening, the view is still rebuilt this often (queue ages, retry times).
const REFRESH_IDLE: Duration = Duration::from_secs(60);
/// With nothing happening, the budget gauges and the snapshot time are refreshed this often:
/// from memory, without touching the ledger, so the console's clock keeps showing it is live.
const TOUCH_IDLE: Duration = Duration::from_secs(5);

#[derive(Default)]
struct UiState {
    entity: Option<String>,
    search: Vec<String>,
    /// The answer to the latest operator command, carried by every snapshot after it.
    notice: Option<Notice>,
}

pub struct EngineRuntime {
    pub link: Link,
    name: String,
    config_path: Option<PathBuf>,
    state_tx: watch::Sender<ConsoleState>,
    ui: Mutex<UiState>,
    publisher: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// Set by operator commands so the next tick republishes at once.
    ui_dirty: AtomicBool,
    notices: AtomicU64,
    /// One fix at a time: two would race on the config file and on the rules in force.
    fixing: tokio::sync::Mutex<()>,
    stopped: tokio::sync::OnceCell<()>,
}

impl EngineRuntime {
    /// Starts publishing the console view of `link`.
    pub fn start(link: Link, name: String, config_path: Option<PathBuf>) -> Arc<Self> {
        let (state_tx, _) = watch::channel(ConsoleState {
            link: name.clone(),
            ..Default::default()
        });
        let rt = Arc::new(Self {
            link,
            name,
            config_path,
            state_tx,
            ui: Mutex::new(UiState::default()),
            publisher: Mutex::new(None),
            ui_dirty: AtomicBool::new(false),
            notices: AtomicU64::new(0),
            fixing: tokio::sync::Mutex::new(()),
            stopped: tokio::sync::OnceCell::new(),
        });
        let weak = Arc::downgrade(&rt);
        let task = tokio::spawn(async move {
            let mut history: HashMap<String, VecDeque<u64>> = HashMap::new();
            let mut last_done: HashMap<String, u64> = HashMap::new();
            let mut last_at = Instant::now();
            let mut first = true;
            let mut first_done = false;
            let mut last_mark = (0u64, 0u64, 0u64);
            let mut last_touch = Instant::now();
            loop {
                // The first view is published at once: readiness waits for it.
                if !std::mem::take(&mut first) {
                    tokio::time::sleep(PUBLISH_EVERY).await;
                }
                let Some(rt) = weak.upgrade() else { break };
                if rt.stopped.initialized() {
                    break;
                }
                // Idle engines stay idle: rebuild only after a commit, a Xero call or an
                // operator command, and otherwise rarely; in between, a cheap touch.
                let mark = rt.activity_mark();
                let stale = last_at.elapsed() >= REFRESH_IDLE;
                if !first_done
                    || mark != last_mark
                    || rt.ui_dirty.swap(false, Ordering::Relaxed)
                    || stale
                {
                    last_mark = mark;
                    first_done = true;
                } else {
                    if last_touch.elapsed() >= TOUCH_IDLE {
                        last_touch = Instant::now();
                        rt.touch();
                    }
                    continue;
                }
                let elapsed = last_at.elapsed().as_secs_f64().max(0.001);
                last_at = Instant::now();
                last_touch = last_at;
                if let Err(e) = rt.publish(&mut history, &mut last_done, elapsed).await {
                    tracing::warn!(error = %e, "Console state not refreshed.");
                }
            }
        });
        *rt.publisher.lock() = Some(task);
        rt
    }

    /// Keeps the budget gauges and the snapshot time current without a rebuild.
    fn touch(&self) {
        let budget = super::view::budget_view(&self.link.ctx.xero.budget().snapshot());
        let now = super::view::format_ms(chrono::Utc::now().timestamp_millis());
        self.state_tx.send_modify(|s| {
            s.budget = budget;
            s.generated_at = now;
        });
    }

    /// Changes whenever the engine did something: a ledger commit, a Xero call, or a stage
    /// paused, resumed, busy or restarted.
    fn activity_mark(&self) -> (u64, u64, u64) {
        (
            self.link.ctx.ledger.stats().commits,
            self.link.ctx.xero.counters().calls,
            self.link.shape_mark(),
        )
    }

    pub fn subscribe(&self) -> watch::Receiver<ConsoleState> {
        self.state_tx.subscribe()
    }

    async fn publish(
        &self,
        history: &mut HashMap<String, VecDeque<u64>>,
        last_done: &mut HashMap<String, u64>,
        elapsed: f64,
    ) -> Result<(), String> {
        let status = self.link.status().await?;
        for s in &status.stages {
            let prev = last_done
                .insert(s.name.clone(), s.stats.done)
                .unwrap_or(s.stats.done);
            let rate = ((s.stats.done.saturating_sub(prev)) as f64 / elapsed).round() as u64;
            let h = history.entry(s.name.clone()).or_default();
            h.push_back(rate);
            while h.len() > THROUGHPUT_SAMPLES {
                h.pop_front();
            }
        }
        let ledger = &self.link.ctx.ledger;
        let mut queue = Vec::new();
        for stage in [
            Stage::PaymentPosting,
            Stage::InvoicePosting,
            Stage::ContactPosting,
            Stage::Seen,
            Stage::ContactReady,
            Stage::Invoiced,
            Stage::Paid,
        ] {
            let left = QUEUE_ROWS.saturating_sub(queue.len());
            if left == 0 {
                break;
            }
            queue.extend(
                ledger
                    .by_stage(stage, left)
                    .await
                    .map_err(|e| e.to_string())?,
            );
        }
        let letters = ledger.dead_letters().await.map_err(|e| e.to_string())?;
        let audit = ledger.audit_tail(300).await.map_err(|e| e.to_string())?;
        let open = ledger.discrepancies().await.map_err(|e| e.to_string())?;
        let by_kind = super::discrepancy::count_by_kind(&open);
        let discrepancies = by_kind.values().sum();
        let acknowledged = super::discrepancy::acknowledged(&open);
        let discrepancy_rows = super::discrepancy::items(&open, DISCREPANCY_ROWS);
        drop(open);
        let (entity_key, search, notice) = {
            let ui = self.ui.lock();
            (ui.entity.clone(), ui.search.clone(), ui.notice.clone())
        };
        let entity = match entity_key {
            Some(k) => self.entity_view(&k).await?,
            None => None,
        };
        let now = chrono::Utc::now().timestamp_millis();
        let state = state_from(ViewInputs {
            link_name: &self.name,
            status: &status,
            queue: &queue,
            letters: &letters,
            audit_tail: &audit,
            throughput: history,
            paused: &[],
            health: self.health(&status),
            entity,
            search_results: search,
            discrepancies_open: discrepancies,
            discrepancies_by_kind: by_kind,
            discrepancies_acknowledged: acknowledged,
            discrepancies: discrepancy_rows,
            notice,
            now_ms: now,
        });
        self.state_tx.send_replace(state);
        Ok(())
    }

    fn health(&self, status: &tally_actors::link::LinkStatus) -> Vec<HealthRow> {
        let stage_err = |names: &[&str]| {
            status
                .stages
                .iter()
                .filter(|s| names.contains(&s.name.as_str()))
                .find_map(|s| s.stats.last_error.clone())
        };
        let b = &status.budget;
        let xero_detail = if let Some(p) = &b.pause_problem {
            format!(
                "rate-limited ({p}) until {}",
                b.paused_until.map(|t| t.to_rfc3339()).unwrap_or_default()
            )
        } else {
            format!("{} calls, {} throttled", b.calls_total, b.throttled_total)
        };
        vec![
            HealthRow {
                system: "Magento".into(),
                ok: stage_err(&["ingest", "writeback"]).is_none() && status.supervisor_alive,
                detail: stage_err(&["ingest", "writeback"]).unwrap_or_else(|| "polling".into()),
                latency_ms: None,
            },
            HealthRow {
                system: "Xero".into(),
                ok: b.pause_problem.is_none()
                    && stage_err(&["contacts", "invoices", "payments"]).is_none(),
                detail: stage_err(&["contacts", "invoices", "payments"]).unwrap_or(xero_detail),
                latency_ms: None,
            },
        ]
    }

    async fn entity_view(&self, key: &str) -> Result<Option<EntityView>, String> {
        let ledger = &self.link.ctx.ledger;
        let Some(state) = ledger.get(key).await.map_err(|e| e.to_string())? else {
            return Ok(None);
        };
        let audit = ledger.audit_for(key).await.map_err(|e| e.to_string())?;
        let mut summary = vec![
            ("stage".to_owned(), state.stage.as_str().to_owned()),
            ("attempts".to_owned(), state.attempts.to_string()),
        ];
        if let Some(e) = &state.last_error {
            summary.push(("last error".into(), e.clone()));
        }
        for (k, v) in &state.links {
            summary.push((k.clone(), v.clone()));
        }
        let data = state.data.value();
        for field in [
            "grand_total",
            "tax_amount",
            "order_currency_code",
            "customer_email",
            "status",
        ] {
            if let Some(v) = data.get(field) {
                summary.push((
                    format!("magento {field}"),
                    v.to_string().trim_matches('"').to_owned(),
                ));
            }
        }
        if let Some(letter) = ledger.dead_letter(key).await.map_err(|e| e.to_string())? {
            summary.push(("dead letter".into(), letter.message));
            if let Some(r) = letter.remote_message {
                summary.push(("remote message".into(), r));
            }
        }
        Ok(Some(EntityView {
            key: key.to_owned(),
            summary,
            trail: trail(&audit),
        }))
    }

    /// Applies an operator command; the answer is shown verbatim, to the caller and (as the
    /// state's notice) to every console watching.
    pub async fn apply(&self, cmd: ConsoleCommand) -> Result<String, String> {
        let quiet = matches!(cmd, ConsoleCommand::Quit);
        let result = self.run_command(cmd).await;
        if !quiet {
            let notice = Notice {
                seq: self.notices.fetch_add(1, Ordering::Relaxed) + 1,
                ok: result.is_ok(),
                message: match &result {
                    Ok(m) | Err(m) => m.clone(),
                },
            };
            self.ui.lock().notice = Some(notice.clone());
            self.state_tx.send_modify(|s| s.notice = Some(notice));
        }
        result
    }

    async fn run_command(&self, cmd: ConsoleCommand) -> Result<String, String> {
        self.ui_dirty.store(true, Ordering::Relaxed);
        let stage_name = |s: &str| s.to_owned();
        match cmd {
            ConsoleCommand::Retry(key) => self.link.retry(&key).await,
            ConsoleCommand::RetryAll => self.link.retry_all().await,
            ConsoleCommand::Drop(key) => self.link.drop_letter(&key).await,
            ConsoleCommand::Pause(actor) => self
                .link
                .pause(&stage_name(&actor))
                .map(|_| format!("{actor} paused")),
            ConsoleCommand::Resume(actor) => self
                .link
                .resume(&stage_name(&actor))
                .map(|_| format!("{actor} resumed")),
            ConsoleCommand::Search(q) => {
                let hits = self
                    .link
                    .ctx
                    .ledger
                    .search(&q, 200)
                    .await
                    .map_err(|e| e.to_string())?;
                let keys: Vec<String> = hits.into_iter().map(|s| s.key).collect();
                let n = keys.len();
                self.ui.lock().search = keys;
                Ok(format!("{n} match(es) for {q:?}"))
            }
            ConsoleCommand::Open(key) => {
                let view = self.entity_view(&key).await?;
                if view.is_none() {
                    return Err(format!("{key} is not in the ledger"));
                }
                self.ui.lock().entity = Some(key.clone());
                self.state_tx.send_modify(|s| s.entity = view);
                Ok(format!("opened {key}"))
            }
            ConsoleCommand::ReconcileNow => {
                self.link.kick_all();
                if self.link.stage_names().iter().any(|n| n == "reconcile") {
                    Ok("reconciliation pass started; every stage woken".into())
                } else {
                    Ok(
                        "every stage woken; the reconciler is off ([reconcile] enabled = false)"
                            .into(),
                    )
                }
            }
            ConsoleCommand::Acknowledge { key, note } => self.acknowledge(&key, note).await,
            ConsoleCommand::FixDiscrepancy(key) => {
                tally_actors::reconcile::fix::fix(&self.link.ctx, &key)
                    .await
                    .map_err(|e| e.to_string())
            }
            ConsoleCommand::Fix { key, rule } => self.fix(&key, &rule).await,
            ConsoleCommand::Quit => Ok("bye".into()),
        }
    }

    /// Accepts an open discrepancy: it stays listed until the systems agree, no longer counts
    /// as needing attention (nor in alerts), and the order's audit trail records it.
    async fn acknowledge(&self, key: &str, note: Option<String>) -> Result<String, String> {
        self.link
            .ctx
            .ledger
            .commit(vec![tally_actors::ledger::Write::AcknowledgeDiscrepancy {
                key: key.to_owned(),
                actor: "operator".into(),
                note,
            }])
            .await
            .map_err(|e| match e {
                tally_actors::ledger::LedgerError::NotFound { .. } => {
                    format!("no open discrepancy {key} (the systems may agree again)")
                }
                other => other.to_string(),
            })?;
        tracing::info!(discrepancy = %key, "Discrepancy acknowledged by the operator.");
        Ok(format!(
            "{key} acknowledged; it stays listed until Magento and Xero agree"
        ))
    }

    /// Validates and writes the rule, reloads the rules through the same path as SIGHUP, then
    /// retries every dead letter the rule unblocks.
    async fn fix(&self, key: &str, rule: &tally_tui::FixRule) -> Result<String, String> {
        let path = self
            .config_path
            .clone()
            .ok_or("this engine has no config file to write the rule into")?;
        let _one_at_a_time = self.fixing.lock().await;
        let applied = super::fix::apply(&self.link.ctx, &path, key, rule).await?;
        self.reload_rules().map_err(|e| {
            format!(
                "{} was written to {} but the rules did not reload: {e}",
                rule.describe(),
                path.display()
            )
        })?;
        let retried = self.link.retry_many(&applied.unblocked).await?;
        tracing::info!(rule = %rule.describe(), retried = retried.len(), "Mapping fixed by the operator.");
        Ok(format!(
            "{} written to {}; {} dead letter(s) retried{}",
            rule.describe(),
            path.display(),
            retried.len(),
            if retried.is_empty() {
                String::new()
            } else {
                format!(": {}", retried.join(", "))
            }
        ))
    }

    /// Reacts to a verified Xero event by re-reading the resource (events carry ids only).
    pub async fn on_xero_event(&self, event: XeroEvent) -> Result<(), String> {
        super::events::apply(self.link.ctx.clone(), event).await
    }

    pub async fn stop(&self) {
        if self.stopped.set(()).is_err() {
            return;
        }
        if let Some(t) = self.publisher.lock().take() {
            t.abort();
        }
        self.link.stop_in_place().await;
    }

    fn reload_rules(&self) -> Result<String, String> {
        let path = self
            .config_path
            .clone()
            .ok_or("no config file to reload from")?;
        let raw = crate::config::RawConfig::load(&path).map_err(|e| format!("{e:#}"))?;
        let cfg = crate::cmd::engine::link_config(&raw).map_err(|e| format!("{e:#}"))?;
        *self.link.ctx.rules.write() = Arc::new(cfg.mapping);
        Ok(format!("mapping rules reloaded from {}", path.display()))
    }
}

impl DaemonEngine for EngineRuntime {
    fn state(&self) -> watch::Receiver<ConsoleState> {
        self.subscribe()
    }

    fn discrepancies(&self) -> BoxFuture<'_, Result<Vec<(String, serde_json::Value)>, String>> {
        Box::pin(async move {
            self.link
                .ctx
                .ledger
                .discrepancies()
                .await
                .map_err(|e| e.to_string())
        })
    }

    fn command(&self, cmd: ConsoleCommand) -> BoxFuture<'_, Result<String, String>> {
        Box::pin(self.apply(cmd))
    }

    fn discrepancy_history(
        &self,
        since_ms: i64,
        until_ms: i64,
    ) -> BoxFuture<'_, Result<Vec<super::discrepancy_history::HistoryRow>, String>> {
        Box::pin(async move {
            super::discrepancy_history::history(&self.link.ctx.ledger, since_ms, until_ms).await
        })
    }

    fn magento_order_changed(&self, change: MagentoChange) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            // The push says "look now": ingest reads the order by updated_at straight away.
            tracing::info!(entity_id = ?change.entity_id, increment_id = ?change.increment_id, "Magento order changed; polling now.");
            self.link.kick_all();
            Ok(())
        })
    }

    fn xero_event(&self, event: XeroEvent) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(self.on_xero_event(event))
    }

    fn reload(&self) -> BoxFuture<'_, Result<String, String>> {
        Box::pin(async move { self.reload_rules() })
    }

    fn ready(&self) -> Readiness {
        let s = self.state_tx.borrow();
        let mut checks = vec![
            ("ledger".to_owned(), true, "open".to_owned()),
            (
                "engine".to_owned(),
                !s.actors.is_empty(),
                "first status published".to_owned(),
            ),
        ];
        for h in &s.health {
            checks.push((h.system.to_lowercase(), h.ok, h.detail.clone()));
        }
        Readiness {
            ready: checks.iter().all(|c| c.1),
            checks,
        }
    }

    fn shutdown(&self) -> BoxFuture<'_, ()> {
        Box::pin(self.stop())
    }
}
