//! A replica of Xero's invoice arithmetic, so a planned invoice's totals are known before it
//! is sent and a rounding line can be added up front instead of after a mismatch.
//!
//! The rules (shared with the Xero simulator in the sandbox): line amount from quantity, unit
//! amount and discount rounded to cents; tax per line from the tax type's EffectiveRate rounded
//! to cents (an explicit TaxAmount is kept); totals are sums of the rounded lines. All rounding
//! is half away from zero.

use std::collections::HashMap;

use rust_decimal::Decimal;

use crate::model::money::round2;
use crate::model::xero::{Invoice, LineAmountTypes, LineItem};

const HUNDRED: Decimal = Decimal::from_parts(100, 0, 0, false, 0);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MathError {
    #[error("line {line}: tax type {tax_type:?} has no known rate")]
    UnknownTaxType { line: usize, tax_type: String },
    #[error("line {line}: needs Quantity and UnitAmount, or LineAmount")]
    NoAmount { line: usize },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ComputedLine {
    pub line_amount: Decimal,
    pub tax: Decimal,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComputedInvoice {
    pub lines: Vec<ComputedLine>,
    pub sub_total: Decimal,
    pub total_tax: Decimal,
    pub total: Decimal,
}

/// `LineAmount` of a line: DiscountAmount wins over DiscountRate, as in Xero.
pub fn line_amount(
    quantity: Decimal,
    unit_amount: Decimal,
    discount_amount: Option<Decimal>,
    discount_rate: Option<Decimal>,
) -> Decimal {
    match (discount_amount, discount_rate) {
        (Some(d), _) => round2(quantity * unit_amount) - d,
        (None, Some(r)) => round2(quantity * unit_amount * (Decimal::ONE - r / HUNDRED)),
        (None, None) => round2(quantity * unit_amount),
    }
}

/// Tax on one line amount at `rate` percent.
pub fn line_tax(line_amount: Decimal, rate: Decimal, mode: LineAmountTypes) -> Decimal {
    match mode {
        LineAmountTypes::Exclusive => round2(line_amount * rate / HUNDRED),
        LineAmountTypes::Inclusive => round2(line_amount * rate / (HUNDRED + rate)),
        LineAmountTypes::NoTax => Decimal::ZERO,
    }
}

/// Computes one line; `rates` maps TaxType → EffectiveRate (percent).
pub fn compute_line(
    index: usize,
    line: &LineItem,
    mode: LineAmountTypes,
    rates: &HashMap<String, Decimal>,
) -> Result<ComputedLine, MathError> {
    let amount = match (line.quantity, line.unit_amount) {
        (Some(q), Some(u)) => line_amount(q, u, line.discount_amount, line.discount_rate),
        _ => line
            .line_amount
            .ok_or(MathError::NoAmount { line: index })?,
    };
    let tax = match (mode, line.tax_amount) {
        (LineAmountTypes::NoTax, _) => Decimal::ZERO,
        (_, Some(explicit)) => explicit,
        (_, None) => {
            let tax_type = line.tax_type.clone().unwrap_or_default();
            let rate = rates
                .get(&tax_type)
                .copied()
                .ok_or(MathError::UnknownTaxType {
                    line: index,
                    tax_type,
                })?;
            line_tax(amount, rate, mode)
        }
    };
    Ok(ComputedLine {
        line_amount: amount,
        tax,
    })
}

/// Computes every line and the document totals exactly as Xero would.
pub fn compute(
    invoice: &Invoice,
    rates: &HashMap<String, Decimal>,
) -> Result<ComputedInvoice, MathError> {
    compute_lines(&invoice.line_items, invoice.line_amount_types, rates)
}

pub fn compute_lines(
    lines: &[LineItem],
    mode: LineAmountTypes,
    rates: &HashMap<String, Decimal>,
) -> Result<ComputedInvoice, MathError> {
    let computed = lines
        .iter()
        .enumerate()
        .map(|(i, l)| compute_line(i, l, mode, rates))
        .collect::<Result<Vec<_>, _>>()?;
    let total_tax: Decimal = computed.iter().map(|c| c.tax).sum();
    let sub_total: Decimal = match mode {
        LineAmountTypes::Inclusive => computed.iter().map(|c| c.line_amount - c.tax).sum(),
        _ => computed.iter().map(|c| c.line_amount).sum(),
    };
    Ok(ComputedInvoice {
        lines: computed,
        sub_total,
        total_tax,
        total: sub_total + total_tax,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    fn line(q: &str, u: &str, tax_type: &str) -> LineItem {
        LineItem {
            quantity: Some(d(q)),
            unit_amount: Some(d(u)),
            tax_type: Some(tax_type.into()),
            ..Default::default()
        }
    }

    fn rates() -> HashMap<String, Decimal> {
        [
            ("OUTPUT2".to_string(), d("20")),
            ("RROUTPUT".to_string(), d("5")),
            ("NONE".to_string(), d("0")),
        ]
        .into_iter()
        .collect()
    }

    #[test]
    fn exclusive_rounds_tax_per_line_then_sums() {
        // Each 0.63 line's tax is 0.126 → 0.13, so 0.39 in total, where taxing the 1.89
        // subtotal once would give 0.378 → 0.38.
        let lines = vec![
            line("1", "0.625", "OUTPUT2"),
            line("1", "0.625", "OUTPUT2"),
            line("1", "0.625", "OUTPUT2"),
        ];
        let c = compute_lines(&lines, LineAmountTypes::Exclusive, &rates()).unwrap();
        assert_eq!(
            c.lines[0],
            ComputedLine {
                line_amount: d("0.63"),
                tax: d("0.13")
            }
        );
        assert_eq!(c.sub_total, d("1.89"));
        assert_eq!(c.total_tax, d("0.39"));
        assert_eq!(c.total, d("2.28"));
    }

    #[test]
    fn inclusive_extracts_tax_and_discounts_apply_first() {
        let mut l = line("2", "9.995", "OUTPUT2");
        l.discount_amount = Some(d("1.00"));
        let c = compute_lines(&[l], LineAmountTypes::Inclusive, &rates()).unwrap();
        // round2(19.99) - 1.00 = 18.99; tax = round2(18.99 * 20/120) = round2(3.165) = 3.17
        assert_eq!(
            c.lines[0],
            ComputedLine {
                line_amount: d("18.99"),
                tax: d("3.17")
            }
        );
        assert_eq!(c.sub_total, d("15.82"));
        assert_eq!(c.total, d("18.99"));
    }

    #[test]
    fn discount_rate_explicit_tax_and_notax() {
        let mut l = line("3", "10", "RROUTPUT");
        l.discount_rate = Some(d("15"));
        let mut explicit = line("1", "10", "OUTPUT2");
        explicit.tax_amount = Some(d("1.99"));
        let c =
            compute_lines(&[l.clone(), explicit], LineAmountTypes::Exclusive, &rates()).unwrap();
        assert_eq!(
            c.lines[0],
            ComputedLine {
                line_amount: d("25.50"),
                tax: d("1.28")
            }
        );
        assert_eq!(c.lines[1].tax, d("1.99"));
        let n = compute_lines(&[l], LineAmountTypes::NoTax, &rates()).unwrap();
        assert_eq!(n.total, d("25.50"));
        assert_eq!(n.total_tax, Decimal::ZERO);
    }

    #[test]
    fn unknown_tax_type_is_an_error() {
        let e = compute_lines(
            &[line("1", "1", "BOGUS")],
            LineAmountTypes::Exclusive,
            &rates(),
        )
        .unwrap_err();
        assert_eq!(
            e,
            MathError::UnknownTaxType {
                line: 0,
                tax_type: "BOGUS".into()
            }
        );
    }
}
