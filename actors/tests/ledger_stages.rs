//! The entity state machine: which moves are legal, that the ledger enforces them on write, and
//! that every move leaves an audit entry readable per entity in order.

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

fn open() -> (tempfile::TempDir, Ledger) {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::open(dir.path().join("t.redb")).unwrap();
    (dir, ledger)
}

#[test]
fn the_order_path_is_legal_and_shortcuts_are_not() {
    use Stage::*;
    let k = EntityKind::Order;
    let path = [
        Seen,
        ContactReady,
        InvoicePosting,
        Invoiced,
        PaymentPosting,
        Paid,
        WrittenBack,
    ];
    for pair in path.windows(2) {
        assert!(
            can_move(k, pair[0], pair[1]),
            "{:?} -> {:?}",
            pair[0],
            pair[1]
        );
        assert!(
            !can_move(k, pair[1], pair[0]),
            "backwards {:?} -> {:?}",
            pair[1],
            pair[0]
        );
    }
    for (from, to) in [
        (Seen, Skipped),
        (ContactReady, Skipped),
        (Invoiced, Skipped),
        (Skipped, PaymentPosting),
        (Skipped, Seen),
        (Invoiced, Paid),
    ] {
        assert!(can_move(k, from, to), "{from:?} -> {to:?}");
    }
    for (from, to) in [
        (Seen, Invoiced),
        (Seen, Paid),
        (ContactReady, Invoiced),
        (InvoicePosting, Paid),
        (Seen, PaymentPosting),
        (Invoiced, WrittenBack),
        (WrittenBack, Seen),
        (Seen, ContactPending),
    ] {
        assert!(!can_move(k, from, to), "{from:?} -> {to:?} must be illegal");
    }
    for s in path {
        assert!(can_move(k, s, s), "staying in {s:?}");
        assert!(can_move(k, s, Dead));
        assert!(can_move(k, Dead, s));
    }
}

#[test]
fn other_kinds_have_their_own_paths() {
    use Stage::*;
    assert!(can_move(
        EntityKind::Contact,
        ContactPending,
        ContactPosting
    ));
    assert!(can_move(EntityKind::Contact, ContactPosting, ContactDone));
    assert!(can_move(EntityKind::Contact, ContactPending, ContactDone));
    assert!(!can_move(EntityKind::Contact, ContactDone, ContactPosting));
    assert!(!can_move(EntityKind::Contact, Seen, ContactReady));
    // A payment may go straight from Seen to posting; an order may not.
    assert!(can_move(EntityKind::Payment, Seen, PaymentPosting));
    assert!(!can_move(EntityKind::Order, Seen, PaymentPosting));
    assert!(!can_move(EntityKind::Payment, Seen, Invoiced));
    assert!(can_move(EntityKind::StockItem, Seen, WrittenBack));
    assert!(can_move(EntityKind::StockItem, WrittenBack, Seen));
    assert!(!can_move(EntityKind::StockItem, Seen, Paid));
    assert_eq!(EntityKind::Contact.initial_stage(), ContactPending);
    assert_eq!(EntityKind::Order.key("000000123"), "order:000000123");
    for s in Stage::ALL {
        assert_eq!(Stage::parse(s.as_str()), Some(s));
    }
}

#[tokio::test]
async fn an_illegal_move_is_rejected_on_write_and_changes_nothing() {
    let (_dir, ledger) = open();
    ledger
        .commit(vec![put(order("1"), "ingest", "")])
        .await
        .unwrap();
    let mut o = ledger.get("order:1").await.unwrap().unwrap();
    o.stage = Stage::Paid;
    let err = ledger
        .commit(vec![put(o, "payments", "paid")])
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            LedgerError::IllegalTransition {
                from: Some(Stage::Seen),
                to: Stage::Paid,
                ..
            }
        ),
        "{err}"
    );
    let o = ledger.get("order:1").await.unwrap().unwrap();
    assert_eq!((o.stage, o.version), (Stage::Seen, 1));
    assert_eq!(ledger.audit_for("order:1").await.unwrap().len(), 1);
    assert_eq!(ledger.counts_by_stage().await.unwrap()[&Stage::Paid], 0);
}

#[tokio::test]
async fn new_entities_start_at_the_beginning_and_keep_their_kind() {
    let (_dir, ledger) = open();
    let mut late = order("2");
    late.stage = Stage::Invoiced;
    let err = ledger
        .commit(vec![put(late, "ingest", "")])
        .await
        .unwrap_err();
    assert!(
        matches!(err, LedgerError::IllegalTransition { from: None, .. }),
        "{err}"
    );

    // One step from the initial stage is fine (a cancelled order is skipped at ingest).
    let mut skipped = order("3");
    skipped.stage = Stage::Skipped;
    ledger
        .commit(vec![put(skipped, "ingest", "cancelled")])
        .await
        .unwrap();

    // An order stage is not a contact stage.
    let mut contact = EntityState::new(EntityKind::Contact, "a@example.com", json!({}));
    contact.stage = Stage::Seen;
    let err = ledger
        .commit(vec![put(contact, "contacts", "")])
        .await
        .unwrap_err();
    assert!(
        matches!(err, LedgerError::IllegalTransition { .. }),
        "{err}"
    );

    let mut as_contact = ledger.get("order:3").await.unwrap().unwrap();
    as_contact.kind = EntityKind::Contact;
    as_contact.stage = Stage::ContactPending;
    let err = ledger
        .commit(vec![put(as_contact, "x", "")])
        .await
        .unwrap_err();
    assert!(matches!(err, LedgerError::KindMismatch { .. }), "{err}");
}

#[tokio::test]
async fn dead_is_entered_and_left_only_through_the_dead_letter_queue() {
    let (_dir, ledger) = open();
    ledger
        .commit(vec![put(order("4"), "ingest", "")])
        .await
        .unwrap();
    let mut o = ledger.get("order:4").await.unwrap().unwrap();
    o.stage = Stage::Dead;
    let err = ledger
        .commit(vec![put(o, "invoices", "")])
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            LedgerError::IllegalTransition {
                to: Stage::Dead,
                ..
            }
        ),
        "{err}"
    );

    ledger
        .commit(vec![Write::DeadLetter {
            letter: DeadLetter {
                key: "order:4".into(),
                record: "order 4".into(),
                field: None,
                message: "no tax mapping".into(),
                remote_message: None,
                stage_at_death: None,
                attempts: 1,
                first_failed_at_ms: 1,
                dead_at_ms: 0,
                payload: None,
            },
            actor: "invoices".into(),
        }])
        .await
        .unwrap();
    let mut o = ledger.get("order:4").await.unwrap().unwrap();
    assert_eq!(o.stage, Stage::Dead);
    o.stage = Stage::Seen;
    let err = ledger.commit(vec![put(o, "ingest", "")]).await.unwrap_err();
    assert!(
        matches!(
            err,
            LedgerError::IllegalTransition {
                from: Some(Stage::Dead),
                ..
            }
        ),
        "{err}"
    );
}

#[tokio::test]
async fn every_move_is_audited_and_readable_per_entity_in_order() {
    let (_dir, ledger) = open();
    use Stage::*;
    ledger
        .commit(vec![put(order("5"), "ingest", "seen in Magento")])
        .await
        .unwrap();
    // Interleave another entity so the per-entity index has something to skip.
    ledger
        .commit(vec![put(order("6"), "ingest", "")])
        .await
        .unwrap();
    let steps = [
        (ContactReady, "contacts", "contact found ContactID=c-1"),
        (
            InvoicePosting,
            "invoices",
            "intent PUT Invoices key=inv-5-1",
        ),
        (InvoicePosting, "invoices", ""), // same stage, no detail: no audit entry
        (InvoicePosting, "invoices", "retry after 503"), // same stage with detail: audited
        (Invoiced, "invoices", "Xero accepted InvoiceID=i-1"),
        (
            PaymentPosting,
            "payments",
            "intent PUT Payments key=pay-5-1",
        ),
        (Paid, "payments", "Xero accepted PaymentID=p-1"),
        (WrittenBack, "writeback", "Magento order commented"),
    ];
    for (stage, actor, detail) in steps {
        let mut o = ledger.get("order:5").await.unwrap().unwrap();
        o.stage = stage;
        ledger.commit(vec![put(o, actor, detail)]).await.unwrap();
    }
    let trail = ledger.audit_for("order:5").await.unwrap();
    let got: Vec<(Option<Stage>, Stage, &str, &str)> = trail
        .iter()
        .map(|a| (a.from, a.to, a.actor.as_str(), a.detail.as_str()))
        .collect();
    assert_eq!(
        got,
        vec![
            (None, Seen, "ingest", "seen in Magento"),
            (
                Some(Seen),
                ContactReady,
                "contacts",
                "contact found ContactID=c-1"
            ),
            (
                Some(ContactReady),
                InvoicePosting,
                "invoices",
                "intent PUT Invoices key=inv-5-1"
            ),
            (
                Some(InvoicePosting),
                InvoicePosting,
                "invoices",
                "retry after 503"
            ),
            (
                Some(InvoicePosting),
                Invoiced,
                "invoices",
                "Xero accepted InvoiceID=i-1"
            ),
            (
                Some(Invoiced),
                PaymentPosting,
                "payments",
                "intent PUT Payments key=pay-5-1"
            ),
            (
                Some(PaymentPosting),
                Paid,
                "payments",
                "Xero accepted PaymentID=p-1"
            ),
            (
                Some(Paid),
                WrittenBack,
                "writeback",
                "Magento order commented"
            ),
        ]
    );
    assert!(trail.windows(2).all(|w| w[0].seq < w[1].seq));
    assert!(trail.iter().all(|a| a.entity == "order:5"));

    let tail = ledger.audit_tail(2).await.unwrap();
    assert_eq!(tail.len(), 2);
    assert_eq!(tail[1].to, WrittenBack);
    assert_eq!(tail[0].to, Paid);
    // Nine entries in all: eight for order 5 and one for order 6; sequence numbers are gap-free.
    let all = ledger.audit_tail(100).await.unwrap();
    assert_eq!(
        all.iter().map(|a| a.seq).collect::<Vec<_>>(),
        (1..=9).collect::<Vec<_>>()
    );

    let o = ledger.get("order:5").await.unwrap().unwrap();
    assert_eq!(o.version, 9);
    let counts = ledger.counts_by_stage().await.unwrap();
    assert_eq!(
        (counts[&WrittenBack], counts[&Seen], counts[&Invoiced]),
        (1, 1, 0)
    );
    assert_eq!(
        ledger.by_stage(WrittenBack, 10).await.unwrap()[0].key,
        "order:5"
    );
    assert_eq!(ledger.by_stage(Seen, 10).await.unwrap()[0].key, "order:6");
}
