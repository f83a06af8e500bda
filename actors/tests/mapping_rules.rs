//! The `[mapping]` table: parsing the exact table the sandbox writes, and `validate()`.

use rust_decimal_macros::dec;
use tally_actors::mapping::MappingRules;

const SANDBOX_TABLE: &str = r#"
prices_include_tax = false
inclusive_store_ids = [2]
shipping_account = "202"
shipping_tax_class = "Shipping"
rounding_account = "860"
rounding_tolerance = "0.05"
account_rules = [{ category = "Services", account = "200" }, { category = "*", account = "201" }]
tax = { "Taxable Goods" = "OUTPUT2", "Reduced Rate Goods" = "RROUTPUT", "Zero Rated Goods" = "ZERORATEDOUTPUT", "Shipping" = "OUTPUT2", "None" = "NONE" }
payments = { checkmo = "090", stripe = "091", paypal_express = "092", banktransfer = "093" }
"#;

fn parse(text: &str) -> Result<MappingRules, toml::de::Error> {
    toml::from_str(text)
}

#[test]
fn parses_the_sandbox_table_and_it_validates_clean() {
    let r = parse(SANDBOX_TABLE).unwrap();
    assert_eq!(r.rounding_tolerance, dec!(0.05));
    assert_eq!(r.inclusive_store_ids, vec![2]);
    assert_eq!(r.tax["Reduced Rate Goods"], "RROUTPUT");
    assert_eq!(r.payments["paypal_express"], "092");
    assert!(r.is_inclusive_store(2) && !r.is_inclusive_store(1));
    assert_eq!(r.account_for(&["Services".into()]), Some("200"));
    assert_eq!(r.account_for(&["Books".into()]), Some("201"));
    assert_eq!(r.validate(), vec![]);
}

#[test]
fn the_design_doc_minimal_table_gets_defaults() {
    let r = parse(
        r#"
shipping_account = "202"
rounding_account = "860"
account_rules = [{ category = "Services", account = "200" }, { category = "*", account = "201" }]
tax = { "Taxable Goods" = "OUTPUT", "Shipping" = "OUTPUT", "None" = "NONE" }
payments = { checkmo = "090", stripe = "091" }
"#,
    )
    .unwrap();
    assert_eq!(
        (
            r.rounding_tolerance,
            r.shipping_tax_class.as_str(),
            r.prices_include_tax
        ),
        (dec!(0.05), "Shipping", false)
    );
    assert_eq!(r.validate(), vec![]);
}

#[test]
fn rejects_unknown_keys_and_float_tolerance() {
    let typo = SANDBOX_TABLE.replace("rounding_account", "rounding_acount");
    assert!(
        parse(&typo)
            .unwrap_err()
            .to_string()
            .contains("rounding_acount")
    );
    let float = SANDBOX_TABLE.replace("\"0.05\"", "0.05");
    assert!(
        parse(&float)
            .unwrap_err()
            .to_string()
            .contains("must be a string")
    );
    let env_style = SANDBOX_TABLE.replace(
        "prices_include_tax = false",
        "prices_include_tax = \"true\"",
    );
    assert!(parse(&env_style).unwrap().prices_include_tax);
}

#[test]
fn validate_reports_every_problem_with_its_key() {
    let text = r#"
shipping_account = ""
shipping_tax_class = "Postage"
rounding_account = "ROUNDINGACCOUNT"
rounding_tolerance = "2.00"
account_rules = [{ category = "Services", account = "200" }, { category = "services", account = "201" }, { category = "*", account = "201" }, { category = "Books", account = "203" }]
tax = { "Taxable Goods" = "" }
payments = { checkmo = "" }
inclusive_store_ids = [2, 2]
"#;
    let problems = parse(text).unwrap().validate();
    let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
    for want in [
        "mapping.shipping_account",
        "mapping.rounding_account",
        "mapping.rounding_tolerance",
        "mapping.account_rules[1].category",
        "mapping.account_rules[3]",
        "mapping.tax.\"Taxable Goods\"",
        "mapping.shipping_tax_class",
        "mapping.payments.checkmo",
        "mapping.inclusive_store_ids",
    ] {
        assert!(keys.contains(&want), "missing {want} in {problems:#?}");
    }
    let dup = problems
        .iter()
        .find(|p| p.key == "mapping.account_rules[1].category")
        .unwrap();
    assert_eq!(dup.message, "duplicate rule for category \"services\"");
    let unreachable = problems
        .iter()
        .find(|p| p.key == "mapping.account_rules[3]")
        .unwrap();
    assert_eq!(
        unreachable.to_string(),
        "mapping.account_rules[3]: unreachable: rule 2 (\"*\") already matches every product"
    );
}

#[test]
fn missing_fallback_rule_is_reported() {
    let text = SANDBOX_TABLE.replace(", { category = \"*\", account = \"201\" }", "");
    let problems = parse(&text).unwrap().validate();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].message.contains("no \"*\" fallback rule"));
}
