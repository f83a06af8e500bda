//! Writeback comments through Magento's bulk API, when Magento's consumer is late.
//!
//! A bulk request is only accepted; Magento applies it when its `async.operations.all`
//! consumer runs. An engine that crashed after handing comments over, then looked up the
//! order, would find no comment and write a second one when the queue finally ran. These
//! tests stop the sandbox's consumer to hold that window open.

mod common;

use std::time::{Duration, Instant};

use rust_decimal::Decimal;
use serde_json::{Value, json};

use common::{
    SandboxEnv, config_with, dec_or_zero, path_str, sandbox_env, sandbox_env_with, spawn_sync,
    sync_once, tally_comments,
};
use tally_fixtures::magento::MagentoSimConfig;
use tally_fixtures::sandbox::SandboxOptions;

const BULK_POST: &str = "POST /async/bulk/V1/orders/byId/comments";
const QUEUE_SEARCH: &str = "GET /V1/bulk";
const SINGLE_COMMENT: &str = "POST /V1/orders/{id}/comments";

/// Requests the Magento simulator answered on `route`, whatever their status.
fn answered(env: &SandboxEnv, route: &str) -> u64 {
    env.magento_counters()["requests"][route]
        .as_object()
        .map_or(0, |by_status| {
            by_status.values().filter_map(Value::as_u64).sum()
        })
}

/// Waits for `what` to hold, failing after a bound that only a hang exceeds.
async fn until(what: &str, mut holds: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(180);
    while !holds() {
        assert!(Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Every seeded order's entity id, and whether Magento has taken payment on it.
fn paid_flags(env: &SandboxEnv) -> Vec<(i64, bool)> {
    env.seeded_orders()
        .iter()
        .map(|o| {
            let paid = dec_or_zero(&o["payment"], "amount_paid") > Decimal::ZERO;
            (o["entity_id"].as_i64().unwrap(), paid)
        })
        .collect()
}

fn assert_one_comment_per_paid_order(env: &SandboxEnv) {
    for (id, paid) in paid_flags(env) {
        let stored = env.sandbox.magento.order(id).unwrap();
        assert_eq!(
            tally_comments(&stored),
            usize::from(paid),
            "order {id}: tally comments"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_with_comments_still_queued_comments_every_order_once() {
    let env = sandbox_env(31, 80, 120.0).await;
    let paid = paid_flags(&env).iter().filter(|(_, p)| *p).count() as u64;
    assert!(paid > 10, "the seed pays enough orders ({paid})");
    let config = config_with(
        &env,
        "bulk.toml",
        &[
            ("sync", "bulk_wait_secs", toml::Value::Integer(600)),
            ("sync", "retry_base_ms", toml::Value::Integer(50)),
            ("sync", "max_attempts", toml::Value::Integer(100)),
        ],
    );
    env.sandbox.magento.set_bulk_consumer_paused(true);

    // Run 1 hands a round of comments to Magento and is killed while it waits for them.
    let mut first = spawn_sync(&config, true);
    until("a bulk of comments was accepted", || {
        answered(&env, BULK_POST) >= 1
    })
    .await;
    first.kill().await.unwrap();
    let queued = env.magento_counters()["bulk"]["open"].as_u64().unwrap();
    assert!(queued >= 1, "{}", env.magento_counters()["bulk"]);
    assert_eq!(
        env.magento_counters()["writes"]["comments_per_order"],
        json!({}),
        "nothing is applied while the consumer is stopped"
    );

    // Run 2 finds those orders mid-attempt. It must not look them up (and comment again)
    // while their comments are queued: it reads Magento's queue and holds them.
    let second = spawn_sync(&config, true);
    until(
        "the restarted run read Magento's bulk queue (or commented)",
        || answered(&env, QUEUE_SEARCH) + answered(&env, SINGLE_COMMENT) >= 1,
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        env.magento_counters()["writes"]["comments_per_order"],
        json!({}),
        "held orders were not commented on while their comments were queued"
    );
    assert_eq!(answered(&env, SINGLE_COMMENT), 0);

    // Magento's consumer runs: the queued comments land, and the held orders find them.
    env.sandbox.magento.set_bulk_consumer_paused(false);
    let out = tokio::time::timeout(Duration::from_secs(300), second.wait_with_output())
        .await
        .expect("run 2 finishes")
        .unwrap();
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("{e}: {}", String::from_utf8_lossy(&out.stderr));
    });
    assert_eq!(out.status.code(), Some(0), "{summary}");
    assert_eq!(summary["dead_letters"], json!([]));

    assert_one_comment_per_paid_order(&env);
    let bulk = &env.magento_counters()["bulk"];
    assert_eq!(bulk["open"], json!(0), "{bulk}");
    assert_eq!(bulk["failed"], json!(0), "{bulk}");
    // Every comment went by bulk exactly once: the orders held across the crash were
    // found commented, not sent again, singly or in bulk.
    assert_eq!(bulk["operations"], json!(paid), "{bulk}");
    assert_eq!(answered(&env, SINGLE_COMMENT), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn comments_a_stopped_consumer_never_applies_reach_the_dead_letters_saying_why() {
    let env = sandbox_env(32, 30, 120.0).await;
    let config = config_with(
        &env,
        "stalled.toml",
        &[
            ("sync", "bulk_wait_secs", toml::Value::Integer(1)),
            ("sync", "retry_base_ms", toml::Value::Integer(50)),
            ("sync", "max_attempts", toml::Value::Integer(2)),
        ],
    );
    env.sandbox.magento.set_bulk_consumer_paused(true);
    let (run, summary) = sync_once(&config).await;
    assert_eq!(
        run.code,
        Some(1),
        "dead letters exit 1: {summary}\n{}",
        run.stderr
    );
    let letters = summary["dead_letters"].as_array().unwrap();
    let paid = paid_flags(&env).iter().filter(|(_, p)| *p).count();
    assert_eq!(letters.len(), paid, "{summary}");
    for l in letters {
        let message = l["message"].as_str().unwrap();
        assert!(
            message.contains("queued bulk comment") && message.contains("async.operations.all"),
            "{l}"
        );
    }
    // Nothing was written twice in the meantime.
    assert_eq!(answered(&env, SINGLE_COMMENT), 0);
    assert_eq!(env.magento_counters()["bulk"]["operations"], json!(paid));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_bulk_comments_off_each_order_is_commented_by_its_own_request() {
    let env = sandbox_env(33, 30, 120.0).await;
    let config = config_with(
        &env,
        "single.toml",
        &[("sync", "bulk_comments", toml::Value::Boolean(false))],
    );
    let (run, summary) = sync_once(&config).await;
    assert_eq!(run.code, Some(0), "{summary}\n{}", run.stderr);
    let paid = paid_flags(&env).iter().filter(|(_, p)| *p).count() as u64;
    assert_eq!(answered(&env, SINGLE_COMMENT), paid);
    assert_eq!(answered(&env, BULK_POST), 0);
    assert_one_comment_per_paid_order(&env);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_without_the_bulk_api_is_commented_one_by_one_without_a_failed_attempt() {
    let env = sandbox_env_with(SandboxOptions {
        seed: 34,
        orders: 40,
        time_scale: 120.0,
        magento_config: MagentoSimConfig {
            bulk_api: false,
            ..MagentoSimConfig::default()
        },
        ..SandboxOptions::default()
    })
    .await;
    let (run, summary) = sync_once(&env.config).await;
    assert_eq!(run.code, Some(0), "{summary}\n{}", run.stderr);
    let paid = paid_flags(&env).iter().filter(|(_, p)| *p).count() as u64;
    // One bulk request finds no route; from then on each comment is its own request.
    assert_eq!(answered(&env, "POST (no route)"), 1);
    assert_eq!(answered(&env, SINGLE_COMMENT), paid);
    // Every comment was a first attempt: none went through the retry's lookup.
    assert_eq!(answered(&env, "GET /V1/orders/{id}"), 0);
    assert_one_comment_per_paid_order(&env);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_warns_when_magento_cannot_take_comments_in_bulk() {
    // A store without the bulk API.
    let env = sandbox_env_with(SandboxOptions {
        seed: 35,
        orders: 5,
        magento_config: MagentoSimConfig {
            bulk_api: false,
            ..MagentoSimConfig::default()
        },
        ..SandboxOptions::default()
    })
    .await;
    let run = common::tally(&["check", "--config", path_str(&env.config)]).await;
    assert_eq!(run.code, Some(0), "a warning, not an error: {}", run.stdout);
    assert!(
        run.stdout
            .contains("warning: sync.bulk_comments: Magento has no async bulk API"),
        "{}",
        run.stdout
    );

    // A store whose consumer is stopped with a comment queued.
    let env = sandbox_env(36, 5, 1.0).await;
    let run = common::tally(&["check", "--config", path_str(&env.config)]).await;
    assert!(!run.stdout.contains("bulk_comments"), "{}", run.stdout);
    env.sandbox.magento.set_bulk_consumer_paused(true);
    let accepted = common::magento_post(
        &env,
        "async/bulk/V1/orders/byId/comments",
        json!([{"id": 1, "statusHistory": {"comment": "queued"}}]),
    )
    .await;
    assert_eq!(accepted["errors"], json!(false), "{accepted}");
    let run = common::tally(&["check", "--config", path_str(&env.config)]).await;
    assert_eq!(run.code, Some(0), "{}", run.stdout);
    assert!(
        run.stdout
            .contains("1 writeback comment operation(s) are open in Magento's bulk queue"),
        "{}",
        run.stdout
    );
    // With bulk comments off there is nothing to say.
    let off = config_with(
        &env,
        "off.toml",
        &[("sync", "bulk_comments", toml::Value::Boolean(false))],
    );
    let run = common::tally(&["check", "--config", path_str(&off)]).await;
    assert!(!run.stdout.contains("bulk_comments"), "{}", run.stdout);
}
