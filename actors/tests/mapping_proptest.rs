//! Property: for any consistent Magento order (random lines, tax rates 0/5/20%, discounts
//! applied on excl or incl prices, a cent of total-based tax rounding moved between rows,
//! shipping free, taxed or coupon-discounted, both price display modes), the planned invoice
//! computes in Xero's arithmetic to exactly Magento's grand total and tax, with no rounding line.

use std::collections::{BTreeMap, HashMap, HashSet};

use proptest::prelude::*;
use rust_decimal::{Decimal, RoundingStrategy};
use rust_decimal_macros::dec;
use serde_json::{Value, json};
use tally_actors::mapping::{AccountRule, MappingRules, OrgContext, invoice_for, xero_math};
use tally_actors::model::{Catalogue, Order, ProductFacts};

fn r2(d: Decimal) -> Decimal {
    d.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero)
}

fn rules() -> MappingRules {
    let map = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    MappingRules {
        prices_include_tax: false,
        inclusive_store_ids: vec![2],
        shipping_account: "202".into(),
        shipping_tax_class: "Shipping".into(),
        rounding_account: "860".into(),
        rounding_tolerance: dec!(0.05),
        account_rules: vec![AccountRule {
            category: "*".into(),
            account: "201".into(),
        }],
        tax: map(&[
            ("Taxable Goods", "OUTPUT2"),
            ("Reduced Rate Goods", "RROUTPUT"),
            ("Zero Rated Goods", "ZERORATEDOUTPUT"),
            ("Shipping", "OUTPUT2"),
        ]),
        payments: map(&[("checkmo", "090")]),
    }
}

fn org() -> OrgContext {
    OrgContext {
        base_currency: "GBP".into(),
        tax_rates: HashMap::from([
            ("OUTPUT2".to_string(), dec!(20)),
            ("RROUTPUT".to_string(), dec!(5)),
            ("ZERORATEDOUTPUT".to_string(), dec!(0)),
            ("NONE".to_string(), dec!(0)),
        ]),
        item_codes: HashSet::new(),
    }
}

const RATES: [(&str, &str, i64); 3] = [
    ("R0", "Zero Rated Goods", 0),
    ("R5", "Reduced Rate Goods", 5),
    ("R20", "Taxable Goods", 20),
];

fn catalogue() -> Catalogue {
    let mut c = Catalogue::default();
    for (sku, class, _) in RATES {
        c.insert(
            sku,
            ProductFacts {
                categories: vec!["Home".into()],
                tax_class: Some(class.into()),
                tax_class_id: Some("2".into()),
            },
        );
    }
    c
}

#[derive(Debug, Clone)]
struct LineSpec {
    qty: u32,
    cents: i64,
    rate_idx: usize,
    discount_pct: i64,
    discount_incl: bool,
    delta_cents: i64,
}

fn line_spec() -> impl Strategy<Value = LineSpec> {
    (
        1u32..=5,
        1i64..=20_000,
        0usize..3,
        prop::sample::select(vec![0i64, 5, 10, 15, 33, 50]),
        any::<bool>(),
        -1i64..=1,
    )
        .prop_map(
            |(qty, cents, rate_idx, discount_pct, discount_incl, delta_cents)| LineSpec {
                qty,
                cents,
                rate_idx,
                discount_pct,
                discount_incl,
                delta_cents,
            },
        )
}

/// Builds the Magento JSON the way Magento would compute it (per row, half away from zero).
fn magento_order(
    lines: &[LineSpec],
    inclusive: bool,
    ship_cents: i64,
    ship_taxed: bool,
    ship_coupon: bool,
) -> Value {
    let hundred = dec!(100);
    let (mut subtotal, mut discount, mut tax_total, mut dtc_total) =
        (dec!(0), dec!(0), dec!(0), dec!(0));
    let mut items = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        let (sku, _, rate) = RATES[l.rate_idx];
        let r = Decimal::from(rate);
        let q = Decimal::from(l.qty);
        let pct = Decimal::from(l.discount_pct);
        let entered = Decimal::new(l.cents, 2);
        let delta = if rate > 0 {
            Decimal::new(l.delta_cents, 2)
        } else {
            dec!(0)
        };
        let (price, price_incl, row, row_incl, d, tax, dtc);
        if inclusive {
            price_incl = entered;
            row_incl = r2(price_incl * q);
            let tbd = r2(row_incl * r / (hundred + r));
            row = row_incl - tbd;
            price = r2(price_incl * hundred / (hundred + r));
            d = r2(row_incl * pct / hundred);
            tax = (r2((row_incl - d) * r / (hundred + r)) + delta).max(dec!(0));
            dtc = tbd - tax;
        } else {
            price = entered;
            price_incl = r2(price * (hundred + r) / hundred);
            row = r2(price * q);
            row_incl = r2(row * (hundred + r) / hundred);
            if l.discount_incl {
                d = r2(row_incl * pct / hundred);
                let d_excl = r2(d * hundred / (hundred + r));
                dtc = d - d_excl;
                tax = (r2((row - d_excl) * r / hundred) + delta).max(dec!(0));
            } else {
                d = r2(row * pct / hundred);
                dtc = dec!(0);
                tax = (r2((row - d) * r / hundred) + delta).max(dec!(0));
            }
        }
        subtotal += row;
        discount -= d;
        tax_total += tax;
        dtc_total += dtc;
        items.push(
            json!({"item_id": i + 1, "sku": sku, "name": sku, "product_type": "simple",
            "qty_ordered": q, "price": price, "price_incl_tax": price_incl, "row_total": row,
            "row_total_incl_tax": row_incl, "tax_amount": tax, "tax_percent": rate,
            "discount_amount": d, "discount_tax_compensation_amount": dtc}),
        );
    }
    let entered = Decimal::new(ship_cents, 2);
    let (ship, ship_tax) = match (ship_taxed && !ship_coupon, inclusive) {
        (false, _) => (entered, dec!(0)),
        (true, false) => (entered, r2(entered * dec!(0.2))),
        (true, true) => {
            let t = r2(entered * dec!(20) / dec!(120));
            (entered - t, t)
        }
    };
    let ship_discount = if ship_coupon { ship } else { dec!(0) };
    discount -= ship_discount;
    tax_total += ship_tax;
    let grand = subtotal + ship + discount + tax_total + dtc_total;
    json!({
        "entity_id": 1, "increment_id": "100000001", "store_id": if inclusive { 2 } else { 1 },
        "created_at": "2026-11-02 08:00:00", "customer_email": "p@example.com", "customer_is_guest": 1,
        "order_currency_code": "GBP", "base_currency_code": "GBP", "items": items,
        "subtotal": subtotal, "shipping_amount": ship, "shipping_tax_amount": ship_tax,
        "shipping_incl_tax": ship + ship_tax, "shipping_discount_amount": ship_discount,
        "discount_amount": discount, "discount_tax_compensation_amount": dtc_total,
        "tax_amount": tax_total, "grand_total": grand,
        "payment": {"method": "checkmo", "amount_paid": grand}
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn planned_invoice_totals_equal_magento(
        lines in prop::collection::vec(line_spec(), 1..7),
        inclusive in any::<bool>(),
        ship_cents in prop::sample::select(vec![0i64, 395, 499, 1000, 1299]),
        ship_taxed in any::<bool>(),
        ship_coupon in any::<bool>(),
    ) {
        let json = magento_order(&lines, inclusive, ship_cents, ship_taxed, ship_coupon);
        let order = Order::from_magento(&json, &catalogue()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let plan = invoice_for(&order, "c", &rules(), &org()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let x = xero_math::compute(&plan.invoice, &org().tax_rates).unwrap();
        prop_assert_eq!(x.total, order.grand_total, "{}", json);
        prop_assert_eq!(x.total_tax, order.tax_amount);
        prop_assert_eq!(plan.expected_total, order.grand_total);
        prop_assert_eq!(plan.expected_tax, order.tax_amount);
        prop_assert!(plan.rounding.is_none(), "unexpected rounding line: {:?}", plan.rounding);
        for l in &plan.invoice.line_items {
            prop_assert!(l.discount_amount.is_none_or(|d| d > Decimal::ZERO));
        }
    }
}
