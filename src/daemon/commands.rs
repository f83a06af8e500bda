//! `tally daemon`, `tally status`, `tally reload` and `tally console --attach`.

use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use secrecy::SecretString;
use tally_tui::ConsoleState;

use crate::config::RawConfig;
use crate::daemon::client::{ControlClient, ReadyReport};
use crate::daemon::engine::DaemonEngine;
use crate::daemon::server::Settings;

/// The engine for `tally daemon`: the link of this config, publishing its console view.
async fn start_engine(raw: &RawConfig) -> anyhow::Result<Arc<dyn DaemonEngine>> {
    let rt = crate::cmd::console::start_runtime(&raw.path).await?;
    Ok(rt)
}

/// `tally daemon --config PATH [--listen ADDR]`.
pub async fn daemon(config: &Path, listen: Option<&str>) -> anyhow::Result<ExitCode> {
    crate::daemon::logging::init();
    let raw = RawConfig::load(config)?;
    let settings = Settings::from_raw(&raw)?;
    // Refuse a bad [daemon] table before connecting to anything.
    settings.daemon.validate(listen)?;
    let engine = start_engine(&raw).await?;
    let report = crate::daemon::run_daemon(settings, engine, listen).await?;
    Ok(if report.engine_finished {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn client_for(config: &Path) -> anyhow::Result<ControlClient> {
    let raw = RawConfig::load(config)?;
    let settings = Settings::from_raw(&raw)?;
    Ok(ControlClient::from_config(&settings.daemon)?)
}

/// `tally status --config PATH`: 0 when the daemon is ready, 1 when it answers but is not.
pub async fn status(config: &Path) -> anyhow::Result<ExitCode> {
    let client = client_for(config)?;
    let ready = client
        .ready()
        .await
        .with_context(|| format!("is the daemon running at {}?", client.base()))?;
    let state = client.state().await?;
    print!("{}", render_status(client.base(), &ready, &state));
    Ok(if ready.ready {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// `tally reload --config PATH`: 0 when the engine took the new rules.
pub async fn reload(config: &Path) -> anyhow::Result<ExitCode> {
    let client = client_for(config)?;
    let reply = client.reload().await?;
    if reply.ok {
        println!("{}", reply.message);
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!(
            "reload refused, previous rules stay in force: {}",
            reply.message
        );
        Ok(ExitCode::from(1))
    }
}

/// `tally console --attach ADDR [--token T]`.
pub async fn console_attach(addr: &str, token: Option<String>) -> anyhow::Result<ExitCode> {
    crate::daemon::attach::attach(addr, token.map(SecretString::from)).await?;
    Ok(ExitCode::SUCCESS)
}

/// The text `tally status` prints.
pub fn render_status(base: &str, ready: &ReadyReport, s: &ConsoleState) -> String {
    let mut out = String::new();
    let verdict = if ready.ready { "ready" } else { "NOT READY" };
    let _ = writeln!(out, "daemon        {base}  {verdict}");
    for c in ready.checks.iter().filter(|c| !c.ok || !ready.ready) {
        let _ = writeln!(
            out,
            "  {} {}: {}",
            if c.ok { "ok" } else { "FAIL" },
            c.name,
            c.detail
        );
    }
    let _ = writeln!(out, "link          {}", s.link);
    for h in &s.health {
        let _ = writeln!(
            out,
            "  {:<10} {:<4} {}",
            h.system,
            if h.ok { "ok" } else { "FAIL" },
            h.detail
        );
    }
    let _ = writeln!(
        out,
        "{:<12}  {:>10} {:>8} {:>10} {:>8} {:>6}",
        "actor", "status", "queued", "in flight", "failed", "dead"
    );
    for a in &s.actors {
        let _ = writeln!(
            out,
            "{:<12}  {:>10} {:>8} {:>10} {:>8} {:>6}",
            a.name,
            a.status.label(),
            a.queued,
            a.in_flight,
            a.failed,
            a.dead
        );
    }
    let b = &s.budget;
    let _ = writeln!(
        out,
        "xero budget   minute {}/{}, day {}/{}{}",
        b.minute_used,
        b.minute_limit,
        b.day_used,
        b.day_limit,
        b.forecast_exhausted_at
            .as_deref()
            .map(|t| format!(", runs out at {t}"))
            .unwrap_or_default()
    );
    let by_kind: Vec<String> = s
        .discrepancies_by_kind
        .iter()
        .map(|(kind, n)| format!("{kind} {n}"))
        .collect();
    let _ = writeln!(
        out,
        "dead letters  {}\ndiscrepancies {}{}{}",
        crate::daemon::metrics::dead_letters(s),
        s.discrepancies_open,
        if by_kind.is_empty() {
            String::new()
        } else {
            format!(" ({})", by_kind.join(", "))
        },
        if s.discrepancies_acknowledged == 0 {
            String::new()
        } else {
            format!(", {} acknowledged", s.discrepancies_acknowledged)
        }
    );
    out
}
