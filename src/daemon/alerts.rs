//! Alerts for the operator, raised on transitions seen in the engine's `ConsoleState`.
//!
//! Kinds: new dead letters, the daily Xero budget forecast to run out today, Xero needing to be
//! reconnected, and open discrepancies at or above `[alerts] discrepancy_threshold`. Each kind
//! fires once when its condition starts, at most once per `min_interval_secs`, and sends a
//! "resolved" message when the condition clears — so an outage that produces a thousand dead
//! letters is one alert (plus a summary of what piled up while muted), not a thousand.
//!
//! Delivery goes to a Slack-compatible webhook (`{"text": ...}`) and/or a command that receives
//! the alert JSON on stdin. A failed delivery is logged and never stops the daemon.

use std::collections::HashMap;
use std::process::Stdio;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use tally_tui::ConsoleState;
use tokio::io::AsyncWriteExt;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::daemon::config::AlertsConfig;
use crate::daemon::metrics::dead_letters;

/// How often muted alerts are re-checked when no new state arrives.
const TICK: Duration = Duration::from_secs(1);
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    DeadLetters,
    XeroBudget,
    XeroReconnect,
    Discrepancies,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertStatus {
    Firing,
    Resolved,
}

/// What is delivered (as JSON to the command hook; its `text` to the webhook).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alert {
    pub kind: AlertKind,
    pub status: AlertStatus,
    pub link: String,
    pub text: String,
}

#[derive(Default)]
struct KindState {
    /// A firing alert was sent and no resolution yet.
    announced: bool,
    last_fired: Option<Instant>,
}

/// The transition logic, free of I/O and of the clock so it can be tested step by step.
pub struct AlertMonitor {
    min_interval: Duration,
    discrepancy_threshold: Option<u64>,
    kinds: HashMap<AlertKind, KindState>,
    /// Dead letters at the last observation. Starts at zero, so letters already waiting when
    /// the daemon starts are announced once: after a restart nobody may have seen them.
    dead_seen: u64,
    /// Dead letters covered by the last firing alert.
    dead_announced: u64,
    /// Dead letters rose while the kind was muted.
    dead_pending: bool,
}

impl AlertMonitor {
    pub fn new(cfg: &AlertsConfig) -> Self {
        Self {
            min_interval: cfg.min_interval(),
            discrepancy_threshold: cfg.discrepancy_threshold,
            kinds: HashMap::new(),
            dead_seen: 0,
            dead_announced: 0,
            dead_pending: false,
        }
    }

    /// Looks at one snapshot (or the last one again, on a tick) and returns what to send now.
    pub fn observe(&mut self, state: &ConsoleState, now: Instant) -> Vec<Alert> {
        let mut out = Vec::new();
        self.dead_letters(state, now, &mut out);

        let b = &state.budget;
        let budget = b.forecast_exhausted_at.as_ref().map(|at| {
            format!(
                "Xero daily API budget forecast to run out at {at} ({} of {} calls used).",
                b.day_used, b.day_limit
            )
        });
        self.level(
            AlertKind::XeroBudget,
            budget,
            "Xero daily API budget no longer forecast to run out today.",
            state,
            now,
            &mut out,
        );

        let reconnect = state
            .health
            .iter()
            .find(|h| {
                h.system.eq_ignore_ascii_case("xero")
                    && !h.ok
                    && h.detail.to_ascii_lowercase().contains("reconnect")
            })
            .map(|h| format!("Xero needs to be reconnected: {}", h.detail));
        self.level(
            AlertKind::XeroReconnect,
            reconnect,
            "Xero connection restored.",
            state,
            now,
            &mut out,
        );

        let discrepancies = self
            .discrepancy_threshold
            .filter(|t| state.discrepancies_open >= *t)
            .map(|t| {
                format!(
                    "{} open discrepancies between Magento and Xero (threshold {t}).",
                    state.discrepancies_open
                )
            });
        self.level(
            AlertKind::Discrepancies,
            discrepancies,
            "Open discrepancies are back under the threshold.",
            state,
            now,
            &mut out,
        );
        out
    }

    fn may_fire(&self, kind: AlertKind, now: Instant) -> bool {
        self.kinds
            .get(&kind)
            .and_then(|k| k.last_fired)
            .is_none_or(|t| now.duration_since(t) >= self.min_interval)
    }

    fn fire(
        &mut self,
        kind: AlertKind,
        text: String,
        state: &ConsoleState,
        now: Instant,
        out: &mut Vec<Alert>,
    ) {
        let k = self.kinds.entry(kind).or_default();
        k.announced = true;
        k.last_fired = Some(now);
        out.push(Alert {
            kind,
            status: AlertStatus::Firing,
            link: state.link.clone(),
            text,
        });
    }

    fn resolve(&mut self, kind: AlertKind, text: &str, state: &ConsoleState, out: &mut Vec<Alert>) {
        let k = self.kinds.entry(kind).or_default();
        if std::mem::take(&mut k.announced) {
            out.push(Alert {
                kind,
                status: AlertStatus::Resolved,
                link: state.link.clone(),
                text: text.to_owned(),
            });
        }
    }

    /// A condition that holds for a while: fire when it starts (or when the mute ends while it
    /// still holds), resolve when it stops.
    fn level(
        &mut self,
        kind: AlertKind,
        active: Option<String>,
        resolved: &str,
        state: &ConsoleState,
        now: Instant,
        out: &mut Vec<Alert>,
    ) {
        let announced = self.kinds.get(&kind).is_some_and(|k| k.announced);
        match active {
            Some(text) if !announced && self.may_fire(kind, now) => {
                self.fire(kind, text, state, now, out)
            }
            Some(_) => {}
            None => self.resolve(kind, resolved, state, out),
        }
    }

    fn dead_letters(&mut self, state: &ConsoleState, now: Instant, out: &mut Vec<Alert>) {
        let dead = dead_letters(state);
        let seen = std::mem::replace(&mut self.dead_seen, dead);
        if dead == 0 {
            self.dead_pending = false;
            self.dead_announced = 0;
            self.resolve(
                AlertKind::DeadLetters,
                "Dead-letter queue is empty again.",
                state,
                out,
            );
            return;
        }
        if dead > seen {
            self.dead_pending = true;
        }
        if dead < self.dead_announced {
            // Some were retried or dropped: count new ones from here.
            self.dead_announced = dead;
        }
        if self.dead_pending && self.may_fire(AlertKind::DeadLetters, now) {
            let new = dead.saturating_sub(self.dead_announced);
            if new > 0 {
                let text = format!(
                    "{new} new dead letter{} ({dead} waiting for an operator); see `tally dlq list`.",
                    if new == 1 { "" } else { "s" }
                );
                self.fire(AlertKind::DeadLetters, text, state, now, out);
            }
            self.dead_announced = dead;
            self.dead_pending = false;
        }
    }
}

/// Sends alerts to the configured webhook and command.
#[derive(Clone)]
pub struct AlertSink {
    webhook_url: Option<SecretString>,
    command: Option<std::path::PathBuf>,
    http: reqwest::Client,
}

impl AlertSink {
    pub fn new(cfg: &AlertsConfig) -> Self {
        let http = reqwest::Client::builder()
            .timeout(DELIVERY_TIMEOUT)
            .build()
            .unwrap_or_default();
        Self {
            webhook_url: cfg.webhook_url.clone(),
            command: cfg.command.clone(),
            http,
        }
    }

    pub fn is_configured(&self) -> bool {
        self.webhook_url.is_some() || self.command.is_some()
    }

    pub async fn deliver(&self, alert: &Alert) {
        let prefix = match alert.status {
            AlertStatus::Firing => "ALERT",
            AlertStatus::Resolved => "RESOLVED",
        };
        tracing::warn!(kind = ?alert.kind, status = ?alert.status, text = %alert.text, "Alert.");
        if let Some(url) = &self.webhook_url {
            let text = format!("[tally] {prefix} {}: {}", alert.link, alert.text);
            match self
                .http
                .post(url.expose_secret())
                .json(&serde_json::json!({ "text": text }))
                .send()
                .await
            {
                Ok(r) if r.status().is_success() => {}
                // The URL is a secret (Slack puts its token in the path): log the status only.
                Ok(r) => tracing::error!(status = %r.status(), "Alert webhook refused the alert."),
                Err(e) => tracing::error!(error = %e.without_url(), "Alert webhook unreachable."),
            }
        }
        if let Some(cmd) = &self.command
            && let Err(e) = run_hook(cmd, alert).await
        {
            tracing::error!(command = %cmd.display(), error = %e, "Alert command failed.");
        }
    }
}

async fn run_hook(cmd: &std::path::Path, alert: &Alert) -> std::io::Result<()> {
    let mut child = tokio::process::Command::new(cmd)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()?;
    let json = serde_json::to_vec(alert).map_err(std::io::Error::other)?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(&json).await?;
        stdin.write_all(b"\n").await?;
    }
    let status = tokio::time::timeout(DELIVERY_TIMEOUT, child.wait())
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "did not exit in time"))??;
    if status.success() {
        Ok(())
    } else {
        Err(std::io::Error::other(format!("exited with {status}")))
    }
}

/// Follows the state until `stop`, delivering alerts from a separate task so a slow receiver
/// never delays noticing the next transition.
pub async fn follow(
    mut rx: watch::Receiver<ConsoleState>,
    cfg: AlertsConfig,
    stop: CancellationToken,
) {
    let sink = AlertSink::new(&cfg);
    if !sink.is_configured() {
        return;
    }
    let mut monitor = AlertMonitor::new(&cfg);
    let (tx, mut queue) = mpsc::unbounded_channel::<Alert>();
    let delivery = tokio::spawn(async move {
        while let Some(alert) = queue.recv().await {
            sink.deliver(&alert).await;
        }
    });
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        // Borrowed, not cloned: the state can hold tens of thousands of queue rows, and this
        // runs every tick.
        let alerts = monitor.observe(&rx.borrow_and_update(), Instant::now());
        for alert in alerts {
            let _ = tx.send(alert);
        }
        tokio::select! {
            () = stop.cancelled() => break,
            _ = tick.tick() => {}
            changed = rx.changed() => if changed.is_err() { break },
        }
    }
    drop(tx);
    let _ = tokio::time::timeout(DELIVERY_TIMEOUT, delivery).await;
}
