//! Acceptance: `tally plan --order ID` prints the exact requests (contact lookup result,
//! invoice body whose totals are the order's, payment) and sends nothing; `tally check`
//! passes on the sandbox's config and names the broken keys, with suggestions, on a bad one.

mod common;

use std::collections::BTreeSet;

use rust_decimal::Decimal;
use serde_json::{Value, json};

use common::{
    SandboxEnv, XeroReader, dec, dec_or_zero, path_str, sandbox_env, tally, xero_accounting_writes,
};

const ORDERS: usize = 60;
const SEED: u64 = 11;
const TIME_SCALE: f64 = 120.0;

/// The JSON printed (indented) after the line `header`: lines up to the closing brace at
/// the same indent as the opening one.
fn json_after(stdout: &str, header: &str) -> Value {
    let mut lines = stdout.lines().skip_while(|l| l.trim() != header).skip(1);
    let first = lines
        .next()
        .unwrap_or_else(|| panic!("no {header:?} in:\n{stdout}"));
    let indent = &first[..first.len() - first.trim_start().len()];
    let close = format!("{indent}}}");
    let mut text = first.to_owned();
    for l in lines {
        text.push('\n');
        text.push_str(l);
        if l == close {
            break;
        }
    }
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

fn round2(d: Decimal) -> Decimal {
    d.round_dp_with_strategy(2, rust_decimal::RoundingStrategy::MidpointAwayFromZero)
}

/// (Total, TotalTax) of an invoice body by Xero's rules: each line `round2(qty × unit) −
/// discount` (units at 4 dp, as `unitdp=4` asks), its stated tax, then summed.
fn xero_totals(invoice: &Value) -> (Decimal, Decimal) {
    let inclusive = invoice["LineAmountTypes"] == "Inclusive";
    let mut net = Decimal::ZERO;
    let mut tax = Decimal::ZERO;
    for line in invoice["LineItems"].as_array().unwrap() {
        let qty = line.get("Quantity").map(dec).unwrap_or(Decimal::ONE);
        let unit = dec(&line["UnitAmount"]).round_dp(4);
        net += round2(qty * unit) - dec_or_zero(line, "DiscountAmount");
        tax += dec_or_zero(line, "TaxAmount");
    }
    if inclusive {
        (net, tax)
    } else {
        (net + tax, tax)
    }
}

fn lower_email(v: &Value) -> String {
    v.as_str().unwrap_or_default().trim().to_lowercase()
}

/// Xero's contacts' lower-cased emails → ContactID.
async fn xero_contacts(xero: &XeroReader) -> Vec<(String, String)> {
    xero.all("Contacts")
        .await
        .iter()
        .map(|c| {
            (
                lower_email(&c["EmailAddress"]),
                c["ContactID"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

async fn plan(env: &SandboxEnv, number: &str) -> String {
    let run = tally(&["plan", "--order", number, "--config", path_str(&env.config)]).await;
    assert_eq!(
        run.code,
        Some(0),
        "plan {number}:\n{}\n{}",
        run.stdout,
        run.stderr
    );
    run.stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_prints_the_exact_requests_and_sends_nothing() {
    let env = sandbox_env(SEED, ORDERS, TIME_SCALE).await;
    let config = env.config_toml();
    let mapping = &config["mapping"];
    let api = config["xero"]["api_url"]
        .as_str()
        .unwrap()
        .trim_end_matches('/')
        .to_owned();
    let xero = XeroReader::connect(&env.config).await;
    let contacts = xero_contacts(&xero).await;
    let known: BTreeSet<&str> = contacts.iter().map(|(e, _)| e.as_str()).collect();
    let orders = env.seeded_orders();
    let paid = |o: &Value| {
        o["payment"]
            .get("amount_paid")
            .is_some_and(|a| dec(a) > Decimal::ZERO)
    };
    let email = |o: &Value| lower_email(&o["customer_email"]);
    let inclusive: BTreeSet<i64> = mapping["inclusive_store_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_integer().unwrap())
        .collect();

    // A paid order whose shopper Xero already knows, one it does not, an unpaid one, and
    // one from the tax-inclusive store.
    let known_paid = orders
        .iter()
        .find(|o| paid(o) && known.contains(email(o).as_str()))
        .expect("a paid order by a shopper already in Xero");
    let new_shopper = orders
        .iter()
        .find(|o| !known.contains(email(o).as_str()))
        .expect("an order by a shopper not yet in Xero");
    let unpaid = orders.iter().find(|o| !paid(o)).expect("an unpaid order");
    let inclusive_order = orders
        .iter()
        .find(|o| inclusive.contains(&o["store_id"].as_i64().unwrap()))
        .expect("an order from the tax-inclusive store");

    let counters_before = env.xero_counters();
    let magento_writes_before = env.magento_counters()["writes"].clone();

    for o in [known_paid, new_shopper, unpaid, inclusive_order] {
        let number = o["increment_id"].as_str().unwrap();
        let out = plan(&env, number).await;

        // The contact: the lookup's result, and a create only when the lookup found nothing.
        let existing = contacts
            .iter()
            .find(|(e, _)| *e == email(o))
            .map(|(_, id)| id);
        match existing {
            Some(id) => {
                assert!(
                    out.contains(&format!("exists in Xero as ContactID={id}")),
                    "order {number}: the lookup found {id}:\n{out}"
                );
                assert!(!out.contains("/Contacts?"), "order {number}:\n{out}");
            }
            None => {
                let body = json_after(&out, &format!("PUT {api}/Contacts?summarizeErrors=false"));
                let c = &body["Contacts"][0];
                assert_eq!(lower_email(&c["EmailAddress"]), email(o), "{out}");
            }
        }

        // The invoice: the exact endpoint, and a body whose totals are the order's.
        let body = json_after(
            &out,
            &format!("PUT {api}/Invoices?summarizeErrors=false&unitdp=4"),
        );
        let inv = &body["Invoices"][0];
        assert_eq!(inv["Type"], json!("ACCREC"));
        assert_eq!(inv["InvoiceNumber"], json!(number));
        assert_eq!(inv["CurrencyCode"], o["order_currency_code"]);
        if let Some(id) = existing {
            assert_eq!(inv["Contact"]["ContactID"], json!(id));
        }
        let (total, tax) = xero_totals(inv);
        assert_eq!(
            total,
            dec(&o["grand_total"]),
            "order {number} total:\n{out}"
        );
        assert_eq!(tax, dec(&o["tax_amount"]), "order {number} tax:\n{out}");
        let store = o["store_id"].as_i64().unwrap();
        assert_eq!(
            inv["LineAmountTypes"],
            json!(if inclusive.contains(&store) {
                "Inclusive"
            } else {
                "Exclusive"
            })
        );

        // The payment: what Magento says was paid, into the mapped bank account.
        if paid(o) {
            let body = json_after(&out, &format!("PUT {api}/Payments?summarizeErrors=false"));
            let p = &body["Payments"][0];
            assert_eq!(dec(&p["Amount"]), dec(&o["payment"]["amount_paid"]));
            let method = o["payment"]["method"].as_str().unwrap();
            assert_eq!(
                p["Account"]["Code"].as_str(),
                mapping["payments"][method].as_str(),
                "order {number} paid by {method}"
            );
        } else {
            assert!(!out.contains("/Payments"), "unpaid order {number}:\n{out}");
            assert!(out.contains("nothing paid"), "{out}");
        }
    }

    // Nothing was sent: no accounting write reached Xero, nothing was created, and the
    // store was not written to either.
    let counters = env.xero_counters();
    assert_eq!(
        xero_accounting_writes(&counters),
        xero_accounting_writes(&counters_before),
        "plan sent a write to Xero"
    );
    assert!(xero_accounting_writes(&counters).is_empty(), "{counters}");
    assert_eq!(counters["totals"], counters_before["totals"]);
    assert_eq!(env.magento_counters()["writes"], magento_writes_before);
    // ...while the lookups it printed were real reads.
    assert!(
        counters["requests"]
            .as_object()
            .unwrap()
            .keys()
            .any(|r| r.starts_with("GET ") && r.contains("/Contacts")),
        "plan looked contacts up: {}",
        counters["requests"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_passes_on_the_sandbox_and_names_each_broken_key_with_a_suggestion() {
    let env = sandbox_env(SEED, ORDERS, TIME_SCALE).await;
    let ok = tally(&["check", "--config", path_str(&env.config)]).await;
    assert_eq!(ok.code, Some(0), "{}\n{}", ok.stdout, ok.stderr);
    assert!(ok.stdout.contains("0 error(s)"), "{}", ok.stdout);

    let text = std::fs::read_to_string(&env.config).unwrap();
    let broken_account = r#"{ category = "*", account = "999" }"#;
    let broken = text
        .replace(r#"{ category = "*", account = "201" }"#, broken_account)
        .replace(
            r#""Reduced Rate Goods" = "RROUTPUT""#,
            r#""Reduced Rate Goods" = "OUTPUT3""#,
        );
    assert!(
        broken.contains(broken_account) && broken.contains(r#""OUTPUT3""#),
        "the sandbox config changed shape; update this test:\n{text}"
    );
    let bad_config = env.write_config_variant("broken.toml", &broken);
    let bad = tally(&["check", "--config", path_str(&bad_config)]).await;
    assert_ne!(bad.code, Some(0), "{}", bad.stdout);
    assert_eq!(bad.code, Some(1), "{}\n{}", bad.stdout, bad.stderr);

    let errors: Vec<&str> = bad
        .stdout
        .lines()
        .filter(|l| l.starts_with("error:"))
        .collect();
    let account = errors
        .iter()
        .find(|l| l.contains("account_rules") && l.contains("999"))
        .unwrap_or_else(|| panic!("no error names account_rules / 999:\n{}", bad.stdout));
    assert!(account.contains("suggestion"), "{account}");
    let tax = errors
        .iter()
        .find(|l| l.contains("Reduced Rate Goods") && l.contains("OUTPUT3"))
        .unwrap_or_else(|| {
            panic!(
                "no error names tax.\"Reduced Rate Goods\" / OUTPUT3:\n{}",
                bad.stdout
            )
        });
    assert!(tax.contains("suggestion"), "{tax}");
    assert!(
        tax.contains("RROUTPUT"),
        "the message lists the organisation's tax types, the reduced rate among them: {tax}"
    );
    assert!(
        errors.len() >= 2,
        "both problems are errors: {}",
        bad.stdout
    );
    // Checking is read-only.
    assert!(xero_accounting_writes(&env.xero_counters()).is_empty());
}
