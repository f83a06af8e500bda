//! Magento's asynchronous bulk API, for writes that would otherwise be one request each.
//!
//! A backfill comments on every paid order. One request per order is most of the Magento
//! traffic of a backfill and a large share of both sides' CPU; one bulk request carries
//! hundreds. The price is that Magento applies the operations later (its
//! `async.operations.all` consumer, run from cron), so the outcome is read back from
//! `/V1/bulk/{uuid}/status`, and an operation still open must be waited for before anyone
//! decides the write did not happen.

use reqwest::Method;
use serde::Deserialize;
use serde_json::{Value, json};

use super::client::{MagentoClient, Repeat};
use super::criteria::{Condition, SearchCriteria};
use super::error::MagentoError;

/// The queue topic of order comments sent through the bulk API.
pub const COMMENT_TOPIC: &str = "async.magento.sales.api.orderManagementInterface.addComment.POST";

/// A bulk request as Magento accepted it: its id, and per element (in request order) whether
/// it was queued or refused with a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BulkAccepted {
    pub uuid: String,
    pub items: Vec<Result<(), String>>,
}

/// `OperationInterface::STATUS_TYPE_*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OperationState {
    Complete,
    /// Failed (retriably or not) or rejected, with Magento's message.
    Failed(String),
    /// Not yet reached by the consumer.
    Open,
}

impl OperationState {
    fn from_code(code: i64, message: Option<String>) -> Self {
        match code {
            1 => Self::Complete,
            4 => Self::Open,
            _ => Self::Failed(message.filter(|m| !m.is_empty()).unwrap_or_else(|| {
                format!("Magento reported bulk operation status {code} without a message")
            })),
        }
    }
}

#[derive(Deserialize)]
struct AcceptedBody {
    bulk_uuid: String,
    request_items: Vec<RequestItem>,
}

#[derive(Deserialize)]
struct RequestItem {
    id: usize,
    status: String,
    #[serde(default)]
    error_message: Option<String>,
}

#[derive(Deserialize)]
struct StatusBody {
    operations_list: Vec<OperationSummary>,
}

#[derive(Deserialize)]
struct OperationSummary {
    id: usize,
    status: i64,
    #[serde(default)]
    result_message: Option<String>,
}

impl MagentoClient {
    /// `POST async/bulk/V1/orders/byId/comments`: queues one status-history comment per
    /// `(entity_id, comment)`. Not idempotent (a repeat queues the comments again), so it is
    /// not retried when the outcome is unknown.
    pub async fn add_order_comments_bulk(
        &self,
        comments: &[(u64, &str)],
    ) -> Result<BulkAccepted, MagentoError> {
        let body: Vec<Value> = comments
            .iter()
            .map(|(id, comment)| {
                json!({
                    "id": id,
                    "statusHistory": {
                        "comment": comment,
                        "is_customer_notified": 0,
                        "is_visible_on_front": 0,
                        "parent_id": id,
                    }
                })
            })
            .collect();
        let path = "async/bulk/V1/orders/byId/comments";
        let value = self
            .send(
                Method::POST,
                path.into(),
                Some(Value::Array(body)),
                Repeat::Unsafe,
            )
            .await?;
        let decoded: AcceptedBody =
            serde_json::from_value(value).map_err(|e| decode("POST", path, e))?;
        let mut items: Vec<Result<(), String>> =
            vec![
                Err("Magento's bulk response did not mention this element".into());
                comments.len()
            ];
        for item in decoded.request_items {
            if let Some(slot) = items.get_mut(item.id) {
                *slot = if item.status == "accepted" {
                    Ok(())
                } else {
                    Err(item
                        .error_message
                        .unwrap_or_else(|| format!("Magento {} the element", item.status)))
                };
            }
        }
        Ok(BulkAccepted {
            uuid: decoded.bulk_uuid,
            items,
        })
    }

    /// `GET /V1/bulk/{uuid}/status`: each operation's state, by its position in the request.
    pub async fn bulk_status(&self, uuid: &str) -> Result<Vec<OperationState>, MagentoError> {
        let path = format!("V1/bulk/{}/status", super::rfc3986(uuid));
        let value = self.get(path.clone(), Vec::new()).await?;
        let decoded: StatusBody =
            serde_json::from_value(value).map_err(|e| decode("GET", &path, e))?;
        let len = decoded
            .operations_list
            .iter()
            .map(|o| o.id + 1)
            .max()
            .unwrap_or(0);
        let mut out = vec![OperationState::Failed("not in Magento's bulk status".into()); len];
        for op in decoded.operations_list {
            out[op.id] = OperationState::from_code(op.status, op.result_message);
        }
        Ok(out)
    }

    /// How many of the bulk's operations are still open
    /// (`GET /V1/bulk/{uuid}/operation-status/4`): an integer, so waiting on a large bulk
    /// does not read its whole status each time.
    pub async fn open_in_bulk(&self, uuid: &str) -> Result<u64, MagentoError> {
        let path = format!("V1/bulk/{}/operation-status/4", super::rfc3986(uuid));
        let value = self.get(path.clone(), Vec::new()).await?;
        value.as_u64().ok_or_else(|| MagentoError::Decode {
            method: "GET".into(),
            path: format!("/{path}"),
            reason: format!("expected a count, got {value}"),
        })
    }

    /// How many bulk operations of `topic` are still open (`GET /V1/bulk`, status 4): while
    /// any is, a write it carries may yet be applied.
    pub async fn open_operations(&self, topic: &str) -> Result<u64, MagentoError> {
        let criteria = SearchCriteria::new()
            .filter("status", Condition::Eq, "4")
            .filter("topic_name", Condition::Eq, topic)
            .page_size(1)
            .current_page(1);
        Ok(self.search("bulk", &criteria).await?.total_count)
    }
}

fn decode(method: &str, path: &str, e: serde_json::Error) -> MagentoError {
    MagentoError::Decode {
        method: method.into(),
        path: format!("/{path}"),
        reason: e.to_string(),
    }
}
