//! A Xero INVOICE webhook for a voided invoice is judged as the reconciler judges it: the
//! void of an order Magento still has is a discrepancy, the void of an order Magento
//! cancelled is agreement and raises nothing.

mod common;

use std::collections::BTreeSet;

use common::{XeroReader, sandbox_env, sync_once};
use tally::daemon::{DaemonEngine, XeroEvent};
use tally_actors::ledger::{Ledger, Stage};
use tally_actors::reconcile::kinds;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_voided_invoice_webhook_raises_what_the_reconciler_would() {
    let env = sandbox_env(37, 80, 120.0).await;
    let (run, summary) = sync_once(&env.config).await;
    assert_eq!(run.code, Some(0), "{summary}\n{}", run.stderr);
    let unpaid: Vec<_> = {
        let ledger = Ledger::open(&env.ledger).unwrap();
        ledger
            .by_stage(Stage::Skipped, 1000)
            .await
            .unwrap()
            .into_iter()
            .filter(|s| s.links.contains_key("invoice_id"))
            .take(2)
            .collect()
    };
    assert_eq!(unpaid.len(), 2, "two unpaid invoiced orders");
    let (kept, cancelled) = (&unpaid[0], &unpaid[1]);
    env.cancel_in_magento(cancelled);
    let (run, summary) = sync_once(&env.config).await;
    assert_eq!(run.code, Some(0), "{summary}\n{}", run.stderr);

    let xero = XeroReader::connect(&env.config).await;
    for order in [kept, cancelled] {
        xero.void_invoice(&order.links["invoice_id"]).await;
    }

    // Only the webhook judges here: the reconciler is off.
    let text = format!(
        "{}\n[reconcile]\nenabled = false\n",
        std::fs::read_to_string(&env.config).unwrap()
    );
    let config = env.write_config_variant("no-reconciler.toml", &text);
    let rt = tally::cmd::console::start_runtime(&config).await.unwrap();
    for order in [kept, cancelled] {
        rt.xero_event(XeroEvent {
            resource_id: order.links["invoice_id"].clone(),
            resource_url: String::new(),
            tenant_id: String::new(),
            event_category: "INVOICE".into(),
            event_type: "UPDATE".into(),
            event_date_utc: "2026-11-28T07:00:00".into(),
        })
        .await
        .unwrap();
    }
    let open = rt.link.ctx.ledger.discrepancies().await.unwrap();
    let keys: BTreeSet<String> = open.iter().map(|(k, _)| k.clone()).collect();
    assert_eq!(
        keys,
        [
            kinds::key(kinds::INVOICE_VOIDED_IN_XERO, &kept.key),
            kinds::key(kinds::ORDER_CANCELLED_IN_MAGENTO, &cancelled.key),
        ]
        .into(),
        "the cancelled order's void raises nothing; its cancellation waits for the reconciler to close it"
    );
    let voided = &open
        .iter()
        .find(|(k, _)| k.starts_with("voided:"))
        .unwrap()
        .1;
    assert_eq!(voided["kind"], kinds::INVOICE_VOIDED_IN_XERO);
    assert!(voided["raised_at"].is_string(), "{voided}");
    rt.stop().await;
}
