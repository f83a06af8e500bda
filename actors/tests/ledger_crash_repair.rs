//! A ledger left open by a process that died: what the next open does, with and without
//! redb's quick repair (`LedgerOptions`), and which commits a crash may take (only those
//! that hold no intent, and not once the writer has been idle). The crash is real: the test
//! binary runs itself as a child that commits and then aborts with the file open.

use serde_json::json;
use std::path::Path;
use std::process::Command;
use tally_actors::ledger::*;

const CHILD: &str = "TALLY_LEDGER_CRASH_CHILD";
const QUICK: &str = "TALLY_LEDGER_CRASH_QUICK";
/// Set: after its three intents the child records order 1's outcome (no intent), waits
/// this many milliseconds, then dies.
const OUTCOME_THEN_WAIT_MS: &str = "TALLY_LEDGER_CRASH_OUTCOME_WAIT_MS";

fn put(id: &str) -> Write {
    let mut state = EntityState::new(EntityKind::Order, id, json!({ "increment_id": id }));
    state.intent = Some(Intent {
        op: "PUT Invoices".into(),
        idempotency_key: format!("invoice-{id}"),
        body_sha256: String::new(),
        batch_id: "b-1".into(),
        committed_at_ms: 0,
    });
    Write::Put {
        state,
        actor: "test".into(),
        detail: String::new(),
    }
}

/// The child's part: commit three orders with their intents, one transaction each (and
/// maybe an outcome), then die without closing.
#[test]
fn crash_child() {
    let Some(path) = std::env::var_os(CHILD) else {
        return;
    };
    let options = LedgerOptions {
        quick_repair: std::env::var_os(QUICK).is_some(),
        ..LedgerOptions::default()
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let ledger = Ledger::open_with(&path, options).unwrap();
    let mut versions = Vec::new();
    for id in ["1", "2", "3"] {
        let info = rt.block_on(ledger.commit(vec![put(id)])).unwrap();
        versions.push(info.versions[&format!("order:{id}")]);
    }
    if let Some(wait) = std::env::var_os(OUTCOME_THEN_WAIT_MS) {
        let mut state = rt.block_on(ledger.get("order:1")).unwrap().unwrap();
        state.intent = None;
        state.data = json!({ "increment_id": "1", "invoice": "posted" }).into();
        let outcome = Write::Put {
            state,
            actor: "test".into(),
            detail: "outcome".into(),
        };
        rt.block_on(ledger.commit(vec![outcome])).unwrap();
        let ms: u64 = wait.to_str().unwrap().parse().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(ms));
    }
    std::process::abort();
}

fn crash_with(path: &Path, quick_repair: bool, outcome_wait_ms: Option<u64>) {
    let mut child = Command::new(std::env::current_exe().unwrap());
    child
        .args(["crash_child", "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD, path);
    if quick_repair {
        child.env(QUICK, "1");
    }
    if let Some(ms) = outcome_wait_ms {
        child.env(OUTCOME_THEN_WAIT_MS, ms.to_string());
    }
    let status = child.status().unwrap();
    assert!(!status.success(), "the child must die, not exit: {status}");
}

fn crash(path: &Path, quick_repair: bool) {
    crash_with(path, quick_repair, None);
}

async fn assert_all_three(ledger: &Ledger) {
    for id in ["1", "2", "3"] {
        let key = format!("order:{id}");
        assert!(ledger.get(&key).await.unwrap().is_some(), "{key} was lost");
    }
    assert!(ledger.reader().derived_indexes_are_exact().unwrap());
}

#[tokio::test]
async fn without_quick_repair_a_crashed_ledger_is_repaired_at_open_and_keeps_every_commit() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.redb");
    crash(&path, false);
    let ledger = Ledger::open(&path).unwrap();
    assert!(ledger.repaired_at_open(), "the unclean file was checked");
    assert_all_three(&ledger).await;
    ledger.commit(vec![put("4")]).await.unwrap();
    drop(ledger);
    // Closed cleanly this time: no repair.
    let ledger = Ledger::open(&path).unwrap();
    assert!(!ledger.repaired_at_open());
    assert!(ledger.get("order:4").await.unwrap().is_some());
}

#[tokio::test]
async fn with_quick_repair_a_crashed_ledger_opens_without_the_full_check() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.redb");
    crash(&path, true);
    let ledger = Ledger::open_with(
        &path,
        LedgerOptions {
            quick_repair: true,
            ..LedgerOptions::default()
        },
    )
    .unwrap();
    assert!(
        !ledger.repaired_at_open(),
        "quick repair skips the full check"
    );
    assert_all_three(&ledger).await;
}

#[tokio::test]
async fn an_outcome_survives_a_crash_once_the_writer_was_idle() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.redb");
    // Well past the writer's 50 ms: it has made the outcome durable on its own.
    crash_with(&path, false, Some(1_000));
    let ledger = Ledger::open(&path).unwrap();
    assert_all_three(&ledger).await;
    let order = ledger.get("order:1").await.unwrap().unwrap();
    assert!(order.intent.is_none(), "the outcome was kept");
    assert_eq!(order.data.value()["invoice"], "posted");
}

#[tokio::test]
async fn a_crash_right_after_an_outcome_keeps_at_least_its_intent() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.redb");
    crash_with(&path, false, Some(0));
    let ledger = Ledger::open(&path).unwrap();
    assert_all_three(&ledger).await;
    // The outcome skipped its fsync; whether it made it depends on the kernel. Either the
    // outcome or the intent that a restart resolves by lookup is there, never neither.
    let order = ledger.get("order:1").await.unwrap().unwrap();
    match order.intent {
        Some(intent) => assert_eq!(intent.idempotency_key, "invoice-1"),
        None => assert_eq!(order.data.value()["invoice"], "posted"),
    }
}

#[tokio::test]
async fn only_commits_that_hold_an_intent_wait_for_the_disk() {
    for every in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let options = LedgerOptions {
            fsync_every_commit: every,
            ..LedgerOptions::default()
        };
        let ledger = Ledger::open_with(dir.path().join("t.redb"), options).unwrap();
        ledger.commit(vec![put("1")]).await.unwrap();
        let mut state = ledger.get("order:1").await.unwrap().unwrap();
        state.intent = None;
        let outcome = Write::Put {
            state,
            actor: "test".into(),
            detail: "outcome".into(),
        };
        ledger.commit(vec![outcome]).await.unwrap();
        let stats = ledger.stats();
        assert_eq!(stats.transactions, 2);
        let expected = if every { 2 } else { 1 };
        assert_eq!(
            stats.durable_transactions, expected,
            "fsync_every_commit = {every}"
        );
    }
}
