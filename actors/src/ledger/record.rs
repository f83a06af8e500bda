//! The source record an entity carries (a Magento order, a contact body, …), kept as the
//! JSON text it was stored as.
//!
//! Why text and not a parsed `serde_json::Value`: every stage reads entities in bulk and
//! writes each one back at least once per transition, and most of those reads and writes
//! never look inside the record. Kept as text, reading a state skips over the record
//! instead of building a map of it, writing it back copies bytes, and cloning a state
//! shares the text. The stage that does need the fields parses them once, when it needs
//! them. Numbers keep their exact decimal text either way (serde_json
//! `arbitrary_precision`), so money survives the round trip.

use super::error::LedgerError;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use serde_json::value::RawValue;
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

/// The text is valid JSON: it is written by serde_json here, or checked when it arrives
/// from outside; the ledger's own stored copies are trusted (the ledger wrote them), which
/// spares every read a second validation of every record.
///
/// The second field is the entity key of the ledger row the text was read from, if it was:
/// written back under that key at the version it was read with (the writer checks the
/// version), it is still that row's text, so the writer skips reading the row to compare.
/// Most of an order's transitions carry its record unchanged.
#[derive(Clone)]
pub struct Record(Arc<str>, Option<Arc<str>>);

impl Record {
    /// The record for a parsed value (serialised once, here).
    pub fn from_value(value: &Value) -> Record {
        let text = serde_json::to_string(value).expect("a serde_json::Value always serialises");
        Record(Arc::from(text), None)
    }

    /// The record for anything serde_json writes (its output is JSON by construction).
    /// `Err` only for what serde_json cannot write (a map with non-string keys).
    pub fn of(value: &impl Serialize) -> Result<Record, serde_json::Error> {
        serde_json::to_string(value).map(|text| Record(Arc::from(text), None))
    }

    /// The record for JSON text; `Err` if the text is not one JSON value.
    pub fn from_json(text: String) -> Result<Record, serde_json::Error> {
        RawValue::from_string(text).map(|raw| Record(Arc::from(raw.get()), None))
    }

    /// `null`: an entity that carries no record.
    pub fn null() -> Record {
        Record(Arc::from("null"), None)
    }

    /// The whole record, parsed.
    pub fn value(&self) -> Value {
        serde_json::from_str(&self.0).unwrap_or(Value::Null)
    }

    /// The whole record as a tree that borrows from the text: what a stage parses an order
    /// from (see `model::json` for why not a `Value`). `null` if the text is not JSON.
    pub fn tree(&self) -> crate::model::Json<'_> {
        crate::model::Json::parse(&self.0).unwrap_or(crate::model::Json::Null)
    }

    /// One top-level field, parsed; `None` if absent or the record is not an object.
    /// Only that field is built; the others are skipped over.
    pub fn field(&self, name: &str) -> Option<Value> {
        self.fields([name]).into_iter().next().flatten()
    }

    /// Several top-level fields from one pass over the text, in the order of `names`.
    pub fn fields<const N: usize>(&self, names: [&str; N]) -> [Option<Value>; N] {
        let fields: Option<HashMap<&str, &RawValue>> = serde_json::from_str(&self.0).ok();
        names.map(|name| serde_json::from_str(fields.as_ref()?.get(name)?.get()).ok())
    }

    /// The JSON text.
    pub fn json(&self) -> &str {
        &self.0
    }

    /// The entity key whose stored row this text was read from, if it was.
    pub(crate) fn read_from(&self) -> Option<&str> {
        self.1.as_deref()
    }

    /// A record as the ledger stored it (`ENTITY_TO_RECORD`): text the ledger wrote from a
    /// `Record`, so only its encoding is checked.
    pub(crate) fn from_stored(key: &str, bytes: &[u8]) -> Result<Record, LedgerError> {
        let text = std::str::from_utf8(bytes).map_err(|e| LedgerError::Decode {
            what: "record",
            key: key.to_owned(),
            reason: e.to_string(),
        })?;
        Ok(Record(Arc::from(text), Some(Arc::from(key))))
    }
}

impl From<Value> for Record {
    fn from(value: Value) -> Record {
        Record::from_value(&value)
    }
}

impl Default for Record {
    fn default() -> Record {
        Record::null()
    }
}

impl PartialEq for Record {
    fn eq(&self, other: &Record) -> bool {
        self.0 == other.0
    }
}

impl Eq for Record {}

impl fmt::Debug for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for Record {
    /// Written as the JSON value it is, not as a string. Rare now (dead-letter payloads,
    /// views); the ledger writes records as bytes.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let raw: &RawValue = serde_json::from_str(&self.0).map_err(serde::ser::Error::custom)?;
        raw.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Record {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Record, D::Error> {
        Box::<RawValue>::deserialize(deserializer).map(|raw| Record(Arc::from(raw.get()), None))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn money_text_survives_the_round_trip() {
        let r = Record::from_value(
            &json!({"grand_total": serde_json::Number::from_string_unchecked("10.10".into())}),
        );
        assert_eq!(r.json(), r#"{"grand_total":10.10}"#);
        let back: Record = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
        assert_eq!(back, r);
        assert_eq!(back.field("grand_total").unwrap().to_string(), "10.10");
    }

    #[test]
    fn field_reads_one_top_level_field() {
        let r = Record::from_value(&json!({"entity_id": 7, "items": [{"sku": "A"}]}));
        assert_eq!(r.field("entity_id"), Some(json!(7)));
        assert_eq!(r.field("missing"), None);
        assert_eq!(Record::null().field("entity_id"), None);
        assert_eq!(r.value()["items"][0]["sku"], "A");
    }

    #[test]
    fn a_record_inside_a_state_round_trips_through_a_value() {
        // Console and export paths go through `serde_json::Value`, not text.
        let r = Record::from_value(&json!({"a": [1, "x"]}));
        let v = serde_json::to_value(&r).unwrap();
        let back: Record = serde_json::from_value(v).unwrap();
        assert_eq!(back.value(), json!({"a": [1, "x"]}));
    }
}
