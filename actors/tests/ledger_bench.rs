//! Throughput figures for the writer, printed (run with `--nocapture`); no timing asserts.
//! The engine target is about 5,000 orders/s with ~4 transitions each, which only batching
//! can reach: one durable commit costs two fsyncs.

use futures::future::join_all;
use serde_json::json;
use std::time::Instant;
use tally_actors::ledger::*;

fn put(id: String) -> Write {
    Write::Put {
        state: EntityState::new(
            EntityKind::Order,
            &id,
            json!({ "increment_id": id, "grand_total": "123.45", "items": [{ "sku": "MUG-RED", "qty": 2 }] }),
        ),
        actor: "bench".into(),
        detail: String::new(),
    }
}

fn report(label: &str, commits: u64, writes: u64, started: Instant, stats: LedgerStats) {
    let secs = started.elapsed().as_secs_f64();
    println!(
        "ledger bench {label}: {commits} commits ({writes} transitions) in {secs:.2}s = {:.0} commits/s, {:.0} transitions/s, {} transactions (largest group {})",
        commits as f64 / secs,
        writes as f64 / secs,
        stats.transactions,
        stats.largest_group
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writer_throughput_for_1_and_64_writers_and_batches() {
    let dir = tempfile::tempdir().unwrap();

    let one = Ledger::open(dir.path().join("one.redb")).unwrap();
    let started = Instant::now();
    for i in 0..300 {
        one.commit(vec![put(format!("s{i}"))]).await.unwrap();
    }
    let stats = one.stats();
    report("1 writer", 300, 300, started, stats);
    assert_eq!(
        (stats.commits, stats.transactions),
        (300, 300),
        "a lone writer cannot group"
    );

    let many = Ledger::open(dir.path().join("many.redb")).unwrap();
    let started = Instant::now();
    let writers = (0..64).map(|w| {
        let ledger = many.clone();
        async move {
            for i in 0..40 {
                ledger.commit(vec![put(format!("w{w}-{i}"))]).await.unwrap();
            }
        }
    });
    join_all(writers).await;
    let stats = many.stats();
    report("64 writers", 2560, 2560, started, stats);
    assert_eq!(stats.commits, 2560);
    assert!(stats.transactions < stats.commits);

    let batched = Ledger::open(dir.path().join("batched.redb")).unwrap();
    let started = Instant::now();
    let writers = (0..4).map(|w| {
        let ledger = batched.clone();
        async move {
            for b in 0..25 {
                let batch = (0..50)
                    .map(|i| vec![put(format!("b{w}-{b}-{i}"))])
                    .collect();
                for r in ledger.commit_each(batch).await {
                    r.unwrap();
                }
            }
        }
    });
    join_all(writers).await;
    let stats = batched.stats();
    report("4 writers x commit_each(50)", 5000, 5000, started, stats);
    assert_eq!(stats.commits, 5000);
    assert_eq!(batched.counts_by_stage().await.unwrap()[&Stage::Seen], 5000);
}
