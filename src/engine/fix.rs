//! `fix`: one mapping rule, validated against the live organisation, written into the config
//! file, and every dead letter it unblocks sent back into the flow.
//!
//! Validation is `tally check`'s: the rules as they would be after the change are checked
//! against the organisation's accounts, tax rates and currencies and the store's recent
//! orders, and the fix is refused if that shows an error the current rules do not have. So a
//! fix can never make the mapping worse, and a refused fix changes nothing (not the file, not
//! the rules in force, not the dead letters).

use std::path::Path;

use tally_actors::ledger::DeadLetter;
use tally_actors::link::LinkContext;
use tally_actors::mapping::{
    CheckProblem, MappingRules, Severity, StoreFacts, XeroOrgFacts, check_against,
};
use tally_tui::FixRule;

use crate::config::RawConfig;
use crate::config_edit::{apply_rule, write_atomically};

/// What a fix did: the config line written and the dead letters to retry.
#[derive(Debug, Clone)]
pub struct FixApplied {
    pub rule: FixRule,
    /// Every dead letter the rule unblocks, `key` included when it is one.
    pub unblocked: Vec<DeadLetter>,
}

/// The errors `new` has against the organisation that `old` does not (compared by message,
/// since inserting an account rule renumbers the keys of the rules after it).
pub fn new_errors(
    old: &MappingRules,
    new: &MappingRules,
    org: &XeroOrgFacts,
    store: &StoreFacts,
) -> Vec<CheckProblem> {
    let before: Vec<String> = check_against(old, org, store)
        .into_iter()
        .filter(|p| p.severity == Severity::Error)
        .map(|p| p.message)
        .collect();
    check_against(new, org, store)
        .into_iter()
        .filter(|p| p.severity == Severity::Error && !before.contains(&p.message))
        .collect()
}

/// The config text with `rule` applied, and the mapping rules it yields (parsed exactly as at
/// start-up, environment overrides included).
pub fn edited_rules(
    path: &Path,
    text: &str,
    rule: &FixRule,
) -> anyhow::Result<(String, MappingRules)> {
    let edited = apply_rule(path, text, rule)?;
    let mut raw = RawConfig::parse(path, &edited)?;
    raw.apply_env(std::env::vars());
    let cfg = crate::cmd::engine::link_config(&raw)?;
    Ok((edited, cfg.mapping))
}

/// Validates `rule`, writes it into the config at `path` and returns the dead letters it
/// unblocks; `Err` (shown to the operator verbatim) means nothing changed.
pub async fn apply(
    ctx: &LinkContext,
    path: &Path,
    key: &str,
    rule: &FixRule,
) -> Result<FixApplied, String> {
    rule.check_complete()?;
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let (edited, new_rules) = edited_rules(path, &text, rule).map_err(|e| format!("{e:#}"))?;
    let old_rules = ctx.rules();
    let (org, store) = super::facts::live_facts(ctx)
        .await
        .map_err(|e| format!("{e:#}"))?;
    let problems = new_errors(&old_rules, &new_rules, &org, &store);
    if !problems.is_empty() {
        let list: Vec<String> = problems.iter().map(ToString::to_string).collect();
        return Err(format!(
            "{} refused, nothing changed: {}",
            rule.describe(),
            list.join("; ")
        ));
    }
    if edited != text {
        write_atomically(path, &edited).map_err(|e| e.to_string())?;
    }
    let letters = ctx.ledger.dead_letters().await.map_err(|e| e.to_string())?;
    let unblocked = letters
        .into_iter()
        .filter(|l| l.key == key || unblocks(rule, &old_rules, l))
        .collect();
    Ok(FixApplied {
        rule: rule.clone(),
        unblocked,
    })
}

/// Whether `letter` failed on what `rule` changes: the same tax class, category or payment
/// method (by tally's own wording of the failure), or a Xero refusal naming the account code
/// the rule replaces.
pub fn unblocks(rule: &FixRule, old: &MappingRules, letter: &DeadLetter) -> bool {
    let message = letter.message.as_str();
    let remote = letter.remote_message.as_deref().unwrap_or_default();
    let names_code = |code: Option<&String>| {
        code.is_some_and(|c| mentions_code(remote, c) || mentions_code(message, c))
    };
    match rule {
        FixRule::TaxClass { class, .. } => message.contains(&format!("tax class {class:?}")),
        FixRule::PaymentAccount { method, .. } => {
            message.contains(&format!("payment method {method:?}"))
                || (letter
                    .field
                    .as_deref()
                    .is_some_and(|f| f.starts_with("payment"))
                    && names_code(old.payments.get(method)))
        }
        FixRule::CategoryAccount { category, .. } => {
            let unmatched = message.contains("no account rule matches categories");
            (unmatched
                && (category.trim() == "*"
                    || message
                        .to_lowercase()
                        .contains(&format!("{:?}", category.trim()).to_lowercase())))
                || names_code(
                    old.account_rules
                        .iter()
                        .find(|r| r.category.trim().eq_ignore_ascii_case(category.trim()))
                        .map(|r| &r.account),
                )
        }
        FixRule::ShippingAccount { .. } => names_code(Some(&old.shipping_account)),
    }
}

/// `code` as a whole word (`'4000'`, `"4000"`, `4000.`), not inside a longer number.
fn mentions_code(text: &str, code: &str) -> bool {
    let code = code.trim();
    if code.is_empty() {
        return false;
    }
    text.match_indices(code).any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let after = text[i + code.len()..].chars().next();
        !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> MappingRules {
        toml::from_str(
            r#"
shipping_account = "202"
rounding_account = "860"
account_rules = [{ category = "Services", account = "200" }, { category = "*", account = "201" }]
tax = { "Taxable Goods" = "OUTPUT", "Shipping" = "OUTPUT" }
payments = { checkmo = "090" }
"#,
        )
        .unwrap()
    }

    fn letter(key: &str, field: &str, message: &str, remote: Option<&str>) -> DeadLetter {
        DeadLetter {
            key: key.into(),
            record: key.into(),
            field: Some(field.into()),
            message: message.into(),
            remote_message: remote.map(str::to_owned),
            stage_at_death: None,
            attempts: 1,
            first_failed_at_ms: 0,
            dead_at_ms: 0,
            payload: None,
        }
    }

    #[test]
    fn a_tax_class_fix_unblocks_every_order_with_that_class_and_no_other() {
        let rule = FixRule::TaxClass {
            class: "Luxury".into(),
            tax_type: "OUTPUT".into(),
        };
        let a = letter(
            "order:1",
            "items[0].tax_class",
            "SKU \"A\": tax class \"Luxury\" is not mapped in mapping.tax",
            None,
        );
        let b = letter(
            "order:2",
            "items[3].tax_class",
            "SKU \"B\": tax class \"Luxury\" maps to tax type \"X\", which the organisation does not have",
            None,
        );
        let other = letter(
            "order:3",
            "items[0].tax_class",
            "SKU \"C\": tax class \"Luxury Plus\" is not mapped in mapping.tax",
            None,
        );
        assert!(unblocks(&rule, &rules(), &a));
        assert!(unblocks(&rule, &rules(), &b));
        assert!(!unblocks(&rule, &rules(), &other));
    }

    #[test]
    fn account_fixes_unblock_xero_refusals_naming_the_replaced_code() {
        let refused = letter(
            "order:4",
            "invoice",
            "Xero refused the invoice",
            Some("Account code '201' is not a valid code for this document."),
        );
        let fallback = FixRule::CategoryAccount {
            category: "*".into(),
            account: "200".into(),
        };
        assert!(unblocks(&fallback, &rules(), &refused));
        let services = FixRule::CategoryAccount {
            category: "Services".into(),
            account: "205".into(),
        };
        assert!(!unblocks(&services, &rules(), &refused));
        let shipping = FixRule::ShippingAccount {
            account: "203".into(),
        };
        assert!(!unblocks(&shipping, &rules(), &refused));
        assert!(mentions_code("code '202' is", "202"));
        assert!(!mentions_code("code 12020", "202"));
    }

    #[test]
    fn payment_and_category_gaps_match_by_name() {
        let pay = letter(
            "order:5",
            "payment.method",
            "payment method \"stripe\" is not in mapping.payments (mapped: checkmo)",
            None,
        );
        let rule = FixRule::PaymentAccount {
            method: "stripe".into(),
            account: "091".into(),
        };
        assert!(unblocks(&rule, &rules(), &pay));
        let cat = letter(
            "order:6",
            "items[0].sku",
            "SKU \"G\": no account rule matches categories [\"Gift Cards\"] and there is no \"*\" rule",
            None,
        );
        let rule = FixRule::CategoryAccount {
            category: "gift cards".into(),
            account: "210".into(),
        };
        assert!(unblocks(&rule, &rules(), &cat));
        assert!(!unblocks(&rule, &rules(), &pay));
    }
}
