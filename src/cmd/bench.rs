//! `tally bench backfill`: the sandbox and the engine in one process, a backlog of N orders,
//! and the numbers that say whether the engine spends Xero's budget well and how fast it is
//! when the budget is out of the way.
//!
//! Budget utilisation is defined on the sandbox's simulated clock, because that is the clock
//! Xero's limits are counted on, and by whole minutes, because the limit is a sliding
//! 60-second window: the budget spends a minute's calls as soon as work is there (a burst)
//! and then holds callers until the window frees, so per-second accounting would call a
//! fully used minute half idle. The budget is sampled once per simulated second; minutes are
//! counted from the run's first call; a minute counts as "work was waiting" when callers were
//! still queued on the budget at its end (the minute's allowance ran out before the work
//! did); for each such minute Xero allowed `per_minute` calls, set against the calls the
//! budget admitted in it. Other minutes are left out: a minute in which the work ran out is
//! not under-use, the budget simply had nothing more to do.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tally_actors::budget::BudgetSnapshot;
use tally_actors::ledger::{EntityKind, Stage};
use tally_actors::link::{Link, LinkContext};
use tally_fixtures::sandbox::{Sandbox, SandboxOptions};
use tally_fixtures::xero::{XeroLimits as SimLimits, XeroSimConfig};
use tokio::sync::watch;

use super::bench_ops::{clock_ticks_per_sec, cpu_ticks};
use super::engine::{link_config, open_ledger};
use crate::cli::{BenchArgs, BenchWhat};
use crate::config::RawConfig;

/// How long a backfill may run before the benchmark gives up and reports what it has.
const RUN_LIMIT: Duration = Duration::from_secs(3 * 3600);
/// "Unlimited" limits: far beyond anything a run can reach, yet small enough that the
/// simulator's and the budget's arithmetic on them cannot overflow.
const LIFTED: u32 = 1_000_000_000;
/// How often the end of the backfill is checked for (real time).
const IDLE_POLL: Duration = Duration::from_millis(10);
/// How often the final-order count is polled (real time).
const FINAL_CHECK_EVERY: Duration = Duration::from_millis(100);
/// How often progress goes to stderr.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);

pub async fn run(args: BenchArgs) -> anyhow::Result<ExitCode> {
    match args.what {
        BenchWhat::Backfill {
            orders,
            time_scale,
            unlimited,
            seed,
            engine_process,
            sync,
        } => {
            let report = backfill(BackfillOptions {
                orders,
                time_scale,
                unlimited,
                seed,
                engine_process,
                sync,
            })
            .await?;
            println!("{}", serde_json::to_string_pretty(&report.to_json())?);
            Ok(if report.finished && report.dead_letters == 0 {
                ExitCode::SUCCESS
            } else if report.finished {
                ExitCode::from(1)
            } else {
                ExitCode::from(3)
            })
        }
        other => Box::pin(super::bench_ops::run(other)).await,
    }
}

#[derive(Debug, Clone)]
pub struct BackfillOptions {
    pub orders: usize,
    pub time_scale: f64,
    pub unlimited: bool,
    pub seed: u64,
    /// The engine runs as a child `tally sync --once`; its memory is measured on its own.
    pub engine_process: bool,
    /// `[sync]` lines (`key = value`) added to the engine's config.
    pub sync: Vec<String>,
}

/// What one backfill measured. Times are real (wall-clock) unless named `simulated`.
#[derive(Debug, Clone)]
pub struct BackfillReport {
    pub options: BackfillOptions,
    pub finished: bool,
    pub orders_seeded: usize,
    /// Orders in a final stage: written back (or paid, with writeback off) or invoiced and
    /// awaiting a payment the customer has not made.
    pub orders_synced: u64,
    pub orders_by_stage: Value,
    pub dead_letters: u64,
    pub xero_calls: u64,
    pub xero_429s: u64,
    pub xero_retries: u64,
    pub utilisation: Utilisation,
    /// Connecting: token, organisation, tax rates, items and the catalogue.
    pub setup: Duration,
    /// From the link's start until it was idle.
    pub run: Duration,
    /// From the link's start until every seeded order first stood in a final stage.
    pub orders_final: Option<Duration>,
    pub peak_rss_kb: Option<u64>,
    /// The engine process's own peak (`VmHWM`), when it ran as a child process.
    pub engine_peak_rss_kb: Option<u64>,
    /// CPU seconds (user + system) of the engine process and of the sandbox's (this)
    /// process during the run, when the engine ran as a child: where the 2 cores went.
    pub cpu_split: Option<(f64, f64)>,
    /// Resident memory after the sandbox was seeded, before the engine existed.
    pub rss_after_sandbox_kb: Option<u64>,
    pub rss_at_start_kb: Option<u64>,
    pub ledger: Value,
    pub sandbox: Value,
}

impl BackfillReport {
    /// Simulated minutes the run took, on the clock Xero's limits are counted on.
    pub fn simulated_minutes(&self) -> f64 {
        self.run.as_secs_f64() * self.options.time_scale / 60.0
    }

    pub fn to_json(&self) -> Value {
        let secs = self.run.as_secs_f64();
        let per = |n: f64, d: f64| if d > 0.0 { Some(n / d) } else { None };
        let mb = |kb: Option<u64>| kb.map(|k| (k as f64 / 1024.0 * 10.0).round() / 10.0);
        let engine_estimate = match (self.peak_rss_kb, self.rss_after_sandbox_kb) {
            _ if self.options.engine_process => None,
            (Some(p), Some(s)) => Some(p.saturating_sub(s)),
            _ => None,
        };
        json!({
            "orders": self.options.orders,
            "time_scale": self.options.time_scale,
            "unlimited": self.options.unlimited,
            "seed": self.options.seed,
            "engine_process": self.options.engine_process,
            "sync": self.options.sync,
            "finished": self.finished,
            "orders_seeded": self.orders_seeded,
            "orders_synced": self.orders_synced,
            "orders_by_stage": self.orders_by_stage,
            "dead_letters": self.dead_letters,
            "xero_calls": self.xero_calls,
            "calls_per_order": per(self.xero_calls as f64, self.orders_synced as f64),
            "xero_429s": self.xero_429s,
            "xero_retries": self.xero_retries,
            "budget_utilisation": if self.options.unlimited { None } else { self.utilisation.ratio() },
            "budget": {
                "definition": "calls admitted in whole simulated minutes (from the first call) that ended with \
                               callers still queued on the Xero budget, divided by per_minute for each such minute",
                "minutes_waiting": self.utilisation.minutes_waiting,
                "calls_in_waiting_minutes": self.utilisation.calls_in_waiting_minutes,
                "calls_allowed_in_waiting_minutes": round3(self.utilisation.allowed),
                "per_minute": self.utilisation.per_minute,
                "minutes": self.utilisation.minutes,
                "calls_sampled": self.utilisation.calls_sampled,
            },
            "orders_per_xero_minute": per(self.orders_synced as f64, self.simulated_minutes()),
            "orders_per_second": per(self.orders_synced as f64, secs),
            "simulated_minutes": round3(self.simulated_minutes()),
            "setup_secs": round3(self.setup.as_secs_f64()),
            "wall_secs": round3(secs),
            "orders_final_secs": self.orders_final.map(|d| round3(d.as_secs_f64())),
            "orders_per_second_until_final": self
                .orders_final
                .and_then(|d| per(self.orders_synced as f64, d.as_secs_f64())),
            "peak_rss_mb": mb(self.peak_rss_kb),
            "rss_at_start_mb": mb(self.rss_at_start_kb),
            "rss_after_sandbox_seed_mb": mb(self.rss_after_sandbox_kb),
            "engine_rss_estimate_mb": mb(engine_estimate),
            "engine_peak_rss_mb": mb(self.engine_peak_rss_kb),
            "engine_cpu_secs": self.cpu_split.map(|(e, _)| round3(e)),
            "sandbox_cpu_secs": self.cpu_split.map(|(_, s)| round3(s)),
            "orders_per_engine_cpu_second": self
                .cpu_split
                .and_then(|(e, _)| per(self.orders_synced as f64, e)),
            "ledger": self.ledger,
            "sandbox": self.sandbox,
        })
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Calls made against calls allowed in the minutes that ended with work waiting on the budget.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Utilisation {
    pub per_minute: u32,
    /// Whole simulated minutes (from the first call) that ended with callers queued.
    pub minutes_waiting: u64,
    pub calls_in_waiting_minutes: u64,
    pub allowed: f64,
    /// Every whole minute, counted or not: where a low ratio came from.
    pub minutes: Vec<MinuteUse>,
    /// Calls between the first and the last sample: every call of the run, connecting
    /// included, when the first sample precedes connecting as it should.
    pub calls_sampled: u64,
    /// Every sample, in order; folded into the fields above by [`Utilisation::finish`].
    samples: Vec<BudgetSample>,
}

/// One whole simulated minute of the run, as the budget saw it.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct MinuteUse {
    pub calls: u64,
    /// Callers queued at the minute's end (the minute is counted only if this is non-zero).
    pub waiting_at_end: u32,
    /// Share of the minute's samples that saw callers queued.
    pub waiting_share: f64,
    /// The sliding window's count and the calls in flight at the minute's end: which limit
    /// held the queue.
    pub window_used_at_end: u32,
    pub in_flight_at_end: u32,
}

/// One look at the budget: when (simulated seconds since the start), calls so far, waiters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BudgetSample {
    pub sim_secs: f64,
    pub calls_total: u64,
    pub waiting: u32,
    pub window_used: u32,
    pub in_flight: u32,
}

impl Utilisation {
    pub fn new(per_minute: u32) -> Self {
        Self {
            per_minute,
            ..Self::default()
        }
    }

    pub fn add(&mut self, sample: BudgetSample) {
        self.samples.push(sample);
    }

    /// Splits the samples into minutes from the first call and counts the minutes that
    /// ended with callers waiting. A last, partial minute never counts: the run ended in it.
    pub fn finish(&mut self) {
        if let (Some(first), Some(last)) = (self.samples.first(), self.samples.last()) {
            self.calls_sampled = last.calls_total.saturating_sub(first.calls_total);
        }
        let Some(first) = self.samples.iter().position(|s| s.calls_total > 0) else {
            return;
        };
        // The minute starts just before the first call: the sample before it.
        let first = first.saturating_sub(1);
        let t0 = self.samples[first].sim_secs;
        let mut start = self.samples[first];
        let mut minute_end = t0 + 60.0;
        let (mut seen, mut seen_waiting) = (0u32, 0u32);
        for &s in &self.samples[first + 1..] {
            if s.sim_secs < minute_end {
                seen += 1;
                seen_waiting += u32::from(s.waiting > 0);
                continue;
            }
            self.minutes.push(MinuteUse {
                calls: s.calls_total.saturating_sub(start.calls_total),
                waiting_at_end: s.waiting,
                waiting_share: round3(f64::from(seen_waiting) / f64::from(seen.max(1))),
                window_used_at_end: s.window_used,
                in_flight_at_end: s.in_flight,
            });
            (seen, seen_waiting) = (0, 0);
            if s.waiting > 0 {
                self.minutes_waiting += 1;
                self.calls_in_waiting_minutes += s.calls_total.saturating_sub(start.calls_total);
                self.allowed += f64::from(self.per_minute);
            }
            start = s;
            minute_end += 60.0;
        }
    }

    /// `None` when no whole minute ended with work waiting (nothing to measure).
    pub fn ratio(&self) -> Option<f64> {
        (self.allowed > 0.0).then(|| self.calls_in_waiting_minutes as f64 / self.allowed)
    }
}

/// Samples the budget every simulated second until told to stop.
///
/// `setup_started` is when connecting began: its calls (token, organisation, tax rates,
/// items) were made before the sampler existed but sit in the same sliding minute as the
/// backfill's first calls, so the first minute starts there, with nothing counted yet.
async fn sample_budget(
    ctx: Arc<LinkContext>,
    time_scale: f64,
    setup_started: Instant,
    mut stop: watch::Receiver<bool>,
) -> Utilisation {
    let budget = ctx.xero.budget().clone();
    let mut util = Utilisation::new(budget.limits().per_minute);
    let start = setup_started;
    util.add(BudgetSample {
        sim_secs: 0.0,
        calls_total: 0,
        waiting: 0,
        window_used: 0,
        in_flight: 0,
    });
    let sample = |s: &BudgetSnapshot| BudgetSample {
        sim_secs: start.elapsed().as_secs_f64() * time_scale,
        calls_total: s.calls_total,
        waiting: s.waiting,
        window_used: s.minute_used,
        in_flight: s.in_flight,
    };
    let period = Duration::from_secs_f64(1.0 / time_scale).max(Duration::from_millis(1));
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    util.add(sample(&budget.snapshot()));
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = stop.changed() => {
                util.add(sample(&budget.snapshot()));
                util.finish();
                return util;
            }
        }
        util.add(sample(&budget.snapshot()));
    }
}

/// The process's resident set (`VmRSS`) or its peak (`VmHWM`), in kB (Linux only).
pub fn proc_status_kb(field: &str) -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/status").ok()?;
    parse_status_kb(&text, field)
}

fn parse_status_kb(text: &str, field: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let rest = line.strip_prefix(field)?.strip_prefix(':')?;
        rest.trim().trim_end_matches("kB").trim().parse().ok()
    })
}

/// A scratch directory for the ledger, removed when dropped.
struct ScratchDir(PathBuf);

impl ScratchDir {
    fn new() -> std::io::Result<Self> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        let dir = std::env::temp_dir().join(format!("tally-bench-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        Ok(Self(dir))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The sandbox's own tally config, with Xero's limits lifted for the engine too when asked.
fn bench_config_text(sandbox: &Sandbox, ledger: &Path, opts: &BackfillOptions) -> String {
    let mut text = sandbox.tally_config(ledger);
    if !opts.sync.is_empty() {
        text.push_str("\n[sync]\n");
        for line in &opts.sync {
            let (key, value) = line.split_once('=').unwrap_or((line, ""));
            text.push_str(&format!("{} = {}\n", key.trim(), value.trim()));
        }
    }
    if opts.unlimited {
        text.push_str(&format!(
            "\n[xero.limits]\nper_minute = {LIFTED}\nconcurrent = {LIFTED}\nper_day = {LIFTED}\n"
        ));
    }
    text
}

fn bench_config(
    sandbox: &Sandbox,
    ledger: &Path,
    dir: &Path,
    opts: &BackfillOptions,
) -> anyhow::Result<RawConfig> {
    let text = bench_config_text(sandbox, ledger, opts);
    RawConfig::parse(&dir.join("tally.toml"), &text)
}

/// Runs one backfill: seed the sandbox, connect the engine, sync until idle, measure.
pub async fn backfill(opts: BackfillOptions) -> anyhow::Result<BackfillReport> {
    anyhow::ensure!(
        opts.time_scale.is_finite() && opts.time_scale > 0.0,
        "--time-scale must be a positive number"
    );
    let rss_at_start_kb = proc_status_kb("VmRSS");
    let mut xero_config = XeroSimConfig::default();
    if opts.unlimited {
        xero_config.limits = SimLimits {
            per_minute: LIFTED,
            concurrent: LIFTED,
            per_day: LIFTED,
            app_per_minute: LIFTED,
        };
    }
    let sandbox = Sandbox::start(SandboxOptions {
        seed: opts.seed,
        orders: opts.orders,
        time_scale: opts.time_scale,
        xero_config,
        ..SandboxOptions::default()
    })
    .await?;
    let rss_after_sandbox_kb = proc_status_kb("VmRSS");
    let scratch = ScratchDir::new()?;
    let ledger_path = scratch.path().join("tally.redb");
    if opts.engine_process {
        return backfill_in_child(
            opts,
            sandbox,
            scratch,
            rss_at_start_kb,
            rss_after_sandbox_kb,
        )
        .await;
    }
    let raw = bench_config(&sandbox, &ledger_path, scratch.path(), &opts)?;
    let mut cfg = link_config(&raw)?;
    // The backfill is measured as `sync --once` runs it, without the reconciler's read-back.
    cfg.settings.reconcile = false;

    let setup_started = Instant::now();
    let ledger = open_ledger(&cfg.ledger_path, cfg.ledger_options).await?;
    let ctx = Link::connect_with(cfg, ledger).await?;
    let setup = setup_started.elapsed();

    let (stop_tx, stop_rx) = watch::channel(false);
    let sampler = tokio::spawn(sample_budget(
        ctx.clone(),
        opts.time_scale,
        setup_started,
        stop_rx,
    ));
    let started = Instant::now();
    let link = Link::start(ctx.clone()).await?;
    let seeded = sandbox.counts().orders as u64;
    let (finished, orders_final) = wait_idle(&link, started + RUN_LIMIT, started, seeded).await?;
    let run = started.elapsed();
    let _ = stop_tx.send(true);
    let utilisation = sampler.await?;

    let status = link.status().await.map_err(anyhow::Error::msg)?;
    let counters = ctx.xero.counters();
    let stats = ctx.ledger.stats();
    let orders_synced = orders_final_count(&link).await?;
    link.stop().await;
    let sim = sandbox.counters();
    let report = BackfillReport {
        orders_seeded: sandbox.counts().orders,
        options: opts,
        finished,
        orders_synced,
        orders_by_stage: serde_json::to_value(&status.by_stage)?,
        dead_letters: status.dead_letters,
        xero_calls: counters.calls,
        xero_429s: counters.throttled,
        xero_retries: counters.retries,
        utilisation,
        setup,
        run,
        orders_final,
        peak_rss_kb: proc_status_kb("VmHWM"),
        engine_peak_rss_kb: None,
        cpu_split: None,
        rss_after_sandbox_kb,
        rss_at_start_kb,
        ledger: json!({
            "transactions": stats.transactions,
            "commits": stats.commits,
            "rejected": stats.rejected,
            "largest_group": stats.largest_group,
            "durable_transactions": stats.durable_transactions,
            "hardened": stats.hardened,
            "orders_reused_parsed": ctx.parsed_orders.stats(),
        }),
        sandbox: sandbox_summary(&sim),
    };
    drop(ctx);
    sandbox.shutdown().await;
    Ok(report)
}

/// The engine as an operator runs it, `tally sync --once`, in a child process against the
/// in-process sandbox: the child's `VmHWM` is the engine's peak memory with no simulator in
/// it. Its run time includes connecting (a few milliseconds against the sandbox).
async fn backfill_in_child(
    opts: BackfillOptions,
    sandbox: Sandbox,
    scratch: ScratchDir,
    rss_at_start_kb: Option<u64>,
    rss_after_sandbox_kb: Option<u64>,
) -> anyhow::Result<BackfillReport> {
    let config = scratch.path().join("tally.toml");
    let ledger = scratch.path().join("tally.redb");
    std::fs::write(&config, bench_config_text(&sandbox, &ledger, &opts))?;
    let exe = std::env::current_exe()?;
    let started = Instant::now();
    let mut child = tokio::process::Command::new(exe)
        .arg("sync")
        .arg("--once")
        .arg("--config")
        .arg(&config)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .kill_on_drop(true)
        .spawn()?;
    let pid = child.id().unwrap_or_default();
    let mut stdout = child.stdout.take().expect("piped");
    let reader = tokio::spawn(async move {
        let mut out = Vec::new();
        tokio::io::AsyncReadExt::read_to_end(&mut stdout, &mut out).await?;
        Ok::<_, std::io::Error>(out)
    });
    // VmHWM only grows, so the last sample before the child exits is its peak (to within
    // one sampling period of growth).
    let mut engine_peak = None;
    let mut engine_ticks = None;
    let own_ticks_at_start = cpu_ticks(std::process::id()).ok();
    let status = loop {
        if let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
            engine_peak = parse_status_kb(&text, "VmHWM").or(engine_peak);
        }
        engine_ticks = cpu_ticks(pid).ok().or(engine_ticks);
        tokio::select! {
            status = child.wait() => break status?,
            _ = tokio::time::sleep(Duration::from_millis(20)) => {}
        }
    };
    let run = started.elapsed();
    let tick = clock_ticks_per_sec() as f64;
    let cpu_split = match (
        engine_ticks,
        own_ticks_at_start,
        cpu_ticks(std::process::id()).ok(),
    ) {
        (Some(e), Some(a), Some(b)) => Some((e as f64 / tick, b.saturating_sub(a) as f64 / tick)),
        _ => None,
    };
    let summary: Value = serde_json::from_slice(&reader.await??).map_err(|e| {
        anyhow::anyhow!("tally sync --once printed no JSON summary ({status}): {e}")
    })?;
    // The summary's stage counts cover every kind (stock items too); orders are counted on
    // the ledger the child left behind.
    let mut orders_synced = 0;
    {
        let ledger = open_ledger(&ledger, Default::default()).await?;
        for stage in [Stage::WrittenBack, Stage::Paid, Stage::Skipped] {
            orders_synced += ledger.count_in_stage(stage, EntityKind::Order).await?;
        }
    }
    let count = |v: Option<&Value>| match v {
        Some(Value::Array(a)) => a.len() as u64,
        Some(v) => v.as_u64().unwrap_or(0),
        None => 0,
    };
    let sim = sandbox.counters();
    let report = BackfillReport {
        orders_seeded: sandbox.counts().orders,
        finished: summary["finished"].as_bool().unwrap_or(false),
        orders_synced,
        orders_by_stage: summary["orders_by_stage"].clone(),
        dead_letters: count(summary.get("dead_letters")),
        xero_calls: count(summary.get("xero_calls")),
        xero_429s: count(summary.get("xero_429s")),
        xero_retries: count(summary.get("xero_retries")),
        utilisation: Utilisation::default(),
        setup: Duration::ZERO,
        run,
        orders_final: None,
        peak_rss_kb: proc_status_kb("VmHWM"),
        engine_peak_rss_kb: engine_peak,
        cpu_split,
        rss_after_sandbox_kb,
        rss_at_start_kb,
        ledger: Value::Null,
        sandbox: sandbox_summary(&sim),
        options: opts,
    };
    sandbox.shutdown().await;
    drop(scratch);
    Ok(report)
}

/// Idle twice in a row, polled often so the measured time is the engine's, not the poll's.
/// Prints where the orders stand to stderr every second, so a slow stage shows itself.
/// Also returns when every seeded order first stood in a final stage: the link can stay busy
/// after that (a periodic stage waiting on the budget), and the report shows both.
async fn wait_idle(
    link: &Link,
    deadline: Instant,
    started: Instant,
    seeded: u64,
) -> anyhow::Result<(bool, Option<Duration>)> {
    let mut streak = 0;
    let mut next_progress = started + PROGRESS_EVERY;
    let mut next_final_check = started;
    let mut orders_final = None;
    while Instant::now() < deadline {
        if orders_final.is_none() && Instant::now() >= next_final_check {
            next_final_check += FINAL_CHECK_EVERY;
            if orders_final_count(link).await? >= seeded {
                orders_final = Some(started.elapsed());
            }
        }
        if Instant::now() >= next_progress {
            next_progress += PROGRESS_EVERY;
            if let Ok(status) = link.status().await {
                let busy: Vec<String> = status
                    .by_stage
                    .iter()
                    .filter(|(_, n)| **n > 0)
                    .map(|(s, n)| format!("{s}={n}"))
                    .collect();
                eprintln!(
                    "bench: {:>6.1}s {} xero_calls={}",
                    started.elapsed().as_secs_f64(),
                    busy.join(" "),
                    status.budget.calls_total
                );
            }
        }
        if link.is_idle().await.map_err(anyhow::Error::msg)? {
            streak += 1;
            if streak >= 2 {
                if orders_final.is_none() && orders_final_count(link).await? >= seeded {
                    orders_final = Some(started.elapsed());
                }
                return Ok((true, orders_final));
            }
        } else {
            streak = 0;
        }
        tokio::time::sleep(IDLE_POLL).await;
    }
    Ok((false, orders_final))
}

/// What the simulators saw: Xero's totals, duplicate counters, 429s and peak concurrency,
/// and the requests Magento answered by route (the engine's cost per order on that side).
fn sandbox_summary(sim: &Value) -> Value {
    json!({
        "xero_totals": sim.pointer("/xero/totals"),
        "xero_duplicates": sim.pointer("/xero/duplicates"),
        "xero_429s_sent": sim.pointer("/xero/rate_limited_429"),
        "xero_peak_in_flight": sim.pointer("/xero/peak_in_flight"),
        "magento_requests": sim.pointer("/magento/requests"),
    })
}

/// Orders in a final stage (key-only counts, cheap enough to poll).
async fn orders_final_count(link: &Link) -> anyhow::Result<u64> {
    let mut n = 0;
    for stage in [Stage::WrittenBack, Stage::Paid, Stage::Skipped] {
        n += link
            .ctx
            .ledger
            .count_in_stage(stage, EntityKind::Order)
            .await?;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(sim_secs: f64, calls_total: u64, waiting: u32) -> BudgetSample {
        BudgetSample {
            sim_secs,
            calls_total,
            waiting,
            window_used: 0,
            in_flight: 0,
        }
    }

    /// Samples once per simulated second: `calls(t)` calls so far, `waiting(t)` queued.
    fn run(
        u: &mut Utilisation,
        secs: u32,
        calls: impl Fn(u32) -> u64,
        waiting: impl Fn(u32) -> u32,
    ) {
        for t in 0..=secs {
            u.add(s(f64::from(t), calls(t), waiting(t)));
        }
        u.finish();
    }

    #[test]
    fn a_burst_then_a_held_queue_is_a_fully_used_minute() {
        // 60 calls in the first 5 s of each minute, callers queued for the rest of it, for
        // three minutes; then the work runs out 20 s into the fourth.
        let mut u = Utilisation::new(60);
        run(
            &mut u,
            200,
            |t| u64::from((t / 60) * 60 + (t % 60).min(5) * 12).min(190),
            |t| u32::from(t <= 180) * 7,
        );
        assert_eq!(u.minutes_waiting, 3);
        assert_eq!(u.calls_in_waiting_minutes, 180);
        assert_eq!(u.ratio(), Some(1.0));
    }

    #[test]
    fn a_minute_that_ends_with_waiters_and_spare_calls_is_under_use() {
        // Only 30 calls in a minute while callers stayed queued: the pacing wasted half.
        let mut u = Utilisation::new(60);
        run(&mut u, 61, |t| u64::from(t.min(60) / 2) + 1, |_| 4);
        assert_eq!(u.minutes_waiting, 1);
        assert!((u.ratio().unwrap() - 30.0 / 60.0).abs() < 0.02, "{u:?}");
    }

    #[test]
    fn calls_made_while_connecting_count_in_the_first_minute() {
        // Connecting made 3 calls in the same sliding minute as the backfill's burst of 57:
        // Xero allowed 60 in that minute and got 60.
        let mut u = Utilisation::new(60);
        run(
            &mut u,
            61,
            |t| if t == 0 { 0 } else { 3 + 57 },
            |t| u32::from(t > 0) * 9,
        );
        assert_eq!(u.minutes_waiting, 1);
        assert_eq!(u.calls_in_waiting_minutes, 60);
        assert_eq!(u.ratio(), Some(1.0));
        assert_eq!(u.minutes.len(), 1);
        assert_eq!(u.minutes[0].calls, 60);
        assert_eq!(u.minutes[0].waiting_at_end, 9);
    }

    #[test]
    fn every_whole_minute_is_listed_counted_or_not() {
        // Two minutes: the first held a queue all along, the second ran out of work at 90 s.
        let mut u = Utilisation::new(60);
        run(
            &mut u,
            130,
            |t| u64::from(t.min(90)),
            |t| u32::from(t < 90) * 2,
        );
        assert_eq!(u.minutes.len(), 2);
        assert_eq!(u.minutes[0].waiting_at_end, 2);
        assert_eq!(u.minutes[0].waiting_share, 1.0);
        assert_eq!(u.minutes[1].waiting_at_end, 0);
        assert!((u.minutes[1].waiting_share - 0.5).abs() < 0.02, "{u:?}");
        assert_eq!(
            u.minutes_waiting, 1,
            "only the first minute is set against its allowance"
        );
    }

    #[test]
    fn no_waiting_means_no_ratio() {
        let mut u = Utilisation::new(60);
        run(&mut u, 130, u64::from, |_| 0);
        assert_eq!(u.ratio(), None);
        let mut idle = Utilisation::new(60);
        run(&mut idle, 130, |_| 0, |_| 3);
        assert_eq!(idle.ratio(), None, "no call was ever made");
    }

    #[test]
    fn proc_status_fields_parse_in_kb() {
        let text = "Name:\ttally\nVmHWM:\t  123456 kB\nVmRSS:\t   2048 kB\n";
        assert_eq!(parse_status_kb(text, "VmHWM"), Some(123_456));
        assert_eq!(parse_status_kb(text, "VmRSS"), Some(2048));
        assert_eq!(parse_status_kb(text, "VmPeak"), None);
    }
}
