//! `tally plan --order ID`: the exact Xero requests one order would cause, nothing sent.
//!
//! Reads are made (the order, the catalogue, the organisation, a contact lookup) so the plan
//! is the one the engine would really execute; no write reaches either system.

use std::process::ExitCode;

use anyhow::Context;
use serde_json::{Value, json};
use tally_actors::budget::Priority;
use tally_actors::magento::{Condition, SearchCriteria};
use tally_actors::mapping::contact::{contact_for, contact_number, find_existing};
use tally_actors::mapping::{invoice_for, payment_for};
use tally_actors::model::xero::Contact;

use super::engine::connect;
use crate::cli::PlanArgs;

pub async fn run(args: PlanArgs) -> anyhow::Result<ExitCode> {
    let (_raw, ctx) = connect(&args.config.config).await?;
    let criteria = SearchCriteria::new()
        .filter("increment_id", Condition::Eq, &args.order)
        .page_size(1);
    let page = ctx
        .magento
        .search("orders", &criteria)
        .await
        .context("Magento order search failed")?;
    let Some(raw) = page.items.into_iter().next() else {
        anyhow::bail!("Magento has no order with increment id {}", args.order);
    };
    ctx.ensure_skus(&[&raw]).await?;
    let order = match ctx.parse_order(&raw) {
        Ok(o) => o,
        Err(e) => {
            println!("order {} would be dead-lettered: {e}", args.order);
            return Ok(ExitCode::from(1));
        }
    };
    let rules = ctx.rules();
    let org = ctx.org();
    let number = contact_number(&order);
    let wanted = contact_for(&order);
    let lookup = ctx
        .xero
        .find_contacts_by_numbers(std::slice::from_ref(&number), Priority::Lookup)
        .await
        .context("Xero contact lookup failed")?;
    let by_email = ctx
        .xero
        .find_contacts_by_emails(
            std::slice::from_ref(&order.customer.email_key),
            Priority::Lookup,
        )
        .await
        .context("Xero contact lookup failed")?;
    let candidates: Vec<Contact> = lookup
        .into_iter()
        .chain(by_email)
        .filter_map(|v| serde_json::from_value(v).ok())
        .collect();
    let existing = find_existing(&candidates, &number, &order.customer.email_key)
        .contact()
        .and_then(|c| c.contact_id.clone());
    let api = ctx.xero.config().api_url.trim_end_matches('/').to_owned();
    println!("Plan for order {} (nothing is sent)\n", order.increment_id);
    let contact_id = match &existing {
        Some(id) => {
            println!("1. Contact {number}: exists in Xero as ContactID={id}; no request.\n");
            id.clone()
        }
        None => {
            println!("1. Contact {number}: not in Xero; would create it:");
            println!("   PUT {api}/Contacts?summarizeErrors=false");
            println!("{}\n", indent(&json!({ "Contacts": [wanted] })));
            "<new ContactID>".to_owned()
        }
    };
    let planned = match invoice_for(&order, &contact_id, &rules, &org) {
        Ok(p) => p,
        Err(e) => {
            println!("2. Invoice: would be dead-lettered: {e}");
            return Ok(ExitCode::from(1));
        }
    };
    println!("2. Invoice {}:", order.increment_id);
    println!("   PUT {api}/Invoices?summarizeErrors=false&unitdp=4");
    println!("{}", indent(&json!({ "Invoices": [planned.invoice] })));
    println!(
        "   Expected Xero Total {} (Magento grand_total {}), TotalTax {} (Magento tax_amount {}).",
        planned.expected_total, order.grand_total, planned.expected_tax, order.tax_amount
    );
    if let Some(r) = &planned.rounding {
        println!(
            "   Rounding line {}: Xero's per-line arithmetic gives {}, Magento says {}.",
            r.difference, r.xero_computed, r.magento_total
        );
    }
    println!();
    match payment_for(&order, "<InvoiceID>", &rules) {
        Ok(Some(p)) => {
            println!("3. Payment:");
            println!("   PUT {api}/Payments?summarizeErrors=false");
            println!("{}", indent(&json!({ "Payments": [p] })));
        }
        Ok(None) => println!("3. Payment: nothing paid in Magento yet; no request until it is."),
        Err(e) => {
            println!("3. Payment: would be dead-lettered: {e}");
            return Ok(ExitCode::from(1));
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn indent(v: &Value) -> String {
    serde_json::to_string_pretty(v)
        .unwrap_or_default()
        .lines()
        .map(|l| format!("   {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}
