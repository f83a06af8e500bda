//! Money parsing and rounding.
//!
//! JSON numbers are read through their literal text (serde_json's `arbitrary_precision`) and
//! `Decimal::from_str_exact`, never through `f64`: `0.1 + 0.2` style drift in a ledger is
//! exactly the class of one-cent discrepancy this engine exists to prevent.

use super::json_view::{JsonView, Kind};
use rust_decimal::{Decimal, RoundingStrategy};
#[cfg(test)]
use serde_json::Value;

/// Magento stores money as `decimal(20,4)`; anything finer did not come from Magento.
pub const MAX_MONEY_DP: u32 = 4;
/// Exchange rates are stored with more precision than amounts.
pub const MAX_RATE_DP: u32 = 12;
/// No single order amount in a webshop is a trillion; such a value is corruption or an attack.
pub const MAX_MAGNITUDE: i64 = 1_000_000_000_000;

/// Why a JSON value is not an acceptable amount. Messages quote the offending text so the
/// operator can find it; amounts are not secrets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("missing")]
    Missing,
    #[error("not a number ({0:?})")]
    NotANumber(String),
    #[error("more than {max} decimal places ({text})")]
    TooPrecise { text: String, max: u32 },
    #[error("out of range ({0})")]
    OutOfRange(String),
}

/// Parses an amount: a JSON number or a numeric string, at most 4 dp (after dropping trailing
/// zeros, since `10.5000` is exact), magnitude below 10^12.
pub fn parse_money(value: &impl JsonView) -> Result<Decimal, MoneyError> {
    parse_decimal(value, MAX_MONEY_DP)
}

/// Like [`parse_money`] but with rate precision (`base_to_order_rate`, tax percents).
pub fn parse_rate(value: &impl JsonView) -> Result<Decimal, MoneyError> {
    parse_decimal(value, MAX_RATE_DP)
}

/// Parses a decimal with at most `max_dp` significant decimal places.
pub fn parse_decimal(value: &impl JsonView, max_dp: u32) -> Result<Decimal, MoneyError> {
    let text = match value.kind() {
        Kind::Null => return Err(MoneyError::Missing),
        Kind::Number(n) => n,
        Kind::String(s) => s.trim(),
        _ => return Err(MoneyError::NotANumber(value.to_string())),
    };
    parse_decimal_str(text, max_dp)
}

/// The textual core of [`parse_decimal`], shared with config parsing.
pub fn parse_decimal_str(text: &str, max_dp: u32) -> Result<Decimal, MoneyError> {
    let plain = text
        .bytes()
        .all(|b| b.is_ascii_digit() || b == b'.' || b == b'-' || b == b'+');
    let has_digit = text.bytes().any(|b| b.is_ascii_digit());
    if text.is_empty() || !has_digit {
        return Err(MoneyError::NotANumber(text.to_owned()));
    }
    let parsed = if plain {
        Decimal::from_str_exact(text)
    } else if text.bytes().any(|b| b == b'e' || b == b'E') && !text.contains(['n', 'N', 'i', 'I']) {
        // Exponent notation from a JSON number such as `1e400` or `2.5E1`.
        Decimal::from_scientific(text)
    } else {
        return Err(MoneyError::NotANumber(text.to_owned()));
    };
    let d = match parsed {
        Ok(d) => d,
        Err(rust_decimal::Error::ExceedsMaximumPossibleValue)
        | Err(rust_decimal::Error::LessThanMinimumPossibleValue)
        | Err(rust_decimal::Error::ScaleExceedsMaximumPrecision(_)) => {
            return Err(MoneyError::OutOfRange(text.to_owned()));
        }
        Err(rust_decimal::Error::Underflow) => {
            return Err(MoneyError::TooPrecise {
                text: text.to_owned(),
                max: max_dp,
            });
        }
        Err(_) if plain => return Err(MoneyError::OutOfRange(text.to_owned())),
        Err(_) => return Err(MoneyError::OutOfRange(text.to_owned())),
    };
    if d.abs() >= Decimal::from(MAX_MAGNITUDE) {
        return Err(MoneyError::OutOfRange(text.to_owned()));
    }
    if d.normalize().scale() > max_dp {
        return Err(MoneyError::TooPrecise {
            text: text.to_owned(),
            max: max_dp,
        });
    }
    Ok(d)
}

/// Rounds to cents, half away from zero: the rule both Magento and Xero use for a displayed
/// amount (banker's rounding would disagree with them on every `.xx5`).
pub fn round2(d: Decimal) -> Decimal {
    round_dp(d, 2)
}

/// Shows at least two decimal places (`12.0` → `12.00`) without changing the value, so
/// amounts on the wire and in messages read like money whatever form Magento sent them in.
pub fn cents(d: Decimal) -> Decimal {
    let mut d = d;
    if d.scale() < 2 {
        d.rescale(2);
    }
    d
}

/// Half-away-from-zero rounding to `dp` places.
pub fn round_dp(d: Decimal, dp: u32) -> Decimal {
    d.round_dp_with_strategy(dp, RoundingStrategy::MidpointAwayFromZero)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::str::FromStr;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    #[test]
    fn numbers_keep_their_literal_digits() {
        let v: Value = serde_json::from_str("0.1").unwrap();
        assert_eq!(parse_money(&v).unwrap(), d("0.1"));
        let v: Value = serde_json::from_str("12.3450").unwrap();
        assert_eq!(parse_money(&v).unwrap().to_string(), "12.3450");
        assert_eq!(parse_money(&json!("  7.25 ")).unwrap(), d("7.25"));
        assert_eq!(parse_money(&json!(-3)).unwrap(), d("-3"));
    }

    #[test]
    fn rejects_garbage_and_absurd_values() {
        assert_eq!(
            parse_money(&json!("abc")),
            Err(MoneyError::NotANumber("abc".into()))
        );
        assert_eq!(
            parse_money(&json!("NaN")),
            Err(MoneyError::NotANumber("NaN".into()))
        );
        assert_eq!(
            parse_money(&json!("inf")),
            Err(MoneyError::NotANumber("inf".into()))
        );
        assert_eq!(
            parse_money(&json!("")),
            Err(MoneyError::NotANumber("".into()))
        );
        assert!(matches!(
            parse_money(&json!(true)),
            Err(MoneyError::NotANumber(_))
        ));
        assert_eq!(parse_money(&Value::Null), Err(MoneyError::Missing));
        let huge: Value = serde_json::from_str("1e400").unwrap();
        assert!(
            matches!(parse_money(&huge), Err(MoneyError::OutOfRange(_))),
            "{:?}",
            parse_money(&huge)
        );
        assert!(matches!(
            parse_money(&json!("1000000000000")),
            Err(MoneyError::OutOfRange(_))
        ));
        assert!(matches!(
            parse_money(&json!("1.23456")),
            Err(MoneyError::TooPrecise { .. })
        ));
        let tiny: Value = serde_json::from_str("1e-30").unwrap();
        assert!(parse_money(&tiny).is_err());
    }

    #[test]
    fn trailing_zeros_and_exponents_are_exact() {
        assert_eq!(parse_money(&json!("10.50000000")).unwrap(), d("10.5"));
        let v: Value = serde_json::from_str("2.5E1").unwrap();
        assert_eq!(parse_money(&v).unwrap(), d("25"));
        assert_eq!(parse_rate(&json!("1.170000000")).unwrap(), d("1.17"));
    }

    #[test]
    fn cents_pads_without_changing_value() {
        assert_eq!(cents(d("12")).to_string(), "12.00");
        assert_eq!(cents(d("12.5")).to_string(), "12.50");
        assert_eq!(cents(d("0.1234")).to_string(), "0.1234");
    }

    #[test]
    fn round2_is_half_away_from_zero() {
        assert_eq!(round2(d("2.345")), d("2.35"));
        assert_eq!(round2(d("2.355")), d("2.36"));
        assert_eq!(round2(d("-2.345")), d("-2.35"));
        assert_eq!(round2(d("2.3449")), d("2.34"));
    }
}
