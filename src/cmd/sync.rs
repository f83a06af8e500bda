//! `tally sync`: catch up (with `--once`) or keep syncing until interrupted.

use std::process::ExitCode;
use std::time::Duration;

use serde_json::json;
use tally_actors::link::Link;

use super::engine::{connect_tuned, init_logging};
use crate::cli::SyncArgs;

/// How long `--once` waits for the backlog before giving up.
const ONCE_LIMIT: Duration = Duration::from_secs(6 * 3600);

pub async fn run(args: SyncArgs) -> anyhow::Result<ExitCode> {
    init_logging();
    // Catching up and exiting needs no read-back of Xero; a long-running sync reconciles.
    let once = args.once;
    let (_raw, ctx) = connect_tuned(&args.config.config, |s| s.reconcile &= !once).await?;
    let link = Link::start(ctx.clone()).await?;
    if args.once {
        let finished = tokio::select! {
            r = link.wait_idle(ONCE_LIMIT) => r.map_err(anyhow::Error::msg)?,
            _ = tokio::signal::ctrl_c() => false,
        };
        let status = link.status().await.map_err(anyhow::Error::msg)?;
        let letters = link.dead_letters().await.map_err(anyhow::Error::msg)?;
        let counters = ctx.xero.counters();
        let summary = json!({
            "finished": finished,
            "orders_by_stage": status.by_stage,
            "dead_letters": letters.iter().map(|l| json!({
                "key": l.key, "record": l.record, "field": l.field, "message": l.message, "remote_message": l.remote_message,
            })).collect::<Vec<_>>(),
            "xero_calls": counters.calls,
            "xero_429s": counters.throttled,
            "xero_retries": counters.retries,
        });
        link.stop().await;
        println!("{}", serde_json::to_string_pretty(&summary)?);
        return Ok(if !finished {
            ExitCode::from(3)
        } else if letters.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        });
    }
    tokio::signal::ctrl_c().await?;
    link.stop().await;
    Ok(ExitCode::SUCCESS)
}
