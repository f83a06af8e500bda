//! `tally check`: the mapping rules against the live Xero organisation and Magento store.
//!
//! A wrong account code or a tax type the organisation lacks would otherwise surface as one
//! failed invoice per order; checking up front turns hundreds of dead letters into one line of
//! config, and each problem carries a suggested fix.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use rust_decimal::Decimal;
use serde_json::Value;

use super::rules::{FALLBACK_CATEGORY, MappingRules};
use crate::model::catalogue::Catalogue;
use crate::model::money::{parse_rate, round_dp};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// Syncing will fail or post to the wrong place.
    Error,
    /// Probably wrong, but Xero would accept it.
    Warning,
}

/// One finding, naming the config key it is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckProblem {
    pub severity: Severity,
    /// e.g. `mapping.account_rules[0].account`
    pub key: String,
    pub message: String,
    pub suggestion: Option<String>,
}

impl fmt::Display for CheckProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{sev}: {}: {}", self.key, self.message)?;
        if let Some(s) = &self.suggestion {
            write!(f, " (suggestion: {s})")?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountFact {
    pub code: String,
    pub name: String,
    pub account_type: String,
    pub status: String,
    pub enable_payments: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaxRateFact {
    pub tax_type: String,
    pub name: String,
    pub status: String,
    pub effective_rate: Decimal,
}

/// What the organisation offers, from `GET /Organisation`, `/Accounts`, `/TaxRates`,
/// `/Currencies`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct XeroOrgFacts {
    pub base_currency: String,
    pub accounts: Vec<AccountFact>,
    pub tax_rates: Vec<TaxRateFact>,
    pub currencies: BTreeSet<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what}: {message}")]
pub struct FactsError {
    pub what: &'static str,
    pub message: String,
}

fn list<'a>(v: &'a Value, key: &str, what: &'static str) -> Result<&'a Vec<Value>, FactsError> {
    v.get(key)
        .and_then(Value::as_array)
        .or_else(|| v.as_array())
        .ok_or_else(|| FactsError {
            what,
            message: format!("expected {{\"{key}\":[...]}} or an array"),
        })
}

fn s(v: &Value, key: &str) -> String {
    v.get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

impl XeroOrgFacts {
    pub fn from_xero(
        organisation: &Value,
        accounts: &Value,
        tax_rates: &Value,
        currencies: &Value,
    ) -> Result<Self, FactsError> {
        // `GET /Organisation` answers `{"Organisations":[{..}]}`; a bare object is accepted too.
        let org = if organisation.get("BaseCurrency").is_some() {
            organisation.clone()
        } else {
            list(organisation, "Organisations", "organisation")?
                .first()
                .cloned()
                .ok_or(FactsError {
                    what: "organisation",
                    message: "empty".into(),
                })?
        };
        let base_currency = s(&org, "BaseCurrency");
        if base_currency.is_empty() {
            return Err(FactsError {
                what: "organisation",
                message: "no BaseCurrency".into(),
            });
        }
        let accounts = list(accounts, "Accounts", "accounts")?
            .iter()
            .map(|a| AccountFact {
                code: s(a, "Code"),
                name: s(a, "Name"),
                account_type: s(a, "Type"),
                status: s(a, "Status"),
                enable_payments: a
                    .get("EnablePaymentsToAccount")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
            })
            .filter(|a| !a.code.is_empty())
            .collect();
        let mut rates = Vec::new();
        for t in list(tax_rates, "TaxRates", "tax rates")? {
            let rate = t
                .get("EffectiveRate")
                .or_else(|| t.get("DisplayTaxRate"))
                .map(parse_rate)
                .transpose()
                .map_err(|e| FactsError {
                    what: "tax rates",
                    message: format!("{}: {e}", s(t, "TaxType")),
                })?
                .unwrap_or_default();
            rates.push(TaxRateFact {
                tax_type: s(t, "TaxType"),
                name: s(t, "Name"),
                status: s(t, "Status"),
                effective_rate: rate,
            });
        }
        let mut currencies: BTreeSet<String> = list(currencies, "Currencies", "currencies")?
            .iter()
            .map(|c| s(c, "Code"))
            .filter(|c| !c.is_empty())
            .collect();
        currencies.insert(base_currency.clone());
        Ok(Self {
            base_currency,
            accounts,
            tax_rates: rates,
            currencies,
        })
    }

    fn account(&self, code: &str) -> Option<&AccountFact> {
        self.accounts
            .iter()
            .find(|a| a.code.eq_ignore_ascii_case(code))
    }

    fn tax_rate(&self, tax_type: &str) -> Option<&TaxRateFact> {
        self.tax_rates.iter().find(|t| t.tax_type == tax_type)
    }

    /// TaxType → EffectiveRate of the active rates, as the invoice mapping needs it.
    pub fn active_tax_rates(&self) -> std::collections::HashMap<String, Decimal> {
        self.tax_rates
            .iter()
            .filter(|t| t.status == "ACTIVE")
            .map(|t| (t.tax_type.clone(), t.effective_rate))
            .collect()
    }
}

/// What the store uses: categories and tax classes from the catalogue, payment methods,
/// currencies and the tax rates actually charged per class from recent orders.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StoreFacts {
    pub categories: BTreeSet<String>,
    pub tax_classes: BTreeSet<String>,
    pub payment_methods: BTreeSet<String>,
    pub currencies: BTreeSet<String>,
    /// Tax class → the `tax_percent`s seen on order lines of that class.
    pub class_rates: BTreeMap<String, BTreeSet<Decimal>>,
}

impl StoreFacts {
    /// From the catalogue plus raw Magento orders (read leniently: a broken order is the
    /// dead-letter queue's business, not the check's).
    pub fn from_magento(catalogue: &Catalogue, orders: &[Value]) -> Self {
        let mut f = StoreFacts {
            categories: catalogue.category_names(),
            tax_classes: catalogue.tax_class_names(),
            ..Default::default()
        };
        for o in orders {
            if let Some(m) = o.pointer("/payment/method").and_then(Value::as_str) {
                f.payment_methods.insert(m.to_owned());
            }
            if let Some(c) = o.get("order_currency_code").and_then(Value::as_str) {
                f.currencies.insert(c.to_uppercase());
            }
            for item in o
                .get("items")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let tax = item
                    .get("tax_amount")
                    .and_then(|v| parse_rate(v).ok())
                    .unwrap_or_default();
                let Some(pct) = item.get("tax_percent").and_then(|v| parse_rate(v).ok()) else {
                    continue;
                };
                let Some(class) = item
                    .get("sku")
                    .and_then(Value::as_str)
                    .and_then(|sku| catalogue.product(sku))
                    .and_then(|p| p.tax_class.clone())
                else {
                    continue;
                };
                // An unpriced carrier (configurable child, dynamic bundle parent) says nothing
                // about its class's rate.
                let row = item
                    .get("row_total")
                    .and_then(|v| parse_rate(v).ok())
                    .unwrap_or_default();
                if pct.is_zero() && tax.is_zero() && row.is_zero() {
                    continue;
                }
                f.class_rates
                    .entry(class)
                    .or_default()
                    .insert(round_dp(pct, 4).normalize());
            }
        }
        f
    }
}

/// Levenshtein distance, for "did you mean" suggestions.
fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.to_lowercase().chars().collect();
    let b: Vec<char> = b.to_lowercase().chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

fn closest<'a>(want: &str, options: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    // Ties go to the longest shared prefix: "2010" means 201 rather than 200.
    let prefix = |o: &str| {
        want.chars()
            .zip(o.chars())
            .take_while(|(a, b)| a.eq_ignore_ascii_case(b))
            .count()
    };
    options
        .map(|o| (distance(want, o), o))
        .min_by_key(|(d, o)| (*d, std::cmp::Reverse(prefix(o)), o.len()))
        .map(|(_, o)| o)
}

fn pct(d: Decimal) -> String {
    format!("{}%", d.normalize())
}

const REVENUE_TYPES: &[&str] = &["REVENUE", "SALES", "OTHERINCOME"];

/// Every problem with `rules` against the organisation and the store, errors first.
pub fn check_against(
    rules: &MappingRules,
    org: &XeroOrgFacts,
    store: &StoreFacts,
) -> Vec<CheckProblem> {
    let mut out = Vec::new();
    let mut add = |severity, key: String, message: String, suggestion: Option<String>| {
        out.push(CheckProblem {
            severity,
            key,
            message,
            suggestion,
        })
    };

    for p in rules.validate() {
        add(Severity::Error, p.key, p.message, None);
    }

    let active_codes = || org.accounts.iter().filter(|a| a.status == "ACTIVE");
    let check_account =
        |key: String,
         code: &str,
         want_revenue: bool,
         want_bank: bool,
         add: &mut dyn FnMut(Severity, String, String, Option<String>)| {
            match org.account(code) {
                None => {
                    let pool: Vec<&AccountFact> = active_codes()
                        .filter(|a| !want_bank || a.account_type == "BANK" || a.enable_payments)
                        .filter(|a| {
                            !want_revenue || REVENUE_TYPES.contains(&a.account_type.as_str())
                        })
                        .collect();
                    let near = closest(code, pool.iter().map(|a| a.code.as_str()))
                        .and_then(|c| pool.iter().find(|a| a.code == c))
                        .map(|a| format!("use {} ({})", a.code, a.name));
                    add(
                        Severity::Error,
                        key,
                        format!("account code {code:?} does not exist in the organisation"),
                        near,
                    );
                }
                Some(a) if a.status != "ACTIVE" => add(
                    Severity::Error,
                    key,
                    format!(
                        "account {} ({}) is {}, not ACTIVE",
                        a.code, a.name, a.status
                    ),
                    Some("restore the account in Xero or map to an active one".into()),
                ),
                Some(a) if want_bank && a.account_type != "BANK" && !a.enable_payments => add(
                    Severity::Error,
                    key,
                    format!(
                        "account {} ({}) is type {} and does not accept payments",
                        a.code, a.name, a.account_type
                    ),
                    Some(
                        "use a BANK account or enable \"Enable payments to this account\" in Xero"
                            .into(),
                    ),
                ),
                Some(a) if want_revenue && !REVENUE_TYPES.contains(&a.account_type.as_str()) => {
                    add(
                        Severity::Warning,
                        key,
                        format!(
                            "account {} ({}) is type {}, not a revenue account",
                            a.code, a.name, a.account_type
                        ),
                        None,
                    )
                }
                Some(_) => {}
            }
        };

    for (i, r) in rules.account_rules.iter().enumerate() {
        check_account(
            format!("mapping.account_rules[{i}].account"),
            &r.account,
            true,
            false,
            &mut add,
        );
    }
    check_account(
        "mapping.shipping_account".into(),
        &rules.shipping_account,
        true,
        false,
        &mut add,
    );
    check_account(
        "mapping.rounding_account".into(),
        &rules.rounding_account,
        false,
        false,
        &mut add,
    );
    for (method, code) in &rules.payments {
        check_account(
            format!("mapping.payments.{method}"),
            code,
            false,
            true,
            &mut add,
        );
    }

    let available = || {
        org.tax_rates
            .iter()
            .filter(|t| t.status == "ACTIVE")
            .map(|t| format!("{} ({})", t.tax_type, pct(t.effective_rate)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    for (class, tax_type) in &rules.tax {
        let key = format!("mapping.tax.{class:?}");
        match org.tax_rate(tax_type) {
            None => add(
                Severity::Error,
                key,
                format!(
                    "tax type {tax_type} is not in the organisation; available: {}",
                    available()
                ),
                closest(
                    tax_type,
                    org.tax_rates
                        .iter()
                        .filter(|t| t.status == "ACTIVE")
                        .map(|t| t.tax_type.as_str()),
                )
                .map(|t| format!("did you mean {t}?")),
            ),
            Some(t) if t.status != "ACTIVE" => add(
                Severity::Error,
                key,
                format!(
                    "tax type {tax_type} is {} in the organisation; available: {}",
                    t.status,
                    available()
                ),
                None,
            ),
            Some(t) => {
                // 0% beside a real rate is an export or exempt customer, not the class's rate.
                let seen_rates = store.class_rates.get(class).cloned().unwrap_or_default();
                let charged: Vec<Decimal> = if seen_rates.iter().any(|r| !r.is_zero()) {
                    seen_rates.into_iter().filter(|r| !r.is_zero()).collect()
                } else {
                    seen_rates.into_iter().collect()
                };
                for seen in &charged {
                    if *seen != t.effective_rate.normalize() {
                        let same_rate: Vec<&str> = org
                            .tax_rates
                            .iter()
                            .filter(|r| {
                                r.status == "ACTIVE" && r.effective_rate.normalize() == *seen
                            })
                            .map(|r| r.tax_type.as_str())
                            .collect();
                        add(
                            Severity::Error,
                            key.clone(),
                            format!(
                                "Magento charges {} on tax class {class:?} but {tax_type} is {} in Xero",
                                pct(*seen),
                                pct(t.effective_rate)
                            ),
                            (!same_rate.is_empty())
                                .then(|| format!("map it to {}", same_rate.join(" or "))),
                        );
                    }
                }
            }
        }
    }
    for class in &store.tax_classes {
        if !rules.tax.contains_key(class) {
            add(
                Severity::Error,
                "mapping.tax".into(),
                format!("Magento tax class {class:?} is used by products but has no tax type"),
                Some(format!("add {class:?} = \"<TaxType>\" to [mapping] tax")),
            );
        }
    }

    for (i, r) in rules.account_rules.iter().enumerate() {
        let c = r.category.trim();
        if c == FALLBACK_CATEGORY
            || store
                .categories
                .iter()
                .any(|have| have.eq_ignore_ascii_case(c))
        {
            continue;
        }
        add(
            Severity::Warning,
            format!("mapping.account_rules[{i}].category"),
            format!("category {c:?} matches no Magento category"),
            closest(c, store.categories.iter().map(String::as_str))
                .map(|n| format!("did you mean {n:?}?")),
        );
    }

    for method in &store.payment_methods {
        if !rules.payments.contains_key(method) {
            add(
                Severity::Error,
                "mapping.payments".into(),
                format!("orders are paid with {method:?}, which has no bank account"),
                Some(format!(
                    "add {method} = \"<account code>\" to [mapping] payments"
                )),
            );
        }
    }
    for cur in &store.currencies {
        if !org.currencies.contains(cur) {
            add(
                Severity::Error,
                "currencies".into(),
                format!(
                    "orders are in {cur}, which is not enabled in the organisation (base {})",
                    org.base_currency
                ),
                Some(format!("add {cur} under Settings › Currencies in Xero")),
            );
        }
    }

    out.sort_by_key(|p| p.severity);
    out
}
