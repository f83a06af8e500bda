//! One module per subcommand.

use std::process::ExitCode;

use crate::cli::{Cli, Command};

pub mod ack;
pub mod bench;
pub mod bench_ops;
pub mod check;
pub mod console;
pub mod demo;
pub mod dlq;
pub mod engine;
pub mod fix;
pub mod plan;
pub mod reconcile;
pub mod report;
pub mod report_render;
pub mod sandbox;
pub mod sync;
pub mod through_daemon;

pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Sandbox(args) => sandbox::run(args).await,
        Command::Demo(args) => demo::run(args).await,
        Command::Sync(args) => sync::run(args).await,
        Command::Plan(args) => plan::run(args).await,
        Command::Check(args) => check::run(args).await,
        Command::Dlq(args) => dlq::run(args).await,
        Command::Reconcile(args) => reconcile::run(args).await,
        Command::Report(args) => report::run(args).await,
        Command::Ack(args) => ack::run(args).await,
        Command::Fix(args) => fix::run(args).await,
        Command::Bench(args) => bench::run(args).await,
        Command::Daemon(args) => {
            crate::daemon::commands::daemon(&args.config.config, args.listen.as_deref()).await
        }
        Command::Status(args) => crate::daemon::commands::status(&args.config).await,
        Command::Reload(args) => crate::daemon::commands::reload(&args.config).await,
        Command::Console(crate::cli::ConsoleArgs {
            attach: Some(addr),
            token,
            ..
        }) => crate::daemon::commands::console_attach(&addr, token).await,
        Command::Console(args) => {
            console::run(
                args.config
                    .as_deref()
                    .unwrap_or(std::path::Path::new("tally.toml")),
            )
            .await
        }
    }
}
