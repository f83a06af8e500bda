//! How an open discrepancy is counted by kind (the kinds are `tally_actors::reconcile::kinds`).
//!
//! The kind is part of each discrepancy's stored value so that `/metrics`, alerts and the
//! console can group them without parsing keys or wording; the names are a contract with
//! dashboards and must not change once released.

use std::collections::BTreeMap;

use serde_json::Value;

/// Used for a stored discrepancy without a `kind` (written before kinds existed).
pub const UNKNOWN: &str = "unknown";

/// The stable kind of one stored discrepancy: its `kind` field, else [`UNKNOWN`].
pub fn kind_of(value: &Value) -> &str {
    value
        .get("kind")
        .and_then(Value::as_str)
        .filter(|k| !k.trim().is_empty())
        .unwrap_or(UNKNOWN)
}

/// Open discrepancies counted by kind.
pub fn count_by_kind(open: &[(String, Value)]) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for (_, value) in open {
        *out.entry(kind_of(value).to_owned()).or_insert(0) += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use tally_actors::reconcile::kinds::INVOICE_VOIDED_IN_XERO;

    #[test]
    fn counts_group_by_the_stored_kind_and_a_missing_kind_is_unknown() {
        let open = vec![
            (
                "voided:order:1".to_owned(),
                json!({"kind": INVOICE_VOIDED_IN_XERO}),
            ),
            (
                "voided:order:2".to_owned(),
                json!({"kind": INVOICE_VOIDED_IN_XERO}),
            ),
            ("old".to_owned(), json!({"detail": "written before kinds"})),
        ];
        let counts = count_by_kind(&open);
        assert_eq!(counts.get(INVOICE_VOIDED_IN_XERO), Some(&2));
        assert_eq!(counts.get(UNKNOWN), Some(&1));
        assert_eq!(counts.len(), 2);
    }
}
