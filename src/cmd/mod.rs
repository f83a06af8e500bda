//! One module per subcommand.

use std::process::ExitCode;

use crate::cli::{Cli, Command};

pub mod check;
pub mod dlq;
pub mod engine;
pub mod plan;
pub mod sandbox;
pub mod sync;

pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Sandbox(args) => sandbox::run(args).await,
        Command::Demo(args) => sandbox::demo(args).await,
        Command::Sync(args) => sync::run(args).await,
        Command::Plan(args) => plan::run(args).await,
        Command::Check(args) => check::run(args).await,
        Command::Dlq(args) => dlq::run(args).await,
        other => anyhow::bail!("{other:?}: not available in this build yet"),
    }
}
