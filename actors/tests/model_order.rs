//! Parsing Magento orders into the validated `Order`: line structure (configurable, bundles),
//! and every rejection naming its record and field.

use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use serde_json::{Value, json};
use tally_actors::model::{Catalogue, Order, ProductFacts, RecordError};

fn catalogue() -> Catalogue {
    let mut c = Catalogue::default();
    for (sku, class, cat) in [
        ("MUG", "Taxable Goods", "Home"),
        ("BOOK", "Zero Rated Goods", "Books"),
        ("TEE-RED-M", "Taxable Goods", "Apparel"),
        ("KIT-A", "Taxable Goods", "Home"),
        ("KIT-B", "Reduced Rate Goods", "Home"),
        ("GIFTBOX", "Taxable Goods", "Home"),
        ("GB-SOAP", "Taxable Goods", "Home"),
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
    c.insert(
        "MYSTERY",
        ProductFacts {
            categories: vec![],
            tax_class: None,
            tax_class_id: Some("9".into()),
        },
    );
    c
}

fn item(id: u64, sku: &str, qty: &str, price: &str, tax: &str) -> Value {
    let p: Decimal = price.parse().unwrap();
    let q: Decimal = qty.parse().unwrap();
    let t: Decimal = tax.parse().unwrap();
    let row = (p * q).round_dp(2);
    json!({"item_id": id, "sku": sku, "name": format!("{sku} name"), "product_type": "simple",
           "qty_ordered": q, "price": p, "row_total": row, "price_incl_tax": p + (t / q).round_dp(2),
           "row_total_incl_tax": row + t, "tax_amount": t, "tax_percent": 20, "discount_amount": 0})
}

/// A valid two-line exclusive GBP order (grand total 38.99), the base the bad cases mutate.
fn order() -> Value {
    json!({
        "entity_id": 123, "increment_id": "000000123", "store_id": 1, "state": "processing",
        "created_at": "2026-11-20 14:03:05", "updated_at": "2026-11-20 14:05:00",
        "customer_id": 42, "customer_is_guest": 0, "customer_email": "Jane.Doe@Example.com",
        "customer_firstname": "Jane", "customer_lastname": "Doe",
        "base_currency_code": "GBP", "order_currency_code": "GBP", "base_to_order_rate": 1,
        "items": [item(1, "MUG", "2", "10.00", "4.00"), item(2, "BOOK", "1", "8.99", "0")],
        "subtotal": 28.99, "shipping_amount": 5.00, "shipping_tax_amount": 1.00, "shipping_incl_tax": 6.00,
        "discount_amount": 0, "tax_amount": 5.00, "discount_tax_compensation_amount": 0,
        "grand_total": 38.99,
        "payment": {"method": "checkmo", "amount_paid": 38.99, "last_trans_id": null},
        "billing_address": {"firstname": "Jane", "lastname": "Doe", "street": ["1 High St", "Flat 2"],
                            "city": "Leeds", "postcode": "LS1 1AA", "country_id": "GB", "telephone": "0113"}
    })
}

fn parse(v: &Value) -> Result<Order, RecordError> {
    Order::from_magento(v, &catalogue())
}

#[test]
fn parses_a_simple_order() {
    let o = parse(&order()).unwrap();
    assert_eq!(o.increment_id, "000000123");
    assert_eq!(o.entity_id, 123);
    assert_eq!(o.customer.id, Some(42));
    assert_eq!(o.customer.email, "Jane.Doe@Example.com");
    assert_eq!(o.customer.email_key, "jane.doe@example.com");
    assert_eq!(o.customer.full_name(), "Jane Doe");
    assert_eq!(o.date().to_string(), "2026-11-20");
    assert_eq!(o.lines.len(), 2);
    assert_eq!(o.lines[0].sku, "MUG");
    assert_eq!(o.lines[0].qty, dec!(2));
    assert_eq!(o.lines[0].unit_price_incl, dec!(12.00));
    assert_eq!(o.lines[0].tax_class, "Taxable Goods");
    assert_eq!(o.lines[1].tax_class, "Zero Rated Goods");
    assert_eq!(o.shipping.tax_amount, dec!(1.00));
    assert_eq!(o.grand_total, dec!(38.99));
    assert_eq!(o.payment.method.as_deref(), Some("checkmo"));
    assert_eq!(
        o.customer.billing_address.as_ref().unwrap().street,
        vec!["1 High St", "Flat 2"]
    );
}

#[test]
fn guest_orders_have_no_customer_id_even_if_one_is_sent() {
    let mut v = order();
    v["customer_is_guest"] = json!(1);
    v["customer_id"] = Value::Null;
    v["customer_firstname"] = Value::Null;
    let o = parse(&v).unwrap();
    assert!(o.customer.is_guest());
    // Name falls back to the billing address.
    assert_eq!(o.customer.first_name, "Jane");
}

#[test]
fn configurable_uses_parent_amounts_and_child_sku_once() {
    let mut v = order();
    let mut parent = item(10, "TEE", "1", "15.00", "3.00");
    parent["product_type"] = json!("configurable");
    parent["name"] = json!("Tee");
    let child = json!({"item_id": 11, "parent_item_id": 10, "sku": "TEE-RED-M", "name": "Tee Red M",
                       "product_type": "simple", "qty_ordered": 1, "price": 0, "row_total": 0, "tax_amount": 0});
    v["items"] = json!([parent, child]);
    v["subtotal"] = json!(15.00);
    v["shipping_amount"] = json!(0);
    v["shipping_tax_amount"] = json!(0);
    v["tax_amount"] = json!(3.00);
    v["grand_total"] = json!(18.00);
    let o = parse(&v).unwrap();
    assert_eq!(o.lines.len(), 1, "{:?}", o.lines);
    let l = &o.lines[0];
    assert_eq!(
        (l.sku.as_str(), l.name.as_str()),
        ("TEE-RED-M", "Tee Red M")
    );
    assert_eq!(
        (l.unit_price_excl, l.row_total, l.tax_amount),
        (dec!(15.00), dec!(15.00), dec!(3.00))
    );
    assert_eq!(l.categories, vec!["Apparel"]);
}

fn bundle_order(items: Value, subtotal: &str, tax: &str, grand: &str) -> Value {
    let mut v = order();
    v["items"] = items;
    v["subtotal"] = json!(subtotal.parse::<Decimal>().unwrap());
    v["shipping_amount"] = json!(0);
    v["shipping_tax_amount"] = json!(0);
    v["tax_amount"] = json!(tax.parse::<Decimal>().unwrap());
    v["grand_total"] = json!(grand.parse::<Decimal>().unwrap());
    v
}

#[test]
fn dynamic_bundle_children_carry_the_amounts() {
    let parent = json!({"item_id": 20, "sku": "KIT", "name": "Kit", "product_type": "bundle",
                        "qty_ordered": 1, "price": 0, "row_total": 0, "tax_amount": 0});
    let mut a = item(21, "KIT-A", "2", "5.00", "2.00");
    a["parent_item_id"] = json!(20);
    let mut b = item(22, "KIT-B", "1", "7.50", "0.38");
    b["parent_item_id"] = json!(20);
    let o = parse(&bundle_order(
        json!([parent, a, b]),
        "17.50",
        "2.38",
        "19.88",
    ))
    .unwrap();
    let skus: Vec<&str> = o.lines.iter().map(|l| l.sku.as_str()).collect();
    assert_eq!(skus, vec!["KIT-A", "KIT-B"]);
    assert_eq!(o.lines[1].tax_class, "Reduced Rate Goods");
}

#[test]
fn dynamic_bundle_child_qty_per_bundle_is_multiplied_when_the_row_total_says_so() {
    let parent = json!({"item_id": 20, "sku": "KIT", "name": "Kit", "product_type": "bundle",
                        "qty_ordered": 2, "price": 0, "row_total": 0, "tax_amount": 0});
    let a = json!({"item_id": 21, "parent_item_id": 20, "sku": "KIT-A", "name": "A", "product_type": "simple",
                   "qty_ordered": 1, "price": 5.00, "row_total": 10.00, "price_incl_tax": 6.00,
                   "tax_amount": 2.00, "tax_percent": 20});
    let o = parse(&bundle_order(json!([parent, a]), "10.00", "2.00", "12.00")).unwrap();
    assert_eq!(o.lines[0].qty, dec!(2));
}

#[test]
fn fixed_bundle_parent_carries_the_amounts() {
    let mut parent = item(30, "GIFTBOX", "2", "25.00", "10.00");
    parent["product_type"] = json!("bundle");
    let soap = json!({"item_id": 31, "parent_item_id": 30, "sku": "GB-SOAP", "product_type": "simple",
                      "qty_ordered": 2, "price": 0, "row_total": 0, "tax_amount": 0});
    let o = parse(&bundle_order(
        json!([parent, soap]),
        "50.00",
        "10.00",
        "60.00",
    ))
    .unwrap();
    assert_eq!(o.lines.len(), 1);
    assert_eq!(
        (
            o.lines[0].sku.as_str(),
            o.lines[0].qty,
            o.lines[0].row_total
        ),
        ("GIFTBOX", dec!(2), dec!(50.00))
    );
}

fn expect_err(v: Value) -> RecordError {
    parse(&v).expect_err("order should be rejected")
}

#[test]
fn non_numeric_price_names_the_item_field() {
    let mut v = order();
    let mut items = v["items"].as_array().unwrap().clone();
    items.push(item(3, "MUG", "1", "1", "0"));
    items[2]["price"] = json!("abc");
    v["items"] = Value::Array(items);
    let e = expect_err(v);
    assert_eq!(
        e,
        RecordError::new(
            "order 000000123",
            "items[2].price",
            "not a number (\"abc\")"
        )
    );
    assert_eq!(
        e.to_string(),
        "order 000000123: items[2].price: not a number (\"abc\")"
    );
}

#[test]
fn negative_quantity_is_rejected() {
    let mut v = order();
    v["items"][1]["qty_ordered"] = json!(-1);
    let e = expect_err(v);
    assert_eq!(
        (e.field.as_str(), e.message.as_str()),
        ("items[1].qty_ordered", "negative quantity (-1)")
    );
}

#[test]
fn negative_price_and_absurd_amounts_are_rejected() {
    let mut v = order();
    v["items"][0]["price"] = json!(-10);
    assert_eq!(expect_err(v).field, "items[0].price");
    let mut v = order();
    v["grand_total"] = serde_json::from_str("1e400").unwrap();
    let e = expect_err(v);
    assert_eq!(e.field, "grand_total");
    assert!(e.message.starts_with("out of range"), "{e}");
    let mut v = order();
    v["items"][0]["tax_amount"] = json!("NaN");
    assert_eq!(
        expect_err(v).to_string(),
        "order 000000123: items[0].tax_amount: not a number (\"NaN\")"
    );
    let mut v = order();
    v["shipping_amount"] = json!("5.00001");
    assert_eq!(expect_err(v).field, "shipping_amount");
}

#[test]
fn unknown_sku_and_unknown_tax_class_name_the_sku() {
    let mut v = order();
    v["items"][1]["sku"] = json!("NOPE");
    let e = expect_err(v);
    assert_eq!(e.field, "items[1].sku");
    assert!(e.message.contains("\"NOPE\""), "{e}");

    let mut v = order();
    v["items"][1]["sku"] = json!("MYSTERY");
    let e = expect_err(v);
    assert_eq!(e.field, "items[1].tax_class");
    assert_eq!(
        e.message,
        "SKU \"MYSTERY\" has tax_class_id 9, which is not a Magento tax class"
    );
}

#[test]
fn missing_or_invalid_email_is_rejected_for_guests_and_customers() {
    let mut v = order();
    v.as_object_mut().unwrap().remove("customer_email");
    assert_eq!(
        expect_err(v).to_string(),
        "order 000000123: customer_email: missing"
    );

    let mut v = order();
    v["customer_is_guest"] = json!(true);
    v["customer_id"] = Value::Null;
    v["customer_email"] = json!("  ");
    assert_eq!(expect_err(v).field, "customer_email");

    let mut v = order();
    v["customer_email"] = json!("jane at example.com");
    assert_eq!(
        expect_err(v).message,
        "not an email address (\"jane at example.com\")"
    );
}

#[test]
fn totals_that_do_not_add_up_name_grand_total_with_both_numbers() {
    let mut v = order();
    v["grand_total"] = json!(40.00);
    let e = expect_err(v);
    assert_eq!(e.field, "grand_total");
    assert!(
        e.message.contains("40.0") && e.message.contains("38.99"),
        "{e}"
    );

    // One cent is Magento's own rounding and is accepted here (the invoice adds a rounding line).
    let mut v = order();
    v["grand_total"] = json!(39.00);
    assert!(parse(&v).is_ok());
}

#[test]
fn record_without_increment_id_is_named_by_entity() {
    let mut v = order();
    v.as_object_mut().unwrap().remove("increment_id");
    assert_eq!(
        expect_err(v).to_string(),
        "order entity 123: increment_id: missing"
    );
}

#[test]
fn foreign_currency_needs_a_rate() {
    let mut v = order();
    v["order_currency_code"] = json!("EUR");
    v.as_object_mut().unwrap().remove("base_to_order_rate");
    assert_eq!(expect_err(v).field, "base_to_order_rate");
    let mut v = order();
    v["order_currency_code"] = json!("EUR");
    v["base_to_order_rate"] = json!("1.1700");
    assert_eq!(parse(&v).unwrap().currency.base_to_order_rate, dec!(1.17));
}
