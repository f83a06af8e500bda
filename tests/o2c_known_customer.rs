//! A returning customer's order is linked to their Xero contact as ingest records it.
//!
//! The contacts stage would only copy the ledger's ContactID over (a customer it already
//! holds costs no Xero call), so ingest does it in the write that records the order. This
//! test pins that down end to end: the first order of a customer goes through the contacts
//! stage, a later one by the same customer starts in `contact_ready`, names its contact in
//! the audit trail, costs no contact lookup or create, and is invoiced to that contact.

mod common;

use serde_json::Value;

use common::{
    XeroReader, assert_no_xero_duplicates, copy_order_as, sales_invoices_by_number, sandbox_env,
    sync_once,
};
use tally_actors::ledger::{EntityKind, Ledger, Stage};

/// Requests the Xero simulator answered on `route` (`"GET /api.xro/2.0/Contacts"`).
fn xero_requests(counters: &Value, route: &str) -> u64 {
    counters["requests"][route]
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(_, n)| n.as_u64())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_returning_customers_order_is_linked_to_their_contact_by_ingest() {
    let env = sandbox_env(23, 40, 120.0).await;
    let (run, summary) = sync_once(&env.config).await;
    assert_eq!(run.code, Some(0), "{summary}\n{}", run.stderr);

    // A registered customer's order, and its copy as a new order by the same customer.
    let template = env
        .seeded_orders()
        .into_iter()
        .find(|o| o["customer_id"].as_i64().is_some() && o["customer_is_guest"] != 1)
        .expect("the seed has a registered customer's order");
    let first_key = EntityKind::Order.key(template["increment_id"].as_str().unwrap());
    let customer = template["customer_id"].as_i64().unwrap();
    let number = format!("magento-{customer}");
    let new_id = 90_001;
    env.sandbox
        .magento
        .insert_order(copy_order_as(&template, new_id));
    let new_number = format!("{new_id:09}");
    let new_key = EntityKind::Order.key(&new_number);

    let contacts_read = "GET /api.xro/2.0/Contacts";
    let contacts_created = "PUT /api.xro/2.0/Contacts";
    let before = env.xero_counters();
    let (run, summary) = sync_once(&env.config).await;
    assert_eq!(run.code, Some(0), "{summary}\n{}", run.stderr);
    let after = env.xero_counters();
    assert_no_xero_duplicates(&after);
    for route in [contacts_read, contacts_created] {
        assert_eq!(
            xero_requests(&after, route),
            xero_requests(&before, route),
            "{route}: a known customer costs no contact call"
        );
    }

    let ledger = Ledger::open(&env.ledger).unwrap();
    let contact = ledger
        .get(&EntityKind::Contact.key(&number))
        .await
        .unwrap()
        .expect("the customer's contact is in the ledger");
    assert_eq!(contact.stage, Stage::ContactDone);
    let contact_id = contact.links["contact_id"].clone();

    // The customer's first order: seen by ingest, linked by the contacts stage.
    let first = ledger.audit_for(&first_key).await.unwrap();
    let linked_by: Vec<(&str, Stage)> = first
        .iter()
        .take(2)
        .map(|e| (e.actor.as_str(), e.to))
        .collect();
    assert!(
        linked_by == [("ingest", Stage::Seen), ("contacts", Stage::ContactReady)]
            || first[0].to == Stage::ContactReady,
        "first order's trail starts {linked_by:?}"
    );

    // The new order: recorded already linked, in one transition, and never by contacts.
    let trail = ledger.audit_for(&new_key).await.unwrap();
    let head = &trail[0];
    assert_eq!(
        (head.actor.as_str(), head.from, head.to),
        ("ingest", None, Stage::ContactReady),
        "{trail:?}"
    );
    assert_eq!(
        head.detail,
        format!("seen in Magento; contact {number} is Xero ContactID={contact_id}")
    );
    assert!(
        trail.iter().all(|e| e.actor != "contacts"),
        "the contacts stage never touched it: {trail:?}"
    );
    let state = ledger.get(&new_key).await.unwrap().unwrap();
    assert_eq!(state.links["contact_id"], contact_id);
    assert_eq!(state.links["contact_number"], number);
    assert!(
        matches!(state.stage, Stage::WrittenBack | Stage::Skipped),
        "{:?}",
        state.stage
    );

    // Xero has its invoice, to that contact.
    let xero = XeroReader::connect(&env.config).await;
    let invoices = sales_invoices_by_number(&xero.all("Invoices").await);
    let invoice = &invoices[&new_number];
    assert_eq!(invoice.len(), 1, "exactly one invoice");
    assert_eq!(invoice[0]["Contact"]["ContactID"], contact_id.as_str());
}
