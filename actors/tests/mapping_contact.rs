//! Contact key, body, name disambiguation and matching.

use serde_json::json;
use tally_actors::mapping::contact::{guest_contact_number, is_name_clash, update_for};
use tally_actors::mapping::{
    ContactMatch, contact_for, contact_number, disambiguated_name, find_existing,
};
use tally_actors::model::xero::Contact;
use tally_actors::model::{Catalogue, Order, ProductFacts};

fn order(customer_id: Option<u64>, email: &str) -> Order {
    let mut c = Catalogue::default();
    c.insert(
        "PEN",
        ProductFacts {
            categories: vec![],
            tax_class: Some("None".into()),
            tax_class_id: Some("0".into()),
        },
    );
    let v = json!({
        "entity_id": 1, "increment_id": "000000001", "store_id": 1, "created_at": "2026-11-01 10:00:00",
        "customer_id": customer_id, "customer_is_guest": customer_id.is_none(), "customer_email": email,
        "customer_firstname": "John", "customer_lastname": "Smith", "order_currency_code": "GBP",
        "items": [{"item_id":1,"sku":"PEN","qty_ordered":1,"price":1,"row_total":1,"tax_amount":0}],
        "subtotal": 1, "tax_amount": 0, "grand_total": 1,
        "billing_address": {"firstname":"John","lastname":"Smith","street":["1 Road"],"city":"York","postcode":"YO1","country_id":"GB"}
    });
    Order::from_magento(&v, &c).unwrap()
}

fn contact(number: Option<&str>, email: &str, name: &str) -> Contact {
    Contact {
        contact_id: Some(format!("id-{}", number.unwrap_or(email))),
        contact_number: number.map(str::to_owned),
        email_address: Some(email.to_owned()),
        name: Some(name.to_owned()),
        contact_status: Some("ACTIVE".into()),
        ..Default::default()
    }
}

#[test]
fn contact_numbers_for_customers_and_guests() {
    assert_eq!(contact_number(&order(Some(42), "John@X.com")), "magento-42");
    assert_eq!(
        contact_number(&order(None, "John.Smith@Example.COM")),
        "guest-john.smith@example.com"
    );
}

#[test]
fn long_guest_emails_hash_to_a_stable_short_key() {
    let long = format!("{}@example.com", "a".repeat(60));
    let k = guest_contact_number(&long);
    assert!(k.len() <= 50 && k.starts_with("guest-"), "{k}");
    assert_eq!(
        k,
        guest_contact_number(&long.to_uppercase()),
        "case-insensitive and stable"
    );
    assert_ne!(k, guest_contact_number(&format!("b{long}")));
    // Exactly 50 characters still fits verbatim.
    let fits = format!("{}@x.io", "a".repeat(50 - 6 - 5));
    assert_eq!(guest_contact_number(&fits), format!("guest-{fits}"));
}

#[test]
fn contact_body_keeps_the_email_as_magento_has_it() {
    let c = contact_for(&order(Some(42), "John.Smith@Example.com"));
    assert_eq!(c.contact_number.as_deref(), Some("magento-42"));
    assert_eq!(c.email_address.as_deref(), Some("John.Smith@Example.com"));
    assert_eq!(c.name.as_deref(), Some("John Smith"));
    assert_eq!(c.addresses[0].city.as_deref(), Some("York"));
    let body = serde_json::to_value(&c).unwrap();
    assert_eq!(body["ContactNumber"], "magento-42");
    assert!(body.get("ContactID").is_none());
}

#[test]
fn disambiguated_name_appends_the_key_and_stays_within_255() {
    assert_eq!(
        disambiguated_name("John Smith", "magento-42"),
        "John Smith (magento-42)"
    );
    let long = disambiguated_name(&"x".repeat(300), "magento-42");
    assert_eq!(long.chars().count(), 255);
    assert!(long.ends_with(" (magento-42)"));
}

#[test]
fn matching_prefers_number_then_email_case_insensitively() {
    let by_num = contact(Some("magento-42"), "old@x.com", "John Smith");
    let by_mail = contact(None, "jane.doe@x.com", "Jane Doe");
    let candidates = vec![by_mail.clone(), by_num.clone()];
    assert_eq!(
        find_existing(&candidates, "magento-42", "Jane.Doe@x.com"),
        ContactMatch::ByNumber(&candidates[1])
    );
    assert_eq!(
        find_existing(&candidates, "magento-7", "Jane.Doe@X.com"),
        ContactMatch::ByEmail(&candidates[0])
    );

    // A guest contact with the same email is the same person once they register.
    let guest = vec![contact(
        Some("guest-jane.doe@x.com"),
        "jane.doe@x.com",
        "Jane Doe",
    )];
    assert!(matches!(
        find_existing(&guest, "magento-7", "JANE.DOE@x.com"),
        ContactMatch::ByEmail(_)
    ));

    // Another registered customer with that email is a different customer (another website).
    let other = vec![contact(Some("magento-8"), "jane.doe@x.com", "Jane Doe")];
    assert_eq!(
        find_existing(&other, "magento-7", "jane.doe@x.com"),
        ContactMatch::None
    );

    // Active beats archived for the same number.
    let mut archived = contact(Some("magento-42"), "a@x.com", "John Smith");
    archived.contact_status = Some("ARCHIVED".into());
    archived.contact_id = Some("archived".into());
    let both = vec![archived, by_num];
    assert_eq!(
        find_existing(&both, "magento-42", "a@x.com")
            .contact()
            .unwrap()
            .contact_id
            .as_deref(),
        Some("id-magento-42")
    );
}

#[test]
fn name_clash_only_between_different_people() {
    let other = contact(Some("magento-8"), "john@a.com", "John Smith");
    assert!(is_name_clash(
        &other,
        "john smith",
        "magento-42",
        "john@b.com"
    ));
    assert!(!is_name_clash(
        &other,
        "John Smith",
        "magento-8",
        "john@a.com"
    ));
    let hand_made = contact(None, "john@b.com", "John Smith");
    assert!(!is_name_clash(
        &hand_made,
        "John Smith",
        "magento-42",
        "John@B.com"
    ));
}

#[test]
fn update_only_when_something_differs() {
    let wanted = contact_for(&order(Some(42), "john@x.com"));
    let same = contact(Some("magento-42"), "john@x.com", "John Smith (magento-42)");
    assert_eq!(
        update_for(&same, &wanted),
        None,
        "a disambiguated name is not flapped back"
    );
    let hand_made = contact(None, "john@x.com", "J. Smith");
    let upd = update_for(&hand_made, &wanted).unwrap();
    assert_eq!(upd.contact_number.as_deref(), Some("magento-42"));
    assert_eq!(upd.contact_id.as_deref(), Some("id-john@x.com"));
    assert_eq!(upd.name, None);
}
