//! A ledger left open by a process that died: what the next open does, with and without
//! redb's quick repair (`LedgerOptions`). The crash is real: the test binary runs itself as a
//! child that commits and then aborts with the file open.

use serde_json::json;
use std::path::Path;
use std::process::Command;
use tally_actors::ledger::*;

const CHILD: &str = "TALLY_LEDGER_CRASH_CHILD";
const QUICK: &str = "TALLY_LEDGER_CRASH_QUICK";

fn put(id: &str) -> Write {
    Write::Put {
        state: EntityState::new(EntityKind::Order, id, json!({ "increment_id": id })),
        actor: "test".into(),
        detail: String::new(),
    }
}

/// The child's part: commit three orders, one transaction each, then die without closing.
#[test]
fn crash_child() {
    let Some(path) = std::env::var_os(CHILD) else {
        return;
    };
    let options = LedgerOptions {
        quick_repair: std::env::var_os(QUICK).is_some(),
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let ledger = Ledger::open_with(&path, options).unwrap();
    for id in ["1", "2", "3"] {
        rt.block_on(ledger.commit(vec![put(id)])).unwrap();
    }
    std::process::abort();
}

fn crash(path: &Path, quick_repair: bool) {
    let mut child = Command::new(std::env::current_exe().unwrap());
    child
        .args(["crash_child", "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD, path);
    if quick_repair {
        child.env(QUICK, "1");
    }
    let status = child.status().unwrap();
    assert!(!status.success(), "the child must die, not exit: {status}");
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
    let ledger = Ledger::open_with(&path, LedgerOptions { quick_repair: true }).unwrap();
    assert!(
        !ledger.repaired_at_open(),
        "quick repair skips the full check"
    );
    assert_all_three(&ledger).await;
}
