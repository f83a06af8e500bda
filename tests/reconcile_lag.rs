//! Xero's list reads can trail a write. The reconciler's sweep reads invoices before it reads
//! the orders: a payment tally makes in between looks missing on the swept copy. It must
//! confirm what it would raise with a second, later read, and raise nothing here.

mod common;

use serde_json::json;

use common::{sandbox_env, sync_once};
use tally_actors::ledger::{Ledger, Stage};
use tally_actors::link::stage::StageWorker;
use tally_actors::reconcile::ReconcileWorker;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payment_made_after_the_sweep_read_is_not_raised_as_missing() {
    let env = sandbox_env(43, 40, 120.0).await;
    let (run, summary) = sync_once(&env.config).await;
    assert_eq!(run.code, Some(0), "{summary}\n{}", run.stderr);
    let waiting = {
        let ledger = Ledger::open(&env.ledger).unwrap();
        ledger
            .by_stage(Stage::Skipped, 100)
            .await
            .unwrap()
            .into_iter()
            .find(|s| s.links.contains_key("invoice_id") && !s.links.contains_key("payment_id"))
            .expect("an invoiced order waiting for its payment")
    };

    // What Xero's list replica will still show: the invoice unpaid.
    let stale = env.sandbox.xero.invoice_snapshot();

    // The customer pays; tally applies the payment in Xero and writes Magento back.
    let entity_id: i64 = waiting.links["magento_entity_id"].parse().unwrap();
    let order = env.sandbox.magento.order(entity_id).unwrap();
    let mut payment = order["payment"].clone();
    payment["amount_paid"] = order["grand_total"].clone();
    payment["base_amount_paid"] = order["base_grand_total"].clone();
    env.sandbox
        .magento
        .insert_order(json!({"entity_id": entity_id, "payment": payment}));
    let (run, summary) = sync_once(&env.config).await;
    assert_eq!(run.code, Some(0), "{summary}\n{}", run.stderr);
    let ctx = tally::cmd::engine::connect(&env.config).await.unwrap().1;
    let paid = ctx.ledger.get(&waiting.key).await.unwrap().unwrap();
    assert!(
        paid.links.contains_key("payment_id") && paid.stage == Stage::WrittenBack,
        "{paid:?}"
    );

    // The sweep is served the stale list; the confirming read is fresh.
    env.sandbox.xero.serve_invoice_lists_from(stale, 1);
    let pass = ReconcileWorker::new(ctx.clone()).round().await.unwrap();
    let open = ctx.ledger.discrepancies().await.unwrap();
    assert!(
        open.is_empty(),
        "raised from a stale read: {open:?} ({pass:?})"
    );
}
