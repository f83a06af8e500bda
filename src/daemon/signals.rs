//! Unix signals: SIGTERM and SIGINT start the shutdown, SIGHUP reloads the mapping rules (what
//! `systemctl reload tally` sends through `ExecReload`).

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::daemon::engine::DaemonEngine;

#[cfg(unix)]
pub async fn handle(engine: Arc<dyn DaemonEngine>, shutdown: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int), Ok(mut hup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::hangup()),
    ) else {
        tracing::error!(
            "Cannot install signal handlers; stop the daemon with SIGKILL only as a last resort."
        );
        return;
    };
    loop {
        tokio::select! {
            _ = term.recv() => { tracing::info!("SIGTERM received."); break; }
            _ = int.recv() => { tracing::info!("SIGINT received."); break; }
            _ = hup.recv() => match engine.reload().await {
                Ok(msg) => tracing::info!(message = %msg, "Mapping rules reloaded (SIGHUP)."),
                Err(msg) => tracing::error!(message = %msg, "Reload refused; the previous rules stay in force."),
            },
        }
    }
    shutdown.cancel();
}

#[cfg(not(unix))]
pub async fn handle(_engine: Arc<dyn DaemonEngine>, shutdown: CancellationToken) {
    if tokio::signal::ctrl_c().await.is_ok() {
        shutdown.cancel();
    }
}
