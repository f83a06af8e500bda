//! `tally check`: every account code, tax type, bank account, currency and category rule in
//! the config, checked against the live organisation and store; and whether Magento can take
//! the writeback's comments in bulk.

use std::process::ExitCode;

use tally_actors::mapping::{Severity, check_against};

use super::engine::connect;
use crate::cli::ConfigArg;

pub async fn run(args: ConfigArg) -> anyhow::Result<ExitCode> {
    let (_raw, ctx) = connect(&args.config).await?;
    let (facts, store) = crate::engine::facts::live_facts(&ctx).await?;
    let mut problems = check_against(&ctx.rules(), &facts, &store);
    problems.extend(tally_actors::link::bulk_comments::check(&ctx).await);
    let errors = problems
        .iter()
        .filter(|p| p.severity == Severity::Error)
        .count();
    if problems.is_empty() {
        println!("ok: every rule in [mapping] matches the organisation and the store");
    }
    for p in &problems {
        println!("{p}");
    }
    println!("{errors} error(s), {} warning(s)", problems.len() - errors);
    Ok(if errors == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
