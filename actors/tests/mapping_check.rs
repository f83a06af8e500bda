//! `check_against`: rules versus the live organisation and store, from raw Xero/Magento JSON.

use serde_json::{Value, json};
use tally_actors::mapping::{MappingRules, Severity, StoreFacts, XeroOrgFacts, check_against};
use tally_actors::model::Catalogue;

fn rules(tweak: impl FnOnce(&mut String)) -> MappingRules {
    let mut text = r#"
inclusive_store_ids = [2]
shipping_account = "202"
rounding_account = "860"
rounding_tolerance = "0.05"
account_rules = [{ category = "Services", account = "200" }, { category = "*", account = "201" }]
tax = { "Taxable Goods" = "OUTPUT2", "Reduced Rate Goods" = "RROUTPUT", "Zero Rated Goods" = "ZERORATEDOUTPUT", "Shipping" = "OUTPUT2", "None" = "NONE" }
payments = { checkmo = "090", stripe = "091" }
"#
    .to_owned();
    tweak(&mut text);
    toml::from_str(&text).unwrap()
}

fn org(with_rroutput: bool) -> XeroOrgFacts {
    let account = |code: &str, name: &str, ty: &str, status: &str, pay: bool| json!({"Code": code, "Name": name, "Type": ty, "Status": status, "EnablePaymentsToAccount": pay});
    let mut rates = vec![
        json!({"TaxType":"OUTPUT2","Name":"20% (VAT on Income)","Status":"ACTIVE","EffectiveRate":20.0000}),
        json!({"TaxType":"ZERORATEDOUTPUT","Name":"Zero Rated Income","Status":"ACTIVE","EffectiveRate":0}),
        json!({"TaxType":"NONE","Name":"No VAT","Status":"ACTIVE","EffectiveRate":0}),
    ];
    if with_rroutput {
        rates.push(json!({"TaxType":"RROUTPUT","Name":"5% (VAT on Income)","Status":"ACTIVE","EffectiveRate":5.0000}));
    }
    XeroOrgFacts::from_xero(
        &json!({"Organisations":[{"Name":"Tally Sandbox Ltd","BaseCurrency":"GBP"}]}),
        &json!({"Accounts":[
            account("200","Sales","REVENUE","ACTIVE",false),
            account("201","Sales - Goods","REVENUE","ACTIVE",false),
            account("202","Shipping income","REVENUE","ACTIVE",false),
            account("299","Old sales","REVENUE","ARCHIVED",false),
            account("860","Rounding","EXPENSE","ACTIVE",false),
            account("090","Cheque/Money order","BANK","ACTIVE",false),
            account("091","Stripe clearing","BANK","ACTIVE",false),
            account("610","Accounts Receivable","CURRENT","ACTIVE",false)]}),
        &json!({ "TaxRates": rates }),
        &json!({"Currencies":[{"Code":"GBP"},{"Code":"EUR"}]}),
    )
    .unwrap()
}

fn store() -> StoreFacts {
    let tree = json!({"id":1,"level":0,"name":"Root","children_data":[{"id":2,"level":1,"name":"Default","children_data":[
        {"id":3,"level":2,"name":"Services","children_data":[]},{"id":4,"level":2,"name":"Apparel","children_data":[]}]}]});
    let classes = json!({"items":[{"class_id":2,"class_name":"Taxable Goods"},{"class_id":5,"class_name":"Reduced Rate Goods"}]});
    let products = json!({"items":[
        {"sku":"TEE","custom_attributes":[{"attribute_code":"tax_class_id","value":"2"}],"extension_attributes":{"category_links":[{"category_id":"4"}]}},
        {"sku":"TEA","custom_attributes":[{"attribute_code":"tax_class_id","value":"5"}],"extension_attributes":{"category_links":[{"category_id":"4"}]}}]});
    let cat = Catalogue::from_magento(&products, &tree, &classes).unwrap();
    let orders: Vec<Value> = vec![
        json!({"order_currency_code":"GBP","payment":{"method":"checkmo"},
        "items":[{"sku":"TEE","tax_percent":20,"tax_amount":2},{"sku":"TEA","tax_percent":5,"tax_amount":0.5}]}),
    ];
    StoreFacts::from_magento(&cat, &orders)
}

#[test]
fn a_correct_mapping_has_no_problems() {
    let problems = check_against(&rules(|_| {}), &org(true), &store());
    assert_eq!(problems, vec![], "{problems:#?}");
}

#[test]
fn wrong_account_code_suggests_the_closest_one() {
    let r = rules(|t| *t = t.replace("account = \"201\"", "account = \"2010\""));
    let problems = check_against(&r, &org(true), &store());
    let p = problems
        .iter()
        .find(|p| p.key == "mapping.account_rules[1].account")
        .expect("{problems:#?}");
    assert_eq!(p.severity, Severity::Error);
    assert_eq!(
        p.message,
        "account code \"2010\" does not exist in the organisation"
    );
    assert_eq!(p.suggestion.as_deref(), Some("use 201 (Sales - Goods)"));
}

#[test]
fn archived_and_non_bank_accounts_are_reported() {
    let r = rules(|t| {
        *t = t
            .replace("shipping_account = \"202\"", "shipping_account = \"299\"")
            .replace("stripe = \"091\"", "stripe = \"200\"")
    });
    let problems = check_against(&r, &org(true), &store());
    let ship = problems
        .iter()
        .find(|p| p.key == "mapping.shipping_account")
        .unwrap();
    assert!(ship.message.contains("ARCHIVED"), "{ship}");
    let stripe = problems
        .iter()
        .find(|p| p.key == "mapping.payments.stripe")
        .unwrap();
    assert!(
        stripe.message.contains("does not accept payments"),
        "{stripe}"
    );
}

#[test]
fn tax_type_the_org_lacks_lists_what_is_available() {
    let problems = check_against(&rules(|_| {}), &org(false), &store());
    let p = problems
        .iter()
        .find(|p| p.key == "mapping.tax.\"Reduced Rate Goods\"")
        .expect("{problems:#?}");
    assert_eq!(
        p.message,
        "tax type RROUTPUT is not in the organisation; available: OUTPUT2 (20%), ZERORATEDOUTPUT (0%), NONE (0%)"
    );
    assert_eq!(p.severity, Severity::Error);
}

#[test]
fn tax_type_with_a_different_rate_than_magento_charges() {
    let r = rules(|t| {
        *t = t.replace(
            "\"Reduced Rate Goods\" = \"RROUTPUT\"",
            "\"Reduced Rate Goods\" = \"OUTPUT2\"",
        )
    });
    let problems = check_against(&r, &org(true), &store());
    let p = problems
        .iter()
        .find(|p| p.key == "mapping.tax.\"Reduced Rate Goods\"")
        .expect("{problems:#?}");
    assert_eq!(
        p.message,
        "Magento charges 5% on tax class \"Reduced Rate Goods\" but OUTPUT2 is 20% in Xero"
    );
    assert_eq!(p.suggestion.as_deref(), Some("map it to RROUTPUT"));
}

#[test]
fn store_side_gaps_unmapped_class_method_currency_and_category_typo() {
    let r = rules(|t| {
        *t = t
            .replace("\"Reduced Rate Goods\" = \"RROUTPUT\", ", "")
            .replace("checkmo = \"090\", ", "")
            .replace("category = \"Services\"", "category = \"Servics\"")
    });
    let mut s = store();
    s.currencies.insert("AUD".into());
    let problems = check_against(&r, &org(true), &s);
    let msgs: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
    let has = |needle: &str| msgs.iter().any(|m| m.contains(needle));
    assert!(
        has("Magento tax class \"Reduced Rate Goods\" is used by products but has no tax type"),
        "{msgs:#?}"
    );
    assert!(
        has("orders are paid with \"checkmo\", which has no bank account"),
        "{msgs:#?}"
    );
    assert!(has("orders are in AUD, which is not enabled"), "{msgs:#?}");
    assert!(
        has(
            "category \"Servics\" matches no Magento category (suggestion: did you mean \"Services\"?)"
        ),
        "{msgs:#?}"
    );
    // Errors sort before warnings.
    assert_eq!(problems.last().unwrap().severity, Severity::Warning);
}

#[test]
fn org_context_for_invoices_comes_from_the_same_facts() {
    use rust_decimal_macros::dec;
    use tally_actors::mapping::OrgContext;
    let mut facts = org(true);
    facts.tax_rates[0].status = "ARCHIVED".into();
    let mut cat = Catalogue::default();
    cat.set_xero_items(&json!({"Items":[{"Code":"TEE"},{"Code":"MUG"}]}))
        .unwrap();
    let ctx = OrgContext::from_facts(&facts, &cat);
    assert_eq!(ctx.base_currency, "GBP");
    assert_eq!(ctx.tax_rates.get("RROUTPUT"), Some(&dec!(5)));
    assert_eq!(
        ctx.tax_rates.get("OUTPUT2"),
        None,
        "archived rates cannot be used"
    );
    assert!(ctx.item_codes.contains("TEE") && ctx.item_codes.contains("MUG"));
}

#[test]
fn organisation_may_be_the_envelope_or_the_bare_object() {
    let empty = json!([]);
    let bare =
        XeroOrgFacts::from_xero(&json!({"BaseCurrency":"NZD"}), &empty, &empty, &empty).unwrap();
    assert_eq!(bare.base_currency, "NZD");
    assert!(
        bare.currencies.contains("NZD"),
        "the base currency is always enabled"
    );
    let none = XeroOrgFacts::from_xero(&json!({"Organisations":[]}), &empty, &empty, &empty);
    assert!(none.is_err());
}

#[test]
fn unpriced_carriers_and_export_lines_do_not_count_as_a_class_rate() {
    let tree = json!({"id":2,"level":1,"name":"Default","children_data":[]});
    let classes = json!({"items":[{"class_id":2,"class_name":"Taxable Goods"}]});
    let products = json!({"items":[
        {"sku":"TEE","custom_attributes":[{"attribute_code":"tax_class_id","value":"2"}]},
        {"sku":"KIT","custom_attributes":[{"attribute_code":"tax_class_id","value":"2"}]}]});
    let cat = Catalogue::from_magento(&products, &tree, &classes).unwrap();
    let orders = vec![
        json!({"items":[{"sku":"KIT","product_type":"bundle","row_total":0,"tax_percent":0,"tax_amount":0},
                        {"sku":"TEE","row_total":10,"tax_percent":20,"tax_amount":2}]}),
        // Shipped abroad: zero-rated by destination.
        json!({"items":[{"sku":"TEE","row_total":10,"tax_percent":0,"tax_amount":0}]}),
    ];
    let s = StoreFacts::from_magento(&cat, &orders);
    let problems = check_against(&rules(|_| {}), &org(true), &s);
    assert!(
        problems
            .iter()
            .all(|p| !p.message.contains("Magento charges")),
        "{problems:#?}"
    );
    // ...but a class only ever charged at 0% mapped to a 20% type is reported.
    let only_zero = StoreFacts::from_magento(&cat, &orders[1..]);
    let problems = check_against(&rules(|_| {}), &org(true), &only_zero);
    assert!(
        problems
            .iter()
            .any(|p| p.message.contains("Magento charges 0%")),
        "{problems:#?}"
    );
}
