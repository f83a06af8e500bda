//! `tally bench console` and `tally bench daemon`: the numbers an operator cares about once
//! the backfill is done — how fast the console draws a huge queue, what an idle daemon costs,
//! and how long a pushed Magento order takes to become a Xero invoice.
//!
//! They print JSON and judge nothing beyond saying whether each figure is inside its target;
//! the exit code is 0 unless the run itself failed.

use std::path::Path;
use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use secrecy::SecretString;
use serde_json::{Value, json};
use tally_fixtures::sandbox::{Sandbox, SandboxOptions};

use crate::cli::{BenchArgs, BenchWhat};

/// Targets the figures are reported against.
const FRAME_TARGET_MS: f64 = 5.0;
const IDLE_RSS_TARGET_KB: u64 = 40 * 1024;
const IDLE_CPU_TARGET_PERCENT: f64 = 1.0;
const LATENCY_P99_TARGET_MS: f64 = 250.0;

/// A bound on waiting for the daemon or the backlog: a hung run ends with an error.
const WAIT_LIMIT: Duration = Duration::from_secs(600);
/// The push secret of the benchmark's own daemon (a throwaway, like the sandbox's credentials).
const PUSH_SECRET: &str = "tally-bench-push-secret";

/// `tally bench console|daemon` (`tally bench backfill` lives in [`super::bench`]).
pub async fn run(what: BenchWhat) -> anyhow::Result<ExitCode> {
    match what {
        BenchWhat::Console { items, frames } => console(items, frames),
        BenchWhat::Daemon {
            orders,
            idle_secs,
            latency_orders,
            gap_ms,
            time_scale,
            seed,
        } => {
            daemon(DaemonBenchOptions {
                orders,
                idle_secs,
                latency_orders,
                gap: Duration::from_millis(gap_ms),
                time_scale,
                seed,
            })
            .await
        }
        other @ BenchWhat::Backfill { .. } => super::bench::run(BenchArgs { what: other }).await,
    }
}

/// `tally bench console`: frame time with `items` operations queued.
pub fn console(items: usize, frames: usize) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let s = tally_tui::bench_frames(items, frames.max(1));
    let ms = |us: u64| us as f64 / 1000.0;
    let report = json!({
        "bench": "console",
        "items": items,
        "frames": s.frames,
        "terminal": "120x40 (ratatui TestBackend)",
        "median_ms": ms(s.median_us),
        "p99_ms": ms(s.p99_us),
        "worst_ms": ms(s.worst_us),
        "target_ms": FRAME_TARGET_MS,
        "p99_within_target": ms(s.p99_us) < FRAME_TARGET_MS,
        "wall_secs": started.elapsed().as_secs_f64(),
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Clone)]
pub struct DaemonBenchOptions {
    /// Orders already in the store: the backlog the daemon clears before the idle window.
    pub orders: usize,
    pub idle_secs: u64,
    /// Orders pushed one at a time for the latency figure.
    pub latency_orders: usize,
    /// Pause between pushed orders (after each one is invoiced).
    pub gap: Duration,
    pub time_scale: f64,
    pub seed: u64,
}

/// `tally bench daemon`: sandbox in this process, `tally daemon` as a child (so its CPU and
/// memory are its own), idle cost, then push-to-invoice latency.
pub async fn daemon(opts: DaemonBenchOptions) -> anyhow::Result<ExitCode> {
    let sandbox = Sandbox::start(SandboxOptions {
        seed: opts.seed,
        orders: opts.orders,
        time_scale: opts.time_scale,
        ..SandboxOptions::default()
    })
    .await?;
    let dir = tempfile::tempdir()?;
    let port = free_port()?;
    let config = dir.path().join("tally.toml");
    sandbox.write_config(&config, &dir.path().join("tally.redb"))?;
    let base = format!("http://127.0.0.1:{port}");
    append_daemon_table(&config, port, &sandbox.xero.config().webhook_key)?;
    let log = dir.path().join("daemon.log");
    let mut child = spawn_daemon(&config, &log)?;
    let pid = child.id().context("the daemon exited at once")?;
    let http = reqwest::Client::new();

    let result = async {
        let started = Instant::now();
        wait_ready(&http, &base, &mut child).await?;
        let ready_secs = started.elapsed().as_secs_f64();
        wait_backlog(&sandbox, &http, &base, opts.orders).await?;
        let backlog_secs = started.elapsed().as_secs_f64();
        // Let the last writes, the state publisher and the first poll after the backlog settle.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let idle = measure_idle(pid, Duration::from_secs(opts.idle_secs.max(1))).await?;
        let latency =
            measure_latency(&sandbox, &http, &base, opts.latency_orders, opts.gap).await?;
        anyhow::Ok(json!({
            "bench": "daemon",
            "backlog_orders": opts.orders,
            "time_scale": opts.time_scale,
            "ready_secs": ready_secs,
            "backlog_done_secs": backlog_secs,
            "idle": idle,
            "push_to_invoice": latency,
            "xero_duplicates": sandbox.xero.counters_json()["duplicates"],
        }))
    }
    .await;
    let stopped = stop_daemon(&mut child, pid).await;
    let report = match result {
        Ok(r) => r,
        Err(e) => {
            let tail: String = std::fs::read_to_string(&log)
                .unwrap_or_default()
                .lines()
                .rev()
                .take(20)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<Vec<_>>()
                .join("\n");
            bail!("{e:#}\nlast daemon log lines:\n{tail}");
        }
    };
    let mut report = report;
    report["sigterm_exit_secs"] = json!(stopped?.as_secs_f64());
    println!("{}", serde_json::to_string_pretty(&report)?);
    sandbox.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn append_daemon_table(config: &Path, port: u16, xero_key: &str) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(config)?;
    let q = |s: &str| toml::Value::String(s.to_owned()).to_string();
    std::fs::write(
        config,
        format!(
            "{text}\n[daemon]\nlisten = \"127.0.0.1:{port}\"\nxero_webhook_key = {}\nmagento_webhook_secret = {}\n",
            q(xero_key),
            q(PUSH_SECRET)
        ),
    )?;
    Ok(())
}

fn spawn_daemon(config: &Path, log: &Path) -> anyhow::Result<tokio::process::Child> {
    let out = std::fs::File::create(log)?;
    let err = out.try_clone()?;
    let exe = std::env::current_exe().context("cannot find the tally binary")?;
    tokio::process::Command::new(exe)
        .arg("daemon")
        .arg("--config")
        .arg(config)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .kill_on_drop(true)
        .spawn()
        .context("cannot start tally daemon")
}

async fn wait_ready(
    http: &reqwest::Client,
    base: &str,
    child: &mut tokio::process::Child,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + WAIT_LIMIT;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait()? {
            bail!("the daemon exited before it was ready ({status})");
        }
        if let Ok(r) = http.get(format!("{base}/readyz")).send().await
            && r.status().is_success()
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("the daemon was not ready within {WAIT_LIMIT:?}")
}

fn xero_invoices(sandbox: &Sandbox) -> u64 {
    sandbox.xero.counters_json()["totals"]["invoices"]
        .as_u64()
        .unwrap_or(0)
}

/// Waits until every seeded order has its Xero invoice and the daemon's queue is empty.
async fn wait_backlog(
    sandbox: &Sandbox,
    http: &reqwest::Client,
    base: &str,
    orders: usize,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + WAIT_LIMIT;
    while Instant::now() < deadline {
        if xero_invoices(sandbox) >= orders as u64 {
            let state: Value = http
                .get(format!("{base}/api/v1/state"))
                .send()
                .await?
                .json()
                .await?;
            let busy = state["actors"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|a| a["in_flight"].as_u64().unwrap_or(0) > 0);
            if state["queue"].as_array().is_some_and(Vec::is_empty) && !busy {
                return Ok(());
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("the backlog of {orders} orders was not done within {WAIT_LIMIT:?}")
}

/// utime + stime of `pid`, in clock ticks (fields 14 and 15 of `/proc/PID/stat`, counted
/// after the parenthesised command name, which may itself contain spaces).
pub(super) fn cpu_ticks(pid: u32) -> anyhow::Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .context("reading /proc/PID/stat (Linux only)")?;
    let after = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .context("unexpected /proc/PID/stat")?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    // `after` starts at field 3 (state), so utime (14) and stime (15) are at 11 and 12.
    let utime: u64 = fields.get(11).context("no utime")?.parse()?;
    let stime: u64 = fields.get(12).context("no stime")?.parse()?;
    Ok(utime + stime)
}

/// Clock ticks per second (`getconf CLK_TCK`; 100 on every mainstream Linux).
pub(super) fn clock_ticks_per_sec() -> u64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .filter(|t| *t > 0)
        .unwrap_or(100)
}

fn status_kb(pid: u32, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines().find_map(|line| {
        let rest = line.strip_prefix(field)?.strip_prefix(':')?;
        rest.trim().trim_end_matches("kB").trim().parse().ok()
    })
}

async fn measure_idle(pid: u32, window: Duration) -> anyhow::Result<Value> {
    let before = cpu_ticks(pid)?;
    let started = Instant::now();
    tokio::time::sleep(window).await;
    let ticks = cpu_ticks(pid)?.saturating_sub(before);
    let secs = started.elapsed().as_secs_f64();
    let cpu_secs = ticks as f64 / clock_ticks_per_sec() as f64;
    let percent = 100.0 * cpu_secs / secs;
    let rss = status_kb(pid, "VmRSS");
    let hwm = status_kb(pid, "VmHWM");
    Ok(json!({
        "window_secs": secs,
        "cpu_secs": cpu_secs,
        "cpu_percent": percent,
        "vm_rss_kb": rss,
        "vm_hwm_kb": hwm,
        "rss_target_kb": IDLE_RSS_TARGET_KB,
        "rss_within_target": rss.is_some_and(|r| r < IDLE_RSS_TARGET_KB),
        "cpu_target_percent": IDLE_CPU_TARGET_PERCENT,
        "cpu_within_target": percent < IDLE_CPU_TARGET_PERCENT,
    }))
}

/// A new order copied from a seeded one: the store assigns it fresh ids and timestamps.
fn new_order(sandbox: &Sandbox, n: usize) -> Option<Value> {
    let seeded = sandbox.counts().orders.max(1);
    sandbox.magento.order_template((n % seeded) as i64 + 1)
}

/// Each order: stored in Magento, pushed to the daemon at once, timed until Xero holds one
/// more invoice (checked in this process, so the measurement spends none of the Xero budget).
async fn measure_latency(
    sandbox: &Sandbox,
    http: &reqwest::Client,
    base: &str,
    orders: usize,
    gap: Duration,
) -> anyhow::Result<Value> {
    let secret = SecretString::from(PUSH_SECRET.to_owned());
    let mut samples = Vec::with_capacity(orders);
    let mut invoices = xero_invoices(sandbox);
    for n in 0..orders {
        let order = new_order(sandbox, n).context("the store has no order to copy")?;
        let started = Instant::now();
        let stored = sandbox.magento.insert_order(order);
        let body = serde_json::to_vec(&json!({
            "entity_id": stored["entity_id"],
            "increment_id": stored["increment_id"],
        }))?;
        let sig = crate::daemon::signature::sign_tally_hex(&secret, &body);
        let answer = http
            .post(format!("{base}/webhooks/magento"))
            .header("content-type", "application/json")
            .header(crate::daemon::webhooks::TALLY_SIGNATURE, sig)
            .body(body)
            .send()
            .await?;
        if !answer.status().is_success() {
            bail!("the daemon refused the push: {}", answer.status());
        }
        let deadline = started + Duration::from_secs(60);
        loop {
            let now = xero_invoices(sandbox);
            if now > invoices {
                invoices = now;
                break;
            }
            if Instant::now() > deadline {
                bail!(
                    "order {} never reached Xero",
                    stored["increment_id"].as_str().unwrap_or("?")
                );
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        samples.push(started.elapsed());
        tokio::time::sleep(gap).await;
    }
    let mut ms: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
    ms.sort_by(f64::total_cmp);
    let pick = |q: f64| -> f64 {
        if ms.is_empty() {
            return 0.0;
        }
        let i = ((ms.len() as f64 * q).ceil() as usize).clamp(1, ms.len()) - 1;
        ms[i]
    };
    let p99 = pick(0.99);
    Ok(json!({
        "orders": ms.len(),
        "gap_ms": gap.as_millis() as u64,
        "p50_ms": pick(0.5),
        "p99_ms": p99,
        "max_ms": ms.last().copied().unwrap_or(0.0),
        "p99_target_ms": LATENCY_P99_TARGET_MS,
        "p99_within_target": !ms.is_empty() && p99 < LATENCY_P99_TARGET_MS,
    }))
}

/// SIGTERM (through `kill`, as an init system would) and the time the daemon took to exit.
async fn stop_daemon(child: &mut tokio::process::Child, pid: u32) -> anyhow::Result<Duration> {
    let started = Instant::now();
    std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .context("cannot run kill")?;
    match tokio::time::timeout(Duration::from_secs(30), child.wait()).await {
        Ok(status) => {
            status?;
            Ok(started.elapsed())
        }
        Err(_) => {
            child.kill().await?;
            bail!("the daemon ignored SIGTERM for 30 s")
        }
    }
}
