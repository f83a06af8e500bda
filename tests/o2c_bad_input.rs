//! Acceptance: bad Magento orders next to good ones. Each bad order is dead-lettered with its
//! increment id and the field at fault, `tally sync --once` exits 1, every good order still
//! reaches Xero, and a fixed order goes through exactly once after `tally dlq retry`.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use rust_decimal::Decimal;
use serde_json::{Value, json};

use common::{
    SandboxEnv, XeroReader, assert_no_xero_duplicates, copy_order_as, dead_letter_keys, dec,
    magento_save_product, path_str, payments_by_invoice_number, sales_invoices_by_number,
    sandbox_env, sync_once, tally,
};

const ORDERS: usize = 40;
const SEED: u64 = 7;
const TIME_SCALE: f64 = 120.0;
/// A product whose `tax_class_id` names no Magento tax class.
const ODD_TAX_SKU: &str = "TALLY-ODD-TAX";

/// One way to break an order: the field the dead letter must name, and the breakage.
struct Breakage {
    what: &'static str,
    field: &'static str,
    apply: fn(&mut Value),
}

const BREAKAGES: &[Breakage] = &[
    Breakage {
        what: "non-numeric price",
        field: "items[0].price",
        apply: |o| o["items"][0]["price"] = json!("12,50 GBP"),
    },
    Breakage {
        what: "negative quantity",
        field: "items[0].qty_ordered",
        apply: |o| o["items"][0]["qty_ordered"] = json!(-1),
    },
    Breakage {
        what: "unknown tax class",
        field: "items[0].tax_class",
        apply: |o| o["items"][0]["sku"] = json!(ODD_TAX_SKU),
    },
    Breakage {
        what: "missing email",
        field: "customer_email",
        apply: |o| {
            let m = o.as_object_mut().unwrap();
            m.remove("customer_email");
            if let Some(b) = m.get_mut("billing_address").and_then(Value::as_object_mut) {
                b.remove("email");
            }
        },
    },
    Breakage {
        what: "totals that do not add up",
        field: "grand_total",
        apply: |o| {
            let wrong = dec(&o["grand_total"]) + Decimal::TEN;
            o["grand_total"] = Value::Number(wrong.to_string().parse().unwrap());
        },
    },
];

/// A paid, registered, single-line GBP order of a simple product: the template every bad
/// order is copied from, so the breakage is the only thing wrong with it.
fn template(env: &SandboxEnv) -> Value {
    env.seeded_orders()
        .into_iter()
        .find(|o| {
            let items = o["items"].as_array().unwrap();
            items.len() == 1
                && items[0]["product_type"] == "simple"
                && o["order_currency_code"] == "GBP"
                && o["customer_id"].is_i64()
                && o["payment"]
                    .get("amount_paid")
                    .is_some_and(|a| dec(a) > Decimal::ZERO)
        })
        .expect("the seed has a simple paid GBP order")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_orders_are_dead_lettered_and_a_fixed_one_syncs_exactly_once() {
    let env = sandbox_env(SEED, ORDERS, TIME_SCALE).await;
    let good: Vec<String> = env
        .seeded_orders()
        .iter()
        .map(|o| o["increment_id"].as_str().unwrap().to_owned())
        .collect();
    let template = template(&env);
    magento_save_product(
        &env,
        json!({
            "sku": ODD_TAX_SKU,
            "name": "Product with a deleted tax class",
            "price": template["items"][0]["price"],
            "type_id": "simple",
            "custom_attributes": [{ "attribute_code": "tax_class_id", "value": "99" }],
        }),
    )
    .await;

    // The bad orders, after the good ones.
    let mut bad: BTreeMap<String, (&Breakage, i64)> = BTreeMap::new();
    for (n, b) in BREAKAGES.iter().enumerate() {
        let id = (ORDERS + 1 + n) as i64;
        let mut order = copy_order_as(&template, id);
        (b.apply)(&mut order);
        let stored = env.sandbox.magento.insert_order(order);
        bad.insert(stored["increment_id"].as_str().unwrap().to_owned(), (b, id));
    }

    let (run, summary) = sync_once(&env.config).await;
    assert_eq!(
        run.code,
        Some(1),
        "dead letters make the exit code 1: {summary}\n{}",
        run.stderr
    );
    assert_eq!(summary["finished"], json!(true));
    let expected_keys: BTreeSet<String> = bad.keys().map(|n| format!("order:{n}")).collect();
    assert_eq!(dead_letter_keys(&summary["dead_letters"]), expected_keys);

    let listed = tally(&["dlq", "--config", path_str(&env.config), "list", "--json"]).await;
    assert_eq!(listed.code, Some(0), "{}", listed.stderr);
    let listed = listed.json();
    assert_eq!(dead_letter_keys(&listed), expected_keys);
    for letters in [&summary["dead_letters"], &listed] {
        for letter in letters.as_array().unwrap() {
            let key = letter["key"].as_str().unwrap();
            let number = key.strip_prefix("order:").unwrap();
            let (b, _) = bad[number];
            assert!(
                letter["record"].as_str().unwrap().contains(number),
                "{}: the dead letter names the order: {letter}",
                b.what
            );
            assert_eq!(
                letter["field"].as_str(),
                Some(b.field),
                "{}: the dead letter names the field: {letter}",
                b.what
            );
            assert!(
                !letter["message"].as_str().unwrap().is_empty(),
                "{}: {letter}",
                b.what
            );
        }
    }

    let xero = XeroReader::connect(&env.config).await;
    let invoices = sales_invoices_by_number(&xero.all("Invoices").await);
    for number in &good {
        assert_eq!(
            invoices.get(number).map(Vec::len),
            Some(1),
            "good order {number} was invoiced once"
        );
    }
    for number in bad.keys() {
        assert!(
            !invoices.contains_key(number),
            "bad order {number} reached Xero"
        );
    }

    // Fix the non-numeric price in Magento (same entity_id: an update), retry, sync again.
    let (fixed_number, (_, fixed_id)) = bad
        .iter()
        .find(|(_, (b, _))| b.field == "items[0].price")
        .map(|(n, v)| (n.clone(), *v))
        .unwrap();
    let mut fixed = env.sandbox.magento.order(fixed_id).unwrap();
    let before = fixed["updated_at"].clone();
    fixed["items"][0]["price"] = template["items"][0]["price"].clone();
    let stored = env.sandbox.magento.insert_order(fixed);
    assert_eq!(stored["entity_id"], json!(fixed_id));
    assert_ne!(stored["updated_at"], before, "the update bumps updated_at");

    let key = format!("order:{fixed_number}");
    let retry = tally(&["dlq", "--config", path_str(&env.config), "retry", &key]).await;
    assert_eq!(retry.code, Some(0), "{}\n{}", retry.stdout, retry.stderr);

    let (run, summary) = sync_once(&env.config).await;
    assert_eq!(
        run.code,
        Some(1),
        "the other bad orders are still dead: {summary}"
    );
    let mut still_dead = expected_keys.clone();
    still_dead.remove(&key);
    assert_eq!(dead_letter_keys(&summary["dead_letters"]), still_dead);

    let invoices = sales_invoices_by_number(&xero.all("Invoices").await);
    let payments = payments_by_invoice_number(&xero.all("Payments").await);
    let theirs = invoices.get(&fixed_number).cloned().unwrap_or_default();
    assert_eq!(theirs.len(), 1, "the fixed order was invoiced exactly once");
    assert_eq!(dec(&theirs[0]["Total"]), dec(&stored["grand_total"]));
    assert_eq!(dec(&theirs[0]["TotalTax"]), dec(&stored["tax_amount"]));
    assert_eq!(
        payments.get(&fixed_number).map(Vec::len),
        Some(1),
        "and paid once"
    );
    assert_eq!(
        invoices.values().map(Vec::len).sum::<usize>(),
        good.len() + 1,
        "nothing else was invoiced, nothing twice"
    );
    assert_no_xero_duplicates(&env.xero_counters());
    assert_eq!(
        env.magento_counters()["writes"]["duplicate_invoices_total"],
        json!(0),
        "no Magento order was invoiced twice by the writeback"
    );
}

/// The ledger keeps only a projection of each Magento order (`model::order_fields`). Parsing
/// the projection must give exactly what parsing the full record gives — the same order, or
/// the same error naming the same field — for every seeded shape (simple, configurable,
/// bundle, guest, foreign currency, inclusive and exclusive stores) and every breakage above,
/// and so must the reduced order Magento sends for the poll's `fields` parameter, and the
/// stored record's text as the stages parse it (a borrowed tree, not a `Value`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stored_projection_of_an_order_parses_exactly_like_the_full_record() {
    use tally_actors::model::order_fields::project;
    use tally_actors::model::{Catalogue, Order};

    const MANY: usize = 600;
    let env = sandbox_env(SEED, MANY, TIME_SCALE).await;
    let (seed, _) = tally_fixtures::seed::generate(SEED, MANY);
    let catalogue = Catalogue::from_magento(
        &json!({ "items": seed.products }),
        &seed.categories,
        &json!({ "items": seed.tax_classes }),
    )
    .expect("the seed's catalogue parses");

    let selection = tally_fixtures::magento::field_selection::FieldSelection::parse(
        &tally_actors::model::order_fields::search_fields(),
    )
    .expect("a non-empty selection");
    let mut orders = env.seeded_orders();
    let template = template(&env);
    for b in BREAKAGES {
        let mut broken = template.clone();
        (b.apply)(&mut broken);
        orders.push(broken);
    }
    let (mut parsed, mut rejected) = (0, 0);
    for raw in orders {
        let full = Order::from_magento(&raw, &catalogue);
        let kept = Order::from_magento(&project(raw.clone()), &catalogue);
        let record = tally_actors::ledger::Record::from_value(&project(raw.clone()));
        // Ingest writes the projection from the text Magento sent: the same bytes.
        let text = raw.to_string();
        let tree = tally_actors::model::Json::parse(&text).unwrap();
        assert_eq!(
            tally_actors::model::order_fields::project_record(&tree),
            record,
            "order {}: the projection written from text",
            raw["increment_id"]
        );
        let stored = Order::from_text(record.json(), &catalogue);
        assert_eq!(
            format!("{stored:?}"),
            format!("{kept:?}"),
            "order {}: the stored record's text",
            raw["increment_id"]
        );
        // What Magento sends for the poll's `fields` (as the simulator applies it) parses
        // the same too.
        let page = selection.apply(&json!({ "items": [raw.clone()], "total_count": 1 }));
        let sent = Order::from_magento(&page["items"][0], &catalogue);
        assert_eq!(
            format!("{sent:?}"),
            format!("{kept:?}"),
            "order {}: the fields Magento sends",
            raw["increment_id"]
        );
        match (&full, &kept) {
            (Ok(a), Ok(b)) => {
                assert_eq!(a, b, "order {}", raw["increment_id"]);
                parsed += 1;
            }
            (Err(a), Err(b)) => {
                assert_eq!(
                    a.to_string(),
                    b.to_string(),
                    "order {}",
                    raw["increment_id"]
                );
                rejected += 1;
            }
            _ => panic!(
                "order {}: full record gave {full:?}, projection gave {kept:?}",
                raw["increment_id"]
            ),
        }
    }
    assert!(parsed >= MANY - 5, "most seeded orders parse ({parsed})");
    assert!(
        rejected >= BREAKAGES.len() - 1,
        "the breakages are rejected ({rejected})"
    );
}
