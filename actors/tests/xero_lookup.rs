//! Batched lookups: chunking, `where` clauses, paging, If-Modified-Since, settings lists,
//! and the rate headers folded back into the budget.

mod xero_support;

use std::sync::Arc;

use chrono::TimeZone;
use serde_json::{Value, json};
use tally_actors::budget::Priority;
use tally_actors::xero::MemoryTokenStore;
use xero_support::{Recorded, Reply, client, config, start, with_identity};

/// Answers Contacts lookups with one contact per quoted value in the `where` clause.
fn contacts_from_where(r: &Recorded) -> Reply {
    let clause = r.q("where").unwrap_or_default().to_owned();
    let values: Vec<&str> = clause.split('"').skip(1).step_by(2).collect();
    let contacts: Vec<Value> = values
        .iter()
        .map(|v| json!({"ContactNumber": v, "EmailAddress": v}))
        .collect();
    Reply::json(200, json!({"Contacts": contacts}))
}

#[tokio::test]
async fn contacts_by_number_are_chunked_into_where_clauses() {
    let (base, mock) = start(with_identity(contacts_from_where)).await;
    let xero = client(config(&base, ""), Arc::new(MemoryTokenStore::default()));
    let mut numbers: Vec<String> = (0..45).map(|i| format!("magento:{i}")).collect();
    numbers.push("magento:3".into()); // duplicates are looked up once
    let found = xero
        .find_contacts_by_numbers(&numbers, Priority::Contact)
        .await
        .unwrap();
    assert_eq!(found.len(), 45);
    let hits = mock.api_hits();
    assert_eq!(hits.len(), 3, "45 numbers in chunks of 20");
    for h in &hits {
        assert_eq!(h.path, "/api.xro/2.0/Contacts");
        assert_eq!(h.q("includeArchived"), Some("true"));
        assert_eq!(h.q("page"), Some("1"));
    }
    assert!(
        hits[0]
            .q("where")
            .unwrap()
            .starts_with(r#"ContactNumber=="magento:0" OR ContactNumber=="magento:1" OR "#)
    );
}

#[tokio::test]
async fn contacts_by_email_compare_lower_case_and_quotes_are_escaped() {
    let (base, mock) = start(with_identity(contacts_from_where)).await;
    let xero = client(config(&base, ""), Arc::new(MemoryTokenStore::default()));
    xero.find_contacts_by_emails(
        &["Ann.Lee@Example.COM ".into(), "o\"brien@x.io".into()],
        Priority::Contact,
    )
    .await
    .unwrap();
    let clause = mock.api_hits()[0].q("where").unwrap().to_owned();
    assert_eq!(
        clause,
        r#"EmailAddress.ToLower()=="ann.lee@example.com" OR EmailAddress.ToLower()=="o\"brien@x.io""#
    );
}

#[tokio::test]
async fn invoices_by_number_follow_every_page() {
    let (base, mock) = start(with_identity(|r: &Recorded| {
        let page: u64 = r.q("page").unwrap().parse().unwrap();
        let numbers = r.q("InvoiceNumbers").or(r.q("IDs")).unwrap();
        Reply::json(
            200,
            json!({"Invoices": [{"InvoiceNumber": format!("{numbers}#p{page}")}],
                   "pagination": {"page": page, "pageSize": 100, "pageCount": 2, "itemCount": 2}}),
        )
    }))
    .await;
    let xero = client(config(&base, ""), Arc::new(MemoryTokenStore::default()));
    let found = xero
        .find_invoices_by_numbers(&["100001".into(), "100002".into()], Priority::Lookup)
        .await
        .unwrap();
    let numbers: Vec<&str> = found
        .iter()
        .map(|i| i["InvoiceNumber"].as_str().unwrap())
        .collect();
    assert_eq!(numbers, vec!["100001,100002#p1", "100001,100002#p2"]);
    let hits = mock.api_hits();
    assert_eq!(hits.len(), 2);
    assert_eq!(hits[0].q("pageSize"), Some("100"));

    // IDs, chunked at 40 per request.
    let ids: Vec<String> = (0..41)
        .map(|i| format!("00000000-0000-0000-0000-{i:012}"))
        .collect();
    xero.get_invoices_by_ids(&ids, Priority::Lookup)
        .await
        .unwrap();
    let id_hits: Vec<_> = mock
        .api_hits()
        .into_iter()
        .filter(|h| h.q("IDs").is_some())
        .collect();
    assert_eq!(id_hits.len(), 4, "two chunks, two pages each");
    assert_eq!(id_hits[0].q("IDs").unwrap().split(',').count(), 40);
}

#[tokio::test]
async fn a_short_page_ends_paging_without_pagination_info() {
    let (base, mock) = start(with_identity(|r: &Recorded| {
        let page: usize = r.q("page").unwrap().parse().unwrap();
        let n = if page == 1 { 100 } else { 7 };
        let rows: Vec<Value> = (0..n)
            .map(|i| json!({"PaymentID": format!("{page}-{i}")}))
            .collect();
        Reply::json(200, json!({"Payments": rows}))
    }))
    .await;
    let xero = client(config(&base, ""), Arc::new(MemoryTokenStore::default()));
    let payments = xero
        .get_payments_for_invoices(&["abc".into()], Priority::Payment)
        .await
        .unwrap();
    assert_eq!(payments.len(), 107);
    let hits = mock.api_hits();
    assert_eq!(hits.len(), 2);
    assert_eq!(
        hits[0].q("where"),
        Some(r#"Invoice.InvoiceID==guid("abc")"#)
    );
}

#[tokio::test]
async fn modified_since_sends_the_header() {
    let (base, mock) = start(with_identity(|_| Reply::json(200, json!({"Invoices": []})))).await;
    let xero = client(config(&base, ""), Arc::new(MemoryTokenStore::default()));
    let since = chrono::Utc.with_ymd_and_hms(2026, 7, 1, 8, 30, 5).unwrap();
    let rows = xero
        .invoices_modified_since(since, Priority::Backfill)
        .await
        .unwrap();
    assert!(rows.is_empty());
    let hits = mock.api_hits();
    assert_eq!(hits.len(), 1);
    assert_eq!(
        hits[0].header("if-modified-since"),
        Some("2026-07-01T08:30:05")
    );
}

#[tokio::test]
async fn settings_lists_and_the_organisation() {
    let (base, mock) = start(with_identity(|r: &Recorded| {
        let name = r.path.trim_start_matches("/api.xro/2.0/");
        let key = if name == "Organisation" {
            "Organisations"
        } else {
            name
        };
        Reply::json(200, json!({ key: [{"From": name}] }))
    }))
    .await;
    let xero = client(config(&base, ""), Arc::new(MemoryTokenStore::default()));
    assert_eq!(
        xero.items(Priority::Lookup).await.unwrap()[0]["From"],
        "Items"
    );
    assert_eq!(
        xero.accounts(Priority::Lookup).await.unwrap()[0]["From"],
        "Accounts"
    );
    assert_eq!(
        xero.tax_rates(Priority::Lookup).await.unwrap()[0]["From"],
        "TaxRates"
    );
    assert_eq!(
        xero.currencies(Priority::Lookup).await.unwrap()[0]["From"],
        "Currencies"
    );
    assert_eq!(
        xero.organisation(Priority::Lookup).await.unwrap()["From"],
        "Organisation"
    );
    let raw = xero
        .get_json(
            "Items",
            &[("where", "IsTrackedAsInventory==true".into())],
            Priority::Lookup,
        )
        .await
        .unwrap();
    assert_eq!(raw["Items"][0]["From"], "Items");
    assert_eq!(
        mock.api_hits().last().unwrap().q("where"),
        Some("IsTrackedAsInventory==true")
    );
    assert_eq!(xero.counters().calls, 6);
}

#[tokio::test]
async fn rate_headers_are_folded_into_the_shared_budget() {
    let (base, _mock) = start(with_identity(|_| {
        Reply::json(200, json!({"Items": []}))
            .header("x-minlimit-remaining", "4")
            .header("x-daylimit-remaining", "4000")
    }))
    .await;
    let xero = client(config(&base, ""), Arc::new(MemoryTokenStore::default()));
    xero.items(Priority::Lookup).await.unwrap();
    let snap = xero.budget().snapshot();
    assert_eq!(snap.minute_used, 56);
    assert_eq!(snap.day_used, 1000);
    assert_eq!(snap.calls_total, 1);
    // Clones share one budget.
    assert_eq!(xero.clone().budget().snapshot().minute_used, 56);
}
