//! Fixing a discrepancy from tally: an order Magento cancelled after tally invoiced it gets
//! its Xero invoice voided (once, however often asked), an invoice with a payment in Xero is
//! refused with what to do, one voided meanwhile in Xero is found done without a write, and a
//! kind tally cannot fix is refused with advice. A payment removed in Xero is applied again,
//! once, and a replacement removed in its turn is replaced again. An invoice edited in Xero
//! gets back the lines tally posted while no money is applied to it.

mod common;

use serde_json::json;

use common::{
    XeroReader, assert_no_xero_duplicates, sandbox_env, sync_once, unpaid_invoiced_orders,
};
use tally_actors::ledger::{EntityState, Write};
use tally_actors::link::stage::StageWorker;
use tally_actors::reconcile::ReconcileWorker;
use tally_actors::reconcile::fix::{FixError, fix};
use tally_actors::reconcile::kinds;

/// The details of the newest `n` lines of `key`'s audit trail, newest first.
async fn newest_details(ledger: &tally_actors::ledger::Ledger, key: &str, n: usize) -> Vec<String> {
    let trail = ledger.audit_for(key).await.unwrap();
    trail
        .iter()
        .rev()
        .take(n)
        .map(|e| e.detail.clone())
        .collect()
}

async fn open_keys(ledger: &tally_actors::ledger::Ledger) -> Vec<String> {
    let open = ledger.discrepancies().await.unwrap();
    open.into_iter().map(|(k, _)| k).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_orders_invoice_is_voided_once_and_only_when_xero_allows_it() {
    let env = sandbox_env(37, 60, 120.0).await;
    let (run, summary) = sync_once(&env.config).await;
    assert_eq!(run.code, Some(0), "{summary}\n{}", run.stderr);
    let unpaid = unpaid_invoiced_orders(&env.ledger).await;
    assert!(unpaid.len() >= 3, "{} unpaid", unpaid.len());
    let (voids, paid_meanwhile, voided_meanwhile) = (&unpaid[0], &unpaid[1], &unpaid[2]);

    // The shop cancels all three; the next sync raises each.
    for order in [voids, paid_meanwhile, voided_meanwhile] {
        env.cancel_in_magento(order);
    }
    let (run, summary) = sync_once(&env.config).await;
    assert_eq!(run.code, Some(0), "{summary}\n{}", run.stderr);
    let key = |o: &EntityState| kinds::key(kinds::ORDER_CANCELLED_IN_MAGENTO, &o.key);

    // Meanwhile in Xero: one is paid, one is voided by someone else.
    let xero = XeroReader::connect(&env.config).await;
    let invoice = |o: &EntityState| o.links["invoice_id"].clone();
    xero.pay_invoice_in_full(&invoice(paid_meanwhile)).await;
    xero.void_invoice(&invoice(voided_meanwhile)).await;

    let ctx = tally::cmd::engine::connect(&env.config).await.unwrap().1;
    let status_of = |o: &EntityState| {
        let (xero, id) = (&xero, invoice(o));
        async move {
            xero.get(&format!("Invoices/{id}")).await["Invoices"][0]["Status"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };

    // The fix: voided in Xero, closed, and the order's trail says who asked and what happened.
    let done = fix(&ctx, &key(voids)).await.unwrap();
    assert!(done.contains("voided"), "{done}");
    assert_eq!(status_of(voids).await, "VOIDED");
    let trail = ctx.ledger.audit_for(&voids.key).await.unwrap();
    let details: Vec<&str> = trail
        .iter()
        .rev()
        .take(3)
        .map(|e| e.detail.as_str())
        .collect();
    assert!(
        details[2].starts_with("asked to void Xero invoice"),
        "{details:?}"
    );
    assert!(
        details[1].contains("voided (the order was cancelled in Magento)"),
        "{details:?}"
    );
    assert_eq!(
        details[0],
        format!("discrepancy {} closed: Magento and Xero agree", key(voids))
    );
    assert!(trail.iter().rev().take(3).all(|e| e.actor == "operator"));
    // Before the fix, the trail said when the cancellation was raised and by whom.
    assert!(
        trail.iter().any(|e| e.actor == "ingest"
            && e.detail
                .starts_with(&format!("discrepancy {} raised: order", key(voids)))),
        "{trail:?}"
    );
    // Asked again (a second console, a retry after a crash): nothing is open, nothing sent.
    let calls = ctx.xero.counters().calls;
    assert!(matches!(
        fix(&ctx, &key(voids)).await,
        Err(FixError::NotOpen(_))
    ));
    assert_eq!(ctx.xero.counters().calls, calls);

    // Paid in Xero: Xero cannot void it, so tally does not try; it stays open.
    let refused = fix(&ctx, &key(paid_meanwhile)).await.unwrap_err();
    assert!(
        matches!(&refused, FixError::Refused(m) if m.contains("payments or credits")),
        "{refused}"
    );
    assert_eq!(status_of(paid_meanwhile).await, "PAID");

    // Voided meanwhile: found done by the read, closed without a write.
    let calls = ctx.xero.counters().calls;
    let done = fix(&ctx, &key(voided_meanwhile)).await.unwrap();
    assert!(done.contains("already VOIDED; nothing sent"), "{done}");
    assert_eq!(ctx.xero.counters().calls, calls + 1, "one read, no write");

    // A kind tally cannot fix is refused with what to do instead.
    let total = kinds::key(kinds::INVOICE_VOIDED_IN_XERO, &voids.key);
    ctx.ledger
        .commit(vec![Write::PutDiscrepancy {
            key: total.clone(),
            value: json!({"kind": kinds::INVOICE_VOIDED_IN_XERO, "order": voids.key, "detail": "voided"}),
            actor: "reconciler".into(),
        }])
        .await
        .unwrap();
    let refused = fix(&ctx, &total).await.unwrap_err();
    assert!(
        refused
            .to_string()
            .contains("cancel the order in Magento or re-create the invoice in Xero"),
        "{refused}"
    );

    // The reconciler agrees: the voided ones stay closed; the paid one is still open.
    ctx.ledger
        .commit(vec![Write::RemoveDiscrepancy {
            key: total,
            actor: "reconciler".into(),
        }])
        .await
        .unwrap();
    ReconcileWorker::new(ctx.clone()).round().await.unwrap();
    let open = open_keys(&ctx.ledger).await;
    assert!(
        !open.contains(&key(voids)) && !open.contains(&key(voided_meanwhile)),
        "{open:?}"
    );
    assert!(open.contains(&key(paid_meanwhile)), "{open:?}");

    // The shop touches the cancelled order again later (a note): the cancellation was read
    // long ago and is resolved in Xero; it is not raised again (no pass would close it: the
    // voided invoice does not change again, so no sweep reads it).
    assert!(
        std::sync::Arc::try_unwrap(ctx).is_ok(),
        "the context is the ledger's last holder"
    );
    let entity_id: i64 = voids.links["magento_entity_id"].parse().unwrap();
    env.sandbox.magento.insert_order(
        json!({"entity_id": entity_id, "customer_note": "please ignore the earlier order"}),
    );
    let (run, summary) = sync_once(&env.config).await;
    assert_eq!(run.code, Some(0), "{summary}\n{}", run.stderr);
    let ledger = tally_actors::ledger::Ledger::open(&env.ledger).unwrap();
    let trail = ledger.audit_for(&voids.key).await.unwrap();
    assert!(
        trail
            .last()
            .unwrap()
            .detail
            .starts_with("Magento order updated"),
        "the update was read: {:?}",
        trail.last()
    );
    let open = open_keys(&ledger).await;
    assert!(!open.contains(&key(voids)), "raised again: {open:?}");
}

/// The orders of the ledger at `path` whose payment tally applied.
async fn paid_orders(path: &std::path::Path) -> Vec<EntityState> {
    use tally_actors::ledger::{Ledger, Stage};
    let ledger = Ledger::open(path).expect("ledger opens");
    ledger
        .by_stage(Stage::WrittenBack, 10_000)
        .await
        .unwrap()
        .into_iter()
        .filter(|s| s.links.contains_key("payment_id"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payment_removed_in_xero_is_applied_again_once() {
    let env = sandbox_env(41, 40, 120.0).await;
    let (run, summary) = sync_once(&env.config).await;
    assert_eq!(run.code, Some(0), "{summary}\n{}", run.stderr);
    let paid = paid_orders(&env.ledger).await;
    assert!(paid.len() >= 2, "{} paid", paid.len());
    let (removed, repaid_meanwhile) = (&paid[0], &paid[1]);
    let invoice = |o: &EntityState| o.links["invoice_id"].clone();

    // Someone removes both payments in Xero; a pass raises both.
    let xero = XeroReader::connect(&env.config).await;
    let remove = |id: String| {
        let xero = &xero;
        async move {
            let (st, body) = xero
                .send(
                    reqwest::Method::POST,
                    &format!("Payments/{id}"),
                    json!({"Payments": [{"Status": "DELETED"}]}),
                )
                .await;
            assert_eq!(st, 200, "{body}");
        }
    };
    remove(removed.links["payment_id"].clone()).await;
    // The demo's way (the same removal, without HTTP): once, then Xero refuses.
    assert!(
        env.sandbox
            .xero
            .remove_payment(&repaid_meanwhile.links["payment_id"])
    );
    assert!(
        !env.sandbox
            .xero
            .remove_payment(&repaid_meanwhile.links["payment_id"])
    );
    let ctx = tally::cmd::engine::connect(&env.config).await.unwrap().1;
    let reconcile = ReconcileWorker::new(ctx.clone());
    reconcile.round().await.unwrap();
    let key = |o: &EntityState| kinds::key(kinds::PAYMENT_MISSING_IN_XERO, &o.key);
    let open = open_keys(&ctx.ledger).await;
    assert!(
        open.contains(&key(removed)) && open.contains(&key(repaid_meanwhile)),
        "{open:?}"
    );
    // One of them is paid again by hand in Xero before the operator gets to it.
    xero.pay_invoice_in_full(&invoice(repaid_meanwhile)).await;
    let invoice_state = |o: &EntityState| {
        let (xero, id) = (&xero, invoice(o));
        async move { xero.get(&format!("Invoices/{id}")).await["Invoices"][0].clone() }
    };

    // The fix: applied again, the order names the new payment, its trail says who and why.
    let done = fix(&ctx, &key(removed)).await.unwrap();
    assert!(done.contains("applied again"), "{done}");
    let now = invoice_state(removed).await;
    assert_eq!(now["Status"], "PAID", "{now}");
    let after = ctx.ledger.get(&removed.key).await.unwrap().unwrap();
    let replacement = after.links["payment_id"].clone();
    assert_ne!(replacement, removed.links["payment_id"]);
    assert!(done.contains(&replacement), "{done}");
    let details = newest_details(&ctx.ledger, &removed.key, 4).await;
    assert!(details[3].starts_with("asked to apply"), "{details:?}");
    assert!(details[2].contains("replaced by"), "{details:?}");
    assert!(details[1].contains("applied again"), "{details:?}");
    assert!(details[0].contains("closed"), "{details:?}");
    // Asked again: nothing open, nothing sent.
    let calls = ctx.xero.counters().calls;
    assert!(matches!(
        fix(&ctx, &key(removed)).await,
        Err(FixError::NotOpen(_))
    ));
    assert_eq!(ctx.xero.counters().calls, calls);

    // Paid again meanwhile: found by the read, the live payment adopted, nothing written.
    let calls = ctx.xero.counters().calls;
    let done = fix(&ctx, &key(repaid_meanwhile)).await.unwrap();
    assert!(done.contains("nothing sent"), "{done}");
    assert_eq!(ctx.xero.counters().calls, calls + 2, "two reads, no write");
    let adopted = ctx
        .ledger
        .get(&repaid_meanwhile.key)
        .await
        .unwrap()
        .unwrap();
    assert_ne!(
        adopted.links["payment_id"],
        repaid_meanwhile.links["payment_id"]
    );

    // The replacement is removed in its turn: raised again, and replaced again under a new
    // key (the first key would replay the first replacement's answer).
    remove(replacement.clone()).await;
    reconcile.round().await.unwrap();
    assert!(open_keys(&ctx.ledger).await.contains(&key(removed)));
    let done = fix(&ctx, &key(removed)).await.unwrap();
    assert!(done.contains("applied again"), "{done}");
    assert_eq!(invoice_state(removed).await["Status"], "PAID");
    let third = ctx.ledger.get(&removed.key).await.unwrap().unwrap();
    assert_ne!(third.links["payment_id"], replacement);

    // The books agree: a pass raises nothing, and Xero holds no over-payment.
    reconcile.round().await.unwrap();
    let open = open_keys(&ctx.ledger).await;
    assert!(
        !open.contains(&key(removed)) && !open.contains(&key(repaid_meanwhile)),
        "{open:?}"
    );
    assert_no_xero_duplicates(&env.xero_counters());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invoice_edited_in_xero_is_restored_while_no_money_is_applied() {
    let env = sandbox_env(43, 60, 120.0).await;
    let (run, summary) = sync_once(&env.config).await;
    assert_eq!(run.code, Some(0), "{summary}\n{}", run.stderr);
    let unpaid = unpaid_invoiced_orders(&env.ledger).await;
    assert!(unpaid.len() >= 2, "{} unpaid", unpaid.len());
    let (edited, edited_then_paid) = (&unpaid[0], &unpaid[1]);
    let invoice = |o: &EntityState| o.links["invoice_id"].clone();
    let xero = XeroReader::connect(&env.config).await;
    let total_of = |o: &EntityState| {
        let (xero, id) = (&xero, invoice(o));
        async move { xero.get(&format!("Invoices/{id}")).await["Invoices"][0]["Total"].clone() }
    };
    let posted = total_of(edited).await;

    // Someone adds a line to both in Xero; one is then paid in full there.
    xero.add_line(&invoice(edited), "added in Xero", 5).await;
    // The demo's way (the same edit, without HTTP); an unknown invoice is refused.
    assert!(
        env.sandbox
            .xero
            .add_invoice_line(&invoice(edited_then_paid), "added in Xero", 7)
    );
    assert!(
        !env.sandbox
            .xero
            .add_invoice_line("00000000-0000-0000-0000-000000000000", "x", 1)
    );
    xero.pay_invoice_in_full(&invoice(edited_then_paid)).await;
    let ctx = tally::cmd::engine::connect(&env.config).await.unwrap().1;
    let reconcile = ReconcileWorker::new(ctx.clone());
    reconcile.round().await.unwrap();
    let key = |o: &EntityState| kinds::key(kinds::INVOICE_TOTAL_DIFFERS, &o.key);
    let open = open_keys(&ctx.ledger).await;
    assert!(
        open.contains(&key(edited)) && open.contains(&key(edited_then_paid)),
        "{open:?}"
    );

    // Restored: the total tally posted, closed, the trail says who asked and what happened.
    let done = fix(&ctx, &key(edited)).await.unwrap();
    assert!(done.contains("restored as tally posted it"), "{done}");
    assert_eq!(total_of(edited).await, posted);
    let details = newest_details(&ctx.ledger, &edited.key, 3).await;
    assert!(details[2].starts_with("asked to restore"), "{details:?}");
    assert!(
        details[1].contains("restored as tally posted it"),
        "{details:?}"
    );
    assert!(details[0].contains("closed"), "{details:?}");
    let calls = ctx.xero.counters().calls;
    assert!(matches!(
        fix(&ctx, &key(edited)).await,
        Err(FixError::NotOpen(_))
    ));
    assert_eq!(
        ctx.xero.counters().calls,
        calls,
        "asked again: nothing sent"
    );

    // Paid in Xero: its lines stay as they are; refused with what to do, still open.
    let calls = ctx.xero.counters().calls;
    let refused = fix(&ctx, &key(edited_then_paid)).await.unwrap_err();
    assert!(
        matches!(&refused, FixError::Refused(m) if m.contains("only an approved, unpaid invoice")),
        "{refused}"
    );
    assert_eq!(ctx.xero.counters().calls, calls + 1, "one read, no write");

    // The next pass agrees: the restored one stays closed, the paid one open.
    reconcile.round().await.unwrap();
    let open = open_keys(&ctx.ledger).await;
    assert!(!open.contains(&key(edited)), "{open:?}");
    assert!(open.contains(&key(edited_then_paid)), "{open:?}");
    assert_no_xero_duplicates(&env.xero_counters());
}
