//! `tally reconcile` from a shell: one pass, a JSON summary, and an exit code a cron job can
//! act on (1 while a discrepancy needs attention, 0 once it is acknowledged).

mod common;

use serde_json::{Value, json};

use common::{XeroReader, path_str, sandbox_env, sync_once, tally, unpaid_invoiced_orders};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_pass_from_the_shell_reports_what_needs_attention_in_its_exit_code() {
    let env = sandbox_env(47, 30, 120.0).await;
    let (run, summary) = sync_once(&env.config).await;
    assert_eq!(run.code, Some(0), "{summary}\n{}", run.stderr);
    let config = path_str(&env.config);

    // Everything agrees after the backfill.
    let run = tally(&["reconcile", "--config", config]).await;
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    let first: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(first["needs_attention"], 0, "{first}");
    assert!(
        first["invoices_compared"].as_u64().unwrap() >= 20,
        "{first}"
    );

    // Some (simulated) minutes later, someone voids an invoice in Xero: the passes after
    // read only what changed since, so the backfill's invoices fall out of their window.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let unpaid = unpaid_invoiced_orders(&env.ledger)
        .await
        .into_iter()
        .next()
        .expect("an invoiced, unpaid order");
    XeroReader::connect(&env.config)
        .await
        .void_invoice(&unpaid.links["invoice_id"])
        .await;

    let run = tally(&["reconcile", "--config", config]).await;
    assert_eq!(run.code, Some(1), "{}\n{}", run.stdout, run.stderr);
    let second: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(second["raised"], 1, "{second}");
    assert_eq!(second["needs_attention"], 1, "{second}");
    assert_eq!(
        second["needs_attention_by_kind"]["invoice_voided_in_xero"], 1,
        "{second}"
    );
    assert!(second["gave_up"].is_null(), "{second}");

    // The report for people: Markdown on stdout, HTML into a file.
    let number = unpaid.key.trim_start_matches("order:");
    let run = tally(&["report", "--config", config, "--format", "md"]).await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(
        run.stdout.contains("## Invoice voided in Xero (1)"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains(&format!("| {number} |")),
        "{}",
        run.stdout
    );
    let page = env.dir.path().join("discrepancies.html");
    let run = tally(&[
        "report",
        "--config",
        config,
        "--format",
        "html",
        "--out",
        path_str(&page),
    ])
    .await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(
        html.starts_with("<!doctype html>") && html.contains(&format!("<td>{number}</td>")),
        "{html}"
    );

    // Acknowledged, it no longer fails the job; the pass after raises nothing new.
    let key = format!("voided:{}", unpaid.key);
    let run = tally(&["ack", "--config", config, &key]).await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let run = tally(&["reconcile", "--config", config]).await;
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    let third: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(
        (
            third["raised"].clone(),
            third["needs_attention"].clone(),
            third["acknowledged"].clone()
        ),
        (json!(0), json!(0), json!(1)),
        "{third}"
    );

    assert!(
        third["invoices_compared"].as_u64() < first["invoices_compared"].as_u64(),
        "a pass reads what changed since the last: {third}"
    );
    // `--full` compares every invoice again, whatever the cursor says: as many as the first
    // pass, which started where the ledger did.
    let run = tally(&["reconcile", "--config", config, "--full"]).await;
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    let full: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(
        full["invoices_compared"], first["invoices_compared"],
        "{full}"
    );
    assert_eq!(full["raised"], 0, "{full}");

    // The period's history: when it was raised, by the reconciler, and acknowledged, by whom.
    let events = common::discrepancy_events(&env.config).await;
    let of_key: Vec<(String, String)> = events
        .iter()
        .filter(|(k, ..)| *k == key)
        .map(|(_, event, actor, _)| (event.clone(), actor.clone()))
        .collect();
    assert_eq!(
        of_key,
        [
            ("raised".to_owned(), "reconciler".to_owned()),
            ("acknowledged".to_owned(), "operator (cli)".to_owned())
        ],
        "{events:?}"
    );
    // A period after it holds nothing; the CSV has its header; md is refused.
    let run = tally(&[
        "report",
        "--config",
        config,
        "--history",
        "--since",
        "2999-01-01",
    ])
    .await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(run.stdout, "at,order,key,event,actor,detail\n");
    let run = tally(&["report", "--config", config, "--history", "--format", "md"]).await;
    assert_ne!(run.code, Some(0));
    assert!(
        run.stderr.contains("--history exports csv or json"),
        "{}",
        run.stderr
    );
}
