//! An order as the poll hands it over: the JSON text Magento sent, with the key the poll
//! orders and de-duplicates by.
//!
//! Text, not a `serde_json::Value`: ingest reads each order once (a borrowed
//! [`Json`](crate::model::Json) tree) and stores its projection as text, so building an
//! ordered map per object only to write it out again was a tenth of the engine's CPU in a
//! backfill.

use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;

use super::error::MagentoError;
use super::poller::order_key;
use crate::model::Json;

#[derive(Debug, Clone)]
pub struct PolledOrder {
    json: Box<RawValue>,
    entity_id: u64,
    updated_at: String,
}

/// The two members the key is made of; everything else is skipped over, not built.
#[derive(Deserialize)]
struct KeyMembers<'a> {
    #[serde(borrow, default)]
    entity_id: Option<Json<'a>>,
    #[serde(borrow, default)]
    updated_at: Option<Json<'a>>,
}

impl PolledOrder {
    /// An order from a page that kept it as text. Refused, like a `Value` order, when it
    /// has no numeric `entity_id` or no Magento `updated_at`.
    pub(crate) fn from_raw(json: Box<RawValue>) -> Result<PolledOrder, MagentoError> {
        // serde's derive would also read a struct from an array: objects only.
        let object = json.get().trim_start().starts_with('{');
        let members = object.then(|| serde_json::from_str::<KeyMembers>(json.get()));
        let (entity_id, updated_at) = match members {
            Some(Ok(k)) => {
                let mut members = Vec::new();
                if let Some(id) = k.entity_id {
                    members.push(("entity_id".into(), id));
                }
                if let Some(at) = k.updated_at {
                    members.push(("updated_at".into(), at));
                }
                order_key(&Json::Object(members))?
            }
            // Not an object, or one serde's derive refuses (a repeated key): the whole
            // tree decides, as it would for a `Value`.
            _ => order_key(&Json::parse(json.get()).unwrap_or(Json::Null))?,
        };
        Ok(PolledOrder {
            json,
            entity_id,
            updated_at,
        })
    }

    /// An order that arrived whole in a page read as values (a server that ignored
    /// `fields`).
    pub(crate) fn from_value(order: &Value) -> Result<PolledOrder, MagentoError> {
        let (entity_id, updated_at) = order_key(order)?;
        let json = serde_json::value::to_raw_value(order).map_err(|e| MagentoError::Decode {
            method: "GET".into(),
            path: "/V1/orders".into(),
            reason: e.to_string(),
        })?;
        Ok(PolledOrder {
            json,
            entity_id,
            updated_at,
        })
    }

    pub fn entity_id(&self) -> u64 {
        self.entity_id
    }

    pub fn updated_at(&self) -> &str {
        &self.updated_at
    }

    /// `(entity_id, updated_at)`: what the poll remembers in its cursor.
    pub fn key(&self) -> (u64, String) {
        (self.entity_id, self.updated_at.clone())
    }

    /// The order as Magento sent it.
    pub fn json(&self) -> &str {
        self.json.get()
    }

    /// The order as a tree borrowing from its text.
    pub fn tree(&self) -> Json<'_> {
        Json::parse(self.json.get()).unwrap_or(Json::Null)
    }

    /// The order as a `Value`, for callers that edit or inspect it freely.
    pub fn value(&self) -> Value {
        serde_json::from_str(self.json.get()).unwrap_or(Value::Null)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_key_is_read_from_text_as_from_a_value() {
        let order = json!({"increment_id": "1", "items": [{"entity_id": 9}], "entity_id": "42",
                           "updated_at": "2024-05-01 10:00:00"});
        let raw = serde_json::value::to_raw_value(&order).unwrap();
        let a = PolledOrder::from_raw(raw).unwrap();
        let b = PolledOrder::from_value(&order).unwrap();
        assert_eq!(a.key(), (42, "2024-05-01 10:00:00".to_string()));
        assert_eq!(a.key(), b.key());
        assert_eq!(a.value(), order);
        assert_eq!(a.json(), b.json());
    }

    #[test]
    fn orders_without_a_usable_key_are_refused_with_the_value_path_s_reason() {
        for bad in [
            json!({"updated_at": "2024-05-01 10:00:00"}),
            json!({"entity_id": 1}),
            json!({"entity_id": 1, "updated_at": "yesterday"}),
            json!([1]),
        ] {
            let raw = serde_json::value::to_raw_value(&bad).unwrap();
            let a = PolledOrder::from_raw(raw).unwrap_err().to_string();
            let b = PolledOrder::from_value(&bad).unwrap_err().to_string();
            assert_eq!(a, b, "{bad}");
        }
        // A repeated key is read as serde_json reads it: the last one wins.
        let raw = RawValue::from_string(
            r#"{"entity_id":1,"entity_id":2,"updated_at":"2024-05-01 10:00:00"}"#.into(),
        )
        .unwrap();
        assert_eq!(PolledOrder::from_raw(raw).unwrap().entity_id(), 2);
    }
}
