//! What survives closing the file, and how a file from another schema is refused.

use redb::{Database, ReadableDatabase};
use serde_json::json;
use std::path::Path;
use tally_actors::ledger::tables::{ENTITY_TO_STATE, META, META_SCHEMA_VERSION, SCHEMA_VERSION};
use tally_actors::ledger::*;

fn put(state: EntityState, actor: &str, detail: &str) -> Write {
    Write::Put {
        state,
        actor: actor.into(),
        detail: detail.into(),
    }
}

fn intent(key: &str) -> Intent {
    Intent {
        op: "PUT Invoices".into(),
        idempotency_key: key.into(),
        body_sha256: "00".repeat(32),
        batch_id: "b1".into(),
        committed_at_ms: 42,
    }
}

async fn advance(ledger: &Ledger, key: &str, stage: Stage, intent: Option<Intent>, detail: &str) {
    let mut s = ledger.get(key).await.unwrap().unwrap();
    s.stage = stage;
    s.intent = intent;
    ledger.commit(vec![put(s, "test", detail)]).await.unwrap();
}

#[tokio::test]
async fn reopening_preserves_everything() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.redb");
    let (state, trail, stats_before) = {
        let ledger = Ledger::open(&path).unwrap();
        let mut o = EntityState::new(EntityKind::Order, "1", json!({ "total": "10.00" }));
        o.links.insert("invoice_id".into(), "i-1".into());
        o.retry_at_ms = Some(77);
        ledger.commit(vec![put(o, "ingest", "seen")]).await.unwrap();
        advance(&ledger, "order:1", Stage::ContactReady, None, "contact").await;
        ledger
            .commit(vec![
                Write::DeadLetter {
                    letter: DeadLetter {
                        key: "order:2".into(),
                        record: "order 2".into(),
                        field: None,
                        message: "bad".into(),
                        remote_message: None,
                        stage_at_death: None,
                        attempts: 0,
                        first_failed_at_ms: 1,
                        dead_at_ms: 0,
                        payload: None,
                    },
                    actor: "ingest".into(),
                },
                Write::SetCursor {
                    name: "c".into(),
                    value: json!(5),
                },
                Write::SetToken {
                    name: "t".into(),
                    bytes: vec![9; 3],
                },
                Write::PutDiscrepancy {
                    key: "d".into(),
                    value: json!("x"),
                },
            ])
            .await
            .unwrap();
        let state = ledger.get("order:1").await.unwrap().unwrap();
        (state, ledger.audit_tail(100).await.unwrap(), ledger.stats())
    };
    assert!(stats_before.transactions >= 3);

    // Dropping the last handle closes the file, so it can be opened again right away.
    let ledger = Ledger::open(&path).unwrap();
    assert_eq!(ledger.get("order:1").await.unwrap().unwrap(), state);
    assert_eq!(ledger.audit_tail(100).await.unwrap(), trail);
    assert_eq!(ledger.dead_letters().await.unwrap().len(), 1);
    assert_eq!(ledger.cursor("c").await.unwrap(), Some(json!(5)));
    assert_eq!(ledger.token("t").await.unwrap(), Some(vec![9; 3]));
    assert_eq!(ledger.discrepancies().await.unwrap().len(), 1);
    assert_eq!(ledger.by_link("invoice_id", "i-1").await.unwrap().len(), 1);
    assert_eq!(ledger.due_before(100, 10).await.unwrap().len(), 1);
    assert_eq!(
        ledger.counts_by_stage().await.unwrap()[&Stage::ContactReady],
        1
    );
    assert_eq!(
        ledger.stats(),
        LedgerStats::default(),
        "counters are per process"
    );

    // The audit sequence continues where it stopped.
    let info = ledger
        .commit(vec![put(
            EntityState::new(EntityKind::Order, "3", json!({})),
            "ingest",
            "",
        )])
        .await
        .unwrap();
    assert_eq!(info.audit_seqs, vec![trail.last().unwrap().seq + 1]);
}

#[tokio::test]
async fn with_intent_after_reopen_lists_calls_whose_outcome_is_unknown() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.redb");
    {
        let ledger = Ledger::open(&path).unwrap();
        for id in ["1", "2", "3"] {
            ledger
                .commit(vec![put(
                    EntityState::new(EntityKind::Order, id, json!({})),
                    "ingest",
                    "",
                )])
                .await
                .unwrap();
            advance(
                &ledger,
                &format!("order:{id}"),
                Stage::ContactReady,
                None,
                "",
            )
            .await;
        }
        // 1: intent committed, then the process "died" before the call's outcome.
        advance(
            &ledger,
            "order:1",
            Stage::InvoicePosting,
            Some(intent("inv-1")),
            "intent",
        )
        .await;
        // 2: intent and outcome both committed.
        advance(
            &ledger,
            "order:2",
            Stage::InvoicePosting,
            Some(intent("inv-2")),
            "intent",
        )
        .await;
        advance(&ledger, "order:2", Stage::Invoiced, None, "accepted").await;
        // 3: never got as far as an intent.
    }
    let ledger = Ledger::open(&path).unwrap();
    let pending = ledger.with_intent().await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].key, "order:1");
    assert_eq!(pending[0].stage, Stage::InvoicePosting);
    assert_eq!(pending[0].intent, Some(intent("inv-1")));
}

fn write_schema_version(path: &Path, version: u64) {
    let db = Database::open(path).unwrap();
    let txn = db.begin_write().unwrap();
    txn.open_table(META)
        .unwrap()
        .insert(META_SCHEMA_VERSION, version)
        .unwrap();
    txn.commit().unwrap();
}

fn read_schema_version(path: &Path) -> u64 {
    let db = Database::open(path).unwrap();
    let rtx = db.begin_read().unwrap();
    rtx.open_table(META)
        .unwrap()
        .get(META_SCHEMA_VERSION)
        .unwrap()
        .unwrap()
        .value()
}

#[test]
fn a_new_file_records_the_current_schema_version() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.redb");
    drop(Ledger::open(&path).unwrap());
    assert_eq!(read_schema_version(&path), SCHEMA_VERSION);
}

#[test]
fn an_older_schema_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.redb");
    drop(Ledger::open(&path).unwrap());
    write_schema_version(&path, 0);
    let err = Ledger::open(&path).unwrap_err();
    assert!(
        matches!(err, LedgerError::SchemaTooOld { found: 0, .. }),
        "{err}"
    );
    let text = err.to_string();
    assert!(
        text.contains("schema version 0, older than this build's 1"),
        "{text}"
    );
    assert!(text.contains("t.redb"), "{text}");
    assert_eq!(
        read_schema_version(&path),
        0,
        "a refused file is not rewritten"
    );
}

#[test]
fn a_newer_schema_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.redb");
    drop(Ledger::open(&path).unwrap());
    write_schema_version(&path, u64::MAX);
    let err = Ledger::open(&path).unwrap_err();
    assert!(
        matches!(
            err,
            LedgerError::SchemaTooNew {
                found: u64::MAX,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("newer than this build's"), "{err}");
    assert_eq!(read_schema_version(&path), u64::MAX);
}

#[test]
fn a_record_from_a_newer_release_is_refused_not_misread() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.redb");
    drop(Ledger::open(&path).unwrap());
    {
        let db = Database::open(&path).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(ENTITY_TO_STATE)
            .unwrap()
            .insert(
                "order:1",
                br#"{"v":2,"body":{"something":"else"}}"#.as_slice(),
            )
            .unwrap();
        txn.commit().unwrap();
    }
    let ledger = Ledger::open(&path).unwrap();
    let err = ledger.reader().get("order:1").unwrap_err();
    assert!(
        matches!(
            err,
            LedgerError::RecordVersion {
                found: 2,
                supported: 1,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn a_second_open_of_the_same_file_is_an_error_not_a_second_writer() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.redb");
    let _first = Ledger::open(&path).unwrap();
    let err = Ledger::open(&path).unwrap_err();
    assert!(matches!(err, LedgerError::Open { .. }), "{err}");
}

#[test]
fn the_ledger_config_table_opens_the_file_and_rejects_unknown_keys() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cfg.redb");
    let cfg: LedgerConfig = serde_json::from_value(json!({ "path": path })).unwrap();
    let ledger = cfg.open().unwrap();
    assert_eq!(ledger.path(), path);
    assert!(serde_json::from_value::<LedgerConfig>(json!({ "path": "x", "paht": "y" })).is_err());
}
