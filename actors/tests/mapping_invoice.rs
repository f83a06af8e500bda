//! Order → invoice and payment, on hand-computed orders: every total below was worked out by
//! hand from Magento's arithmetic, and the planned invoice is re-checked with the Xero
//! arithmetic replica.

use std::collections::{BTreeMap, HashMap, HashSet};

use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use serde_json::{Value, json};
use tally_actors::mapping::xero_math;
use tally_actors::mapping::{
    AccountRule, MappingRules, OrgContext, PlannedInvoice, invoice_for, payment_for,
};
use tally_actors::model::xero::LineAmountTypes;
use tally_actors::model::{Catalogue, Order, ProductFacts};

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
        account_rules: vec![
            AccountRule {
                category: "Services".into(),
                account: "200".into(),
            },
            AccountRule {
                category: "*".into(),
                account: "201".into(),
            },
        ],
        tax: map(&[
            ("Taxable Goods", "OUTPUT2"),
            ("Reduced Rate Goods", "RROUTPUT"),
            ("Zero Rated Goods", "ZERORATEDOUTPUT"),
            ("Shipping", "OUTPUT2"),
            ("None", "NONE"),
        ]),
        payments: map(&[("checkmo", "090"), ("stripe", "091")]),
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
        item_codes: HashSet::from(["TEE-RED-M".to_string(), "MUG".to_string()]),
    }
}

fn catalogue() -> Catalogue {
    let mut c = Catalogue::default();
    for (sku, class, cat) in [
        ("MUG", "Taxable Goods", "Home"),
        ("BOOK", "Zero Rated Goods", "Books"),
        ("COAT", "Taxable Goods", "Apparel"),
        ("PEN", "Taxable Goods", "Office"),
        ("INSTALL", "Taxable Goods", "Services"),
        ("TEE-RED-M", "Taxable Goods", "Apparel"),
        ("ODDTAX", "Luxury Goods", "Home"),
    ] {
        c.insert(
            sku,
            ProductFacts {
                categories: vec![cat.to_owned()],
                tax_class: Some(class.to_owned()),
                tax_class_id: Some("2".into()),
            },
        );
    }
    c
}

fn base(items: Value, money: Value) -> Value {
    let mut v = json!({
        "entity_id": 7, "increment_id": "000000007", "store_id": 1,
        "created_at": "2026-11-20 23:59:59", "customer_id": 42, "customer_email": "jane@example.com",
        "customer_firstname": "Jane", "customer_lastname": "Doe",
        "base_currency_code": "GBP", "order_currency_code": "GBP", "base_to_order_rate": 1,
        "items": items, "discount_amount": 0, "discount_tax_compensation_amount": 0,
        "shipping_amount": 0, "shipping_tax_amount": 0,
        "payment": {"method": "checkmo", "amount_paid": 0}
    });
    for (k, val) in money.as_object().unwrap() {
        v[k] = val.clone();
    }
    v
}

fn plan(v: &Value) -> PlannedInvoice {
    let order = Order::from_magento(v, &catalogue()).expect("valid order");
    invoice_for(&order, "contact-1", &rules(), &org()).expect("invoice plans")
}

/// Re-runs Xero's arithmetic on the planned body: what Xero will store.
fn xero_totals(p: &PlannedInvoice) -> xero_math::ComputedInvoice {
    xero_math::compute(&p.invoice, &org().tax_rates).unwrap()
}

#[test]
fn simple_exclusive_order() {
    let v = base(
        json!([
            {"item_id":1,"sku":"MUG","name":"Mug","qty_ordered":2,"price":10.00,"price_incl_tax":12.00,
             "row_total":20.00,"row_total_incl_tax":24.00,"tax_amount":4.00,"tax_percent":20,"discount_amount":0},
            {"item_id":2,"sku":"BOOK","name":"Book","qty_ordered":1,"price":8.99,"price_incl_tax":8.99,
             "row_total":8.99,"row_total_incl_tax":8.99,"tax_amount":0,"tax_percent":0},
            {"item_id":3,"sku":"INSTALL","name":"Installation","qty_ordered":1,"price":30.00,"price_incl_tax":36.00,
             "row_total":30.00,"row_total_incl_tax":36.00,"tax_amount":6.00,"tax_percent":20}
        ]),
        json!({"subtotal":58.99,"shipping_amount":5.00,"shipping_tax_amount":1.00,"shipping_incl_tax":6.00,
               "shipping_description":"Flat Rate - Fixed","tax_amount":11.00,"grand_total":74.99}),
    );
    let p = plan(&v);
    let inv = &p.invoice;
    assert_eq!(inv.kind, "ACCREC");
    assert_eq!(inv.invoice_number.as_deref(), Some("000000007"));
    assert_eq!(inv.reference.as_deref(), Some("000000007"));
    assert_eq!(inv.date.as_deref(), Some("2026-11-20"));
    assert_eq!(inv.due_date.as_deref(), Some("2026-11-20"));
    assert_eq!(inv.status.as_deref(), Some("AUTHORISED"));
    assert_eq!(inv.line_amount_types, LineAmountTypes::Exclusive);
    assert_eq!(inv.contact.contact_id.as_deref(), Some("contact-1"));
    assert_eq!(inv.currency_code.as_deref(), Some("GBP"));
    assert_eq!(inv.currency_rate, None);
    assert_eq!(inv.line_items.len(), 4);
    let mug = &inv.line_items[0];
    assert_eq!(mug.item_code.as_deref(), Some("MUG"));
    assert_eq!(mug.description.as_deref(), Some("Mug [MUG]"));
    assert_eq!(
        (mug.quantity, mug.unit_amount, mug.discount_amount),
        (Some(dec!(2)), Some(dec!(10.00)), None)
    );
    assert_eq!(
        (mug.account_code.as_deref(), mug.tax_type.as_deref()),
        (Some("201"), Some("OUTPUT2"))
    );
    assert_eq!(mug.tax_amount, Some(dec!(4.00)));
    let book = &inv.line_items[1];
    assert_eq!(book.item_code, None, "BOOK is not a Xero item");
    assert_eq!(book.tax_type.as_deref(), Some("ZERORATEDOUTPUT"));
    assert_eq!(
        inv.line_items[2].account_code.as_deref(),
        Some("200"),
        "Services rule"
    );
    let ship = &inv.line_items[3];
    assert_eq!(ship.description.as_deref(), Some("Flat Rate - Fixed"));
    assert_eq!(
        (ship.account_code.as_deref(), ship.tax_type.as_deref()),
        (Some("202"), Some("OUTPUT2"))
    );
    assert_eq!(
        (ship.unit_amount, ship.tax_amount),
        (Some(dec!(5.00)), Some(dec!(1.00)))
    );
    assert_eq!(
        (p.expected_total, p.expected_tax, p.rounding.clone()),
        (dec!(74.99), dec!(11.00), None)
    );
    let x = xero_totals(&p);
    assert_eq!(
        (x.sub_total, x.total_tax, x.total),
        (dec!(63.99), dec!(11.00), dec!(74.99))
    );

    // The wire body: exact decimal digits, PascalCase, nothing null.
    let body = serde_json::to_string(&inv.line_items[0]).unwrap();
    assert_eq!(
        body,
        r#"{"Description":"Mug [MUG]","Quantity":2,"UnitAmount":10.00,"ItemCode":"MUG","AccountCode":"201","TaxType":"OUTPUT2","TaxAmount":4.00}"#
    );
}

/// Inclusive store (id 2), 10% coupon applied to the incl price: 120 incl (100 + 20 VAT),
/// discount 12.00, tax on 108 incl = 18.00, hidden tax (discount tax compensation) 2.00.
/// Grand total = 100 + 5 − 12 + 19 + 2 = 114 = 120 − 12 + 6 paid by the customer.
#[test]
fn inclusive_order_with_discount_and_compensation() {
    let mut v = base(
        json!([{"item_id":1,"sku":"COAT","name":"Coat","qty_ordered":1,"price":100.00,"price_incl_tax":120.00,
                "row_total":100.00,"row_total_incl_tax":120.00,"tax_amount":18.00,"tax_percent":20,
                "discount_amount":12.00,"discount_tax_compensation_amount":2.00}]),
        json!({"subtotal":100.00,"shipping_amount":5.00,"shipping_tax_amount":1.00,"shipping_incl_tax":6.00,
               "discount_amount":-12.00,"discount_tax_compensation_amount":2.00,"tax_amount":19.00,"grand_total":114.00}),
    );
    v["store_id"] = json!(2);
    let p = plan(&v);
    assert_eq!(p.invoice.line_amount_types, LineAmountTypes::Inclusive);
    let coat = &p.invoice.line_items[0];
    assert_eq!(
        (coat.unit_amount, coat.discount_amount, coat.tax_amount),
        (Some(dec!(120.00)), Some(dec!(12.00)), Some(dec!(18.00)))
    );
    let ship = &p.invoice.line_items[1];
    assert_eq!(
        (ship.unit_amount, ship.discount_amount),
        (Some(dec!(6.00)), None)
    );
    let x = xero_totals(&p);
    assert_eq!(
        (x.sub_total, x.total_tax, x.total),
        (dec!(95.00), dec!(19.00), dec!(114.00))
    );
    assert_eq!(p.rounding, None);
}

/// Exclusive store whose discount is applied to the incl price ("Apply discount on prices
/// including tax"): Magento's item discount 12.00 is gross, 2.00 of it is compensation, so the
/// Xero line (excl) must be discounted by 10.00, not 12.00.
#[test]
fn exclusive_order_with_discount_applied_including_tax() {
    let v = base(
        json!([{"item_id":1,"sku":"COAT","name":"Coat","qty_ordered":1,"price":100.00,"price_incl_tax":120.00,
                "row_total":100.00,"row_total_incl_tax":120.00,"tax_amount":18.00,"tax_percent":20,
                "discount_amount":12.00,"discount_tax_compensation_amount":2.00}]),
        json!({"subtotal":100.00,"discount_amount":-12.00,"discount_tax_compensation_amount":2.00,
               "tax_amount":18.00,"grand_total":108.00}),
    );
    let p = plan(&v);
    assert_eq!(p.invoice.line_amount_types, LineAmountTypes::Exclusive);
    assert_eq!(p.invoice.line_items[0].discount_amount, Some(dec!(10.00)));
    assert_eq!(
        p.invoice.line_items.len(),
        1,
        "no shipping line for free shipping"
    );
    let x = xero_totals(&p);
    assert_eq!((x.total_tax, x.total), (dec!(18.00), dec!(108.00)));
}

#[test]
fn configurable_line_posts_child_sku_with_parent_amounts() {
    let v = base(
        json!([
            {"item_id":10,"sku":"TEE","name":"Tee","product_type":"configurable","qty_ordered":1,"price":15.00,
             "price_incl_tax":18.00,"row_total":15.00,"row_total_incl_tax":18.00,"tax_amount":3.00,"tax_percent":20},
            {"item_id":11,"parent_item_id":10,"sku":"TEE-RED-M","name":"Tee Red M","product_type":"simple",
             "qty_ordered":1,"price":0,"row_total":0,"tax_amount":0}
        ]),
        json!({"subtotal":15.00,"tax_amount":3.00,"grand_total":18.00}),
    );
    let p = plan(&v);
    assert_eq!(p.invoice.line_items.len(), 1);
    let l = &p.invoice.line_items[0];
    assert_eq!(l.item_code.as_deref(), Some("TEE-RED-M"));
    assert_eq!(l.unit_amount, Some(dec!(15.00)));
    assert_eq!(p.expected_total, dec!(18.00));
}

#[test]
fn free_shipping_has_no_line_and_coupon_discounted_shipping_nets_to_zero() {
    let items = json!([{"item_id":1,"sku":"PEN","name":"Pen","qty_ordered":1,"price":10.00,"price_incl_tax":12.00,
                        "row_total":10.00,"row_total_incl_tax":12.00,"tax_amount":2.00,"tax_percent":20}]);
    let free = base(
        items.clone(),
        json!({"subtotal":10.00,"tax_amount":2.00,"grand_total":12.00}),
    );
    assert_eq!(plan(&free).invoice.line_items.len(), 1);

    // Shipping 4.95 fully discounted by a free-shipping coupon; untaxed.
    let discounted = base(
        items,
        json!({"subtotal":10.00,"shipping_amount":4.95,"shipping_incl_tax":4.95,"shipping_discount_amount":4.95,
               "discount_amount":-4.95,"tax_amount":2.00,"grand_total":12.00}),
    );
    let p = plan(&discounted);
    let ship = &p.invoice.line_items[1];
    assert_eq!(
        (ship.unit_amount, ship.discount_amount),
        (Some(dec!(4.95)), Some(dec!(4.95)))
    );
    assert_eq!(
        (ship.tax_type.as_deref(), ship.tax_amount),
        (Some("NONE"), Some(Decimal::ZERO))
    );
    assert_eq!(xero_totals(&p).total, dec!(12.00));
}

#[test]
fn eur_order_carries_currency_and_rate() {
    let mut v = base(
        json!([{"item_id":1,"sku":"PEN","name":"Pen","qty_ordered":1,"price":11.70,"price_incl_tax":14.04,
                "row_total":11.70,"row_total_incl_tax":14.04,"tax_amount":2.34,"tax_percent":20}]),
        json!({"subtotal":11.70,"tax_amount":2.34,"grand_total":14.04}),
    );
    v["order_currency_code"] = json!("EUR");
    v["base_to_order_rate"] = json!(1.17);
    v["payment"] = json!({"method":"stripe","amount_paid":14.04,"last_trans_id":"pi_123"});
    let p = plan(&v);
    assert_eq!(p.invoice.currency_code.as_deref(), Some("EUR"));
    // Xero quotes foreign units per base unit (1 GBP = 1.17 EUR), the direction of Magento's
    // base_to_order_rate: passed through, not inverted.
    assert_eq!(p.invoice.currency_rate, Some(dec!(1.17)));
    let order = Order::from_magento(&v, &catalogue()).unwrap();
    let pay = payment_for(&order, "inv-1", &rules()).unwrap().unwrap();
    assert_eq!(pay.currency_rate, Some(dec!(1.17)));
    assert_eq!(pay.amount, Some(dec!(14.04)));
    assert_eq!(pay.account.code.as_deref(), Some("091"));
    assert_eq!(pay.reference.as_deref(), Some("pi_123"));
    assert_eq!(pay.invoice.unwrap().invoice_id.as_deref(), Some("inv-1"));
    assert_eq!(pay.date.as_deref(), Some("2026-11-20"));
}

/// Magento's TOTAL_BASE algorithm: three 0.99 rows at 20% have 2.97 × 20% = 0.594 → 0.59 of
/// tax, spread as 0.20 + 0.20 + 0.19. Xero, taxing per line, would say 0.20 × 3 = 0.60.
#[test]
fn total_base_rounding_is_kept_exact_by_explicit_tax() {
    let row = |id: u64, tax: &str| {
        json!({"item_id":id,"sku":"PEN","name":"Pen","qty_ordered":1,"price":0.99,"price_incl_tax":1.19,
               "row_total":0.99,"row_total_incl_tax":1.19,"tax_amount":tax.parse::<Decimal>().unwrap(),"tax_percent":20})
    };
    let v = base(
        json!([row(1, "0.20"), row(2, "0.20"), row(3, "0.19")]),
        json!({"subtotal":2.97,"tax_amount":0.59,"grand_total":3.56}),
    );
    let p = plan(&v);
    let x = xero_totals(&p);
    assert_eq!(
        (x.total_tax, x.total, p.rounding.clone()),
        (dec!(0.59), dec!(3.56), None)
    );

    // Without the explicit TaxAmount, Xero's own per-line arithmetic would be a cent off.
    let mut stripped = p.invoice.clone();
    for l in &mut stripped.line_items {
        l.tax_amount = None;
    }
    assert_eq!(
        xero_math::compute(&stripped, &org().tax_rates)
            .unwrap()
            .total,
        dec!(3.57)
    );
}

#[test]
fn a_cent_gap_becomes_a_rounding_line_and_a_large_gap_is_an_error() {
    // Magento reports 12.01 where its components sum to 12.00 (its own rounding, tolerated).
    let items = json!([{"item_id":1,"sku":"PEN","name":"Pen","qty_ordered":1,"price":10.00,"price_incl_tax":12.00,
                        "row_total":10.00,"row_total_incl_tax":12.00,"tax_amount":2.00,"tax_percent":20}]);
    let p = plan(&base(
        items,
        json!({"subtotal":10.00,"tax_amount":2.00,"grand_total":12.01}),
    ));
    let note = p.rounding.clone().expect("rounding line");
    assert_eq!(
        (note.magento_total, note.xero_computed, note.difference),
        (dec!(12.01), dec!(12.00), dec!(0.01))
    );
    let r = p.invoice.line_items.last().unwrap();
    assert_eq!(
        r.description.as_deref(),
        Some("Rounding: Magento grand total 12.01 vs Xero computed 12.00")
    );
    assert_eq!(
        (r.account_code.as_deref(), r.tax_type.as_deref()),
        (Some("860"), Some("NONE"))
    );
    assert_eq!(
        (r.unit_amount, r.tax_amount),
        (Some(dec!(0.01)), Some(Decimal::ZERO))
    );
    assert_eq!(
        (p.expected_total, xero_totals(&p).total),
        (dec!(12.01), dec!(12.01))
    );

    // A row total Xero cannot reproduce from qty × price (3 × 3.3333 = 10.00 vs 10.10).
    let items = json!([{"item_id":1,"sku":"PEN","name":"Pen","qty_ordered":3,"price":3.3333,"price_incl_tax":3.3333,
                        "row_total":10.10,"row_total_incl_tax":10.10,"tax_amount":0,"tax_percent":0}]);
    let v = base(
        items,
        json!({"subtotal":10.10,"tax_amount":0,"grand_total":10.10}),
    );
    let order = Order::from_magento(&v, &catalogue()).unwrap();
    let e = invoice_for(&order, "c", &rules(), &org()).unwrap_err();
    assert_eq!(e.field, "grand_total");
    assert_eq!(
        e.to_string(),
        "order 000000007: grand_total: Magento grand total 10.10 vs Xero computed 10.00: the difference 0.10 \
         exceeds rounding_tolerance 0.05"
    );
}

#[test]
fn tax_class_missing_from_the_tax_table_names_sku_and_class() {
    let v = base(
        json!([{"item_id":1,"sku":"ODDTAX","name":"Odd","qty_ordered":1,"price":1.00,"row_total":1.00,
                "tax_amount":0,"tax_percent":0}]),
        json!({"subtotal":1.00,"tax_amount":0,"grand_total":1.00}),
    );
    let order = Order::from_magento(&v, &catalogue()).unwrap();
    let e = invoice_for(&order, "c", &rules(), &org()).unwrap_err();
    assert_eq!(e.field, "items[0].tax_class");
    assert_eq!(
        e.message,
        "SKU \"ODDTAX\": tax class \"Luxury Goods\" is not mapped in mapping.tax"
    );

    let mut r = rules();
    r.tax.insert("Luxury Goods".into(), "LUXOUTPUT".into());
    let e = invoice_for(&order, "c", &r, &org()).unwrap_err();
    assert!(
        e.message.contains("LUXOUTPUT") && e.message.contains("does not have"),
        "{e}"
    );
}

#[test]
fn payment_rules() {
    let items = json!([{"item_id":1,"sku":"PEN","name":"Pen","qty_ordered":1,"price":10.00,"price_incl_tax":12.00,
                        "row_total":10.00,"row_total_incl_tax":12.00,"tax_amount":2.00,"tax_percent":20}]);
    let mut v = base(
        items,
        json!({"subtotal":10.00,"tax_amount":2.00,"grand_total":12.00}),
    );
    let order = Order::from_magento(&v, &catalogue()).unwrap();
    assert_eq!(
        payment_for(&order, "i", &rules()).unwrap(),
        None,
        "nothing paid yet"
    );

    v["payment"] = json!({"method":"checkmo","amount_paid":12.00});
    let order = Order::from_magento(&v, &catalogue()).unwrap();
    let pay = payment_for(&order, "i", &rules()).unwrap().unwrap();
    assert_eq!(
        pay.reference.as_deref(),
        Some("000000007"),
        "falls back to the increment id"
    );
    assert_eq!(pay.currency_rate, None);

    v["payment"] = json!({"method":"bitcoin","amount_paid":12.00});
    let order = Order::from_magento(&v, &catalogue()).unwrap();
    let e = payment_for(&order, "i", &rules()).unwrap_err();
    assert_eq!(e.field, "payment.method");
    assert!(
        e.message.contains("\"bitcoin\"") && e.message.contains("checkmo, stripe"),
        "{e}"
    );

    v["payment"] = json!({"method":"checkmo","amount_paid":13.00});
    let order = Order::from_magento(&v, &catalogue()).unwrap();
    assert_eq!(
        payment_for(&order, "i", &rules()).unwrap_err().field,
        "payment.amount_paid"
    );
}

/// An order-level tax a cent above what the rows carry (kept only at order level by Magento)
/// still yields TotalTax = Magento's tax_amount: the cent goes on the most-taxed line. A gap
/// beyond the tolerance is a record error on `tax_amount`.
#[test]
fn order_tax_not_carried_by_rows_goes_on_the_most_taxed_line() {
    let items = json!([
        {"item_id":1,"sku":"PEN","name":"Pen","qty_ordered":1,"price":10.00,"price_incl_tax":12.00,
         "row_total":10.00,"row_total_incl_tax":12.00,"tax_amount":2.00,"tax_percent":20},
        {"item_id":2,"sku":"MUG","name":"Mug","qty_ordered":1,"price":5.00,"price_incl_tax":6.00,
         "row_total":5.00,"row_total_incl_tax":6.00,"tax_amount":1.00,"tax_percent":20}
    ]);
    let p = plan(&base(
        items.clone(),
        json!({"subtotal":15.00,"tax_amount":3.01,"grand_total":18.01}),
    ));
    assert_eq!(p.invoice.line_items[0].tax_amount, Some(dec!(2.01)));
    assert_eq!(p.invoice.line_items[1].tax_amount, Some(dec!(1.00)));
    let x = xero_totals(&p);
    assert_eq!(
        (x.total_tax, x.total, p.rounding.clone()),
        (dec!(3.01), dec!(18.01), None)
    );

    let v = base(
        items,
        json!({"subtotal":15.00,"tax_amount":3.10,"grand_total":18.10}),
    );
    let order = Order::from_magento(&v, &catalogue()).unwrap();
    let e = invoice_for(&order, "c", &rules(), &org()).unwrap_err();
    assert_eq!(e.field, "tax_amount");
}

/// A USD-based store whose global currency is the organisation's GBP: the rate to GBP is
/// derived through the global rate (EUR per USD ÷ GBP per USD = EUR per GBP).
#[test]
fn currency_rate_via_the_global_currency() {
    let mut v = base(
        json!([{"item_id":1,"sku":"BOOK","name":"Book","qty_ordered":1,"price":9.20,"row_total":9.20,"tax_amount":0}]),
        json!({"subtotal":9.20,"tax_amount":0,"grand_total":9.20}),
    );
    v["base_currency_code"] = json!("USD");
    v["order_currency_code"] = json!("EUR");
    v["global_currency_code"] = json!("GBP");
    v["base_to_order_rate"] = json!("0.9200");
    v["base_to_global_rate"] = json!("0.8000");
    assert_eq!(plan(&v).invoice.currency_rate, Some(dec!(1.15)));
    // No route to the organisation's base: leave it to Xero's day rate.
    v.as_object_mut().unwrap().remove("global_currency_code");
    assert_eq!(plan(&v).invoice.currency_rate, None);
}
