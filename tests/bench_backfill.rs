//! `tally bench backfill`: the benchmark runs the sandbox and the engine in one process and
//! reports what it measured. Small runs only; the figures themselves are not asserted here
//! (speed belongs to the benchmark command, not to tests), but their meaning is.

use tally::cmd::bench::{BackfillOptions, backfill};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_budgeted_backfill_syncs_every_order_and_reports_the_budget() {
    let report = backfill(BackfillOptions {
        orders: 120,
        time_scale: 600.0,
        unlimited: false,
        seed: 7,
        engine_process: false,
        sync: Vec::new(),
    })
    .await
    .unwrap();
    let j = report.to_json();
    assert_eq!(j["finished"], true, "{j:#}");
    assert_eq!(j["dead_letters"], 0, "{j:#}");
    // Every order is final, and stock items (which also end in `written_back`) are not
    // counted as orders.
    assert_eq!(j["orders_synced"], 120, "{j:#}");
    assert_eq!(j["sandbox"]["xero_totals"]["invoices"], 120, "{j:#}");
    assert_eq!(j["xero_429s"], 0, "{j:#}");
    assert_eq!(j["sandbox"]["xero_429s_sent"], 0, "{j:#}");
    for (name, n) in j["sandbox"]["xero_duplicates"].as_object().unwrap() {
        assert_eq!(n, 0, "duplicate {name}: {j:#}");
    }
    let calls = j["xero_calls"].as_u64().unwrap();
    assert!(calls > 0);
    let per_order = j["calls_per_order"].as_f64().unwrap();
    assert!((per_order - calls as f64 / 120.0).abs() < 1e-9);
    assert_eq!(j["budget"]["per_minute"], 60);
    // The budget's minutes start before connecting, whose calls share the first one.
    assert_eq!(j["budget"]["calls_sampled"], j["xero_calls"], "{j:#}");
    // Orders per Xero-minute is orders over the run's simulated minutes.
    let sim_minutes = j["wall_secs"].as_f64().unwrap() * 600.0 / 60.0;
    let opm = j["orders_per_xero_minute"].as_f64().unwrap();
    assert!((opm - 120.0 / sim_minutes).abs() / opm < 0.01, "{j:#}");
    assert!(j["peak_rss_mb"].as_f64().unwrap() > 0.0);
    // Every order was final at some point, no later than the link went idle.
    let final_secs = j["orders_final_secs"]
        .as_f64()
        .expect("orders became final");
    assert!(final_secs <= j["wall_secs"].as_f64().unwrap(), "{j:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unlimited_lifts_the_limits_on_both_sides_and_reports_no_utilisation() {
    let report = backfill(BackfillOptions {
        orders: 120,
        time_scale: 60.0,
        unlimited: true,
        seed: 7,
        engine_process: false,
        sync: Vec::new(),
    })
    .await
    .unwrap();
    let j = report.to_json();
    assert_eq!(j["finished"], true, "{j:#}");
    assert_eq!(j["orders_synced"], 120, "{j:#}");
    assert_eq!(j["xero_429s"], 0, "{j:#}");
    // The engine's budget no longer paces at Xero's 60 a minute...
    assert_eq!(j["budget"]["per_minute"], 1_000_000_000u64, "{j:#}");
    // ...so utilisation of a budget nobody waits on means nothing and is not reported.
    assert!(j["budget_utilisation"].is_null(), "{j:#}");
    // Each order is parsed once on its way to contact_ready (by ingest for a returning
    // customer, else by the contacts stage); invoices and payments reuse that parse.
    let parses = &j["ledger"]["orders_reused_parsed"];
    eprintln!("parsed-order reuse: {parses}");
    assert!(parses["reused"].as_u64().unwrap() >= 2 * 120 - 10, "{j:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_tunables_given_to_the_benchmark_reach_the_engine() {
    let report = backfill(BackfillOptions {
        orders: 60,
        time_scale: 600.0,
        unlimited: true,
        seed: 8,
        engine_process: false,
        sync: vec!["bulk_comments=false".into(), "round_limit = 50".into()],
    })
    .await
    .unwrap();
    let j = report.to_json();
    assert_eq!(j["finished"], true, "{j:#}");
    assert_eq!(j["sync"][0], "bulk_comments=false", "{j:#}");
    let requests = &j["sandbox"]["magento_requests"];
    // With bulk comments off, each comment is its own request and none goes in bulk.
    assert!(
        requests["POST /V1/orders/{id}/comments"]["200"].as_u64() > Some(0),
        "{j:#}"
    );
    assert!(
        requests["POST /async/bulk/V1/orders/byId/comments"].is_null(),
        "{j:#}"
    );

    let refused = backfill(BackfillOptions {
        orders: 10,
        time_scale: 600.0,
        unlimited: true,
        seed: 8,
        engine_process: false,
        sync: vec!["no_such_tunable = 1".into()],
    })
    .await;
    let err = format!("{:#}", refused.expect_err("an unknown tunable is refused"));
    assert!(err.contains("no_such_tunable"), "{err}");
}
