//! `tally sandbox` and, until the engine lands, `tally demo`.

use std::process::ExitCode;

use crate::cli::{DemoArgs, SandboxArgs};

pub async fn run(_args: SandboxArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("the sandbox is not wired yet")
}

pub async fn demo(_args: DemoArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("the demo is not wired yet")
}
