//! The writer: optimistic concurrency, per-request failure inside a group, atomic multi-write
//! commits, group commit under concurrency, the dead-letter round trip and the indexes.

use futures::future::join_all;
use serde_json::json;
use tally_actors::ledger::*;

fn order(id: &str) -> EntityState {
    EntityState::new(EntityKind::Order, id, json!({ "increment_id": id }))
}

fn put(state: EntityState, actor: &str, detail: &str) -> Write {
    Write::Put {
        state,
        actor: actor.into(),
        detail: detail.into(),
    }
}

/// Stores a new order `id` and returns it as read back (version 1).
async fn stored_order(ledger: &Ledger, id: &str) -> EntityState {
    ledger
        .commit(vec![put(order(id), "ingest", "")])
        .await
        .unwrap();
    ledger.get(&format!("order:{id}")).await.unwrap().unwrap()
}

/// Commits `ok`, and in the same transaction `doomed` followed by an illegal write, so the
/// second request is rolled back alone; asserts that is what happened.
async fn commit_beside_a_rollback(ledger: &Ledger, ok: Write, doomed: Write) {
    let mut illegal = order("z");
    illegal.stage = Stage::Paid;
    let results = ledger
        .commit_each(vec![vec![ok], vec![doomed, put(illegal, "ingest", "")]])
        .await;
    assert!(results[0].is_ok() && results[1].is_err(), "{results:?}");
}

/// Asserts `result` is a version conflict: `expected` given, `found` stored.
fn assert_conflict<T: std::fmt::Debug>(result: &Result<T, LedgerError>, expected: u64, found: u64) {
    assert!(
        matches!(
            result,
            Err(LedgerError::VersionConflict { expected: e, found: f, .. }) if *e == expected && *f == found
        ),
        "{result:?}"
    );
}

fn open() -> (tempfile::TempDir, Ledger) {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::open(dir.path().join("t.redb")).unwrap();
    (dir, ledger)
}

fn letter(key: &str, message: &str) -> DeadLetter {
    DeadLetter {
        key: key.into(),
        record: key.replace(':', " "),
        field: Some("items[0].tax_class".into()),
        message: message.into(),
        remote_message: Some("Account code '999' is not a valid code".into()),
        stage_at_death: None,
        attempts: 3,
        first_failed_at_ms: 1_000,
        dead_at_ms: 0,
        payload: Some(json!({ "InvoiceNumber": "1" })),
    }
}

fn intent(key: &str) -> Intent {
    Intent {
        op: "PUT Invoices".into(),
        idempotency_key: key.into(),
        body_sha256: "ab".repeat(32),
        batch_id: "batch-1".into(),
        committed_at_ms: 5,
    }
}

#[tokio::test]
async fn a_stale_version_is_rejected() {
    let (_dir, ledger) = open();
    let mut a = stored_order(&ledger, "1").await;
    let mut b = a.clone();
    a.stage = Stage::ContactReady;
    let info = ledger.commit(vec![put(a, "contacts", "")]).await.unwrap();
    assert_eq!(info.versions["order:1"], 2);
    b.stage = Stage::Skipped;
    assert_conflict(&ledger.commit(vec![put(b, "ingest", "")]).await, 1, 2);
    // Creating what already exists is a conflict too (version 0 = "new").
    assert_conflict(
        &ledger.commit(vec![put(order("1"), "ingest", "")]).await,
        0,
        2,
    );
    assert_eq!(
        ledger.get("order:1").await.unwrap().unwrap().stage,
        Stage::ContactReady
    );
}

#[tokio::test]
async fn an_invalid_request_fails_alone_and_the_rest_of_its_group_commits() {
    let (_dir, ledger) = open();
    let mut stale = stored_order(&ledger, "b").await;
    stale.version = 7;
    stale.stage = Stage::ContactReady;
    let before = ledger.stats();
    let results = ledger
        .commit_each(vec![
            vec![put(order("a"), "ingest", "first")],
            vec![
                // A write that would succeed, followed by the stale one: both must vanish.
                Write::SetCursor {
                    name: "from-bad".into(),
                    value: json!(1),
                },
                put(order("b2"), "ingest", "bad group"),
                put(stale, "contacts", "stale"),
            ],
            vec![put(order("c"), "ingest", "third")],
        ])
        .await;
    assert!(results[0].is_ok() && results[2].is_ok(), "{results:?}");
    assert!(
        matches!(results[1], Err(LedgerError::VersionConflict { .. })),
        "{results:?}"
    );
    let (a, c) = (results[0].as_ref().unwrap(), results[2].as_ref().unwrap());
    assert_eq!(
        a.transaction, c.transaction,
        "one transaction for the group"
    );
    assert_eq!(a.group_size, 3);
    let after = ledger.stats();
    assert_eq!(after.transactions, before.transactions + 1);
    assert_eq!(after.rejected, before.rejected + 1);
    // The audit sequence stays gap-free across the rolled-back request.
    assert_eq!(c.audit_seqs[0], a.audit_seqs[0] + 1);

    assert!(ledger.get("order:a").await.unwrap().is_some());
    assert!(ledger.get("order:c").await.unwrap().is_some());
    assert!(ledger.get("order:b2").await.unwrap().is_none());
    assert_eq!(ledger.cursor("from-bad").await.unwrap(), None);
    let b = ledger.get("order:b").await.unwrap().unwrap();
    assert_eq!((b.stage, b.version), (Stage::Seen, 1));
    let counts = ledger.counts_by_stage().await.unwrap();
    assert_eq!(counts[&Stage::Seen], 3);
    assert_eq!(ledger.audit_for("order:b2").await.unwrap(), vec![]);
}

/// The writer checks versions against the headers it last committed; a request rolled back
/// out of its group must leave no trace there, within the transaction or after it.
#[tokio::test]
async fn versions_are_checked_against_what_committed_even_after_a_rollback() {
    let (_dir, ledger) = open();
    let v1 = stored_order(&ledger, "k").await;
    let mut moved = v1.clone();
    moved.stage = Stage::ContactReady;
    let mut illegal = order("z");
    illegal.stage = Stage::Paid;
    let mut again = v1.clone();
    again.stage = Stage::ContactReady;
    again.links.insert("contact_id".into(), "c-1".into());
    let results = ledger
        .commit_each(vec![
            // Moves k to version 2, then fails: k must read as version 1 again.
            vec![
                put(moved.clone(), "contacts", ""),
                put(illegal, "ingest", ""),
            ],
            // So a write based on version 1 in the same transaction is accepted...
            vec![put(again, "contacts", "after the rollback")],
            // ...and one based on version 1 once more is stale.
            vec![put(moved.clone(), "contacts", "stale")],
        ])
        .await;
    assert!(
        matches!(results[0], Err(LedgerError::IllegalTransition { .. })),
        "{results:?}"
    );
    assert!(results[1].is_ok(), "{results:?}");
    assert_conflict(&results[2], 1, 2);
    let k = ledger.get("order:k").await.unwrap().unwrap();
    assert_eq!((k.stage, k.version), (Stage::ContactReady, 2));
    assert_eq!(k.links["contact_id"], "c-1");
    assert_eq!(ledger.by_link("contact_id", "c-1").await.unwrap().len(), 1);

    // In later transactions too: version 2 is current, version 1 stale.
    let mut next = k.clone();
    next.stage = Stage::InvoicePosting;
    next.intent = Some(intent("inv-k"));
    ledger
        .commit(vec![put(next, "invoices", "")])
        .await
        .unwrap();
    assert_conflict(
        &ledger.commit(vec![put(k, "invoices", "stale")]).await,
        2,
        3,
    );
    assert_eq!(ledger.with_intent().await.unwrap().len(), 1);
}

#[tokio::test]
async fn two_hundred_concurrent_commits_share_few_transactions() {
    let (_dir, ledger) = open();
    let commits = (0..200).map(|i| {
        let ledger = ledger.clone();
        async move {
            ledger
                .commit(vec![put(order(&format!("{i:09}")), "ingest", "")])
                .await
        }
    });
    let results = join_all(commits).await;
    assert!(results.iter().all(|r| r.is_ok()), "{results:?}");
    let stats = ledger.stats();
    assert_eq!(stats.commits, 200);
    assert!(
        stats.transactions <= 50,
        "200 concurrent commits took {} transactions",
        stats.transactions
    );
    assert!(stats.largest_group > 1);
    assert_eq!(ledger.counts_by_stage().await.unwrap()[&Stage::Seen], 200);
    assert_eq!(ledger.by_stage(Stage::Seen, 1000).await.unwrap().len(), 200);
    assert_eq!(ledger.by_stage(Stage::Seen, 7).await.unwrap().len(), 7);
}

#[tokio::test]
async fn a_multi_write_commit_is_all_or_nothing() {
    let (_dir, ledger) = open();
    let mut illegal = order("y");
    illegal.stage = Stage::Paid;
    let err = ledger
        .commit(vec![
            put(order("x"), "ingest", ""),
            Write::SetToken {
                name: "t".into(),
                bytes: vec![1, 2],
            },
            put(illegal, "ingest", ""),
        ])
        .await
        .unwrap_err();
    assert!(
        matches!(err, LedgerError::IllegalTransition { .. }),
        "{err}"
    );
    assert!(ledger.get("order:x").await.unwrap().is_none());
    assert_eq!(ledger.token("t").await.unwrap(), None);
    assert_eq!(ledger.counts_by_stage().await.unwrap()[&Stage::Seen], 0);
}

#[tokio::test]
async fn dead_letter_revive_and_drop_round_trip() {
    let (_dir, ledger) = open();
    ledger
        .commit(vec![put(order("7"), "ingest", "")])
        .await
        .unwrap();
    for stage in [Stage::ContactReady, Stage::InvoicePosting] {
        let mut o = ledger.get("order:7").await.unwrap().unwrap();
        o.stage = stage;
        o.attempts = 2;
        o.retry_at_ms = Some(50);
        ledger.commit(vec![put(o, "invoices", "")]).await.unwrap();
    }
    ledger
        .commit(vec![Write::DeadLetter {
            letter: letter("order:7", "rejected by Xero"),
            actor: "invoices".into(),
        }])
        .await
        .unwrap();
    let dead = ledger.get("order:7").await.unwrap().unwrap();
    assert_eq!(dead.stage, Stage::Dead);
    assert_eq!(dead.retry_at_ms, None, "a dead entity is not due for retry");
    assert_eq!(dead.attempts, 3);
    assert_eq!(dead.last_error.as_deref(), Some("rejected by Xero"));
    assert!(ledger.due_before(i64::MAX, 10).await.unwrap().is_empty());
    let dl = ledger.dead_letter("order:7").await.unwrap().unwrap();
    assert_eq!(dl.stage_at_death, Some(Stage::InvoicePosting));
    assert!(dl.dead_at_ms > 0);
    assert_eq!(ledger.dead_letters().await.unwrap().len(), 1);
    assert_eq!(ledger.counts_by_stage().await.unwrap()[&Stage::Dead], 1);

    // Revive to a live stage only.
    let err = ledger
        .commit(vec![Write::Revive {
            key: "order:7".into(),
            to: Stage::ContactPending,
            actor: "op".into(),
        }])
        .await
        .unwrap_err();
    assert!(
        matches!(err, LedgerError::IllegalTransition { .. }),
        "{err}"
    );
    ledger
        .commit(vec![Write::Revive {
            key: "order:7".into(),
            to: Stage::ContactReady,
            actor: "dlq retry".into(),
        }])
        .await
        .unwrap();
    let revived = ledger.get("order:7").await.unwrap().unwrap();
    assert_eq!(
        (revived.stage, revived.attempts, revived.last_error.clone()),
        (Stage::ContactReady, 0, None)
    );
    assert!(ledger.dead_letters().await.unwrap().is_empty());
    // Reviving a live entity is illegal.
    let err = ledger
        .commit(vec![Write::Revive {
            key: "order:7".into(),
            to: Stage::Seen,
            actor: "op".into(),
        }])
        .await
        .unwrap_err();
    assert!(
        matches!(err, LedgerError::IllegalTransition { .. }),
        "{err}"
    );

    // Dead again, then dropped: the letter goes, the entity stays dead.
    ledger
        .commit(vec![Write::DeadLetter {
            letter: letter("order:7", "still wrong"),
            actor: "invoices".into(),
        }])
        .await
        .unwrap();
    ledger
        .commit(vec![Write::DropDeadLetter {
            key: "order:7".into(),
            actor: "dlq drop".into(),
        }])
        .await
        .unwrap();
    assert!(ledger.dead_letter("order:7").await.unwrap().is_none());
    assert_eq!(
        ledger.get("order:7").await.unwrap().unwrap().stage,
        Stage::Dead
    );
    let err = ledger
        .commit(vec![Write::DropDeadLetter {
            key: "order:7".into(),
            actor: "dlq drop".into(),
        }])
        .await
        .unwrap_err();
    assert!(matches!(err, LedgerError::NotFound { .. }), "{err}");

    let trail: Vec<(Option<Stage>, Stage, String)> = ledger
        .audit_for("order:7")
        .await
        .unwrap()
        .into_iter()
        .map(|a| (a.from, a.to, a.actor))
        .collect();
    assert_eq!(
        trail[3..],
        [
            (
                Some(Stage::InvoicePosting),
                Stage::Dead,
                "invoices".to_string()
            ),
            (
                Some(Stage::Dead),
                Stage::ContactReady,
                "dlq retry".to_string()
            ),
            (
                Some(Stage::ContactReady),
                Stage::Dead,
                "invoices".to_string()
            ),
            (Some(Stage::Dead), Stage::Dead, "dlq drop".to_string()),
        ]
    );

    // A record that died before it became an entity (bad input at ingest) is a bare letter.
    ledger
        .commit(vec![Write::DeadLetter {
            letter: letter("order:8", "price is not a number"),
            actor: "ingest".into(),
        }])
        .await
        .unwrap();
    assert!(ledger.get("order:8").await.unwrap().is_none());
    assert_eq!(
        ledger
            .dead_letter("order:8")
            .await
            .unwrap()
            .unwrap()
            .stage_at_death,
        None
    );
    ledger
        .commit(vec![Write::Revive {
            key: "order:8".into(),
            to: Stage::Seen,
            actor: "op".into(),
        }])
        .await
        .unwrap();
    assert!(ledger.dead_letter("order:8").await.unwrap().is_none());
    let err = ledger
        .commit(vec![Write::Revive {
            key: "order:9".into(),
            to: Stage::Seen,
            actor: "op".into(),
        }])
        .await
        .unwrap_err();
    assert!(matches!(err, LedgerError::NotFound { .. }), "{err}");
}

#[tokio::test]
async fn the_due_index_follows_retry_at() {
    let (_dir, ledger) = open();
    for (id, at) in [("a", 1_000), ("b", 2_000), ("c", 3_000)] {
        let mut o = order(id);
        o.retry_at_ms = Some(at);
        ledger.commit(vec![put(o, "ingest", "")]).await.unwrap();
    }
    let keys = |v: Vec<EntityState>| v.into_iter().map(|s| s.key).collect::<Vec<_>>();
    assert_eq!(
        keys(ledger.due_before(2_000, 10).await.unwrap()),
        ["order:a", "order:b"]
    );
    assert_eq!(
        keys(ledger.due_before(999, 10).await.unwrap()),
        Vec::<String>::new()
    );
    assert_eq!(
        keys(ledger.due_before(5_000, 1).await.unwrap()),
        ["order:a"]
    );
    assert_eq!(ledger.next_due_ms().await.unwrap(), Some(1_000));

    // Retried and succeeded: leaves the index. Rescheduled: moves in it.
    let mut a = ledger.get("order:a").await.unwrap().unwrap();
    a.retry_at_ms = None;
    let mut c = ledger.get("order:c").await.unwrap().unwrap();
    c.retry_at_ms = Some(500);
    ledger
        .commit(vec![put(a, "x", ""), put(c, "x", "")])
        .await
        .unwrap();
    assert_eq!(
        keys(ledger.due_before(10_000, 10).await.unwrap()),
        ["order:c", "order:b"]
    );
}

#[tokio::test]
async fn intents_are_indexed_and_an_idempotency_key_has_one_holder() {
    let (_dir, ledger) = open();
    let mut a = order("a");
    a.intent = Some(intent("inv-a-1"));
    ledger
        .commit(vec![put(a, "invoices", "intent")])
        .await
        .unwrap();
    assert_eq!(
        ledger
            .by_idempotency_key("inv-a-1")
            .await
            .unwrap()
            .unwrap()
            .key,
        "order:a"
    );

    let mut b = order("b");
    b.intent = Some(intent("inv-a-1"));
    let err = ledger
        .commit(vec![put(b, "invoices", "")])
        .await
        .unwrap_err();
    assert!(
        matches!(err, LedgerError::DuplicateIdempotencyKey { ref holder, .. } if holder == "order:a"),
        "{err}"
    );

    let mut a = ledger.get("order:a").await.unwrap().unwrap();
    a.intent = Some(intent("inv-a-2"));
    ledger.commit(vec![put(a, "invoices", "")]).await.unwrap();
    assert!(
        ledger
            .by_idempotency_key("inv-a-1")
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(ledger.with_intent().await.unwrap().len(), 1);

    let mut a = ledger.get("order:a").await.unwrap().unwrap();
    a.intent = None;
    ledger
        .commit(vec![put(a, "invoices", "outcome")])
        .await
        .unwrap();
    assert!(ledger.with_intent().await.unwrap().is_empty());
}

#[tokio::test]
async fn links_and_search_find_entities_by_remote_ids_and_data() {
    let (_dir, ledger) = open();
    let mut a = EntityState::new(
        EntityKind::Order,
        "000000123",
        json!({ "customer_email": "Jane@Example.com", "items": [{ "sku": "MUG-RED", "price": 12.5 }] }),
    );
    a.links.insert("invoice_id".into(), "inv-uuid-1".into());
    a.links.insert("contact_id".into(), "contact-uuid".into());
    a.links.insert("email".into(), "jane@example.com".into());
    let mut b = order("000000124");
    b.links.insert("contact_id".into(), "contact-uuid".into());
    ledger
        .commit(vec![put(a, "x", ""), put(b, "x", "")])
        .await
        .unwrap();

    let keys = |v: Vec<EntityState>| v.into_iter().map(|s| s.key).collect::<Vec<_>>();
    assert_eq!(
        keys(ledger.by_link("invoice_id", "inv-uuid-1").await.unwrap()),
        ["order:000000123"]
    );
    assert_eq!(
        keys(ledger.by_link("contact_id", "contact-uuid").await.unwrap()),
        ["order:000000123", "order:000000124"]
    );
    assert_eq!(
        keys(ledger.search("jane@example", 10).await.unwrap()),
        ["order:000000123"]
    );
    // Only Xero ids are indexed; other links are read from the state (and searched).
    assert!(matches!(
        ledger.by_link("email", "jane@example.com").await,
        Err(LedgerError::NotIndexed { .. })
    ));
    assert_eq!(
        keys(ledger.search("mug-red", 10).await.unwrap()),
        ["order:000000123"]
    );
    assert_eq!(
        keys(ledger.search("INV-UUID", 10).await.unwrap()),
        ["order:000000123"]
    );
    assert_eq!(keys(ledger.search("00000012", 10).await.unwrap()).len(), 2);
    assert_eq!(keys(ledger.search("00000012", 1).await.unwrap()).len(), 1);
    // Field names are not values.
    assert!(
        ledger
            .search("customer_email", 10)
            .await
            .unwrap()
            .is_empty()
    );

    let mut a = ledger.get("order:000000123").await.unwrap().unwrap();
    a.links.insert("invoice_id".into(), "inv-uuid-2".into());
    ledger.commit(vec![put(a, "x", "")]).await.unwrap();
    assert!(
        ledger
            .by_link("invoice_id", "inv-uuid-1")
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        ledger
            .by_link("invoice_id", "inv-uuid-2")
            .await
            .unwrap()
            .len(),
        1
    );
    // A link the entity no longer has leaves the index; the others stay.
    let mut a = ledger.get("order:000000123").await.unwrap().unwrap();
    a.links.remove("contact_id");
    ledger.commit(vec![put(a, "x", "")]).await.unwrap();
    assert_eq!(
        keys(ledger.by_link("contact_id", "contact-uuid").await.unwrap()),
        ["order:000000124"]
    );
    assert_eq!(
        keys(ledger.by_link("invoice_id", "inv-uuid-2").await.unwrap()),
        ["order:000000123"]
    );
}

#[tokio::test]
async fn cursors_tokens_and_discrepancies() {
    let (_dir, ledger) = open();
    ledger
        .commit(vec![
            Write::SetCursor {
                name: "magento.orders".into(),
                value: json!({ "updated_at": "2026-01-01 00:00:00" }),
            },
            Write::PutDiscrepancy {
                key: "order:1:total".into(),
                value: json!({ "magento": "10.00", "xero": "10.01" }),
                actor: "reconciler".into(),
            },
            Write::PutDiscrepancy {
                key: "order:2:missing".into(),
                value: json!({}),
                actor: "reconciler".into(),
            },
        ])
        .await
        .unwrap();
    ledger
        .save_token("xero:tenant", b"secret-bytes".to_vec())
        .await
        .unwrap();
    assert_eq!(
        ledger.load_token("xero:tenant").await.unwrap().as_deref(),
        Some(&b"secret-bytes"[..])
    );
    assert_eq!(ledger.load_token("other").await.unwrap(), None);
    assert_eq!(
        ledger.cursor("magento.orders").await.unwrap(),
        Some(json!({ "updated_at": "2026-01-01 00:00:00" }))
    );
    ledger
        .commit(vec![
            Write::RemoveDiscrepancy {
                key: "order:2:missing".into(),
                actor: "reconciler".into(),
            },
            Write::RemoveDiscrepancy {
                key: "never-raised".into(),
                actor: "reconciler".into(),
            },
        ])
        .await
        .unwrap();
    let d = ledger.discrepancies().await.unwrap();
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].0, "order:1:total");
}

#[test]
fn token_bytes_never_appear_in_debug_output() {
    let w = Write::SetToken {
        name: "xero".into(),
        bytes: b"refresh-token-abc123".to_vec(),
    };
    let shown = format!("{w:?}");
    assert!(
        shown.contains("xero") && shown.contains("20 bytes redacted"),
        "{shown}"
    );
    assert!(
        !shown.contains("abc123") && !shown.contains("114, 101"),
        "{shown}"
    );
}

#[tokio::test]
async fn money_in_data_keeps_its_exact_decimal_text() {
    let (_dir, ledger) = open();
    let data: serde_json::Value = serde_json::from_str(
        r#"{"grand_total": 0.1000000000000000055511151231257827, "tax": 19.990}"#,
    )
    .unwrap();
    ledger
        .commit(vec![put(
            EntityState::new(EntityKind::Order, "m", data),
            "x",
            "",
        )])
        .await
        .unwrap();
    let back = ledger.get("order:m").await.unwrap().unwrap().data.value();
    assert_eq!(
        back["grand_total"].to_string(),
        "0.1000000000000000055511151231257827"
    );
    assert_eq!(back["tax"].to_string(), "19.990");
}

#[test]
fn commit_blocking_works_without_a_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::open(dir.path().join("t.redb")).unwrap();
    let info = ledger
        .commit_blocking(vec![put(order("1"), "cli", "")])
        .unwrap();
    assert_eq!(info.versions["order:1"], 1);
    assert_eq!(ledger.reader().get("order:1").unwrap().unwrap().version, 1);
}

/// A state's record is written only when its text changes; one carried through a transition
/// as it was read is not re-read to compare. Whatever path a write takes, what is stored
/// afterwards is exactly what was put, including a record copied from another entity.
#[tokio::test]
async fn records_are_stored_as_put_whether_carried_changed_or_copied() {
    let (_dir, ledger) = open();
    let a = EntityState::new(EntityKind::Order, "000000001", json!({"v": "a1"}));
    let b = EntityState::new(EntityKind::Order, "000000002", json!({"v": "b1"}));
    ledger
        .commit(vec![put(a, "x", ""), put(b, "x", "")])
        .await
        .unwrap();
    let record = |key: &'static str| {
        let ledger = ledger.clone();
        async move { ledger.get(key).await.unwrap().unwrap().data.value() }
    };

    // Carried unchanged through a stage move.
    let mut a = ledger.get("order:000000001").await.unwrap().unwrap();
    a.stage = Stage::ContactReady;
    ledger.commit(vec![put(a, "x", "")]).await.unwrap();
    assert_eq!(record("order:000000001").await, json!({"v": "a1"}));

    // Replaced.
    let mut a = ledger.get("order:000000001").await.unwrap().unwrap();
    a.data = json!({"v": "a2"}).into();
    ledger.commit(vec![put(a, "x", "")]).await.unwrap();
    assert_eq!(record("order:000000001").await, json!({"v": "a2"}));

    // Copied from another entity's row: stored under this one.
    let a = ledger.get("order:000000001").await.unwrap().unwrap();
    let mut b = ledger.get("order:000000002").await.unwrap().unwrap();
    b.data = a.data.clone();
    ledger.commit(vec![put(b, "x", "")]).await.unwrap();
    assert_eq!(record("order:000000002").await, json!({"v": "a2"}));
    let mut c = EntityState::new(EntityKind::Order, "000000003", json!(null));
    c.data = a.data;
    ledger.commit(vec![put(c, "x", "")]).await.unwrap();
    assert_eq!(record("order:000000003").await, json!({"v": "a2"}));

    // A stale copy is refused, so a carried record never overwrites a newer one.
    let stale = ledger.get("order:000000002").await.unwrap().unwrap();
    let mut fresh = stale.clone();
    fresh.data = json!({"v": "b3"}).into();
    ledger.commit(vec![put(fresh, "x", "")]).await.unwrap();
    assert!(ledger.commit(vec![put(stale, "x", "")]).await.is_err());
    assert_eq!(record("order:000000002").await, json!({"v": "b3"}));
}

/// The stage and intent indexes live in memory (`stage_index`, `intent_index`): they must
/// follow every committed move and intent, drop those of a request rolled back out of its
/// group, and read back the same from the states when the file is opened again.
#[tokio::test]
async fn the_stage_and_intent_indexes_follow_commits_and_rollbacks_and_are_rebuilt_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.redb");
    let listed = |states: Vec<EntityState>| -> Vec<String> {
        let mut keys: Vec<String> = states.into_iter().map(|s| s.key).collect();
        keys.sort();
        keys
    };
    let moved = |s: &EntityState, ik: &str| {
        let mut s = s.clone();
        s.stage = Stage::ContactReady;
        s.intent = Some(intent(ik));
        s
    };
    {
        let ledger = Ledger::open(&path).unwrap();
        for id in ["a", "b", "c"] {
            stored_order(&ledger, id).await;
        }
        let a = ledger.get("order:a").await.unwrap().unwrap();
        let b = ledger.get("order:b").await.unwrap().unwrap();
        let c = ledger.get("order:c").await.unwrap().unwrap();
        // Moves c with an intent, then fails: c stays seen, its key stays free.
        commit_beside_a_rollback(
            &ledger,
            put(moved(&b, "ik-b"), "contacts", ""),
            put(moved(&c, "ik-c"), "contacts", ""),
        )
        .await;
        assert_eq!(
            listed(ledger.by_stage(Stage::Seen, 10).await.unwrap()),
            ["order:a", "order:c"]
        );
        assert_eq!(
            listed(ledger.by_stage(Stage::ContactReady, 10).await.unwrap()),
            ["order:b"]
        );
        assert_eq!(
            listed(ledger.by_stage(Stage::Seen, 1).await.unwrap()),
            ["order:a"]
        );
        assert!(
            ledger
                .reader()
                .by_idempotency_key("ik-c")
                .unwrap()
                .is_none()
        );
        assert!(ledger.reader().derived_indexes_are_exact().unwrap());

        // In one transaction: c takes the freed key, a cannot take b's.
        let results = ledger
            .commit_each(vec![
                vec![put(moved(&c, "ik-c"), "contacts", "")],
                vec![put(moved(&a, "ik-b"), "contacts", "takes b's key")],
            ])
            .await;
        assert!(results[0].is_ok(), "{results:?}");
        assert!(
            matches!(results[1], Err(LedgerError::DuplicateIdempotencyKey { .. })),
            "{results:?}"
        );
        assert_final_listing(&ledger).await;
    }
    // The same from a rebuild: the indexes are read back from the states.
    assert_final_listing(&Ledger::open(&path).unwrap()).await;
}

/// a seen; b and c moved on, each holding its intent; both indexes equal a rebuild.
async fn assert_final_listing(ledger: &Ledger) {
    let listed = |states: Vec<EntityState>| -> Vec<String> {
        let mut keys: Vec<String> = states.into_iter().map(|s| s.key).collect();
        keys.sort();
        keys
    };
    assert_eq!(
        listed(ledger.by_stage(Stage::Seen, 10).await.unwrap()),
        ["order:a"]
    );
    assert_eq!(
        listed(ledger.by_stage(Stage::ContactReady, 10).await.unwrap()),
        ["order:b", "order:c"]
    );
    assert_eq!(
        ledger
            .reader()
            .count_in_stage(Stage::ContactReady, EntityKind::Order)
            .unwrap(),
        2
    );
    assert_eq!(
        listed(ledger.with_intent().await.unwrap()),
        ["order:b", "order:c"]
    );
    assert_eq!(
        ledger
            .reader()
            .by_idempotency_key("ik-b")
            .unwrap()
            .unwrap()
            .key,
        "order:b"
    );
    assert!(ledger.reader().derived_indexes_are_exact().unwrap());
}

/// The link index lives in memory (`link_index`): it must follow a link that changes, drop
/// the links of a request rolled back out of its group, and read back the same from the
/// states when the file is opened again.
#[tokio::test]
async fn the_link_index_follows_changes_and_rollbacks_and_is_rebuilt_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.redb");
    let keys = |v: Vec<EntityState>| v.into_iter().map(|s| s.key).collect::<Vec<_>>();
    let linked = |s: &EntityState, invoice: &str| {
        let mut s = s.clone();
        s.stage = Stage::ContactReady;
        s.links.insert("invoice_id".into(), invoice.into());
        s.links.insert("contact_id".into(), "c-1".into());
        s
    };
    {
        let ledger = Ledger::open(&path).unwrap();
        let a = stored_order(&ledger, "a").await;
        let b = stored_order(&ledger, "b").await;
        ledger
            .commit(vec![put(linked(&a, "i-1"), "invoices", "")])
            .await
            .unwrap();
        let a = ledger.get("order:a").await.unwrap().unwrap();
        // a's invoice id changes (the old one no longer finds it); b gains links, then its
        // request fails, and they are rolled back with it.
        commit_beside_a_rollback(
            &ledger,
            put(linked(&a, "i-2"), "invoices", ""),
            put(linked(&b, "i-3"), "invoices", ""),
        )
        .await;
        assert!(
            ledger
                .by_link("invoice_id", "i-1")
                .await
                .unwrap()
                .is_empty()
        );
        assert!(
            ledger
                .by_link("invoice_id", "i-3")
                .await
                .unwrap()
                .is_empty()
        );
        assert!(ledger.reader().derived_indexes_are_exact().unwrap());
    }
    let ledger = Ledger::open(&path).unwrap();
    assert_eq!(
        keys(ledger.by_link("invoice_id", "i-2").await.unwrap()),
        ["order:a"]
    );
    assert_eq!(
        keys(ledger.by_link("contact_id", "c-1").await.unwrap()),
        ["order:a"]
    );
    assert!(
        ledger
            .by_link("invoice_id", "i-1")
            .await
            .unwrap()
            .is_empty()
    );
}

fn raise(key: &str, detail: &str) -> Write {
    Write::PutDiscrepancy {
        key: key.into(),
        value: json!({"kind": "invoice_total_differs", "order": "order:7", "detail": detail}),
        actor: "reconciler".into(),
    }
}

/// The last line of the order's audit trail: (actor, detail).
async fn last_line(ledger: &Ledger, key: &str) -> (String, String) {
    let trail = ledger.audit_for(key).await.unwrap();
    let last = trail.last().unwrap();
    (last.actor.clone(), last.detail.clone())
}

async fn discrepancy(ledger: &Ledger, key: &str) -> serde_json::Value {
    let all = ledger.discrepancies().await.unwrap();
    all.into_iter().find(|(k, _)| k == key).unwrap().1
}

#[tokio::test]
async fn an_acknowledgement_survives_a_raise_from_an_older_read_until_the_detail_changes() {
    let (_dir, ledger) = open();
    stored_order(&ledger, "7").await;
    let key = "total:order:7";
    ledger
        .commit(vec![raise(key, "9.95 vs 10.00")])
        .await
        .unwrap();
    let raised = discrepancy(&ledger, key).await;
    assert!(raised["raised_at"].is_string(), "{raised}");
    assert!(!discrepancy::is_acknowledged(&raised));
    // The order's trail tells its story: raised, by whom.
    assert_eq!(
        last_line(&ledger, "order:7").await,
        (
            "reconciler".to_owned(),
            "discrepancy total:order:7 raised: 9.95 vs 10.00".to_owned()
        )
    );

    // An acknowledgement rolled back with its request leaves the discrepancy as it was.
    let ack = || Write::AcknowledgeDiscrepancy {
        key: key.into(),
        actor: "operator".into(),
        note: Some("the customer agreed".into()),
    };
    commit_beside_a_rollback(&ledger, raise("total:order:8", "x"), ack()).await;
    assert_eq!(discrepancy(&ledger, key).await, raised);

    ledger.commit(vec![ack()]).await.unwrap();
    let acked = discrepancy(&ledger, key).await;
    assert!(discrepancy::is_acknowledged(&acked), "{acked}");
    assert_eq!(acked[discrepancy::ACKNOWLEDGED_BY], "operator");
    assert_eq!(acked[discrepancy::ACKNOWLEDGED_NOTE], "the customer agreed");
    assert_eq!(acked["raised_at"], raised["raised_at"]);
    // The order's trail says who accepted what, without moving it.
    let trail = ledger.audit_for("order:7").await.unwrap();
    let last = trail.last().unwrap();
    assert_eq!(last.actor, "operator");
    assert_eq!((last.from, last.to), (Some(Stage::Seen), Stage::Seen));
    assert_eq!(
        last.detail,
        "discrepancy total:order:7 acknowledged: 9.95 vs 10.00 (reason: the customer agreed)"
    );

    // A pass that read the discrepancies before the acknowledgement raises the same finding
    // again: the acknowledgement stays. Acknowledging twice adds nothing to the trail.
    ledger
        .commit(vec![raise(key, "9.95 vs 10.00")])
        .await
        .unwrap();
    ledger.commit(vec![ack()]).await.unwrap();
    assert_eq!(discrepancy(&ledger, key).await, acked);
    assert_eq!(
        ledger.audit_for("order:7").await.unwrap().len(),
        trail.len()
    );

    // The difference changes: it needs the operator again, and keeps its age.
    ledger
        .commit(vec![raise(key, "8.00 vs 10.00")])
        .await
        .unwrap();
    let changed = discrepancy(&ledger, key).await;
    assert!(!discrepancy::is_acknowledged(&changed), "{changed}");
    assert_eq!(changed["raised_at"], raised["raised_at"]);
    assert_eq!(
        last_line(&ledger, "order:7").await.1,
        "discrepancy total:order:7 changed: 8.00 vs 10.00"
    );

    // Closed once both sides agree; closing what is not open writes nothing.
    let close = || Write::RemoveDiscrepancy {
        key: key.into(),
        actor: "reconciler".into(),
    };
    ledger.commit(vec![close()]).await.unwrap();
    assert_eq!(
        last_line(&ledger, "order:7").await.1,
        "discrepancy total:order:7 closed: Magento and Xero agree"
    );
    let lines = ledger.audit_for("order:7").await.unwrap().len();
    ledger.commit(vec![close()]).await.unwrap();
    assert_eq!(ledger.audit_for("order:7").await.unwrap().len(), lines);

    let missing = ledger
        .commit(vec![Write::AcknowledgeDiscrepancy {
            key: "total:order:404".into(),
            actor: "operator".into(),
            note: None,
        }])
        .await;
    assert!(
        matches!(&missing, Err(LedgerError::NotFound { key }) if key == "total:order:404"),
        "{missing:?}"
    );
}

#[tokio::test]
async fn a_note_adds_a_trail_line_without_touching_the_entity_or_its_version() {
    let (_dir, ledger) = open();
    let before = stored_order(&ledger, "9").await;
    ledger
        .commit(vec![Write::Note {
            key: "order:9".into(),
            actor: "operator".into(),
            detail: "asked to void Xero invoice X".into(),
        }])
        .await
        .unwrap();
    let after = ledger.get("order:9").await.unwrap().unwrap();
    assert_eq!(after, before, "same state, same version");
    // A stage that read the order before the note still writes it: no conflict.
    let mut moved = before.clone();
    moved.stage = Stage::ContactReady;
    ledger
        .commit(vec![put(moved, "contacts", "")])
        .await
        .unwrap();
    let trail = ledger.audit_for("order:9").await.unwrap();
    let note = &trail[trail.len() - 2];
    assert_eq!(
        (
            note.actor.as_str(),
            note.detail.as_str(),
            note.from,
            note.to
        ),
        (
            "operator",
            "asked to void Xero invoice X",
            Some(Stage::Seen),
            Stage::Seen
        )
    );
    let missing = ledger
        .commit(vec![Write::Note {
            key: "order:404".into(),
            actor: "operator".into(),
            detail: "x".into(),
        }])
        .await;
    assert!(
        matches!(&missing, Err(LedgerError::NotFound { key }) if key == "order:404"),
        "{missing:?}"
    );
}

#[tokio::test]
async fn a_link_is_replaced_at_any_version_only_while_it_holds_what_was_expected() {
    let (_dir, ledger) = open();
    let mut s = stored_order(&ledger, "7").await;
    s.links.insert("payment_id".into(), "p-old".into());
    ledger.commit(vec![put(s, "payments", "")]).await.unwrap();
    let before = ledger.get("order:7").await.unwrap().unwrap();
    let set = |expected: &str, value: &str, key: &str| Write::SetLink {
        key: key.into(),
        name: "payment_id".into(),
        expected: expected.into(),
        value: value.into(),
        actor: "operator".into(),
    };
    // Holding what was expected: replaced, the version moves on, the trail says so.
    let info = ledger
        .commit(vec![set("p-old", "p-new", "order:7")])
        .await
        .unwrap();
    let after = ledger.get("order:7").await.unwrap().unwrap();
    assert_eq!(after.links["payment_id"], "p-new");
    assert_eq!(after.version, before.version + 1);
    assert_eq!(info.versions["order:7"], after.version);
    assert_eq!(after.stage, before.stage);
    assert_eq!(after.data, before.data, "the record is untouched");
    let line = ledger.audit_for("order:7").await.unwrap().pop().unwrap();
    assert_eq!(
        (line.actor.as_str(), line.detail.as_str()),
        ("operator", "payment_id p-old replaced by p-new")
    );
    // A stage that read the order before it meets the version it must re-read.
    let stale = ledger.commit(vec![put(before, "payments", "")]).await;
    assert!(
        matches!(stale, Err(LedgerError::VersionConflict { .. })),
        "{stale:?}"
    );
    // Changed meanwhile (no longer p-old): left as it is, nothing written.
    let trail = ledger.audit_for("order:7").await.unwrap().len();
    ledger
        .commit(vec![set("p-old", "p-other", "order:7")])
        .await
        .unwrap();
    let now = ledger.get("order:7").await.unwrap().unwrap();
    assert_eq!(now, after);
    assert_eq!(ledger.audit_for("order:7").await.unwrap().len(), trail);
    let missing = ledger.commit(vec![set("a", "b", "order:404")]).await;
    assert!(
        matches!(&missing, Err(LedgerError::NotFound { key }) if key == "order:404"),
        "{missing:?}"
    );
}
