//! `tally fix --config PATH KEY --tax-class CLASS=TAXTYPE` (or `--category-account`,
//! `--payment-account`, `--shipping-account`): one mapping rule, checked against the live
//! organisation, written into the config, and every dead letter it unblocks retried.
//!
//! When the config's daemon answers, the fix goes through its control API, so the running
//! engine reloads the rules and retries at once (and the daemon holds the ledger anyway).
//! Otherwise the fix is applied here and the retried letters wait for the next `tally sync`
//! or daemon start.

use std::process::ExitCode;

use clap::{ArgGroup, Args};
use tally_actors::link::runner::revive_letters;
use tally_tui::{ConsoleCommand, FixRule};

use super::engine::connect;
use crate::cli::ConfigArg;
use crate::config::RawConfig;

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("rule").required(true)))]
pub struct FixArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// The dead letter that needs the fix, e.g. order:000000123; every other dead letter the
    /// rule unblocks is retried too.
    pub key: String,
    /// Map a Magento tax class to a Xero TaxType, e.g. --tax-class "Luxury Goods=OUTPUT2".
    #[arg(long, value_name = "CLASS=TAXTYPE", group = "rule")]
    pub tax_class: Option<String>,
    /// Post a category's products to a revenue account ("*" is the fallback rule).
    #[arg(long, value_name = "CATEGORY=ACCOUNT", group = "rule")]
    pub category_account: Option<String>,
    /// Receive a payment method's payments into a Xero bank account.
    #[arg(long, value_name = "METHOD=ACCOUNT", group = "rule")]
    pub payment_account: Option<String>,
    /// Post shipping to this account.
    #[arg(long, value_name = "ACCOUNT", group = "rule")]
    pub shipping_account: Option<String>,
}

impl FixArgs {
    pub fn rule(&self) -> anyhow::Result<FixRule> {
        let pair = |flag: &str, v: &str| -> anyhow::Result<(String, String)> {
            let (name, value) = v
                .rsplit_once('=')
                .ok_or_else(|| anyhow::anyhow!("--{flag} takes NAME=VALUE, got {v:?}"))?;
            Ok((name.trim().to_owned(), value.trim().to_owned()))
        };
        let rule = if let Some(v) = &self.tax_class {
            let (class, tax_type) = pair("tax-class", v)?;
            FixRule::TaxClass { class, tax_type }
        } else if let Some(v) = &self.category_account {
            let (category, account) = pair("category-account", v)?;
            FixRule::CategoryAccount { category, account }
        } else if let Some(v) = &self.payment_account {
            let (method, account) = pair("payment-account", v)?;
            FixRule::PaymentAccount { method, account }
        } else if let Some(account) = &self.shipping_account {
            FixRule::ShippingAccount {
                account: account.trim().to_owned(),
            }
        } else {
            anyhow::bail!(
                "name a rule: --tax-class, --category-account, --payment-account or --shipping-account"
            );
        };
        rule.check_complete().map_err(anyhow::Error::msg)?;
        Ok(rule)
    }
}

pub async fn run(args: FixArgs) -> anyhow::Result<ExitCode> {
    let rule = args.rule()?;
    let path = &args.config.config;
    let raw = RawConfig::load(path)?;
    let cmd = ConsoleCommand::Fix {
        key: args.key.clone(),
        rule: rule.clone(),
    };
    // A running daemon owns the ledger and the rules in force: let it do the fix.
    if let Some(code) = super::through_daemon::command(&raw, &cmd).await? {
        return Ok(code);
    }
    let (_raw, ctx) = connect(path).await?;
    match crate::engine::fix::apply(&ctx, path, &args.key, &rule).await {
        Ok(applied) => {
            let keys = revive_letters(&ctx.ledger, &applied.unblocked, "operator (tally fix)")
                .await
                .map_err(anyhow::Error::msg)?;
            println!(
                "{} written to {}; {} dead letter(s) sent back{}; the next `tally sync` or daemon start sends them",
                rule.describe(),
                path.display(),
                keys.len(),
                if keys.is_empty() {
                    String::new()
                } else {
                    format!(": {}", keys.join(", "))
                }
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(message) => {
            eprintln!("{message}");
            Ok(ExitCode::from(1))
        }
    }
}
