//! `POST /webhooks/xero` and `POST /webhooks/magento`.
//!
//! Both verify the signature over the raw bytes before parsing anything, answer quickly, and hand
//! the work to an [`Intake`](crate::daemon::intake::Intake) queue. Xero's rules: 200 with an
//! empty body for a good signature (including the "intent to receive" probes, which carry
//! `events: []`), 401 with an empty body for a bad or missing one, within 5 seconds.

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::Value;

use crate::daemon::dedup::RecentSet;
use crate::daemon::engine::{MagentoChange, XeroEvent};
use crate::daemon::intake::EnqueueError;
use crate::daemon::metrics;
use crate::daemon::server::AppState;
use crate::daemon::signature;

pub const XERO_SIGNATURE: &str = "x-xero-signature";
pub const ADOBE_SIGNATURE: &str = "x-adobe-commerce-webhook-signature";
pub const TALLY_SIGNATURE: &str = "x-tally-signature";

/// Delivered events remembered for de-duplication.
pub const XERO_DEDUP_CAPACITY: usize = 50_000;

/// The outcome label a handler chose; read by the counting layer so one place counts every
/// response, including the 413s that never reach a handler.
#[derive(Clone, Copy, Debug)]
pub struct Outcome(pub &'static str);

fn answer(status: StatusCode, outcome: &'static str) -> Response {
    let mut r = status.into_response();
    r.extensions_mut().insert(Outcome(outcome));
    r
}

/// Counts a webhook response into `tally_webhooks_total`.
pub fn count(source: &'static str, res: &Response) {
    let outcome = res
        .extensions()
        .get::<Outcome>()
        .map(|o| o.0)
        .unwrap_or(match res.status() {
            StatusCode::OK => "accepted",
            StatusCode::UNAUTHORIZED => "unauthorized",
            StatusCode::PAYLOAD_TOO_LARGE => "too_large",
            StatusCode::SERVICE_UNAVAILABLE => "unavailable",
            _ => "bad_request",
        });
    metrics::count_webhook(source, outcome);
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// A body that could not be read (too large when sent chunked, or cut off) as status and outcome.
fn body_or_reject(
    body: Result<Bytes, BytesRejection>,
) -> Result<Bytes, (StatusCode, &'static str)> {
    body.map_err(|rej| {
        let status = rej.status();
        (
            status,
            if status == StatusCode::PAYLOAD_TOO_LARGE {
                "too_large"
            } else {
                "bad_request"
            },
        )
    })
}

#[derive(Deserialize)]
struct XeroDelivery {
    #[serde(default)]
    events: Vec<XeroEvent>,
}

pub type XeroDedupKey = (String, String, String, String);

fn dedup_key(e: &XeroEvent) -> XeroDedupKey {
    (
        e.resource_id.clone(),
        e.event_category.clone(),
        e.event_type.clone(),
        e.event_date_utc.clone(),
    )
}

pub async fn xero(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    if app.draining() {
        return answer(StatusCode::SERVICE_UNAVAILABLE, "unavailable");
    }
    let body = match body_or_reject(body) {
        Ok(b) => b,
        Err((status, outcome)) => return answer(status, outcome),
    };
    let Some(key) = app.settings.daemon.xero_webhook_key.as_ref() else {
        return answer(StatusCode::NOT_FOUND, "not_configured");
    };
    if !signature::verify_xero(key, &body, header(&headers, XERO_SIGNATURE)) {
        return answer(StatusCode::UNAUTHORIZED, "unauthorized");
    }
    let Ok(delivery) = serde_json::from_slice::<XeroDelivery>(&body) else {
        return answer(StatusCode::BAD_REQUEST, "bad_request");
    };
    let total = delivery.events.len();
    let mut fresh = 0usize;
    for event in delivery.events {
        let key = dedup_key(&event);
        if !app.xero_seen.lock().insert(key.clone()) {
            continue;
        }
        match app.xero_intake.try_enqueue(event) {
            Ok(()) => fresh += 1,
            Err(e) => {
                // Forget it so Xero's retry of this delivery is not taken for a duplicate.
                app.xero_seen.lock().remove(&key);
                tracing::warn!(reason = ?e, "Xero webhook event not queued; answering 503 so Xero retries.");
                return answer(StatusCode::SERVICE_UNAVAILABLE, "unavailable");
            }
        }
    }
    if total > 0 && fresh == 0 {
        return answer(StatusCode::OK, "duplicate");
    }
    answer(StatusCode::OK, "accepted")
}

pub async fn magento(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    if app.draining() {
        return answer(StatusCode::SERVICE_UNAVAILABLE, "unavailable");
    }
    let body = match body_or_reject(body) {
        Ok(b) => b,
        Err((status, outcome)) => return answer(status, outcome),
    };
    let d = &app.settings.daemon;
    if app.magento_rsa.is_none() && d.magento_webhook_secret.is_none() {
        return answer(StatusCode::NOT_FOUND, "not_configured");
    }
    let verified = match (
        header(&headers, ADOBE_SIGNATURE),
        header(&headers, TALLY_SIGNATURE),
    ) {
        (Some(sig), _) => app
            .magento_rsa
            .as_ref()
            .is_some_and(|v| v.verify(&body, Some(sig))),
        (None, Some(sig)) => d
            .magento_webhook_secret
            .as_ref()
            .is_some_and(|s| signature::verify_tally(s, &body, Some(sig))),
        (None, None) => false,
    };
    if !verified {
        return answer(StatusCode::UNAUTHORIZED, "unauthorized");
    }
    let Some(change) = serde_json::from_slice::<Value>(&body)
        .ok()
        .as_ref()
        .and_then(order_change)
    else {
        let mut r = (
            StatusCode::BAD_REQUEST,
            axum::Json(serde_json::json!({"op": "exception", "message": "no entity_id or increment_id in the payload"})),
        )
            .into_response();
        r.extensions_mut().insert(Outcome("bad_request"));
        return r;
    };
    match app.magento_intake.try_enqueue(change) {
        Ok(()) => {
            // Adobe Commerce webhooks read `op`; a plain push ignores the body.
            let mut r = axum::Json(serde_json::json!({"op": "success"})).into_response();
            r.extensions_mut().insert(Outcome("accepted"));
            r
        }
        Err(EnqueueError::Full | EnqueueError::Closed) => {
            answer(StatusCode::SERVICE_UNAVAILABLE, "unavailable")
        }
    }
}

/// Finds the order ids in a plain push (`{"entity_id", "increment_id"}`) or an Adobe Commerce
/// webhook payload (`{"data": {"order": {...}}}`, `{"order": {...}}` or `{"data": {...}}`).
/// Magento often sends numbers as strings, so both spellings are accepted.
pub fn order_change(v: &Value) -> Option<MagentoChange> {
    let candidates = [v, &v["data"]["order"], &v["order"], &v["data"]];
    candidates.into_iter().find_map(|c| {
        let entity_id = match &c["entity_id"] {
            Value::Number(n) => n.as_u64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        };
        let increment_id = match &c["increment_id"] {
            Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        };
        (entity_id.is_some() || increment_id.is_some()).then_some(MagentoChange {
            entity_id,
            increment_id,
        })
    })
}

/// A fresh de-duplication memory for a daemon.
pub fn new_xero_dedup() -> RecentSet<XeroDedupKey> {
    RecentSet::new(XERO_DEDUP_CAPACITY)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn order_ids_are_found_in_every_payload_shape() {
        let plain = order_change(&json!({"entity_id": 7, "increment_id": "000000007"})).unwrap();
        assert_eq!(
            plain,
            MagentoChange {
                entity_id: Some(7),
                increment_id: Some("000000007".into())
            }
        );
        let adobe = order_change(&json!({"eventName": "observer.sales_order_save_after", "data": {"order": {"entity_id": "12"}}})).unwrap();
        assert_eq!(adobe.entity_id, Some(12));
        let plugin = order_change(&json!({"order": {"increment_id": "000000099"}})).unwrap();
        assert_eq!(plugin.increment_id.as_deref(), Some("000000099"));
        assert!(order_change(&json!({"foo": 1})).is_none());
        assert!(order_change(&json!({"entity_id": "abc", "increment_id": ""})).is_none());
    }
}
