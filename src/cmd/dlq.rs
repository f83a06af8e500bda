//! `tally dlq`: list, retry and drop dead letters in the ledger.
//!
//! Works on the ledger file directly, so it needs no running engine; while a daemon holds
//! the ledger, use the console or the control API instead (the error says so).

use std::process::ExitCode;

use tally_actors::ledger::{Stage, Write};

use super::engine::{link_config, open_ledger};
use crate::cli::{DlqAction, DlqArgs};
use crate::config::RawConfig;

pub async fn run(args: DlqArgs) -> anyhow::Result<ExitCode> {
    let raw = RawConfig::load(&args.config.config)?;
    let cfg = link_config(&raw)?;
    let ledger = open_ledger(&cfg.ledger_path, cfg.ledger_options).await.map_err(|e| {
        anyhow::anyhow!("{e:#}\n(if `tally daemon` is running it holds the ledger: use `tally console --attach` or its control API)")
    })?;
    match args.action {
        DlqAction::List { json } => {
            let letters = ledger.dead_letters().await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&letters)?);
            } else if letters.is_empty() {
                println!("no dead letters");
            } else {
                for l in &letters {
                    println!(
                        "{}\t{}\t{}\t{}{}",
                        l.key,
                        l.record,
                        l.field.as_deref().unwrap_or("-"),
                        l.message,
                        l.remote_message
                            .as_deref()
                            .map(|m| format!(" (remote: {m})"))
                            .unwrap_or_default()
                    );
                }
            }
        }
        DlqAction::Retry { id, all } => {
            let letters = ledger.dead_letters().await?;
            let chosen: Vec<_> = match (&id, all) {
                (Some(id), _) => letters.into_iter().filter(|l| &l.key == id).collect(),
                (None, true) => letters,
                (None, false) => anyhow::bail!(
                    "name a dead letter (tally dlq retry order:000000123) or pass --all"
                ),
            };
            if chosen.is_empty() {
                anyhow::bail!("no dead letter {}", id.unwrap_or_default());
            }
            let writes: Vec<Write> = chosen
                .iter()
                .map(|l| Write::Revive {
                    key: l.key.clone(),
                    to: revive_stage(l.stage_at_death),
                    actor: "operator (cli)".into(),
                })
                .collect();
            let n = writes.len();
            ledger.commit(writes).await?;
            println!(
                "{n} dead letter(s) sent back; the next `tally sync` or the running daemon picks them up"
            );
        }
        DlqAction::Drop { id } => {
            ledger
                .commit(vec![Write::DropDeadLetter {
                    key: id.clone(),
                    actor: "operator (cli)".into(),
                }])
                .await?;
            println!("{id} dropped");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Mirrors the engine's rule: back to the step it died at, before any intent.
fn revive_stage(at: Option<Stage>) -> Stage {
    match at {
        Some(Stage::InvoicePosting) => Stage::ContactReady,
        Some(Stage::PaymentPosting) => Stage::Invoiced,
        Some(Stage::ContactPosting) => Stage::ContactPending,
        Some(s) => s,
        None => Stage::Seen,
    }
}
