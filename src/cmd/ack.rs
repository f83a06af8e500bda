//! `tally ack`: an operator accepts an open discrepancy from a script or a shell.
//!
//! A running daemon holds the ledger, so the acknowledgement goes through its control API
//! when one answers (as `tally fix` does); otherwise it is written to the ledger file.

use std::process::ExitCode;

use tally_actors::ledger::{LedgerError, Write};
use tally_tui::ConsoleCommand;

use super::engine::{link_config, open_ledger};
use crate::cli::AckArgs;
use crate::config::RawConfig;

pub async fn run(args: AckArgs) -> anyhow::Result<ExitCode> {
    let raw = RawConfig::load(&args.config.config)?;
    let cmd = ConsoleCommand::Acknowledge {
        key: args.key.clone(),
        note: args.note.clone(),
    };
    if let Some(code) = super::through_daemon::command(&raw, &cmd).await? {
        return Ok(code);
    }
    let cfg = link_config(&raw)?;
    let ledger = open_ledger(&cfg.ledger_path, cfg.ledger_options).await?;
    let written = ledger
        .commit(vec![Write::AcknowledgeDiscrepancy {
            key: args.key.clone(),
            actor: "operator (cli)".into(),
            note: args.note.clone(),
        }])
        .await;
    match written {
        Ok(_) => {
            println!(
                "{} acknowledged; it stays listed until Magento and Xero agree",
                args.key
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(LedgerError::NotFound { .. }) => {
            eprintln!(
                "no open discrepancy {} (`tally report` lists them)",
                args.key
            );
            Ok(ExitCode::from(1))
        }
        Err(e) => Err(e.into()),
    }
}
