//! Batched writes: up to 50 elements per request, per-element outcomes.
//!
//! Always `summarizeErrors=false`: with Xero's default (true) one bad element turns the
//! whole response into a 400 while the good elements are still created, and their IDs are
//! lost. With false, Xero answers 200 and the full array in request order, each element
//! marked OK or ERROR.

use reqwest::Method;
use serde_json::{Map, Value};

use super::client::{Call, XeroClient, validation_messages};
use super::error::XeroError;
use crate::budget::Priority;
use crate::model::{Json, JsonView};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMethod {
    /// Create only (a duplicate InvoiceNumber is an error).
    Put,
    /// Create or update.
    Post,
}

/// The fate of one element of a batch, in request order.
///
/// `value` is the element's top level as Xero answered it: its ids, number, status, totals,
/// dates, `ValidationErrors` and `Warnings`. Nested lists and objects (line items, the
/// contact, payments, addresses) are left out: nothing reads them from a write's answer, and
/// a fifty-invoice answer is mostly line items, which the engine used to build as maps only
/// to drop them.
#[derive(Debug, Clone, PartialEq)]
pub enum ElementOutcome {
    /// Created or updated; `value` is Xero's copy (with its IDs, totals, warnings).
    Ok { value: Value },
    /// Refused; `value` is what Xero echoed back for it.
    Rejected { messages: Vec<String>, value: Value },
}

/// Nested members of an element that are kept: what tells an outcome and its reasons.
const KEPT_NESTED: &[&str] = &["ValidationErrors", "Warnings"];

/// The elements of a successful batch answer, each cut to its top level (see
/// [`ElementOutcome`]).
fn returned_elements(body: &[u8], resource: &str) -> Result<Vec<Value>, XeroError> {
    let not_object = || XeroError::Malformed(format!("{resource}: response is not an object"));
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(not_object());
    }
    let tree = std::str::from_utf8(body)
        .ok()
        .and_then(|text| Json::parse(text).ok())
        .ok_or_else(|| XeroError::Malformed(format!("{resource}: success body is not JSON")))?;
    if !tree.object() {
        return Err(not_object());
    }
    match tree.member(resource) {
        Some(Json::Array(elements)) => Ok(elements.iter().map(top_level).collect()),
        _ => Err(XeroError::Malformed(format!(
            "{resource}: response has no {resource} array"
        ))),
    }
}

fn top_level(element: &Json) -> Value {
    match element {
        Json::Object(members) => Value::Object(
            members
                .iter()
                .filter(|(k, v)| {
                    KEPT_NESTED.contains(&k.as_ref())
                        || !matches!(v, Json::Array(_) | Json::Object(_))
                })
                .map(|(k, v)| (k.to_string(), v.to_value()))
                .collect(),
        ),
        other => other.to_value(),
    }
}

impl ElementOutcome {
    pub fn is_ok(&self) -> bool {
        matches!(self, ElementOutcome::Ok { .. })
    }

    pub fn value(&self) -> &Value {
        match self {
            ElementOutcome::Ok { value } | ElementOutcome::Rejected { value, .. } => value,
        }
    }
}

pub const MAX_BATCH_ELEMENTS: usize = 50;
/// Xero refuses POSTs over 3.5 MB.
pub const MAX_BATCH_BYTES: usize = 3_500_000;
pub const MAX_IDEMPOTENCY_KEY_LEN: usize = 128;

/// A key must fit Xero's 128-character limit and be sendable as a header value.
pub fn validate_idempotency_key(key: &str) -> Result<(), XeroError> {
    if key.is_empty() {
        return Err(XeroError::InvalidIdempotencyKey("empty".into()));
    }
    if key.len() > MAX_IDEMPOTENCY_KEY_LEN {
        return Err(XeroError::InvalidIdempotencyKey(format!(
            "{} characters (at most {MAX_IDEMPOTENCY_KEY_LEN})",
            key.len()
        )));
    }
    if !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(XeroError::InvalidIdempotencyKey(
            "only visible ASCII characters are allowed".into(),
        ));
    }
    Ok(())
}

/// Reads one element's status from a `summarizeErrors=false` response.
fn outcome(value: Value) -> ElementOutcome {
    let marked_error = value
        .get("StatusAttributeString")
        .and_then(Value::as_str)
        .is_some_and(|s| s.eq_ignore_ascii_case("ERROR"));
    let has_errors = ["HasErrors", "HasValidationErrors"]
        .iter()
        .any(|k| value.get(*k).and_then(Value::as_bool).unwrap_or(false));
    let messages = validation_messages(&value);
    if marked_error || has_errors || !messages.is_empty() {
        let messages = if messages.is_empty() {
            vec!["Xero marked the element as ERROR without a message".to_owned()]
        } else {
            messages
        };
        ElementOutcome::Rejected { messages, value }
    } else {
        ElementOutcome::Ok { value }
    }
}

impl XeroClient {
    /// Writes `elements` to `resource` ("Invoices", "Contacts", "Payments", "CreditNotes")
    /// in one request. The caller owns `idempotency_key` (persisted with its intent) and
    /// splits batches: more than 50 elements or 3.5 MB is an error, not split here, because
    /// one key must always mean one body.
    pub async fn batch_write(
        &self,
        method: WriteMethod,
        resource: &str,
        elements: Vec<Value>,
        idempotency_key: &str,
        priority: Priority,
    ) -> Result<Vec<ElementOutcome>, XeroError> {
        validate_idempotency_key(idempotency_key)?;
        if elements.is_empty() {
            return Ok(Vec::new());
        }
        let count = elements.len();
        let mut envelope = Map::new();
        envelope.insert(resource.to_owned(), Value::Array(elements));
        let body = serde_json::to_vec(&Value::Object(envelope))
            .map_err(|e| XeroError::Config(format!("batch cannot be serialised: {e}")))?;
        if count > MAX_BATCH_ELEMENTS || body.len() >= MAX_BATCH_BYTES {
            return Err(XeroError::BatchTooLarge {
                elements: count,
                bytes: body.len(),
            });
        }
        let call = Call {
            method: match method {
                WriteMethod::Put => Method::PUT,
                WriteMethod::Post => Method::POST,
            },
            path: resource,
            query: vec![
                ("summarizeErrors".to_owned(), "false".to_owned()),
                ("unitdp".to_owned(), "4".to_owned()),
            ],
            body: Some(body),
            idempotency_key: Some(idempotency_key),
            if_modified_since: None,
            priority,
        };
        let returned = self
            .execute_as(&call, |_, body, _| returned_elements(body, resource))
            .await?;
        if returned.len() != count {
            return Err(XeroError::Malformed(format!(
                "{resource}: sent {count} elements, got {} back",
                returned.len()
            )));
        }
        Ok(returned.into_iter().map(outcome).collect())
    }
}
