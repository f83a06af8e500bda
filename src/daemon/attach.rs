//! `tally console --attach ADDR`: the console on this terminal, the engine in a daemon elsewhere.
//!
//! The state stream is followed into the same watch channel an in-process console reads, so
//! the console cannot tell the difference. When the daemon goes away (restart, upgrade) the
//! last state stays on screen marked "disconnected, retrying" and the client reconnects with
//! backoff from 500 ms doubling to 5 s, reset after each successful connection.

use std::time::Duration;

use secrecy::SecretString;
use tally_tui::state::{HealthRow, LogLevel, LogLine};
use tally_tui::{ConsoleCommand, ConsoleState};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::daemon::client::ControlClient;

pub const BACKOFF_START: Duration = Duration::from_millis(500);
pub const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// The health row an attached console uses for its own connection to the daemon.
pub const DAEMON_ROW: &str = "Daemon";

/// Marks the state on screen as stale: the link title says so, and a `Daemon` health row
/// carries the reason and the next attempt.
pub fn mark_disconnected(state: &mut ConsoleState, base: &str, reason: &str, retry_in: Duration) {
    const TAG: &str = " — disconnected, retrying";
    if !state.link.ends_with(TAG) {
        state.link = if state.link.is_empty() {
            format!("{base}{TAG}")
        } else {
            format!("{}{TAG}", state.link)
        };
    }
    let detail = format!(
        "disconnected, retrying in {:.1}s: {reason}",
        retry_in.as_secs_f64()
    );
    state.health.retain(|h| h.system != DAEMON_ROW);
    state.health.push(HealthRow {
        system: DAEMON_ROW.into(),
        ok: false,
        detail,
        latency_ms: None,
    });
}

/// Keeps `tx` fed from the daemon's state stream until `stop`, reconnecting forever.
pub async fn follow_with_reconnect(
    client: ControlClient,
    tx: watch::Sender<ConsoleState>,
    stop: CancellationToken,
) {
    let mut backoff = BACKOFF_START;
    loop {
        let mut connected = false;
        let reason = tokio::select! {
            () = stop.cancelled() => return,
            e = client.follow_state(&tx, || connected = true) => e,
        };
        if connected {
            backoff = BACKOFF_START;
        }
        tracing::debug!(error = %reason, retry_in = ?backoff, "State stream lost.");
        let reason = reason.to_string();
        tx.send_modify(|s| mark_disconnected(s, client.base(), &reason, backoff));
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

/// Posts the console's commands to the daemon; a refusal or an unreachable daemon shows up in
/// the console's log, since the engine's own state cannot report a command it never got.
pub async fn forward_commands(
    client: ControlClient,
    mut commands: mpsc::UnboundedReceiver<ConsoleCommand>,
    tx: watch::Sender<ConsoleState>,
) {
    while let Some(cmd) = commands.recv().await {
        if cmd == ConsoleCommand::Quit {
            break;
        }
        let (level, message) = match client.command(&cmd).await {
            Ok(r) if r.ok => (LogLevel::Info, r.message),
            Ok(r) => (LogLevel::Warn, r.message),
            Err(e) => (LogLevel::Error, format!("command not delivered: {e}")),
        };
        tx.send_modify(|s| {
            s.log.push(LogLine {
                at: String::new(),
                level,
                message,
            })
        });
    }
}

/// Runs the console attached to the daemon at `addr` until the operator quits.
pub async fn attach(addr: &str, token: Option<SecretString>) -> anyhow::Result<()> {
    let client = ControlClient::new(addr, token)?;
    let mut initial = ConsoleState::default();
    mark_disconnected(&mut initial, client.base(), "connecting", Duration::ZERO);
    let (tx, rx) = watch::channel(initial);
    let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
    let stop = CancellationToken::new();
    let follower = tokio::spawn(follow_with_reconnect(
        client.clone(),
        tx.clone(),
        stop.clone(),
    ));
    let forwarder = tokio::spawn(forward_commands(client, cmd_rx, tx));
    let result = tally_tui::run(rx, cmd_tx).await;
    stop.cancel();
    forwarder.abort();
    let _ = follower.await;
    result.map_err(Into::into)
}
