//! What survives closing the file, and how a file from another schema is refused.

use redb::{Database, ReadableDatabase};
use serde_json::json;
use std::path::Path;
use tally_actors::ledger::tables::{
    ENTITY_TO_RECORD, ENTITY_TO_STATE, META, META_SCHEMA_VERSION, SCHEMA_VERSION,
};
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
                    actor: "reconciler".into(),
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
        text.contains(&format!(
            "schema version 0, older than this build's {SCHEMA_VERSION}"
        )),
        "{text}"
    );
    assert!(text.contains("t.redb"), "{text}");
    assert_eq!(
        read_schema_version(&path),
        0,
        "a refused file is not rewritten"
    );
}

/// Version 1 kept each state's record inside it. Such a file opens (and is marked version
/// 2), its states read with their records, and the next write of a state moves its record to
/// `ENTITY_TO_RECORD`, after which the state itself no longer carries it.
#[tokio::test]
async fn a_version_1_file_is_upgraded_in_place_and_split_on_write() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.redb");
    drop(Ledger::open(&path).unwrap());
    let record = json!({"increment_id": "7", "grand_total": 19.99});
    {
        let mut v1 = EntityState::new(EntityKind::Order, "7", record.clone());
        v1.version = 1;
        let body = serde_json::to_vec(&json!({"v": 1, "body": v1})).unwrap();
        assert!(String::from_utf8_lossy(&body).contains("grand_total"));
        let db = Database::open(&path).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(ENTITY_TO_STATE)
            .unwrap()
            .insert("order:7", body.as_slice())
            .unwrap();
        txn.open_table(META)
            .unwrap()
            .insert(META_SCHEMA_VERSION, 1)
            .unwrap();
        txn.commit().unwrap();
    }
    let raw = |table: redb::TableDefinition<&str, &[u8]>| {
        let db = Database::open(&path).unwrap();
        let rtx = db.begin_read().unwrap();
        let t = rtx.open_table(table).unwrap();
        t.get("order:7")
            .unwrap()
            .map(|g| String::from_utf8(g.value().to_vec()).unwrap())
    };
    {
        let ledger = Ledger::open(&path).unwrap();
        let s = ledger.get("order:7").await.unwrap().unwrap();
        assert_eq!(s.data.value(), record, "a version 1 state keeps its record");
        advance(&ledger, "order:7", Stage::ContactReady, None, "moved").await;
        let s = ledger.get("order:7").await.unwrap().unwrap();
        assert_eq!(s.data.value(), record);
        assert_eq!(s.stage, Stage::ContactReady);
    }
    assert_eq!(read_schema_version(&path), SCHEMA_VERSION);
    let state = raw(ENTITY_TO_STATE).unwrap();
    assert!(!state.contains("grand_total"), "{state}");
    assert_eq!(
        raw(ENTITY_TO_RECORD).as_deref(),
        Some(r#"{"increment_id":"7","grand_total":19.99}"#)
    );
}

#[tokio::test]
async fn a_state_is_stored_without_its_record_and_read_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.redb");
    let ledger = Ledger::open(&path).unwrap();
    let record = json!({"increment_id": "8", "items": [{"sku": "A"}]});
    ledger
        .commit(vec![put(
            EntityState::new(EntityKind::Order, "8", record.clone()),
            "t",
            "",
        )])
        .await
        .unwrap();
    advance(&ledger, "order:8", Stage::ContactReady, None, "moved").await;
    let mut s = ledger.get("order:8").await.unwrap().unwrap();
    assert_eq!(s.data.value(), record);
    // A changed record is stored; so is a rollback of a rejected write's record.
    s.data = json!({"increment_id": "8", "items": []}).into();
    let stale = s.clone();
    ledger.commit(vec![put(s, "t", "refreshed")]).await.unwrap();
    assert_eq!(
        ledger.get("order:8").await.unwrap().unwrap().data.value(),
        json!({"increment_id": "8", "items": []})
    );
    let mut conflicting = stale;
    conflicting.data = json!({"increment_id": "8", "lost": true}).into();
    assert!(
        ledger
            .commit(vec![put(conflicting, "t", "")])
            .await
            .is_err()
    );
    assert_eq!(
        ledger.get("order:8").await.unwrap().unwrap().data.value(),
        json!({"increment_id": "8", "items": []}),
        "a refused write leaves the stored record as it was"
    );
    // Search looks inside the record, which is no longer inside the state.
    let mut s = ledger.get("order:8").await.unwrap().unwrap();
    s.data = json!({"increment_id": "8", "customer_email": "Zed@Example.com"}).into();
    ledger.commit(vec![put(s, "t", "")]).await.unwrap();
    let found = ledger.search("zed@example", 5).await.unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].data.value()["customer_email"], "Zed@Example.com");
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
    // Opening reads every state's stage (the stage index is rebuilt from them), so such a
    // file is refused when it is opened, before any stage runs on a misread state.
    let err = Ledger::open(&path).unwrap_err();
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
    assert!(err.to_string().contains("order:1"), "{err}");
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

/// Version 2 kept the stage index as a table. Opening such a file lists the stages from the
/// states (whatever the old table said), deletes the table and marks the file version 3, so a
/// version 2 build refuses it instead of trusting a table nothing updates any more.
#[tokio::test]
async fn a_version_2_file_loses_its_stage_table_and_lists_stages_from_the_states() {
    use tally_actors::ledger::tables::{LEGACY_STAGE_TO_COUNT, LEGACY_STAGE_TO_ENTITY};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.redb");
    {
        let ledger = Ledger::open(&path).unwrap();
        ledger
            .commit(vec![put(
                EntityState::new(EntityKind::Order, "9", json!({"increment_id": "9"})),
                "t",
                "",
            )])
            .await
            .unwrap();
    }
    {
        let db = Database::open(&path).unwrap();
        let txn = db.begin_write().unwrap();
        // A stale entry, as a version 2 file could hold for an entity that moved since.
        txn.open_table(LEGACY_STAGE_TO_ENTITY)
            .unwrap()
            .insert(("paid", "order:9"), ())
            .unwrap();
        // And a stale count: the counts now come from the states.
        txn.open_table(LEGACY_STAGE_TO_COUNT)
            .unwrap()
            .insert("paid", 5)
            .unwrap();
        txn.open_table(META)
            .unwrap()
            .insert(META_SCHEMA_VERSION, 2)
            .unwrap();
        txn.commit().unwrap();
    }
    {
        let ledger = Ledger::open(&path).unwrap();
        let counts = ledger.counts_by_stage().await.unwrap();
        assert_eq!((counts[&Stage::Seen], counts[&Stage::Paid]), (1, 0));
        let seen = ledger.by_stage(Stage::Seen, 10).await.unwrap();
        assert_eq!(seen.len(), 1);
        assert!(ledger.by_stage(Stage::Paid, 10).await.unwrap().is_empty());
    }
    assert_eq!(read_schema_version(&path), SCHEMA_VERSION);
    let db = Database::open(&path).unwrap();
    let rtx = db.begin_read().unwrap();
    assert!(
        matches!(
            rtx.open_table(LEGACY_STAGE_TO_ENTITY),
            Err(redb::TableError::TableDoesNotExist(_))
        ),
        "the old stage table is deleted"
    );
    assert!(
        matches!(
            rtx.open_table(LEGACY_STAGE_TO_COUNT),
            Err(redb::TableError::TableDoesNotExist(_))
        ),
        "the old count table is deleted"
    );
}

#[tokio::test]
async fn a_version_3_file_loses_its_link_table_and_finds_links_from_the_states() {
    use tally_actors::ledger::tables::LEGACY_LINK_TO_ENTITY;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.redb");
    {
        let ledger = Ledger::open(&path).unwrap();
        let mut s = EntityState::new(EntityKind::Order, "9", json!({"increment_id": "9"}));
        s.links.insert("invoice_id".into(), "i-9".into());
        ledger.commit(vec![put(s, "t", "")]).await.unwrap();
    }
    {
        let db = Database::open(&path).unwrap();
        let txn = db.begin_write().unwrap();
        // A stale entry, as a version 3 file could hold for a link that changed since.
        txn.open_table(LEGACY_LINK_TO_ENTITY)
            .unwrap()
            .insert(("invoice_id:i-old", "order:9"), ())
            .unwrap();
        txn.open_table(META)
            .unwrap()
            .insert(META_SCHEMA_VERSION, 3)
            .unwrap();
        txn.commit().unwrap();
    }
    {
        let ledger = Ledger::open(&path).unwrap();
        let found = ledger.by_link("invoice_id", "i-9").await.unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].key, "order:9");
        assert!(
            ledger
                .by_link("invoice_id", "i-old")
                .await
                .unwrap()
                .is_empty()
        );
    }
    assert_eq!(read_schema_version(&path), SCHEMA_VERSION);
    let db = Database::open(&path).unwrap();
    let rtx = db.begin_read().unwrap();
    assert!(
        matches!(
            rtx.open_table(LEGACY_LINK_TO_ENTITY),
            Err(redb::TableError::TableDoesNotExist(_))
        ),
        "the old link table is deleted"
    );
}

/// The creation time is written once, when the file is made, and kept across reopens: the
/// reconciler's first pass starts there.
#[tokio::test]
async fn the_creation_time_is_set_once_and_kept() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.redb");
    let before = chrono::Utc::now().timestamp_millis() as u64;
    let created = {
        let ledger = Ledger::open(&path).unwrap();
        ledger
            .created_at_ms()
            .await
            .unwrap()
            .expect("set at creation")
    };
    let after = chrono::Utc::now().timestamp_millis() as u64;
    assert!(
        (before..=after).contains(&created),
        "{before} ≤ {created} ≤ {after}"
    );
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let ledger = Ledger::open(&path).unwrap();
    assert_eq!(ledger.created_at_ms().await.unwrap(), Some(created));
}
