//! Reads that serve a whole round at once: `get_many` and `stages_of` (one transaction for
//! many keys) and
//! `count_in_stage` (a key-only count of one kind in one stage).

use serde_json::json;
use tally_actors::ledger::*;

fn put(state: EntityState) -> Write {
    Write::Put {
        state,
        actor: "test".into(),
        detail: String::new(),
    }
}

fn open() -> (tempfile::TempDir, Ledger) {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::open(dir.path().join("t.redb")).unwrap();
    (dir, ledger)
}

#[tokio::test]
async fn get_many_answers_every_key_in_order_with_none_for_unknown_ones() {
    let (_dir, ledger) = open();
    let writes = ["000000001", "000000002", "000000003"]
        .iter()
        .map(|id| {
            put(EntityState::new(
                EntityKind::Order,
                id,
                json!({ "increment_id": id }),
            ))
        })
        .collect();
    ledger.commit(writes).await.unwrap();
    let keys = vec![
        "order:000000003".to_owned(),
        "order:404".to_owned(),
        "order:000000001".to_owned(),
    ];
    let got = ledger.get_many(keys).await.unwrap();
    assert_eq!(got.len(), 3);
    assert_eq!(got[0].as_ref().unwrap().key, "order:000000003");
    assert_eq!(got[0].as_ref().unwrap().version, 1);
    assert!(got[1].is_none());
    assert_eq!(
        got[2].as_ref().unwrap().data.value()["increment_id"],
        json!("000000001")
    );
    assert!(ledger.get_many(Vec::new()).await.unwrap().is_empty());

    // The stages alone, in the same order, for the same keys.
    let mut moved = ledger.get("order:000000001").await.unwrap().unwrap();
    moved.stage = Stage::ContactReady;
    ledger.commit(vec![put(moved)]).await.unwrap();
    let keys = vec![
        "order:000000003".to_owned(),
        "order:404".to_owned(),
        "order:000000001".to_owned(),
    ];
    assert_eq!(
        ledger.stages_of(keys).await.unwrap(),
        vec![Some(Stage::Seen), None, Some(Stage::ContactReady)]
    );
}

#[tokio::test]
async fn count_in_stage_counts_one_kind_only() {
    let (_dir, ledger) = open();
    let mut writes = Vec::new();
    for i in 0..5 {
        writes.push(put(EntityState::new(
            EntityKind::Order,
            &format!("{i:09}"),
            json!({}),
        )));
    }
    // Stock items and payments share the `seen` stage with orders; keys sort around "order:".
    for sku in ["A", "B"] {
        writes.push(put(EntityState::new(EntityKind::StockItem, sku, json!({}))));
    }
    writes.push(put(EntityState::new(EntityKind::Payment, "p1", json!({}))));
    ledger.commit(writes).await.unwrap();
    assert_eq!(
        ledger
            .count_in_stage(Stage::Seen, EntityKind::Order)
            .await
            .unwrap(),
        5
    );
    assert_eq!(
        ledger
            .count_in_stage(Stage::Seen, EntityKind::StockItem)
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        ledger
            .count_in_stage(Stage::Seen, EntityKind::Payment)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        ledger
            .count_in_stage(Stage::Paid, EntityKind::Order)
            .await
            .unwrap(),
        0
    );
    let counts = ledger.counts_by_stage().await.unwrap();
    assert_eq!(
        counts[&Stage::Seen],
        8,
        "the stage counter counts every kind"
    );
}
