//! One module per subcommand.

use std::process::ExitCode;

use crate::cli::{Cli, Command};

pub mod sandbox;

pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Sandbox(args) => sandbox::run(args).await,
        Command::Demo(args) => sandbox::demo(args).await,
        other => anyhow::bail!("{other:?}: not available in this build yet"),
    }
}
