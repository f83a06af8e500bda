//! A payment Magento takes while the order's invoice call is in flight.
//!
//! Ingest does not take Magento's changes to an order in `invoice_posting` (its invoice
//! intent was built from the stored copy), so the poll moves past such a change. The payments
//! stage then decides from the stored copy, which says nothing is paid; before it calls the
//! order unpaid it asks Magento for the current copy, and the payment reaches Xero. Here the
//! window is recreated in the ledger between two runs, so the second run finds an order
//! ingested before it started, which it re-checks because the run that passed the change
//! may have died (`link/passed_over.rs`; within one run, the poll notes the order itself).

mod common;

use rust_decimal::Decimal;
use serde_json::json;

use common::{
    XeroReader, dec, dec_or_zero, magento_post, payments_by_invoice_number, sandbox_env, sync_once,
};
use tally_actors::ledger::{Ledger, Stage, Write};
use tally_actors::link::ingest::CURSOR;
use tally_actors::magento::OrderCursor;

/// The entity id and increment id of a seeded order nothing has been paid on.
fn first_unpaid(env: &common::SandboxEnv) -> (i64, String) {
    let unpaid = env
        .seeded_orders()
        .into_iter()
        .find(|o| dec_or_zero(&o["payment"], "amount_paid") == Decimal::ZERO)
        .expect("the seed has an unpaid order");
    let number = unpaid["increment_id"].as_str().unwrap().to_owned();
    (unpaid["entity_id"].as_i64().unwrap(), number)
}

/// Magento captures the order's payment (an invoice with capture, as a payment gateway
/// does); returns the amount now paid, which is the grand total.
async fn capture_in_magento(env: &common::SandboxEnv, entity_id: i64) -> Decimal {
    magento_post(
        env,
        &format!("V1/order/{entity_id}/invoice"),
        json!({ "capture": true }),
    )
    .await;
    let paid = env.sandbox.magento.order(entity_id).unwrap();
    let amount = dec(&paid["payment"]["amount_paid"]);
    assert_eq!(amount, dec(&paid["grand_total"]));
    amount
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payment_taken_while_the_invoice_was_in_flight_reaches_xero() {
    let env = sandbox_env(11, 60, 120.0).await;
    let (run, summary) = sync_once(&env.config).await;
    assert_eq!(run.code, Some(0), "{summary}\n{}", run.stderr);

    let (entity_id, number) = first_unpaid(&env);
    let key = format!("order:{number}");
    {
        let ledger = Ledger::open(&env.ledger).unwrap();
        let s = ledger.get(&key).await.unwrap().unwrap();
        assert_eq!(s.stage, Stage::Skipped, "unpaid after the first sync");
    }

    let amount = capture_in_magento(&env, entity_id).await;

    // The ledger as it stood when that change was polled past: the order just invoiced,
    // its stored copy unpaid, and the cursor beyond Magento's change.
    {
        let ledger = Ledger::open(&env.ledger).unwrap();
        let mut s = ledger.get(&key).await.unwrap().unwrap();
        s.stage = Stage::Invoiced;
        let stored_paid = s.data.value()["payment"]["amount_paid"].clone();
        assert!(
            stored_paid.is_null() || dec(&stored_paid) == Decimal::ZERO,
            "{stored_paid}"
        );
        let past = OrderCursor::starting_at("2099-01-01 00:00:00");
        ledger
            .commit(vec![
                Write::Put {
                    state: s,
                    actor: "test".into(),
                    detail: "as while the invoice call was in flight".into(),
                },
                Write::SetCursor {
                    name: CURSOR.into(),
                    value: serde_json::to_value(&past).unwrap(),
                },
            ])
            .await
            .unwrap();
    }

    let (run, summary) = sync_once(&env.config).await;
    assert_eq!(run.code, Some(0), "{summary}\n{}", run.stderr);
    let xero = XeroReader::connect(&env.config).await;
    let payments = payments_by_invoice_number(&xero.all("Payments").await);
    let found = payments.get(&number).map(Vec::as_slice).unwrap_or_default();
    assert_eq!(found.len(), 1, "order {number}: payments {found:?}");
    assert_eq!(dec(&found[0]["Amount"]), amount);

    let ledger = Ledger::open(&env.ledger).unwrap();
    let s = ledger.get(&key).await.unwrap().unwrap();
    assert_eq!(s.stage, Stage::WrittenBack, "paid and written back");
    assert_eq!(dec(&s.data.value()["payment"]["amount_paid"]), amount);
}

/// The same window inside one run: the poll itself notes the order whose change it passes
/// while the invoice call is in flight (slowed down here so the window is seconds wide).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payment_taken_during_the_invoice_call_of_the_same_run_reaches_xero() {
    same_run_window(false).await;
}

/// As above, with Magento unreachable when the payments stage asks it: unconfirmed is not
/// unpaid, so the order waits for a retry (still marked) and is paid once Magento answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unanswered_recheck_is_retried_not_taken_for_unpaid() {
    same_run_window(true).await;
}

async fn same_run_window(magento_down_at_decision: bool) {
    use std::time::{Duration, Instant};
    use tally_actors::link::Link;
    use tally_fixtures::faults::FaultProfile;

    let env = sandbox_env(11, 30, 600.0).await;
    let (entity_id, number) = first_unpaid(&env);
    let key = format!("order:{number}");
    let config = common::config_with(
        &env,
        "fast-poll.toml",
        &[
            ("magento", "poll_interval_secs", toml::Value::Integer(1)),
            ("sync", "retry_base_ms", toml::Value::Integer(200)),
        ],
    );
    let (_raw, ctx) = tally::cmd::engine::connect(&config).await.unwrap();
    // Every Xero answer now takes 3 s: the invoice call is in flight that long.
    env.sandbox.xero.set_faults(FaultProfile {
        latency_ms: 3_000,
        ..FaultProfile::default()
    });
    let link = Link::start(ctx.clone()).await.unwrap();
    let state = || async { ctx.ledger.get(&key).await.unwrap() };
    let stage = || async { state().await.map(|s| s.stage) };

    let deadline = Instant::now() + Duration::from_secs(120);
    while stage().await != Some(Stage::InvoicePosting) {
        assert!(
            Instant::now() < deadline,
            "order {number} never reached invoice_posting"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let amount = capture_in_magento(&env, entity_id).await;
    if magento_down_at_decision {
        // A poll (every second) notes the order before Magento goes down.
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        env.sandbox.magento.set_faults(FaultProfile {
            error_5xx_rate: 1.0,
            ..FaultProfile::default()
        });
        loop {
            let s = state().await.unwrap();
            if s.last_error
                .as_deref()
                .is_some_and(|e| e.contains("confirm it is unpaid"))
            {
                assert_eq!(
                    s.stage,
                    Stage::Invoiced,
                    "waiting for its retry, not skipped"
                );
                break;
            }
            assert_ne!(s.stage, Stage::Skipped, "order {number} taken for unpaid");
            assert!(Instant::now() < deadline, "the re-check never failed");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        env.sandbox.magento.set_faults(FaultProfile::default());
    }

    let settled = loop {
        if let Some(s @ (Stage::WrittenBack | Stage::Skipped | Stage::Dead)) = stage().await {
            break s;
        }
        assert!(Instant::now() < deadline, "order {number} never settled");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    env.sandbox.xero.set_faults(FaultProfile::default());
    link.stop().await;
    assert_eq!(
        settled,
        Stage::WrittenBack,
        "order {number} was paid in Magento"
    );
    let xero = XeroReader::connect(&env.config).await;
    let payments = payments_by_invoice_number(&xero.all("Payments").await);
    let found = payments.get(&number).map(Vec::as_slice).unwrap_or_default();
    assert_eq!(found.len(), 1, "order {number}: payments {found:?}");
    assert_eq!(dec(&found[0]["Amount"]), amount);
}
