//! The commands that change what a running daemon owns (the ledger, the rules in force) ask
//! the daemon to do it when one answers, and only otherwise work on the files themselves.

use std::process::ExitCode;

use tally_tui::ConsoleCommand;

use crate::config::RawConfig;
use crate::daemon::client::{ClientError, ControlClient};
use crate::daemon::server::Settings;

/// Sends `cmd` to the daemon of `raw`'s config, if one answers: `Some(exit code)` once its
/// answer is printed (stdout when it did it, stderr when it refused), `None` when no daemon
/// runs.
pub async fn command(raw: &RawConfig, cmd: &ConsoleCommand) -> anyhow::Result<Option<ExitCode>> {
    let Ok(client) = ControlClient::from_config(&Settings::from_raw(raw)?.daemon) else {
        return Ok(None);
    };
    match client.command(cmd).await {
        Ok(reply) if reply.ok => {
            println!(
                "{} (through the daemon at {})",
                reply.message,
                client.base()
            );
            Ok(Some(ExitCode::SUCCESS))
        }
        Ok(reply) => {
            eprintln!("{}", reply.message);
            Ok(Some(ExitCode::from(1)))
        }
        Err(ClientError::Unreachable { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}
