//! Acceptance: the backfill under the sandbox's fault profiles (5xx, connection resets,
//! timeouts after the write committed, 429 storms, and all of them at once) ends with the
//! same books as a clean run; and one invoice Xero refuses in a batch of 50 is dead-lettered
//! with Xero's own words while the other 49 are posted in that same batch.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration as Days};
use serde_json::{Value, json};
use tally_actors::ledger::{EntityKind, Ledger, Stage};
use tally_fixtures::faults::FaultProfile;

use common::{
    SandboxEnv, XeroReader, assert_books_balance, config_with, dec, magento_customer_emails,
    sales_invoices_by_number, sandbox_env, sync_once,
};

const ORDERS: usize = 300;
/// Slower than the backfill tests: Xero replays an idempotent request for about six
/// simulated minutes, and a retry after a held-then-dropped response must fall inside that
/// window, as it would against the real Xero (12 real seconds here).
const TIME_SCALE: f64 = 30.0;

/// Faults injected into a simulator, by kind (`5xx`, `reset`, `timeout_after_commit`, ...).
fn injected(counters: &Value) -> BTreeMap<String, u64> {
    counters["faults"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(0)))
        .collect()
}

/// A config whose retries are quick but patient: a transient fault must never be what
/// dead-letters an order. The Xero timeout is shorter than the sandbox's hold on a
/// "timeout after commit", so the engine gives up on the response before the reset.
fn patient_config(env: &SandboxEnv) -> std::path::PathBuf {
    config_with(
        env,
        "faults.toml",
        &[
            ("xero", "timeout_secs", toml::Value::Integer(1)),
            ("sync", "max_attempts", toml::Value::Integer(40)),
            // More, smaller batches: more Xero writes for the faults to hit.
            ("sync", "batch_size", toml::Value::Integer(10)),
            ("sync", "retry_base_ms", toml::Value::Integer(50)),
        ],
    )
}

/// `profile` with every fault rate multiplied by `factor`.
fn boosted(profile: &FaultProfile, factor: f64) -> FaultProfile {
    let r = |rate: f64| (rate * factor).min(0.9);
    FaultProfile {
        error_5xx_rate: r(profile.error_5xx_rate),
        reset_rate: r(profile.reset_rate),
        timeout_after_commit_rate: r(profile.timeout_after_commit_rate),
        malformed_rate: r(profile.malformed_rate),
        storm_429_rate: r(profile.storm_429_rate),
        ..profile.clone()
    }
}

/// A 300-order backfill with `profile` on both simulators, then the books check with the
/// faults off. The backfill makes about ten times fewer calls to Xero than to Magento, so
/// Xero gets the profile's rates times `xero_factor` to see a comparable number of faults.
/// `expect` names the fault kinds that must actually have hit both simulators.
async fn backfill_under(profile: &str, seed: u64, xero_factor: f64, expect: &[&str]) {
    let env = sandbox_env(seed, ORDERS, TIME_SCALE).await;
    let customer_emails = magento_customer_emails(&env).await;
    let contacts_before = XeroReader::connect(&env.config).await.all("Contacts").await;
    let config = patient_config(&env);

    let faults = FaultProfile::named(profile).expect("a named profile");
    env.sandbox.magento.set_faults(faults.clone());
    env.sandbox.xero.set_faults(boosted(&faults, xero_factor));
    let (run, summary) = sync_once(&config).await;
    env.sandbox.set_faults(FaultProfile::default());

    let xero_faults = injected(&env.xero_counters());
    let magento_faults = injected(&env.magento_counters());
    eprintln!(
        "{profile}: faults injected: Xero {xero_faults:?}, Magento {magento_faults:?}; \
         {} Xero calls, {} 429s seen by the engine",
        summary["xero_calls"], summary["xero_429s"]
    );
    for kind in expect {
        assert!(
            xero_faults.get(*kind).copied().unwrap_or(0) > 0,
            "{profile}: no {kind} fault reached the Xero simulator: {xero_faults:?}"
        );
        assert!(
            magento_faults.get(*kind).copied().unwrap_or(0) > 0,
            "{profile}: no {kind} fault reached the Magento simulator: {magento_faults:?}"
        );
    }
    assert_eq!(
        run.code,
        Some(0),
        "{profile}: summary {summary}\nstderr: {}",
        run.stderr
    );
    assert_eq!(summary["finished"], json!(true), "{profile}");
    assert_eq!(summary["dead_letters"], json!([]), "{profile}");

    let books = assert_books_balance(&env, &customer_emails, &contacts_before).await;
    eprintln!("{profile}: {books:?}");
    assert_eq!(books.invoices, ORDERS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backfill_survives_5xx_errors() {
    backfill_under("flaky", 101, 3.0, &["5xx"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backfill_survives_connection_resets() {
    backfill_under("resets", 102, 3.0, &["reset"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backfill_survives_timeouts_after_the_write_committed() {
    backfill_under("timeouts", 103, 2.0, &["timeout_after_commit"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backfill_survives_429_storms() {
    backfill_under("storm", 104, 1.0, &["429_storm"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backfill_survives_chaos() {
    backfill_under(
        "chaos",
        105,
        2.0,
        &["5xx", "reset", "timeout_after_commit", "429_storm"],
    )
    .await;
}

/// A Xero `/Date(ms+0000)/` value.
fn xero_date(v: &Value) -> DateTime<chrono::Utc> {
    let text = v.as_str().expect("a /Date()/ string");
    let ms: i64 = text
        .trim_start_matches("/Date(")
        .split(['+', '-', ')'])
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("not a /Date()/: {text}"));
    DateTime::from_timestamp_millis(ms).expect("a valid timestamp")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_invalid_invoice_in_a_batch_of_50_is_dead_lettered_and_49_are_posted() {
    let env = sandbox_env(77, 50, 120.0).await;
    let xero = XeroReader::connect(&env.config).await;

    // An order dated before the organisation's period lock date: tally has no reason to
    // refuse it, Xero does. Nothing else about it changes.
    let org = xero.get("Organisation").await;
    let lock = xero_date(&org["Organisations"][0]["PeriodLockDate"]);
    let bad_id = 23;
    let created = (lock - Days::days(30))
        .format("%Y-%m-%d %H:%M:%S")
        .to_string();
    let bad = env
        .sandbox
        .magento
        .insert_order(json!({ "entity_id": bad_id, "created_at": created }));
    let bad_number = bad["increment_id"].as_str().unwrap().to_owned();
    let bad_key = EntityKind::Order.key(&bad_number);

    let config = config_with(
        &env,
        "batch.toml",
        &[("sync", "batch_size", toml::Value::Integer(50))],
    );
    let (run, summary) = sync_once(&config).await;
    assert_eq!(
        run.code,
        Some(1),
        "exit 1: something was dead-lettered; summary {summary}\nstderr: {}",
        run.stderr
    );
    assert_eq!(summary["finished"], json!(true));

    // The one Xero refused is in the DLQ with Xero's message.
    let letters = summary["dead_letters"].as_array().unwrap();
    assert_eq!(letters.len(), 1, "{letters:?}");
    let letter = &letters[0];
    assert_eq!(letter["key"], json!(bad_key));
    let remote = letter["remote_message"].as_str().unwrap_or_default();
    eprintln!("dead letter: {letter}");
    assert!(
        remote.contains("period lock date"),
        "Xero's own words are kept: {letter}"
    );

    // One PUT /Invoices carried all 50: every order's intent names the same batch.
    let counters = env.xero_counters();
    let puts: u64 = counters["requests"]["PUT /api.xro/2.0/Invoices"]
        .as_object()
        .expect("PUT /Invoices was called")
        .values()
        .filter_map(Value::as_u64)
        .sum();
    assert_eq!(puts, 1, "one PUT /Invoices for the 50 orders: {counters}");
    let p = env.ledger.clone();
    let ledger = tokio::task::spawn_blocking(move || Ledger::open(&p))
        .await
        .unwrap()
        .expect("ledger opens");
    let mut batches: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for id in 1..=50 {
        let key = EntityKind::Order.key(&format!("{id:09}"));
        for e in ledger.audit_for(&key).await.unwrap() {
            if let Some(batch) = e.detail.strip_prefix("intent PUT Invoices key=") {
                batches
                    .entry(batch.to_owned())
                    .or_default()
                    .insert(key.clone());
            }
        }
    }
    assert_eq!(batches.len(), 1, "one invoice batch: {batches:?}");
    let members = batches.values().next().unwrap();
    assert_eq!(members.len(), 50);
    assert!(members.contains(&bad_key));
    let bad_state = ledger.get(&bad_key).await.unwrap().unwrap();
    assert_eq!(bad_state.stage, Stage::Dead);
    drop(ledger);

    // The other 49 are in Xero with Magento's totals; the bad one is not.
    let invoices = sales_invoices_by_number(&xero.all("Invoices").await);
    assert_eq!(
        invoices.values().map(Vec::len).sum::<usize>(),
        49,
        "{:?}",
        invoices.keys()
    );
    assert!(!invoices.contains_key(&bad_number));
    for o in env.seeded_orders() {
        let number = o["increment_id"].as_str().unwrap();
        if number == bad_number {
            continue;
        }
        let found = &invoices[number];
        assert_eq!(found.len(), 1, "order {number}");
        assert_eq!(
            dec(&found[0]["Total"]),
            dec(&o["grand_total"]),
            "order {number}"
        );
    }
}
