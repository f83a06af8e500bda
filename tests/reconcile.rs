//! The reconciler against the sandbox: after a backfill, Magento cancels an invoiced order and
//! someone works in Xero (voids an invoice before the first pass, then edits one's lines,
//! deletes tally's payment of another, pays a fourth), and the passes raise exactly those
//! discrepancies, moves the order paid in Xero on to
//! `Paid`, closes a discrepancy once Xero agrees again, and `tally report` exports them.

mod common;

use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::{Value, json};

use common::{XeroReader, path_str, sandbox_env, sync_once, tally};
use tally_actors::ledger::{EntityState, Ledger, Stage, Write, discrepancy};
use tally_actors::link::stage::StageWorker;
use tally_actors::reconcile::ReconcileWorker;
use tally_actors::reconcile::kinds;

fn invoice_of(s: &EntityState) -> String {
    s.links["invoice_id"].clone()
}

async fn open_keys(ctx: &tally_actors::link::LinkContext) -> BTreeSet<String> {
    ctx.ledger
        .discrepancies()
        .await
        .unwrap()
        .into_iter()
        .map(|(k, _)| k)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pass_raises_what_changed_in_xero_and_closes_what_agrees_again() {
    // 150 orders: the first pass reads Xero's invoices over two pages of 100.
    let env = sandbox_env(31, 150, 120.0).await;
    let (run, summary) = sync_once(&env.config).await;
    assert_eq!(run.code, Some(0), "{summary}\n{}", run.stderr);

    // Orders as the backfill left them: unpaid ones invoiced, paid ones written back.
    let (unpaid, paid) = {
        let ledger = Ledger::open(&env.ledger).unwrap();
        let mut unpaid = Vec::new();
        for stage in [Stage::Invoiced, Stage::Skipped] {
            unpaid.extend(
                ledger
                    .by_stage(stage, 1000)
                    .await
                    .unwrap()
                    .into_iter()
                    .filter(|s| s.links.contains_key("invoice_id")),
            );
        }
        let paid: Vec<EntityState> = ledger
            .by_stage(Stage::WrittenBack, 1000)
            .await
            .unwrap()
            .into_iter()
            .filter(|s| s.key.starts_with("order:") && s.links.contains_key("payment_id"))
            .collect();
        (unpaid, paid)
    };
    assert!(
        unpaid.len() >= 4 && !paid.is_empty(),
        "{} unpaid, {} paid",
        unpaid.len(),
        paid.len()
    );
    let (edited, voided, paid_in_xero) = (&unpaid[0], &unpaid[1], &unpaid[2]);
    let cancelled = &unpaid[3];
    let unpaid_by_tally = &paid[0];

    // Magento cancels an order tally already invoiced: the next sync raises it (ingest reads
    // the cancellation), and Xero still has the invoice as owed.
    env.cancel_in_magento(cancelled);
    let (run, summary) = sync_once(&env.config).await;
    assert_eq!(run.code, Some(0), "{summary}\n{}", run.stderr);
    let cancelled_key = kinds::key(kinds::ORDER_CANCELLED_IN_MAGENTO, &cancelled.key);
    {
        let ledger = Ledger::open(&env.ledger).unwrap();
        let open = ledger.discrepancies().await.unwrap();
        assert_eq!(open.len(), 1, "{open:?}");
        assert_eq!(open[0].0, cancelled_key);
        assert_eq!(open[0].1["kind"], kinds::ORDER_CANCELLED_IN_MAGENTO);
    }

    // An invoice voided before the reconciler ever ran: the first pass, which starts where
    // the ledger did, finds it and nothing else (the rest of the backfill agrees with Xero).
    let xero = XeroReader::connect(&env.config).await;
    xero.void_invoice(&invoice_of(voided)).await;
    let ctx = tally::cmd::engine::connect(&env.config).await.unwrap().1;
    let worker = ReconcileWorker::new(ctx.clone());
    let first = worker.round().await.unwrap();
    assert_eq!(first.done, 1, "{first:?}");
    assert_eq!(
        open_keys(&ctx).await,
        [
            kinds::key(kinds::INVOICE_VOIDED_IN_XERO, &voided.key),
            cancelled_key.clone()
        ]
        .into(),
        "the cancellation stays open while Xero has the invoice as owed"
    );

    // Someone works in Xero.
    let original =
        xero.get(&format!("Invoices/{}", invoice_of(edited))).await["Invoices"][0].clone();
    xero.add_line(&invoice_of(edited), "added in Xero", 5).await;
    let payment_id = unpaid_by_tally.links["payment_id"].clone();
    let (st, body) = xero
        .send(
            Method::POST,
            &format!("Payments/{payment_id}"),
            json!({"Payments": [{"Status": "DELETED"}]}),
        )
        .await;
    assert_eq!(st, 200, "{body}");
    xero.pay_invoice_in_full(&invoice_of(paid_in_xero)).await;

    let second = worker.round().await.unwrap();
    let open = open_keys(&ctx).await;
    let expected: BTreeSet<String> = [
        kinds::key(kinds::INVOICE_TOTAL_DIFFERS, &edited.key),
        kinds::key(kinds::INVOICE_VOIDED_IN_XERO, &voided.key),
        kinds::key(kinds::PAYMENT_MISSING_IN_XERO, &unpaid_by_tally.key),
        cancelled_key.clone(),
    ]
    .into();
    assert_eq!(open, expected, "{second:?}");
    let all = ctx.ledger.discrepancies().await.unwrap();
    let total = &all.iter().find(|(k, _)| k.starts_with("total:")).unwrap().1;
    assert_eq!(total["kind"], kinds::INVOICE_TOTAL_DIFFERS);
    let now_total =
        xero.get(&format!("Invoices/{}", invoice_of(edited))).await["Invoices"][0]["Total"]
            .to_string();
    let detail = total["detail"].as_str().unwrap();
    assert!(
        detail.contains(&format!("totals {now_total}"))
            && detail.contains(&format!("grand total is {}", original["Total"])),
        "names Xero's new total and Magento's: {detail}"
    );
    let moved = ctx.ledger.get(&paid_in_xero.key).await.unwrap().unwrap();
    assert_eq!(moved.stage, Stage::Paid, "paid in Xero moves the order on");
    let audit = ctx.ledger.audit_for(&paid_in_xero.key).await.unwrap();
    assert_eq!(audit.last().unwrap().actor, "reconciler");

    // Nothing changed since: a pass writes nothing and keeps each discrepancy's age.
    let raised_at: Vec<Value> = all.iter().map(|(_, v)| v["raised_at"].clone()).collect();
    let quiet = worker.round().await.unwrap();
    assert_eq!(quiet.done, 0, "{quiet:?}");
    let again: Vec<Value> = ctx
        .ledger
        .discrepancies()
        .await
        .unwrap()
        .into_iter()
        .map(|(_, v)| v["raised_at"].clone())
        .collect();
    assert_eq!(raised_at, again);

    // The operator accepts the edited total for now (as the console's `a` does): it stays
    // open and acknowledged through a quiet pass, and the order's trail records it.
    let total_key = kinds::key(kinds::INVOICE_TOTAL_DIFFERS, &edited.key);
    ctx.ledger
        .commit(vec![Write::AcknowledgeDiscrepancy {
            key: total_key.clone(),
            actor: "operator".into(),
            note: None,
        }])
        .await
        .unwrap();
    let quiet = worker.round().await.unwrap();
    assert_eq!(quiet.done, 0, "{quiet:?}");
    let acked = value_of(&ctx, &total_key).await;
    assert!(discrepancy::is_acknowledged(&acked), "{acked}");
    let trail = ctx.ledger.audit_for(&edited.key).await.unwrap();
    assert!(
        trail
            .last()
            .unwrap()
            .detail
            .starts_with(&format!("discrepancy {total_key} acknowledged")),
        "{:?}",
        trail.last()
    );
    // Someone edits the invoice again: a different difference asks for the operator again.
    xero.add_line(&invoice_of(edited), "another edit", 7).await;
    worker.round().await.unwrap();
    let reopened = value_of(&ctx, &total_key).await;
    assert!(!discrepancy::is_acknowledged(&reopened), "{reopened}");
    assert_eq!(
        reopened["raised_at"], acked["raised_at"],
        "it keeps its age"
    );
    assert_ne!(reopened["detail"], acked["detail"]);

    // The edit is undone in Xero, and the cancelled order's invoice voided there: both
    // discrepancies close (a voided invoice of a cancelled order is agreement, not a new
    // discrepancy), the others stay.
    let (st, body) = xero
        .send(
            Method::POST,
            &format!("Invoices/{}", invoice_of(edited)),
            json!({"Invoices": [{"LineItems": original["LineItems"]}]}),
        )
        .await;
    assert_eq!(st, 200, "{body}");
    xero.void_invoice(&invoice_of(cancelled)).await;
    worker.round().await.unwrap();
    let open = open_keys(&ctx).await;
    assert_eq!(
        open,
        [
            kinds::key(kinds::INVOICE_VOIDED_IN_XERO, &voided.key),
            kinds::key(kinds::PAYMENT_MISSING_IN_XERO, &unpaid_by_tally.key),
        ]
        .into()
    );
    drop(worker);
    let stopped = std::sync::Arc::try_unwrap(ctx).is_ok();
    assert!(stopped, "the context is the ledger's last holder");

    // The export, as the finance team gets it.
    let csv_path = env.dir.path().join("discrepancies.csv");
    let run = tally(&[
        "report",
        "--config",
        path_str(&env.config),
        "--output",
        path_str(&csv_path),
    ])
    .await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let text = std::fs::read_to_string(&csv_path).unwrap();
    let mut rows = csv::Reader::from_reader(text.as_bytes());
    let kinds_found: BTreeSet<String> = rows.records().map(|r| r.unwrap()[1].to_owned()).collect();
    assert_eq!(
        kinds_found,
        [
            kinds::INVOICE_VOIDED_IN_XERO.to_owned(),
            kinds::PAYMENT_MISSING_IN_XERO.to_owned()
        ]
        .into()
    );
    let run = tally(&[
        "report",
        "--config",
        path_str(&env.config),
        "--format",
        "json",
    ])
    .await;
    let json: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(json.as_array().unwrap().len(), 2);

    // `tally ack` from a shell (no daemon runs: straight to the ledger file), then the
    // export shows who accepted it and when.
    let voided_key = kinds::key(kinds::INVOICE_VOIDED_IN_XERO, &voided.key);
    let run = tally(&["ack", "--config", path_str(&env.config), &voided_key]).await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(run.stdout.contains("acknowledged"), "{}", run.stdout);
    let run = tally(&[
        "ack",
        "--config",
        path_str(&env.config),
        "voided:order:nope",
    ])
    .await;
    assert_eq!(run.code, Some(1));
    assert!(
        run.stderr.contains("no open discrepancy voided:order:nope"),
        "{}",
        run.stderr
    );
    let run = tally(&["report", "--config", path_str(&env.config)]).await;
    assert!(
        run.stderr.contains("2 open discrepancies (1 acknowledged)"),
        "{}",
        run.stderr
    );
    let mut rows = csv::Reader::from_reader(run.stdout.as_bytes());
    let headers = rows.headers().unwrap().clone();
    let at = headers.iter().position(|h| h == "acknowledged_at").unwrap();
    let by = headers.iter().position(|h| h == "acknowledged_by").unwrap();
    for row in rows.records().map(Result::unwrap) {
        let acknowledged = !row[at].is_empty();
        assert_eq!(acknowledged, row[0] == *voided_key, "{row:?}");
        if acknowledged {
            assert_eq!(&row[by], "operator (cli)");
        }
    }
}

async fn value_of(ctx: &tally_actors::link::LinkContext, key: &str) -> Value {
    let all = ctx.ledger.discrepancies().await.unwrap();
    all.into_iter()
        .find(|(k, _)| k == key)
        .unwrap_or_else(|| panic!("{key} is not open"))
        .1
}
