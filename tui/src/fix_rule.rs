//! The mapping changes an operator can make from the console to unblock dead letters.
//!
//! Most dead letters are mapping gaps (a tax class with no TaxType, a category with no account,
//! a payment method with no bank account), so the fix is one line of `[mapping]` plus a retry
//! of everything that line unblocks. The rule is typed so the engine can validate it against
//! the organisation and edit exactly one config key, and so the console can pre-fill it from
//! the dead letter's field and message.

use serde::{Deserialize, Serialize};

use crate::state::ErrorItem;

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FixRule {
    /// `[mapping] tax."<class>" = "<tax_type>"`: a Magento tax class → a Xero TaxType.
    TaxClass { class: String, tax_type: String },
    /// An `account_rules` entry: products in `category` go to revenue `account` (`*` is the
    /// fallback rule).
    CategoryAccount { category: String, account: String },
    /// `[mapping] payments.<method> = "<account>"`: a payment method → a Xero bank account.
    PaymentAccount { method: String, account: String },
    /// `[mapping] shipping_account`.
    ShippingAccount { account: String },
}

/// The rule kinds in the order the console cycles through them.
pub const KINDS: [&str; 4] = [
    "tax_class",
    "category_account",
    "payment_account",
    "shipping_account",
];

impl FixRule {
    /// Builds a rule of `kind` (one of [`KINDS`]) from the prompt's two fields.
    pub fn from_parts(kind: &str, name: &str, value: &str) -> Option<FixRule> {
        let (name, value) = (name.trim().to_owned(), value.trim().to_owned());
        Some(match kind {
            "tax_class" => FixRule::TaxClass {
                class: name,
                tax_type: value,
            },
            "category_account" => FixRule::CategoryAccount {
                category: name,
                account: value,
            },
            "payment_account" => FixRule::PaymentAccount {
                method: name,
                account: value,
            },
            "shipping_account" => FixRule::ShippingAccount { account: value },
            _ => return None,
        })
    }

    pub fn kind(&self) -> &'static str {
        match self {
            FixRule::TaxClass { .. } => KINDS[0],
            FixRule::CategoryAccount { .. } => KINDS[1],
            FixRule::PaymentAccount { .. } => KINDS[2],
            FixRule::ShippingAccount { .. } => KINDS[3],
        }
    }

    /// What the rule maps from (`None` for a rule with a single value).
    pub fn name(&self) -> Option<&str> {
        match self {
            FixRule::TaxClass { class: n, .. }
            | FixRule::CategoryAccount { category: n, .. }
            | FixRule::PaymentAccount { method: n, .. } => Some(n),
            FixRule::ShippingAccount { .. } => None,
        }
    }

    /// What it maps to: a TaxType or an account code.
    pub fn value(&self) -> &str {
        match self {
            FixRule::TaxClass { tax_type: v, .. }
            | FixRule::CategoryAccount { account: v, .. }
            | FixRule::PaymentAccount { account: v, .. }
            | FixRule::ShippingAccount { account: v } => v,
        }
    }

    /// The labels of the prompt's two fields for this kind.
    pub fn labels(kind: &str) -> (&'static str, &'static str) {
        match kind {
            "tax_class" => ("Magento tax class", "Xero TaxType"),
            "category_account" => ("category (* = all)", "Xero account code"),
            "payment_account" => ("payment method", "Xero bank account"),
            _ => ("", "Xero account code"),
        }
    }

    /// The rule as the config line it becomes, e.g. `mapping.tax."Luxury" = "OUTPUT"`.
    pub fn describe(&self) -> String {
        match self {
            FixRule::TaxClass { class, tax_type } => {
                format!("mapping.tax.{class:?} = {tax_type:?}")
            }
            FixRule::CategoryAccount { category, account } => {
                format!(
                    "mapping.account_rules {{ category = {category:?}, account = {account:?} }}"
                )
            }
            FixRule::PaymentAccount { method, account } => {
                format!("mapping.payments.{method} = {account:?}")
            }
            FixRule::ShippingAccount { account } => {
                format!("mapping.shipping_account = {account:?}")
            }
        }
    }

    /// Refuses an incomplete rule before it reaches the engine.
    pub fn check_complete(&self) -> Result<(), String> {
        if self.name().is_some_and(|n| n.trim().is_empty()) {
            let (label, _) = Self::labels(self.kind());
            return Err(format!("{label} is empty"));
        }
        if self.value().trim().is_empty() {
            let (_, label) = Self::labels(self.kind());
            return Err(format!("{label} is empty"));
        }
        Ok(())
    }

    /// The rule a dead letter most likely needs, from tally's own wording of the failure
    /// (`tax class "X" is not mapped`, `payment method "m" is not in mapping.payments`, ...);
    /// the value is left for the operator unless the message names one.
    pub fn suggested_for(e: &ErrorItem) -> FixRule {
        let text = format!("{} {}", e.message, e.remote_message);
        if let Some(class) = quoted_after(&text, "tax class ") {
            return FixRule::TaxClass {
                class,
                tax_type: String::new(),
            };
        }
        if let Some(method) = quoted_after(&text, "payment method ") {
            return FixRule::PaymentAccount {
                method,
                account: String::new(),
            };
        }
        if let Some(category) = quoted_after(&text, "matches categories [") {
            return FixRule::CategoryAccount {
                category,
                account: String::new(),
            };
        }
        let field = e.field.to_ascii_lowercase();
        if field.starts_with("payment") || field.starts_with("account.") {
            return FixRule::PaymentAccount {
                method: String::new(),
                account: String::new(),
            };
        }
        if field.contains("shipping") {
            return FixRule::ShippingAccount {
                account: String::new(),
            };
        }
        if field.contains("accountcode") || text.contains("Account code") {
            return FixRule::CategoryAccount {
                category: "*".into(),
                account: String::new(),
            };
        }
        FixRule::TaxClass {
            class: String::new(),
            tax_type: String::new(),
        }
    }
}

/// The first double-quoted string right after `marker`, e.g. `tax class "Luxury"` → `Luxury`.
fn quoted_after(text: &str, marker: &str) -> Option<String> {
    let rest = &text[text.find(marker)? + marker.len()..];
    let rest = rest.strip_prefix('"')?;
    let end = rest.find('"')?;
    Some(rest[..end].to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn letter(field: &str, message: &str) -> ErrorItem {
        ErrorItem {
            field: field.into(),
            message: message.into(),
            ..Default::default()
        }
    }

    #[test]
    fn suggestions_come_from_the_dead_letters_own_words() {
        let tax = letter(
            "items[1].tax_class",
            "SKU \"LX-1\": tax class \"Luxury\" is not mapped in mapping.tax",
        );
        assert_eq!(
            FixRule::suggested_for(&tax),
            FixRule::TaxClass {
                class: "Luxury".into(),
                tax_type: String::new()
            }
        );
        let pay = letter(
            "payment.method",
            "payment method \"banktransfer\" is not in mapping.payments (mapped: checkmo)",
        );
        assert_eq!(
            FixRule::suggested_for(&pay),
            FixRule::PaymentAccount {
                method: "banktransfer".into(),
                account: String::new()
            }
        );
        let cat = letter(
            "items[0].sku",
            "SKU \"A\": no account rule matches categories [\"Gift Cards\", \"Misc\"] and there is no \"*\" rule",
        );
        assert_eq!(
            FixRule::suggested_for(&cat),
            FixRule::CategoryAccount {
                category: "Gift Cards".into(),
                account: String::new()
            }
        );
    }

    #[test]
    fn incomplete_rules_are_refused_and_complete_ones_describe_their_config_line() {
        let r = FixRule::from_parts("tax_class", "Luxury", " ").unwrap();
        assert_eq!(r.check_complete().unwrap_err(), "Xero TaxType is empty");
        let r = FixRule::from_parts("tax_class", " Luxury ", "OUTPUT").unwrap();
        assert!(r.check_complete().is_ok());
        assert_eq!(r.describe(), "mapping.tax.\"Luxury\" = \"OUTPUT\"");
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"kind": "tax_class", "class": "Luxury", "tax_type": "OUTPUT"})
        );
    }
}
