//! `tally console --config PATH`: the engine and the operator console in one process.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use tally_actors::link::Link;
use tally_tui::{ConsoleCommand, ConsoleState};
use tokio::sync::{mpsc, watch};

use super::engine::connect;
use crate::engine::EngineRuntime;

/// Starts the link and its console view.
pub async fn start_runtime(config: &Path) -> anyhow::Result<Arc<EngineRuntime>> {
    let (_raw, ctx) = connect(config).await?;
    let org = ctx
        .xero
        .organisation(tally_actors::budget::Priority::Lookup)
        .await
        .ok();
    let name = format!(
        "Magento {} ↔ Xero {}",
        ctx.magento_store_label(),
        org.as_ref()
            .and_then(|o| o.get("Name"))
            .and_then(|n| n.as_str())
            .unwrap_or("organisation")
    );
    let link = Link::start(ctx).await?;
    Ok(EngineRuntime::start(link, name, Some(config.to_owned())))
}

/// Runs the console over `rt` until the operator quits; commands go to the engine.
pub async fn run_console(rt: Arc<EngineRuntime>) -> anyhow::Result<()> {
    let state_rx: watch::Receiver<ConsoleState> = rt.subscribe();
    let (tx, mut rx) = mpsc::unbounded_channel::<ConsoleCommand>();
    let worker = rt.clone();
    let forward = tokio::spawn(async move {
        while let Some(cmd) = rx.recv().await {
            if cmd == ConsoleCommand::Quit {
                break;
            }
            if let Err(e) = worker.apply(cmd).await {
                tracing::warn!(error = %e, "Console command failed.");
            }
        }
    });
    let result = tally_tui::run(state_rx, tx).await;
    forward.abort();
    result.map_err(Into::into)
}

pub async fn run(config: &Path) -> anyhow::Result<ExitCode> {
    let rt = start_runtime(config).await?;
    let result = run_console(rt.clone()).await;
    rt.stop().await;
    result?;
    Ok(ExitCode::SUCCESS)
}
