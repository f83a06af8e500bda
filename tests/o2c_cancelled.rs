//! An order Magento cancelled before tally invoiced it owes nothing: it is skipped with the
//! reason in its audit trail, and nothing about it reaches Xero. If the shop un-cancels it
//! (a later copy is no longer cancelled), it is looked at again from the start and synced.

mod common;

use serde_json::json;

use common::{XeroReader, copy_order_as, sales_invoices_by_number, sandbox_env, sync_once};
use tally_actors::ledger::{EntityKind, Ledger, Stage};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_cancelled_before_it_is_invoiced_is_skipped_and_never_sent() {
    let env = sandbox_env(29, 10, 120.0).await;
    let template = env
        .seeded_orders()
        .into_iter()
        .next()
        .expect("a seeded order");
    let id = 90_101;
    let mut cancelled = copy_order_as(&template, id);
    cancelled["state"] = json!("canceled");
    cancelled["status"] = json!("canceled");
    env.sandbox.magento.insert_order(cancelled);
    let number = format!("{id:09}");
    let key = EntityKind::Order.key(&number);

    let (run, summary) = sync_once(&env.config).await;
    assert_eq!(run.code, Some(0), "{summary}\n{}", run.stderr);
    {
        let ledger = Ledger::open(&env.ledger).unwrap();
        let state = ledger
            .get(&key)
            .await
            .unwrap()
            .expect("the order is in the ledger");
        assert_eq!(state.stage, Stage::Skipped);
        assert!(!state.links.contains_key("invoice_id"));
        let audit = ledger.audit_for(&key).await.unwrap();
        assert!(
            audit.iter().any(|e| e
                .detail
                .contains("cancelled in Magento before it was invoiced")),
            "{audit:?}"
        );
        assert!(ledger.discrepancies().await.unwrap().is_empty());
    }
    let xero = XeroReader::connect(&env.config).await;
    let invoices = sales_invoices_by_number(&xero.all("Invoices").await);
    assert!(!invoices.contains_key(&number), "nothing sent to Xero");
    assert_eq!(invoices.len(), 10, "the other orders are invoiced");

    // Un-cancelled in Magento: looked at again, and invoiced once.
    env.sandbox.magento.insert_order(
        json!({"entity_id": id, "state": template["state"], "status": template["status"]}),
    );
    let (run, summary) = sync_once(&env.config).await;
    assert_eq!(run.code, Some(0), "{summary}\n{}", run.stderr);
    let invoices = sales_invoices_by_number(&xero.all("Invoices").await);
    assert_eq!(
        invoices.get(&number).map(Vec::len),
        Some(1),
        "invoiced once"
    );
}
