//! Order → ACCREC invoice, penny-exact.
//!
//! Magento has already computed tax (often with total-based rounding that moves a cent between
//! rows), so the invoice carries Magento's numbers rather than asking Xero to recompute them:
//! each line's `TaxAmount` is Magento's row tax, and each line's discount is derived from the
//! numbers so the line amount equals Magento's row after discount (whether Magento applied the
//! discount to the excl or incl price). The invoice is then run through [`xero_math`] and any
//! remaining gap to Magento's `grand_total` becomes an explicit rounding line, if it is within
//! `rounding_tolerance`, or a record error if it is not.
//!
//! Currency direction: Xero quotes a rate as units of the invoice (foreign) currency per one
//! unit of the organisation's base currency ("1 GBP = 1.17 EUR" → `CurrencyRate` 1.17).
//! Magento's `base_to_order_rate` is order-currency units per base unit (base × rate = order),
//! i.e. the same direction, so when the store's base currency is the organisation's base it is
//! sent as is, not inverted. See [`currency_rate`]. Not checked against a live organisation;
//! the evidence is the accounting spec's own examples: a Quote in NZD with `CurrencyRate`
//! 1.547150 (read as base units per NZD that would value one NZD at 1.5 of a base unit, which
//! the major currencies never were; read as NZD per base unit it is an ordinary USD→NZD rate),
//! against one third-party integration that inverts its rate on the opposite reading.
//!
//! Unit amounts keep up to 4 decimal places, so the client must post with `unitdp=4`.

use std::collections::{HashMap, HashSet};

use rust_decimal::Decimal;

use super::check::XeroOrgFacts;
use super::rules::MappingRules;
use super::xero_math::{self, ComputedInvoice};
use crate::model::catalogue::Catalogue;
use crate::model::error::RecordError;
use crate::model::money::{cents, round_dp, round2};
use crate::model::order::Order;
use crate::model::xero::{ContactRef, Invoice, LineAmountTypes, LineItem};

/// Tax type for lines that carry no tax (rounding, untaxed shipping).
pub const NO_TAX: &str = "NONE";
/// Xero's `CurrencyRate` allows 6 decimal places.
const RATE_DP: u32 = 6;

/// What the mapping needs to know about the Xero organisation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OrgContext {
    pub base_currency: String,
    /// TaxType → EffectiveRate (percent), active rates only.
    pub tax_rates: HashMap<String, Decimal>,
    /// Codes of the organisation's Items: a line names an item only when it exists.
    pub item_codes: HashSet<String>,
}

impl OrgContext {
    /// From the organisation facts (`tally check` reads the same ones) and the catalogue's
    /// record of which SKUs exist as Xero items.
    pub fn from_facts(facts: &XeroOrgFacts, catalogue: &Catalogue) -> Self {
        OrgContext {
            base_currency: facts.base_currency.clone(),
            tax_rates: facts.active_tax_rates(),
            item_codes: catalogue.xero_items().clone(),
        }
    }
}

/// Why the invoice has a rounding line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoundingNote {
    pub magento_total: Decimal,
    pub xero_computed: Decimal,
    /// `magento_total - xero_computed`: the rounding line's amount.
    pub difference: Decimal,
}

/// The invoice to send and what Xero must answer with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedInvoice {
    pub invoice: Invoice,
    /// Equals the order's `grand_total`; compare with Xero's `Total` after posting.
    pub expected_total: Decimal,
    /// Equals the order's `tax_amount`; compare with Xero's `TotalTax`.
    pub expected_tax: Decimal,
    pub rounding: Option<RoundingNote>,
}

/// Xero `CurrencyRate` for an order: `None` when the order is in the organisation's base
/// currency (no rate needed) or when no rate to that base can be derived from the order (Xero
/// then uses its XE.com day rate).
pub fn currency_rate(order: &Order, org_base: &str) -> Option<Decimal> {
    let c = &order.currency;
    if c.order.eq_ignore_ascii_case(org_base) {
        return None;
    }
    if c.base.eq_ignore_ascii_case(org_base) {
        return Some(round_dp(c.base_to_order_rate, RATE_DP));
    }
    // The store's base differs but its global currency is the organisation's: go via global.
    match (&c.global, c.base_to_global_rate) {
        (Some(g), Some(btg)) if g.eq_ignore_ascii_case(org_base) && !btg.is_zero() => {
            Some(round_dp(c.base_to_order_rate / btg, RATE_DP))
        }
        _ => None,
    }
}

/// The discount that makes `round2(qty × unit) − discount` equal `target`; `None` when no
/// discount is needed or when the gap is the wrong way round (left to the rounding line).
fn discount_to_reach(qty: Decimal, unit: Decimal, target: Decimal) -> Option<Decimal> {
    let gap = round2(qty * unit) - target;
    (gap > Decimal::ZERO).then_some(cents(gap))
}

/// Plans the ACCREC invoice for `order`, to be posted for contact `contact_id`.
pub fn invoice_for(
    order: &Order,
    contact_id: &str,
    rules: &MappingRules,
    org: &OrgContext,
) -> Result<PlannedInvoice, RecordError> {
    let record = order.record();
    let err = |field: String, message: String| RecordError::new(record.clone(), field, message);
    let mode = if rules.is_inclusive_store(order.store_id) {
        LineAmountTypes::Inclusive
    } else {
        LineAmountTypes::Exclusive
    };
    let inclusive = mode == LineAmountTypes::Inclusive;

    let tax_type_for = |class: &str, field: String, what: &str| -> Result<String, RecordError> {
        let tax_type = rules.tax.get(class).ok_or_else(|| {
            err(
                field.clone(),
                format!("{what}: tax class {class:?} is not mapped in mapping.tax"),
            )
        })?;
        if !org.tax_rates.contains_key(tax_type) {
            return Err(err(
                field,
                format!(
                    "{what}: tax class {class:?} maps to tax type {tax_type:?}, which the organisation does not have"
                ),
            ));
        }
        Ok(tax_type.clone())
    };

    let mut lines = Vec::with_capacity(order.lines.len() + 2);
    for line in &order.lines {
        let what = format!("SKU {:?}", line.sku);
        let tax_type = tax_type_for(&line.tax_class, format!("{}.tax_class", line.path), &what)?;
        let account = rules.account_for(&line.categories).ok_or_else(|| {
            err(
                format!("{}.sku", line.path),
                format!(
                    "{what}: no account rule matches categories {:?} and there is no \"*\" rule",
                    line.categories
                ),
            )
        })?;
        let unit = if inclusive {
            line.unit_price_incl
        } else {
            line.unit_price_excl
        };
        let target = if inclusive {
            line.net() + line.tax_amount
        } else {
            line.net()
        };
        lines.push(LineItem {
            description: Some(format!("{} [{}]", line.name, line.sku)),
            quantity: Some(line.qty),
            unit_amount: Some(cents(round_dp(unit, 4))),
            item_code: org.item_codes.contains(&line.sku).then(|| line.sku.clone()),
            account_code: Some(account.to_owned()),
            tax_type: Some(tax_type),
            tax_amount: Some(cents(line.tax_amount)),
            discount_amount: discount_to_reach(line.qty, unit, target),
            ..Default::default()
        });
    }

    let s = &order.shipping;
    if !s.is_free() {
        let tax_type = if s.tax_amount.is_zero() {
            NO_TAX.to_owned()
        } else {
            tax_type_for(
                &rules.shipping_tax_class,
                "shipping_tax_amount".into(),
                "shipping",
            )?
        };
        let unit = if inclusive { s.incl_tax } else { s.amount };
        let target = if inclusive {
            s.net() + s.tax_amount
        } else {
            s.net()
        };
        lines.push(LineItem {
            description: Some(
                s.description
                    .clone()
                    .unwrap_or_else(|| "Shipping".to_owned()),
            ),
            quantity: Some(Decimal::ONE),
            unit_amount: Some(cents(unit)),
            account_code: Some(rules.shipping_account.clone()),
            tax_type: Some(tax_type),
            tax_amount: Some(cents(s.tax_amount)),
            discount_amount: discount_to_reach(Decimal::ONE, unit, target),
            ..Default::default()
        });
    }

    // Line taxes should sum to Magento's order tax; a small gap (e.g. a tax Magento keeps only
    // at order level) goes on the most-taxed line so TotalTax still equals Magento's.
    let line_tax: Decimal = lines.iter().filter_map(|l| l.tax_amount).sum();
    let tax_gap = order.tax_amount - line_tax;
    if !tax_gap.is_zero() {
        if tax_gap.abs() > rules.rounding_tolerance {
            return Err(err(
                "tax_amount".into(),
                format!(
                    "tax_amount is {} but the items and shipping carry {line_tax} of tax (gap {tax_gap} exceeds \
                     rounding_tolerance {})",
                    order.tax_amount, rules.rounding_tolerance
                ),
            ));
        }
        if let Some(l) = lines
            .iter_mut()
            .max_by_key(|l| l.tax_amount.unwrap_or_default())
        {
            l.tax_amount = Some(cents(l.tax_amount.unwrap_or_default() + tax_gap));
        }
    }

    let compute = |lines: &[LineItem]| -> Result<ComputedInvoice, RecordError> {
        xero_math::compute_lines(lines, mode, &org.tax_rates)
            .map_err(|e| err("items".into(), e.to_string()))
    };
    let computed = compute(&lines)?;
    let gap = order.grand_total - computed.total;
    let mut rounding = None;
    if !gap.is_zero() {
        if gap.abs() > rules.rounding_tolerance {
            return Err(err(
                "grand_total".into(),
                format!(
                    "Magento grand total {} vs Xero computed {}: the difference {} exceeds rounding_tolerance {}",
                    cents(order.grand_total),
                    cents(computed.total),
                    cents(gap),
                    cents(rules.rounding_tolerance)
                ),
            ));
        }
        lines.push(LineItem {
            description: Some(format!(
                "Rounding: Magento grand total {} vs Xero computed {}",
                cents(order.grand_total),
                cents(computed.total)
            )),
            quantity: Some(Decimal::ONE),
            unit_amount: Some(cents(gap)),
            account_code: Some(rules.rounding_account.clone()),
            tax_type: Some(NO_TAX.to_owned()),
            tax_amount: Some(cents(Decimal::ZERO)),
            ..Default::default()
        });
        rounding = Some(RoundingNote {
            magento_total: order.grand_total,
            xero_computed: computed.total,
            difference: gap,
        });
    }
    let fin = compute(&lines)?;
    debug_assert_eq!(fin.total, order.grand_total);

    let date = order.date().format("%Y-%m-%d").to_string();
    let invoice = Invoice {
        kind: "ACCREC".to_owned(),
        contact: ContactRef {
            contact_id: Some(contact_id.to_owned()),
            ..Default::default()
        },
        line_items: lines,
        date: Some(date.clone()),
        due_date: Some(date),
        line_amount_types: mode,
        invoice_number: Some(order.increment_id.clone()),
        reference: Some(order.increment_id.clone()),
        currency_code: Some(order.currency.order.clone()),
        currency_rate: currency_rate(order, &org.base_currency),
        status: Some("AUTHORISED".to_owned()),
        ..Default::default()
    };
    Ok(PlannedInvoice {
        invoice,
        expected_total: fin.total,
        expected_tax: fin.total_tax,
        rounding,
    })
}
