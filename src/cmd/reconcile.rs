//! `tally reconcile`: one reconciliation pass now, from cron or a shell, with its summary.
//!
//! A running daemon holds the ledger and reconciles on its own schedule: then the pass is
//! asked of it, and the summary is what is open afterwards. Otherwise the pass runs here.
//! The exit code is for scripts: 0 when Magento and Xero agree (or every difference was
//! acknowledged), 1 when a discrepancy needs attention or the pass could not finish.

use std::process::ExitCode;

use serde_json::{Value, json};
use tally_actors::reconcile::ReconcileWorker;
use tally_tui::ConsoleCommand;

use super::engine::connect;
use crate::cli::ReconcileArgs;
use crate::config::RawConfig;
use crate::daemon::client::{ClientError, ControlClient};
use crate::daemon::server::Settings;
use crate::engine::discrepancy::{acknowledged, count_by_kind};

/// What is open, as the summary's tail shows it.
fn open_summary(open: &[(String, Value)]) -> Value {
    let by_kind = count_by_kind(open);
    json!({
        "needs_attention": by_kind.values().sum::<u64>(),
        "needs_attention_by_kind": by_kind,
        "acknowledged": acknowledged(open),
    })
}

pub async fn run(args: ReconcileArgs) -> anyhow::Result<ExitCode> {
    let raw = RawConfig::load(&args.config.config)?;
    // A full pass runs here: the daemon's own passes follow its cursor. Its ledger is locked
    // while it runs, so opening it below says so.
    if !args.full
        && let Ok(client) = ControlClient::from_config(&Settings::from_raw(&raw)?.daemon)
    {
        match client.command(&ConsoleCommand::ReconcileNow).await {
            Ok(reply) => {
                let open = super::report::from_daemon(&raw).await?.unwrap_or_default();
                let mut summary = open_summary(&open);
                summary["through_daemon"] = json!(client.base());
                summary["daemon"] = json!(reply.message);
                println!("{}", serde_json::to_string_pretty(&summary)?);
                eprintln!(
                    "the daemon runs the pass on its own; what is open now is listed (tally report for each one)"
                );
                return Ok(exit(reply.ok, &summary));
            }
            Err(ClientError::Unreachable { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let (_raw, ctx) = connect(&args.config.config).await.map_err(|e| {
        anyhow::anyhow!(
            "{e:#}\n(if `tally daemon` is running it holds the ledger: stop it for a --full pass)"
        )
    })?;
    let worker = match args.full {
        true => ReconcileWorker::full(ctx.clone()),
        false => ReconcileWorker::new(ctx.clone()),
    };
    let pass = worker
        .pass()
        .await
        .map_err(|e| anyhow::anyhow!("the reconciliation pass failed: {e}"))?;
    let open = ctx.ledger.discrepancies().await?;
    let mut summary = serde_json::to_value(&pass)?;
    if let (Some(s), Value::Object(tail)) = (summary.as_object_mut(), open_summary(&open)) {
        s.extend(tail);
    }
    println!("{}", serde_json::to_string_pretty(&summary)?);
    Ok(exit(pass.gave_up.is_none(), &summary))
}

fn exit(finished: bool, summary: &Value) -> ExitCode {
    if finished && summary["needs_attention"].as_u64() == Some(0) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
