//! The persisted state of one entity (an order, a contact, …).

use super::record::Record;
use super::stage::{EntityKind, Stage};
use super::tables::INDEXED_LINKS;
use crate::model::json::Key;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// An outbound call that is about to be (or was) made and whose outcome is not yet recorded.
///
/// It is committed *before* the call. If the process dies before the outcome is committed,
/// the intent is still here on restart and tells the recovery code what to look up (by
/// natural key) before anything is re-sent, and which idempotency key to re-send with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Intent {
    /// The operation, e.g. `"PUT Invoices"`.
    pub op: String,
    /// Derived from the business id (never random per attempt), so a retry is recognised.
    pub idempotency_key: String,
    /// Hex SHA-256 of the request body: a retry must send the same body under the same key.
    pub body_sha256: String,
    /// The batch the call belongs to, to correlate the elements of one Xero batch call.
    pub batch_id: String,
    pub committed_at_ms: i64,
}

/// The part of an [`EntityState`] the ledger writer needs to check a transition and move
/// the indexes. Decoding only this (serde skips `data` without building it) matters: the
/// writer reads the previous state on every write, and `data` holds the whole source record.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub(crate) struct StateHeader {
    pub kind: EntityKind,
    pub stage: Stage,
    /// Only the links the writer indexes ([`INDEXED_LINKS`]): the others are skipped over,
    /// not built, on every write.
    #[serde(default, deserialize_with = "indexed_links")]
    pub links: BTreeMap<String, String>,
    pub intent: Option<IntentKey>,
    pub retry_at_ms: Option<i64>,
    pub created_at_ms: i64,
    pub version: u64,
}

/// A state's `links`, keeping only the names in [`INDEXED_LINKS`].
fn indexed_links<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, String>, D::Error> {
    struct Links;
    impl<'de> serde::de::Visitor<'de> for Links {
        type Value = BTreeMap<String, String>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a map of links")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut map: A,
        ) -> Result<Self::Value, A::Error> {
            let mut out = BTreeMap::new();
            while let Some(Key(name)) = map.next_key()? {
                if INDEXED_LINKS.contains(&name.as_ref()) {
                    out.insert(name.into_owned(), map.next_value::<String>()?);
                } else {
                    map.next_value::<serde::de::IgnoredAny>()?;
                }
            }
            Ok(out)
        }
    }
    d.deserialize_map(Links)
}

/// Only the idempotency key of an [`Intent`]: what the intent index is keyed by.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub(crate) struct IntentKey {
    pub idempotency_key: String,
}

impl StateHeader {
    /// Exactly what decoding `state` as stored gives: the indexed links only.
    pub(crate) fn stored(state: &EntityState) -> StateHeader {
        StateHeader {
            links: state
                .links
                .iter()
                .filter(|(name, _)| INDEXED_LINKS.contains(&name.as_str()))
                .map(|(name, value)| (name.clone(), value.clone()))
                .collect(),
            ..StateHeader::without_links(state)
        }
    }

    pub(crate) fn of(state: &EntityState) -> StateHeader {
        StateHeader {
            links: state.links.clone(),
            ..StateHeader::without_links(state)
        }
    }

    fn without_links(state: &EntityState) -> StateHeader {
        StateHeader {
            kind: state.kind,
            stage: state.stage,
            links: BTreeMap::new(),
            intent: state.intent.as_ref().map(|i| IntentKey {
                idempotency_key: i.idempotency_key.clone(),
            }),
            retry_at_ms: state.retry_at_ms,
            created_at_ms: state.created_at_ms,
            version: state.version,
        }
    }
}

/// Everything the engine remembers about one entity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EntityState {
    /// `order:000000123`; see [`EntityKind::key`].
    pub key: String,
    pub kind: EntityKind,
    pub stage: Stage,
    /// The validated source record (order, contact, …), kept as JSON text; see [`Record`].
    /// Stored in its own table (`ENTITY_TO_RECORD`), not with the state; `default` reads a
    /// state without it, which the ledger then fills from that table.
    #[serde(default)]
    pub data: Record,
    /// Remote ids: `contact_id`, `invoice_id`, `payment_id`, `magento_entity_id`, …
    pub links: BTreeMap<String, String>,
    pub intent: Option<Intent>,
    #[serde(default)]
    pub attempts: u32,
    /// Set while a failed attempt waits for its retry; indexed in `DUE_TO_ENTITY`.
    pub retry_at_ms: Option<i64>,
    pub last_error: Option<String>,
    /// Stamped by the ledger when the entity is first written.
    pub created_at_ms: i64,
    /// Stamped by the ledger on every write.
    pub updated_at_ms: i64,
    /// Optimistic concurrency token: pass back the version you read; the ledger rejects the
    /// write if someone else wrote in between, and stores `version + 1`. 0 = "new entity".
    pub version: u64,
}

/// An [`EntityState`] as the ledger stores it in `ENTITY_TO_STATE`: everything but the
/// record, which has its own table and is rewritten only when it changes. Empty fields are
/// left out (they read back as `None` and 0): most states carry no intent, retry or error,
/// and every transition rewrites the state.
#[derive(Serialize)]
pub(crate) struct StoredState<'a> {
    key: &'a str,
    kind: EntityKind,
    stage: Stage,
    links: &'a BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    intent: &'a Option<Intent>,
    #[serde(skip_serializing_if = "is_zero")]
    attempts: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    retry_at_ms: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_error: &'a Option<String>,
    created_at_ms: i64,
    updated_at_ms: i64,
    version: u64,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl<'a> StoredState<'a> {
    pub(crate) fn of(s: &'a EntityState) -> StoredState<'a> {
        StoredState {
            key: &s.key,
            kind: s.kind,
            stage: s.stage,
            links: &s.links,
            intent: &s.intent,
            attempts: s.attempts,
            retry_at_ms: s.retry_at_ms,
            last_error: &s.last_error,
            created_at_ms: s.created_at_ms,
            updated_at_ms: s.updated_at_ms,
            version: s.version,
        }
    }
}

impl EntityState {
    /// A brand-new entity in its kind's initial stage, ready to be written with `Write::Put`.
    pub fn new(kind: EntityKind, natural_id: &str, data: impl Into<Record>) -> EntityState {
        EntityState {
            key: kind.key(natural_id),
            kind,
            stage: kind.initial_stage(),
            data: data.into(),
            links: BTreeMap::new(),
            intent: None,
            attempts: 0,
            retry_at_ms: None,
            last_error: None,
            created_at_ms: 0,
            updated_at_ms: 0,
            version: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_header_keeps_only_the_indexed_links() {
        let mut s = EntityState::new(EntityKind::Order, "000000001", serde_json::json!({}));
        for (name, value) in [
            ("invoice_id", "i-1"),
            ("email", "a@b.c"),
            ("contact_id", "c-1"),
            ("payment_id", "p-1"),
            ("magento_entity_id", "7"),
        ] {
            s.links.insert(name.into(), value.into());
        }
        let text = serde_json::to_string(&StoredState::of(&s)).unwrap();
        let header: StateHeader = serde_json::from_str(&text).unwrap();
        let kept: Vec<(&str, &str)> = header
            .links
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(kept, [("contact_id", "c-1"), ("invoice_id", "i-1")]);
        // What the writer keeps of a state it stored equals what it would read back.
        s.intent = Some(Intent {
            op: "PUT Invoices".into(),
            idempotency_key: "k-1".into(),
            body_sha256: "ab".into(),
            batch_id: "b".into(),
            committed_at_ms: 5,
        });
        s.retry_at_ms = Some(9);
        s.created_at_ms = 3;
        s.version = 4;
        assert_eq!(
            StateHeader::stored(&s),
            serde_json::from_str(&serde_json::to_string(&StoredState::of(&s)).unwrap()).unwrap()
        );
        // A state written without links still reads.
        let header: StateHeader = serde_json::from_str(
            r#"{"kind":"order","stage":"seen","intent":null,"retry_at_ms":null,"created_at_ms":1,"version":1}"#,
        )
        .unwrap();
        assert!(header.links.is_empty());
    }

    #[test]
    fn empty_fields_are_left_out_and_read_back_as_empty() {
        let mut s = EntityState::new(EntityKind::Order, "000000002", serde_json::json!({}));
        s.version = 2;
        let text = serde_json::to_string(&StoredState::of(&s)).unwrap();
        for absent in ["intent", "attempts", "retry_at_ms", "last_error"] {
            assert!(!text.contains(absent), "{absent} written: {text}");
        }
        let back: EntityState = serde_json::from_str(&text).unwrap();
        assert_eq!(
            back,
            EntityState {
                data: back.data.clone(),
                ..s.clone()
            }
        );
        // Set, every one of them is written and read back.
        s.intent = Some(Intent {
            op: "PUT Payments".into(),
            idempotency_key: "k-2".into(),
            body_sha256: "cd".into(),
            batch_id: "b2".into(),
            committed_at_ms: 6,
        });
        s.attempts = 3;
        s.retry_at_ms = Some(11);
        s.last_error = Some("Xero said no".into());
        let text = serde_json::to_string(&StoredState::of(&s)).unwrap();
        let back: EntityState = serde_json::from_str(&text).unwrap();
        assert_eq!(
            back,
            EntityState {
                data: back.data.clone(),
                ..s
            }
        );
    }
}
