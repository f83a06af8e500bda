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
use crate::daemon::client::{ClientError, ControlClient};
use crate::daemon::server::Settings;

pub async fn run(args: AckArgs) -> anyhow::Result<ExitCode> {
    let raw = RawConfig::load(&args.config.config)?;
    if let Ok(client) = ControlClient::from_config(&Settings::from_raw(&raw)?.daemon) {
        match client
            .command(&ConsoleCommand::Acknowledge(args.key.clone()))
            .await
        {
            Ok(reply) if reply.ok => {
                println!(
                    "{} (through the daemon at {})",
                    reply.message,
                    client.base()
                );
                return Ok(ExitCode::SUCCESS);
            }
            Ok(reply) => {
                eprintln!("{}", reply.message);
                return Ok(ExitCode::from(1));
            }
            Err(ClientError::Unreachable { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let cfg = link_config(&raw)?;
    let ledger = open_ledger(&cfg.ledger_path, cfg.ledger_options).await?;
    let written = ledger
        .commit(vec![Write::AcknowledgeDiscrepancy {
            key: args.key.clone(),
            actor: "operator (cli)".into(),
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
