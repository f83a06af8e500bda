//! Batched writes: the wire contract (summarizeErrors=false, unitdp, Idempotency-Key),
//! per-element outcomes, limits, and retries that re-send the same key and bytes.

mod xero_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use tally_actors::budget::Priority;
use tally_actors::retry::Failure;
use tally_actors::xero::{ElementOutcome, MemoryTokenStore, WriteMethod, XeroError};
use xero_support::{Recorded, Reply, client, config, start, with_identity};

fn invoices(n: usize) -> Vec<Value> {
    (0..n)
        .map(|i| json!({"Type": "ACCREC", "InvoiceNumber": format!("100000{i}"), "Contact": {"ContactNumber": "magento:7"}}))
        .collect()
}

/// Echoes each element back, marking those whose InvoiceNumber ends in `1` as ERROR.
fn echo_with_errors(r: &Recorded) -> Reply {
    let body = r.json();
    let out: Vec<Value> = body["Invoices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|el| {
            let mut el = el.clone();
            if el["InvoiceNumber"].as_str().unwrap().ends_with('1') {
                el["StatusAttributeString"] = json!("ERROR");
                el["HasErrors"] = json!(true);
                el["ValidationErrors"] = json!([{"Message": "Account code '999' is not a valid code."}, {"Message": "Invoice not of valid status for modification"}]);
            } else {
                el["StatusAttributeString"] = json!("OK");
                el["InvoiceID"] = json!(format!("id-{}", el["InvoiceNumber"].as_str().unwrap()));
                el["Warnings"] = json!([{"Message": "Account code '476' has been removed as it does not match a recognised account."}]);
            }
            el
        })
        .collect();
    Reply::json(200, json!({"Id": "x", "Status": "OK", "Invoices": out}))
}

#[tokio::test]
async fn batch_write_sends_the_contract_and_maps_each_element() {
    let (base, mock) = start(with_identity(echo_with_errors)).await;
    let xero = client(config(&base, ""), Arc::new(MemoryTokenStore::default()));
    let outcomes = xero
        .batch_write(
            WriteMethod::Put,
            "Invoices",
            invoices(3),
            "inv:batch:0001",
            Priority::Invoice,
        )
        .await
        .unwrap();

    let hits = mock.api_hits();
    assert_eq!(hits.len(), 1);
    let r = &hits[0];
    assert_eq!(r.method, "PUT");
    assert_eq!(r.path, "/api.xro/2.0/Invoices");
    assert_eq!(r.q("summarizeErrors"), Some("false"));
    assert_eq!(r.q("unitdp"), Some("4"));
    assert_eq!(r.header("idempotency-key"), Some("inv:batch:0001"));
    assert_eq!(r.header("xero-tenant-id"), Some("tenant-1"));
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.json()["Invoices"].as_array().unwrap().len(), 3);

    assert_eq!(outcomes.len(), 3);
    match &outcomes[0] {
        ElementOutcome::Ok { value } => {
            assert_eq!(value["InvoiceID"], "id-1000000");
            assert_eq!(value["Type"], "ACCREC");
            // The answer's top level and its warnings; nested records are not kept.
            assert_eq!(
                value["Warnings"][0]["Message"],
                "Account code '476' has been removed as it does not match a recognised account."
            );
            assert!(value.get("Contact").is_none());
        }
        other => panic!("{other:?}"),
    }
    match &outcomes[1] {
        ElementOutcome::Rejected { messages, value } => {
            assert_eq!(
                messages,
                &vec![
                    "Account code '999' is not a valid code.".to_owned(),
                    "Invoice not of valid status for modification".to_owned()
                ]
            );
            assert_eq!(value["InvoiceNumber"], "1000001");
        }
        other => panic!("{other:?}"),
    }
    assert!(outcomes[2].is_ok(), "a warning is not an error");

    // POST goes out as POST.
    xero.batch_write(
        WriteMethod::Post,
        "Invoices",
        invoices(1),
        "inv:batch:0002",
        Priority::Invoice,
    )
    .await
    .unwrap();
    assert_eq!(mock.api_hits()[1].method, "POST");
}

#[tokio::test]
async fn oversized_batches_and_bad_keys_are_refused_before_sending() {
    let (base, mock) = start(with_identity(echo_with_errors)).await;
    let xero = client(config(&base, ""), Arc::new(MemoryTokenStore::default()));

    let err = xero
        .batch_write(
            WriteMethod::Put,
            "Invoices",
            invoices(51),
            "k",
            Priority::Invoice,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, XeroError::BatchTooLarge { elements: 51, .. }),
        "{err:?}"
    );

    let huge = vec![
        json!({"Description": "x".repeat(1_800_000)}),
        json!({"Description": "y".repeat(1_800_000)}),
    ];
    let err = xero
        .batch_write(WriteMethod::Put, "Invoices", huge, "k", Priority::Invoice)
        .await
        .unwrap_err();
    assert!(
        matches!(err, XeroError::BatchTooLarge { elements: 2, bytes } if bytes > 3_500_000),
        "{err:?}"
    );

    for key in [
        "k".repeat(129),
        String::new(),
        "has space".into(),
        "line\nbreak".into(),
    ] {
        let err = xero
            .batch_write(
                WriteMethod::Put,
                "Invoices",
                invoices(1),
                &key,
                Priority::Invoice,
            )
            .await
            .unwrap_err();
        assert!(
            matches!(err, XeroError::InvalidIdempotencyKey(_)),
            "{key:?}: {err:?}"
        );
    }
    // 128 characters is allowed.
    xero.batch_write(
        WriteMethod::Put,
        "Invoices",
        invoices(1),
        &"k".repeat(128),
        Priority::Invoice,
    )
    .await
    .unwrap();
    assert_eq!(mock.api_hits().len(), 1, "only the valid request was sent");
}

#[tokio::test]
async fn a_503_is_retried_with_the_same_key_and_identical_bytes() {
    let n = Arc::new(AtomicU32::new(0));
    let (base, mock) = start(with_identity(move |r| {
        if n.fetch_add(1, Ordering::SeqCst) == 0 {
            Reply::json(503, json!({"Message": "Service Unavailable"}))
        } else {
            echo_with_errors(r)
        }
    }))
    .await;
    let xero = client(config(&base, ""), Arc::new(MemoryTokenStore::default()));
    let outcomes = xero
        .batch_write(
            WriteMethod::Put,
            "Invoices",
            invoices(2),
            "inv:retry:1",
            Priority::Invoice,
        )
        .await
        .unwrap();
    assert_eq!(outcomes.len(), 2);
    let hits = mock.api_hits();
    assert_eq!(hits.len(), 2);
    assert_eq!(
        hits[0].header("idempotency-key"),
        hits[1].header("idempotency-key")
    );
    assert_eq!(hits[0].body, hits[1].body, "byte-identical body on retry");
    assert_eq!(xero.counters().retries, 1);
    assert_eq!(xero.counters().calls, 2);
}

#[tokio::test]
async fn a_timeout_is_ambiguous_and_retried_with_the_same_key() {
    let n = Arc::new(AtomicU32::new(0));
    let (base, mock) = start(with_identity(move |r| {
        let reply = echo_with_errors(r);
        if n.fetch_add(1, Ordering::SeqCst) == 0 {
            reply.after(Duration::from_millis(2500))
        } else {
            reply
        }
    }))
    .await;
    let xero = client(
        config(&base, "timeout_secs = 1"),
        Arc::new(MemoryTokenStore::default()),
    );
    xero.batch_write(
        WriteMethod::Put,
        "Invoices",
        invoices(1),
        "inv:timeout:1",
        Priority::Invoice,
    )
    .await
    .unwrap();
    let hits = mock.api_hits();
    assert_eq!(hits.len(), 2);
    assert_eq!(hits[1].header("idempotency-key"), Some("inv:timeout:1"));
    assert_eq!(hits[0].body, hits[1].body);
}

#[tokio::test]
async fn persistent_server_errors_give_up_after_the_policy_attempts() {
    let (base, mock) = start(with_identity(|_| {
        Reply::json(500, json!({"Message": "boom"}))
    }))
    .await;
    let xero = client(config(&base, ""), Arc::new(MemoryTokenStore::default()));
    let err = xero
        .batch_write(
            WriteMethod::Put,
            "Invoices",
            invoices(1),
            "inv:500",
            Priority::Invoice,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, XeroError::Server { status: 500, .. }),
        "{err:?}"
    );
    assert!(matches!(err.failure(), Failure::Retriable { .. }));
    assert_eq!(mock.api_hits().len(), 4, "max_attempts of the policy");
}

#[tokio::test]
async fn a_whole_request_validation_exception_is_permanent() {
    let (base, mock) = start(with_identity(|_| {
        Reply::json(
            400,
            json!({"ErrorNumber": 10, "Type": "ValidationException", "Message": "A validation exception occurred",
                   "Elements": [{"ValidationErrors": [{"Message": "The document date cannot be before the end of year lock date"}]}]}),
        )
    }))
    .await;
    let xero = client(config(&base, ""), Arc::new(MemoryTokenStore::default()));
    let err = xero
        .batch_write(
            WriteMethod::Put,
            "Invoices",
            invoices(1),
            "inv:400",
            Priority::Invoice,
        )
        .await
        .unwrap_err();
    match &err {
        XeroError::Validation { messages } => {
            assert_eq!(
                messages,
                &vec!["The document date cannot be before the end of year lock date".to_owned()]
            )
        }
        other => panic!("{other:?}"),
    }
    assert!(err.failure().is_permanent());
    assert_eq!(mock.api_hits().len(), 1, "never retried");

    for (status, expect_permanent) in [(403, true), (404, true)] {
        let (base, mock) = start(with_identity(move |_| {
            Reply::json(status, json!({"Message": "no"}))
        }))
        .await;
        let xero = client(config(&base, ""), Arc::new(MemoryTokenStore::default()));
        let err = xero
            .get_json("Invoices/abc", &[], Priority::Lookup)
            .await
            .unwrap_err();
        assert_eq!(err.failure().is_permanent(), expect_permanent, "{status}");
        assert_eq!(mock.api_hits().len(), 1, "{status} is not retried");
    }
}

#[tokio::test]
async fn a_malformed_success_body_is_retried() {
    let n = Arc::new(AtomicU32::new(0));
    let (base, mock) = start(with_identity(move |r| {
        if n.fetch_add(1, Ordering::SeqCst) == 0 {
            Reply::json(200, json!(null))
                .header("x", "y")
                .body_text("{\"Invoices\": [")
        } else {
            echo_with_errors(r)
        }
    }))
    .await;
    let xero = client(config(&base, ""), Arc::new(MemoryTokenStore::default()));
    let out = xero
        .batch_write(
            WriteMethod::Put,
            "Invoices",
            invoices(1),
            "inv:malformed",
            Priority::Invoice,
        )
        .await
        .unwrap();
    assert!(out[0].is_ok());
    assert_eq!(mock.api_hits().len(), 2);
}

#[tokio::test]
async fn a_429_pauses_every_caller_of_the_tenant_until_retry_after() {
    let n = Arc::new(AtomicU32::new(0));
    let (base, mock) = start(with_identity(move |r| {
        if n.fetch_add(1, Ordering::SeqCst) == 0 {
            Reply::json(429, json!({"Title": "Too Many Requests"}))
                .header("retry-after", "1")
                .header("x-rate-limit-problem", "minute")
        } else {
            echo_with_errors(r)
        }
    }))
    .await;
    // One call in flight at a time, so arrival order at the server is grant order.
    let xero = client(
        config(&base, "limits = { concurrent = 1 }"),
        Arc::new(MemoryTokenStore::default()),
    );
    let first = {
        let x = xero.clone();
        tokio::spawn(async move {
            x.batch_write(
                WriteMethod::Put,
                "Invoices",
                invoices(1),
                "inv:429:a",
                Priority::Backfill,
            )
            .await
        })
    };
    // Wait until the 429 has been answered, then start other callers.
    while xero.budget().snapshot().throttled_total == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let snap = xero.budget().snapshot();
    assert_eq!(snap.pause_problem.as_deref(), Some("minute"));
    assert!(snap.paused_for_secs.unwrap() > 0.0);
    let mut others = Vec::new();
    for (i, p) in [Priority::Payment, Priority::Contact]
        .into_iter()
        .enumerate()
    {
        let x = xero.clone();
        others.push(tokio::spawn(async move {
            x.batch_write(
                WriteMethod::Put,
                "Invoices",
                invoices(1),
                &format!("inv:429:{i}"),
                p,
            )
            .await
        }));
    }
    first.await.unwrap().unwrap();
    for o in others {
        o.await.unwrap().unwrap();
    }
    let hits = mock.api_hits();
    assert_eq!(hits.len(), 4);
    let limited_at = hits[0].at;
    for h in &hits[1..] {
        assert!(
            h.at.duration_since(limited_at) >= Duration::from_secs(1),
            "a call went out during the pause"
        );
    }
    assert_eq!(
        hits[1].header("idempotency-key"),
        Some("inv:429:0"),
        "the Payment waiter goes first"
    );
    assert_eq!(xero.counters().throttled, 1);
    assert_eq!(xero.budget().snapshot().throttled_total, 1);
}

#[tokio::test]
async fn a_day_limit_429_is_returned_not_slept_through() {
    let (base, mock) = start(with_identity(|_| {
        Reply::json(429, json!({}))
            .header("retry-after", "66975")
            .header("x-rate-limit-problem", "day")
    }))
    .await;
    let xero = client(config(&base, ""), Arc::new(MemoryTokenStore::default()));
    let err = xero
        .batch_write(
            WriteMethod::Put,
            "Invoices",
            invoices(1),
            "inv:day",
            Priority::Invoice,
        )
        .await
        .unwrap_err();
    match &err {
        XeroError::RateLimited {
            retry_after,
            problem,
        } => {
            assert_eq!(*retry_after, Duration::from_secs(66975));
            assert_eq!(problem, "day");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        err.failure().retry_after(),
        Some(Duration::from_secs(66975))
    );
    assert_eq!(mock.api_hits().len(), 1);
    let snap = xero.budget().snapshot();
    assert_eq!(snap.pause_problem.as_deref(), Some("day"));
    assert!(snap.paused_for_secs.unwrap() > 66_000.0);
}
