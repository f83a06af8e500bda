//! The `[mapping]` config table: which Xero account, tax type and bank account each Magento
//! thing goes to.
//!
//! `validate()` reports every problem at once, because an operator fixing a config file one
//! error per run is the slowest possible feedback loop.

use std::collections::{BTreeMap, HashSet};
use std::fmt;

use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer};

use crate::model::money::parse_decimal_str;

/// The category that matches every product; the last rule should use it.
pub const FALLBACK_CATEGORY: &str = "*";
/// Xero account codes are at most 10 characters.
const MAX_ACCOUNT_CODE: usize = 10;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountRule {
    pub category: String,
    pub account: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MappingRules {
    #[serde(default, deserialize_with = "flexible_bool")]
    pub prices_include_tax: bool,
    #[serde(default)]
    pub inclusive_store_ids: Vec<u32>,
    pub shipping_account: String,
    #[serde(default = "default_shipping_tax_class")]
    pub shipping_tax_class: String,
    pub rounding_account: String,
    #[serde(default = "default_tolerance", deserialize_with = "tolerance")]
    pub rounding_tolerance: Decimal,
    pub account_rules: Vec<AccountRule>,
    /// Magento tax class name → Xero TaxType.
    pub tax: BTreeMap<String, String>,
    /// Magento payment method code → Xero bank account code.
    pub payments: BTreeMap<String, String>,
}

fn default_shipping_tax_class() -> String {
    "Shipping".to_owned()
}

fn default_tolerance() -> Decimal {
    Decimal::new(5, 2)
}

/// Environment overrides arrive as strings, so `"true"` must work as well as `true`.
fn flexible_bool<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum B {
        Bool(bool),
        Text(String),
    }
    match B::deserialize(d)? {
        B::Bool(b) => Ok(b),
        B::Text(t) => match t.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => Ok(true),
            "false" | "0" | "no" => Ok(false),
            other => Err(serde::de::Error::custom(format!(
                "expected true or false, got {other:?}"
            ))),
        },
    }
}

/// A tolerance is money: a TOML float would pass through binary floating point, so only a
/// string (`"0.05"`) or an integer is accepted.
fn tolerance<'de, D: Deserializer<'de>>(d: D) -> Result<Decimal, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum T {
        Int(i64),
        Text(String),
        Other(serde::de::IgnoredAny),
    }
    match T::deserialize(d)? {
        T::Int(i) => Ok(Decimal::from(i)),
        T::Text(s) => parse_decimal_str(s.trim(), 4)
            .map_err(|e| serde::de::Error::custom(format!("rounding_tolerance: {e}"))),
        T::Other(_) => Err(serde::de::Error::custom(
            "rounding_tolerance must be a string such as \"0.05\" (a float would lose exactness)",
        )),
    }
}

/// One thing wrong with the rules, naming the config key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleProblem {
    /// e.g. `mapping.account_rules[2].category`
    pub key: String,
    pub message: String,
}

impl fmt::Display for RuleProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

impl MappingRules {
    /// Every internal inconsistency, in config order. Empty means usable (though not yet
    /// checked against the live systems: see [`check_against`](super::check::check_against)).
    pub fn validate(&self) -> Vec<RuleProblem> {
        let mut out = Vec::new();
        let mut push = |key: String, message: String| out.push(RuleProblem { key, message });

        for (key, code) in [
            ("shipping_account", &self.shipping_account),
            ("rounding_account", &self.rounding_account),
        ] {
            check_code(&format!("mapping.{key}"), code, &mut push);
        }
        if self.rounding_tolerance.is_sign_negative() {
            push(
                "mapping.rounding_tolerance".into(),
                format!("must not be negative ({})", self.rounding_tolerance),
            );
        } else if self.rounding_tolerance > Decimal::ONE {
            push(
                "mapping.rounding_tolerance".into(),
                format!(
                    "{} is more than 1.00: a gap that large is an error, not rounding",
                    self.rounding_tolerance
                ),
            );
        } else if self.rounding_tolerance.normalize().scale() > 2 {
            push(
                "mapping.rounding_tolerance".into(),
                format!("{} has more than 2 decimal places", self.rounding_tolerance),
            );
        }

        if self.account_rules.is_empty() {
            push(
                "mapping.account_rules".into(),
                "no rules: add at least { category = \"*\", account = \"...\" }".into(),
            );
        }
        let mut seen = HashSet::new();
        let mut fallback_at = None;
        for (i, rule) in self.account_rules.iter().enumerate() {
            let key = format!("mapping.account_rules[{i}]");
            if rule.category.trim().is_empty() {
                push(format!("{key}.category"), "empty category".into());
            } else if !seen.insert(rule.category.trim().to_lowercase()) {
                push(
                    format!("{key}.category"),
                    format!("duplicate rule for category {:?}", rule.category),
                );
            }
            check_code(&format!("{key}.account"), &rule.account, &mut push);
            if rule.category.trim() == FALLBACK_CATEGORY && fallback_at.is_none() {
                fallback_at = Some(i);
            }
        }
        match fallback_at {
            None if !self.account_rules.is_empty() => push(
                "mapping.account_rules".into(),
                "no \"*\" fallback rule: a product in no listed category would have no account"
                    .into(),
            ),
            Some(i) if i + 1 < self.account_rules.len() => push(
                format!("mapping.account_rules[{}]", i + 1),
                format!("unreachable: rule {i} (\"*\") already matches every product"),
            ),
            _ => {}
        }

        if self.tax.is_empty() {
            push("mapping.tax".into(), "no tax classes mapped".into());
        }
        for (class, tax_type) in &self.tax {
            if class.trim().is_empty() {
                push("mapping.tax".into(), "empty tax class name".into());
            }
            if tax_type.trim().is_empty() {
                push(format!("mapping.tax.{class:?}"), "empty tax type".into());
            }
        }
        if !self.tax.contains_key(&self.shipping_tax_class) {
            push(
                "mapping.shipping_tax_class".into(),
                format!("{:?} is not a key of mapping.tax", self.shipping_tax_class),
            );
        }

        if self.payments.is_empty() {
            push(
                "mapping.payments".into(),
                "no payment methods mapped".into(),
            );
        }
        for (method, code) in &self.payments {
            if method.trim().is_empty() {
                push(
                    "mapping.payments".into(),
                    "empty payment method name".into(),
                );
            }
            check_code(&format!("mapping.payments.{method}"), code, &mut push);
        }

        let mut stores = HashSet::new();
        for id in &self.inclusive_store_ids {
            if !stores.insert(id) {
                push(
                    "mapping.inclusive_store_ids".into(),
                    format!("store {id} listed twice"),
                );
            }
        }
        out
    }

    /// Whether an order from this store has tax-inclusive prices.
    pub fn is_inclusive_store(&self, store_id: u32) -> bool {
        self.prices_include_tax || self.inclusive_store_ids.contains(&store_id)
    }

    /// The account for a product in these categories: the first rule (in config order) whose
    /// category the product is in, else the `*` rule.
    pub fn account_for(&self, categories: &[String]) -> Option<&str> {
        self.account_rules
            .iter()
            .find(|r| {
                let c = r.category.trim();
                c == FALLBACK_CATEGORY || categories.iter().any(|have| have.eq_ignore_ascii_case(c))
            })
            .map(|r| r.account.as_str())
    }
}

fn check_code(key: &str, code: &str, push: &mut impl FnMut(String, String)) {
    if code.trim().is_empty() {
        push(key.to_owned(), "empty account code".into());
    } else if code.chars().count() > MAX_ACCOUNT_CODE {
        push(
            key.to_owned(),
            format!("{code:?} is longer than Xero's 10-character account codes"),
        );
    }
}
