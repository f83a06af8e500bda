//! What `tally check` and `fix` validate mapping rules against: the live organisation's
//! accounts, tax rates and currencies, and the payment methods, currencies and tax rates in
//! the store's recent orders. One reader, so a fix is judged exactly as `tally check` would.

use anyhow::Context;
use serde_json::json;
use tally_actors::budget::Priority;
use tally_actors::link::LinkContext;
use tally_actors::magento::{Direction, SearchCriteria};
use tally_actors::mapping::{StoreFacts, XeroOrgFacts};

/// Recent orders sampled for payment methods, currencies and tax rates in use.
const SAMPLE: u32 = 300;

/// The organisation and store facts `tally check` validates against.
pub async fn live_facts(ctx: &LinkContext) -> anyhow::Result<(XeroOrgFacts, StoreFacts)> {
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
    Ok((facts, store))
}
