//! `tally check`: every account code, tax type, bank account, currency and category rule in
//! the config, checked against the live organisation and store.

use std::process::ExitCode;

use anyhow::Context;
use serde_json::json;
use tally_actors::budget::Priority;
use tally_actors::magento::{Direction, SearchCriteria};
use tally_actors::mapping::{Severity, StoreFacts, XeroOrgFacts, check_against};

use super::engine::connect;
use crate::cli::ConfigArg;

/// Recent orders sampled for payment methods, currencies and tax rates in use.
const SAMPLE: u32 = 300;

pub async fn run(args: ConfigArg) -> anyhow::Result<ExitCode> {
    let (_raw, ctx) = connect(&args.config).await?;
    let x = &ctx.xero;
    let org = x
        .organisation(Priority::Lookup)
        .await
        .context("reading the Xero organisation")?;
    let accounts = x
        .accounts(Priority::Lookup)
        .await
        .context("reading Xero accounts")?;
    let rates = x
        .tax_rates(Priority::Lookup)
        .await
        .context("reading Xero tax rates")?;
    let currencies = x
        .currencies(Priority::Lookup)
        .await
        .context("reading Xero currencies")?;
    let facts = XeroOrgFacts::from_xero(
        &json!({ "Organisations": [org] }),
        &json!({ "Accounts": accounts }),
        &json!({ "TaxRates": rates }),
        &json!({ "Currencies": currencies }),
    )
    .map_err(|e| anyhow::anyhow!("Xero answered in an unexpected shape: {e}"))?;
    let criteria = SearchCriteria::new()
        .sort("created_at", Direction::Desc)
        .page_size(SAMPLE);
    let orders = ctx
        .magento
        .search("orders", &criteria)
        .await
        .context("reading recent Magento orders")?
        .items;
    let store = StoreFacts::from_magento(&ctx.catalogue.read(), &orders);
    let problems = check_against(&ctx.rules(), &facts, &store);
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
