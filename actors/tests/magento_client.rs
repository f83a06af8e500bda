//! The Magento client against a local mock: OAuth 1.0a signatures verified independently,
//! bracket encoding, paging, admin-token renewal, retries, error rendering and secrecy.

mod magento_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use magento_support::*;
use rust_decimal_macros::dec;
use serde_json::{Value, json};
use tally_actors::magento::{
    AuthMode, Condition, Direction, FailureKind, MagentoClient, MagentoConfig, SearchCriteria,
    SourceItem,
};
use tally_actors::retry::RetryPolicy;

fn fast_retries() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 4,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(5),
        max_retry_after: Duration::from_secs(5),
    }
}

fn client(cfg: &MagentoConfig) -> MagentoClient {
    MagentoClient::new(cfg)
        .unwrap()
        .with_retry_policy(fast_retries())
}

fn order(id: u64) -> Value {
    json!({"entity_id": id, "increment_id": format!("{id:09}"), "updated_at": "2024-01-01 00:00:00"})
}

/// Serves a fixed list of `n` orders with Magento's paging, including the last page being
/// served again for any page past the end.
fn paging_handler(n: u64) -> impl Fn(&Recorded) -> Reply + Send + Sync {
    move |rec| {
        let size: u64 = rec
            .param("searchCriteria[page_size]")
            .map(|v| v.parse().unwrap())
            .unwrap_or(n.max(1));
        let page: u64 = rec
            .param("searchCriteria[current_page]")
            .map(|v| v.parse().unwrap())
            .unwrap_or(1);
        let last_page = n.div_ceil(size).max(1);
        let page = page.min(last_page);
        let items: Vec<Value> = ((page - 1) * size + 1..=(page * size).min(n))
            .map(order)
            .collect();
        Reply::json(
            200,
            json!({"items": items, "search_criteria": {}, "total_count": n}),
        )
    }
}

#[tokio::test]
async fn oauth1_signed_search_with_bracketed_query_verifies() {
    let mock = Mock::start(paging_handler(2)).await;
    let c = client(&mock.oauth_config());
    let criteria = SearchCriteria::new()
        .filter("updated_at", Condition::Gteq, "2024-01-01 00:00:00")
        .filter("increment_id", Condition::Like, "0000%")
        .sort("updated_at", Direction::Asc)
        .page_size(10);
    let page = c.search("orders", &criteria).await.unwrap();
    assert_eq!(page.total_count, 2);
    assert_eq!(page.items.len(), 2);
    c.get_order(1).await.unwrap();

    let reqs = mock.requests();
    assert_eq!(reqs.len(), 2);
    for r in &reqs {
        assert_eq!(r.oauth_ok, Some(true), "signature must verify: {r:?}");
    }
    assert_ne!(
        reqs[0].oauth_nonce, reqs[1].oauth_nonce,
        "fresh nonce per request"
    );
    let q = &reqs[0].raw_query;
    assert!(
        !q.contains('[') && !q.contains(']'),
        "brackets must be encoded: {q}"
    );
    assert!(
        q.contains(
            "searchCriteria%5Bfilter_groups%5D%5B0%5D%5Bfilters%5D%5B0%5D%5Bfield%5D=updated_at"
        ),
        "{q}"
    );
    assert!(q.contains("=2024-01-01%2000%3A00%3A00"), "{q}");
    assert!(q.contains("=0000%25"), "like wildcard encoded: {q}");
    assert!(q.contains("searchCriteria%5Bpage_size%5D=10"), "{q}");
    assert_eq!(reqs[0].path, "/rest/default/V1/orders");
    assert_eq!(reqs[1].path, "/rest/default/V1/orders/1");
}

#[tokio::test]
async fn wrong_secret_fails_verification_with_rendered_message_and_no_secret() {
    let mock = Mock::start(paging_handler(1)).await;
    let mut cfg = mock.oauth_config();
    cfg.consumer_secret = Some("cs-wrong-secret-value".into());
    let err = client(&cfg).get_order(1).await.unwrap_err();
    assert_eq!(err.status(), Some(401));
    assert_eq!(err.kind(), FailureKind::Permanent);
    let text = err.to_string();
    assert!(
        text.contains("The consumer isn't authorized to access Magento_Sales::actions_view."),
        "{text}"
    );
    assert_eq!(mock.requests().len(), 1, "a 401 is not retried");
    for secret in [
        "cs-wrong-secret-value",
        ACCESS_TOKEN_SECRET,
        ACCESS_TOKEN,
        CONSUMER_KEY,
    ] {
        assert!(!text.contains(secret), "{secret} in {text}");
        assert!(!format!("{err:?}").contains(secret));
    }
    assert_eq!(mock.requests()[0].oauth_ok, Some(false));
}

#[tokio::test]
async fn search_all_stops_on_total_count_though_pages_repeat() {
    let mock = Mock::start(paging_handler(7)).await;
    let c = client(&mock.oauth_config());
    let items = c
        .search_all("orders", &SearchCriteria::new().page_size(3))
        .await
        .unwrap();
    let ids: Vec<u64> = items
        .iter()
        .map(|o| o["entity_id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, vec![1, 2, 3, 4, 5, 6, 7]);
    let reqs = mock.requests();
    assert_eq!(reqs.len(), 3);
    for (i, r) in reqs.iter().enumerate() {
        assert_eq!(r.param("searchCriteria[page_size]"), Some("3"));
        assert_eq!(
            r.param("searchCriteria[current_page]"),
            Some(&*(i + 1).to_string())
        );
    }

    // Exactly a page of results needs one request, not a probe for an empty page.
    let mock = Mock::start(paging_handler(6)).await;
    let c = client(&mock.oauth_config());
    let items = c
        .search_all("orders", &SearchCriteria::new().page_size(6))
        .await
        .unwrap();
    assert_eq!(items.len(), 6);
    assert_eq!(mock.requests().len(), 1);
}

#[tokio::test]
async fn search_without_page_size_sends_the_configured_one() {
    let mock = Mock::start(paging_handler(1)).await;
    let mut cfg = mock.oauth_config();
    cfg.page_size = 500;
    client(&cfg)
        .search("taxClasses/search", &SearchCriteria::new())
        .await
        .unwrap();
    let r = &mock.requests()[0];
    assert_eq!(r.path, "/rest/default/V1/taxClasses/search");
    assert_eq!(
        r.param("searchCriteria[page_size]"),
        Some("300"),
        "capped at 300"
    );
    assert_eq!(r.param("searchCriteria[current_page]"), Some("1"));
}

#[tokio::test]
async fn products_by_skus_chunks_into_in_queries() {
    let mock = Mock::start(|rec: &Recorded| {
        let skus = rec
            .param("searchCriteria[filter_groups][0][filters][0][value]")
            .unwrap()
            .to_string();
        let items: Vec<Value> = skus.split(',').map(|s| json!({"sku": s})).collect();
        let n = items.len();
        Reply::json(200, json!({"items": items, "total_count": n}))
    })
    .await;
    let mut cfg = mock.oauth_config();
    cfg.page_size = 2;
    let skus: Vec<String> = ["A 1", "B/2", "C", "D", "E"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let products = client(&cfg).products_by_skus(&skus).await.unwrap();
    let got: Vec<&str> = products
        .iter()
        .map(|p| p["sku"].as_str().unwrap())
        .collect();
    assert_eq!(got, vec!["A 1", "B/2", "C", "D", "E"]);
    let reqs = mock.requests();
    assert_eq!(reqs.len(), 3);
    assert_eq!(
        reqs[0].param("searchCriteria[filter_groups][0][filters][0][condition_type]"),
        Some("in")
    );
    assert!(
        reqs[0].raw_query.contains("A%201%2CB%2F2"),
        "{}",
        reqs[0].raw_query
    );
    assert!(reqs.iter().all(|r| r.oauth_ok == Some(true)));
}

#[tokio::test]
async fn admin_token_is_cached_and_refetched_once_on_401() {
    let issued = Arc::new(AtomicU32::new(0));
    let valid_from = Arc::new(AtomicU32::new(1));
    let (i, v) = (issued.clone(), valid_from.clone());
    let mock = Mock::start(move |rec: &Recorded| {
        if rec.path.ends_with("/V1/integration/admin/token") {
            let body: Value = serde_json::from_str(&rec.body).unwrap();
            if body["password"] != "pw-admin-secret" {
                return Reply::json(401, json!({"message": "The account sign-in was incorrect or your account is disabled temporarily. Please wait and try again later."}));
            }
            let n = i.fetch_add(1, Ordering::SeqCst) + 1;
            return Reply::json(200, json!(format!("admin-token-{n}")));
        }
        let auth = rec.authorization.clone().unwrap_or_default();
        let n: u32 = auth
            .strip_prefix("Bearer admin-token-")
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        if n >= v.load(Ordering::SeqCst) {
            Reply::json(200, json!({"entity_id": 1}))
        } else {
            Reply::json(401, json!({"message": "The consumer isn't authorized to access %resources.", "parameters": {"resources": "Magento_Sales::actions_view"}}))
        }
    })
    .await;
    let mut cfg = MagentoConfig::new(mock.base_url(), AuthMode::Admin);
    cfg.username = Some("admin".into());
    cfg.password = Some("pw-admin-secret".into());
    let c = client(&cfg);

    c.get_order(1).await.unwrap();
    c.get_order(1).await.unwrap();
    assert_eq!(
        issued.load(Ordering::SeqCst),
        1,
        "token cached between calls"
    );

    // The store expires the token: one 401, one re-fetch, the same call succeeds.
    valid_from.store(2, Ordering::SeqCst);
    c.clone().get_order(1).await.unwrap();
    assert_eq!(issued.load(Ordering::SeqCst), 2);

    // A fresh token that is still refused: re-fetched once only, then the 401 surfaces.
    valid_from.store(100, Ordering::SeqCst);
    let before = mock.requests().len();
    let err = c.get_order(1).await.unwrap_err();
    assert_eq!(err.status(), Some(401));
    assert_eq!(issued.load(Ordering::SeqCst), 3);
    assert_eq!(mock.requests().len() - before, 3, "call, token, call");
    let token_request = mock
        .requests()
        .into_iter()
        .find(|r| r.path.ends_with("/admin/token"))
        .unwrap();
    assert_eq!(token_request.method, "POST");
    assert!(!err.to_string().contains("admin-token-"));

    // Wrong password: Magento's sentence, no password in it.
    cfg.password = Some("pw-not-it".into());
    let err = client(&cfg).get_order(1).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("The account sign-in was incorrect"),
        "{err}"
    );
    assert!(!err.to_string().contains("pw-not-it") && !format!("{err:?}").contains("pw-not-it"));
}

#[tokio::test]
async fn bearer_auth_and_echoed_secrets_are_scrubbed() {
    let mock = Mock::start(|rec: &Recorded| Reply {
        status: 500,
        headers: Vec::new(),
        body: format!(
            "<html>proxy error for {}</html>",
            rec.authorization.clone().unwrap_or_default()
        ),
    })
    .await;
    let mut cfg = MagentoConfig::new(mock.base_url(), AuthMode::Bearer);
    cfg.token = Some("bearer-token-secret".into());
    let c = client(&cfg);
    let err = c.categories().await.unwrap_err();
    assert_eq!(
        mock.requests()[0].authorization.as_deref(),
        Some("Bearer bearer-token-secret")
    );
    assert_eq!(
        mock.requests().len(),
        4,
        "GETs are retried on 5xx up to max_attempts"
    );
    let text = err.to_string();
    assert!(
        text.contains("proxy error") && text.contains("[redacted]"),
        "{text}"
    );
    assert!(!text.contains("bearer-token-secret"));
    assert!(!format!("{err:?}").contains("bearer-token-secret"));
    assert!(!format!("{c:?}").contains("bearer-token-secret"));
    assert!(!format!("{cfg:?}").contains("bearer-token-secret"));
}

#[tokio::test]
async fn error_messages_are_substituted_and_status_kept() {
    let mock = Mock::start(|rec: &Recorded| {
        if rec.path.ends_with("/orders/404") {
            Reply::json(404, json!({"message": "No such entity with %fieldName = %fieldValue", "parameters": {"fieldName": "orderId", "fieldValue": 404}}))
        } else {
            Reply::json(400, json!({"message": "Invalid product data: %1", "parameters": ["Invalid attribute set entity type"]}))
        }
    })
    .await;
    let c = client(&mock.oauth_config());
    let err = c.get_order(404).await.unwrap_err();
    assert!(err.is_not_found());
    assert_eq!(
        err.to_string(),
        "magento GET /V1/orders/404 returned HTTP 404: No such entity with orderId = 404"
    );
    let err = c.get_stock_item("24-MB01").await.unwrap_err();
    assert_eq!(err.status(), Some(400));
    assert!(
        err.to_string()
            .ends_with("Invalid product data: Invalid attribute set entity type")
    );
    assert_eq!(mock.requests().len(), 2, "4xx is not retried");
}

#[tokio::test]
async fn writes_retry_only_when_safe() {
    let calls = Arc::new(AtomicU32::new(0));
    let c2 = calls.clone();
    let mock = Mock::start(move |rec: &Recorded| {
        let n = c2.fetch_add(1, Ordering::SeqCst);
        match rec.path.as_str() {
            p if p.ends_with("/invoice") => {
                Reply::json(503, json!({"message": "Service Unavailable"}))
            }
            p if p.contains("/stockItems/") => {
                if n.is_multiple_of(2) {
                    Reply::json(503, json!({"message": "Service Unavailable"}))
                } else {
                    Reply::json(200, json!(77))
                }
            }
            p if p.ends_with("/comments") => {
                Reply::json(429, json!({"message": "Too Many Requests"})).header("retry-after", "0")
            }
            _ => Reply::json(200, json!([])),
        }
    })
    .await;
    let c = client(&mock.oauth_config());

    let err = c
        .create_invoice(5, true, Some("Paid in Xero"))
        .await
        .unwrap_err();
    assert_eq!(
        err.kind(),
        FailureKind::Ambiguous,
        "look up before re-creating"
    );
    assert_eq!(
        mock.requests().len(),
        1,
        "an invoice is never blindly re-sent"
    );
    let body: Value = serde_json::from_str(&mock.requests()[0].body).unwrap();
    assert_eq!(body["capture"], true);
    assert_eq!(body["comment"]["comment"], "Paid in Xero");

    calls.store(0, Ordering::SeqCst);
    let id = c.set_stock_qty("SKU 1", 12, dec!(5.50)).await.unwrap();
    assert_eq!(id, 77);
    let reqs = mock.requests();
    assert_eq!(reqs.len(), 3, "absolute stock write retried after a 503");
    assert_eq!(
        reqs[1].path,
        "/rest/default/V1/products/SKU%201/stockItems/12"
    );
    assert_eq!(reqs[1].method, "PUT");
    assert_eq!(reqs[1].body, reqs[2].body, "same bytes on retry");
    assert_ne!(
        reqs[1].oauth_nonce, reqs[2].oauth_nonce,
        "fresh nonce on retry"
    );
    assert!(reqs[2].body.contains("\"qty\":5.5"), "{}", reqs[2].body);

    let before = mock.requests().len();
    let err = c
        .add_order_comment(5, "Paid", Some("processing"))
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(429));
    assert_eq!(
        mock.requests().len() - before,
        4,
        "429 means not processed: retried"
    );
    let body: Value = serde_json::from_str(&mock.requests()[before].body).unwrap();
    assert_eq!(
        body,
        json!({"statusHistory": {"comment": "Paid", "is_customer_notified": 0, "is_visible_on_front": 0, "parent_id": 5, "status": "processing"}})
    );

    let before = mock.requests().len();
    c.set_source_items(&[SourceItem {
        sku: "24-MB01".into(),
        source_code: "default".into(),
        quantity: dec!(12),
        in_stock: true,
    }])
    .await
    .unwrap();
    let r = &mock.requests()[before];
    assert_eq!(r.path, "/rest/default/V1/inventory/source-items");
    assert_eq!(
        serde_json::from_str::<Value>(&r.body).unwrap(),
        json!({"sourceItems": [{"sku": "24-MB01", "source_code": "default", "quantity": 12, "status": 1}]})
    );
    assert!(mock.requests().iter().all(|r| r.oauth_ok == Some(true)));
}

#[tokio::test]
async fn invoices_for_order_filters_by_order_id_and_create_invoice_returns_id() {
    let mock = Mock::start(|rec: &Recorded| {
        if rec.method == "POST" {
            Reply::json(200, json!(31))
        } else {
            Reply::json(
                200,
                json!({"items": [{"entity_id": 30, "order_id": 9}], "total_count": 1}),
            )
        }
    })
    .await;
    let c = client(&mock.oauth_config());
    let invoices = c.invoices_for_order(9).await.unwrap();
    assert_eq!(invoices[0]["entity_id"], 30);
    let r = &mock.requests()[0];
    assert_eq!(r.path, "/rest/default/V1/invoices");
    assert_eq!(
        r.param("searchCriteria[filter_groups][0][filters][0][field]"),
        Some("order_id")
    );
    assert_eq!(
        r.param("searchCriteria[filter_groups][0][filters][0][value]"),
        Some("9")
    );
    assert_eq!(c.create_invoice(9, true, None).await.unwrap(), 31);
    assert_eq!(mock.requests()[1].path, "/rest/default/V1/order/9/invoice");
}

#[tokio::test]
async fn connection_refused_is_retriable_and_names_no_secret() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let mut cfg = MagentoConfig::new(format!("http://{addr}/rest/default"), AuthMode::Bearer);
    cfg.token = Some("refused-token-secret".into());
    let err = client(&cfg).get_order(1).await.unwrap_err();
    assert_eq!(err.kind(), FailureKind::Retriable);
    assert!(!err.to_string().contains("refused-token-secret"));
}

#[tokio::test]
async fn every_request_takes_a_budget_permit() {
    use tally_actors::budget::{MagentoBudget, MagentoLimits};
    let mock = Mock::start(paging_handler(5)).await;
    let budget = MagentoBudget::new(MagentoLimits::default());
    let c = MagentoClient::new(&mock.oauth_config())
        .unwrap()
        .with_retry_policy(fast_retries())
        .with_budget(budget.clone());
    c.search_all("orders", &SearchCriteria::new().page_size(2))
        .await
        .unwrap();
    c.get_order(1).await.unwrap();
    assert_eq!(mock.requests().len(), 4);
    let snap = budget.snapshot();
    assert_eq!(snap.calls_total, 4);
    assert_eq!(snap.in_flight, 0, "permits released after each response");
}

#[tokio::test]
async fn a_failed_token_fetch_does_not_make_a_write_ambiguous() {
    let token_calls = Arc::new(AtomicU32::new(0));
    let t = token_calls.clone();
    let mock = Mock::start(move |rec: &Recorded| {
        if rec.path.ends_with("/V1/integration/admin/token") {
            if t.fetch_add(1, Ordering::SeqCst) == 0 {
                return Reply::json(503, json!({"message": "Service Unavailable"}));
            }
            return Reply::json(200, json!("admin-token-ok"));
        }
        Reply::json(200, json!(41))
    })
    .await;
    let mut cfg = MagentoConfig::new(mock.base_url(), AuthMode::Admin);
    cfg.username = Some("admin".into());
    cfg.password = Some("pw-admin-secret".into());
    let id = client(&cfg).create_invoice(3, true, None).await.unwrap();
    assert_eq!(id, 41);
    assert_eq!(token_calls.load(Ordering::SeqCst), 2);
    let invoice_posts = mock
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/order/3/invoice"))
        .count();
    assert_eq!(invoice_posts, 1);
}
