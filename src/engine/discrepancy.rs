//! How open discrepancies are counted by kind and listed for the console (the kinds are
//! `tally_actors::reconcile::kinds`).
//!
//! The kind is part of each discrepancy's stored value so that `/metrics`, alerts and the
//! console can group them without parsing keys or wording; the names are a contract with
//! dashboards and must not change once released.

use std::collections::BTreeMap;

use serde_json::Value;
use tally_actors::ledger::discrepancy::{
    ACKNOWLEDGED_AT, ACKNOWLEDGED_BY, ACKNOWLEDGED_NOTE, RAISED_AT, is_acknowledged,
};
use tally_tui::state::DiscrepancyItem;

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

/// Open discrepancies no operator acknowledged, counted by kind: what needs attention (and
/// what `/metrics` and alerts count).
pub fn count_by_kind(open: &[(String, Value)]) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for (_, value) in open.iter().filter(|(_, v)| !is_acknowledged(v)) {
        *out.entry(kind_of(value).to_owned()).or_insert(0) += 1;
    }
    out
}

/// How many open discrepancies an operator acknowledged.
pub fn acknowledged(open: &[(String, Value)]) -> u64 {
    open.iter().filter(|(_, v)| is_acknowledged(v)).count() as u64
}

/// The console's rows: at most `limit`, those needing attention first (an operator must see
/// every one of those before any acknowledged one is shown).
pub fn items(open: &[(String, Value)], limit: usize) -> Vec<DiscrepancyItem> {
    let text = |v: &Value, field: &str| v.get(field).and_then(Value::as_str).map(str::to_owned);
    let mut rows: Vec<DiscrepancyItem> = open
        .iter()
        .map(|(key, v)| DiscrepancyItem {
            key: key.clone(),
            kind: kind_of(v).to_owned(),
            order: text(v, "order").unwrap_or_default(),
            detail: text(v, "detail").unwrap_or_default(),
            raised_at: text(v, RAISED_AT).unwrap_or_default(),
            acknowledged_at: text(v, ACKNOWLEDGED_AT),
            acknowledged_by: text(v, ACKNOWLEDGED_BY),
            acknowledged_note: text(v, ACKNOWLEDGED_NOTE),
        })
        .collect();
    rows.sort_by(|a, b| {
        (a.acknowledged_at.is_some(), &a.raised_at, &a.key).cmp(&(
            b.acknowledged_at.is_some(),
            &b.raised_at,
            &b.key,
        ))
    });
    rows.truncate(limit);
    rows
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

    #[test]
    fn an_acknowledged_discrepancy_is_listed_but_not_counted_as_needing_attention() {
        let open = vec![
            (
                "total:order:1".to_owned(),
                json!({"kind": "invoice_total_differs", "order": "order:1", "detail": "a",
                       "raised_at": "2026-11-28T07:00:00+00:00",
                       "acknowledged_at": "2026-11-28T08:00:00+00:00", "acknowledged_by": "console"}),
            ),
            (
                "voided:order:2".to_owned(),
                json!({"kind": INVOICE_VOIDED_IN_XERO, "order": "order:2", "detail": "b",
                       "raised_at": "2026-11-28T07:30:00+00:00"}),
            ),
            (
                "voided:order:3".to_owned(),
                json!({"kind": INVOICE_VOIDED_IN_XERO, "order": "order:3", "detail": "c",
                       "raised_at": "2026-11-28T07:10:00+00:00"}),
            ),
        ];
        assert_eq!(count_by_kind(&open).get(INVOICE_VOIDED_IN_XERO), Some(&2));
        assert_eq!(count_by_kind(&open).get("invoice_total_differs"), None);
        assert_eq!(acknowledged(&open), 1);
        let rows = items(&open, 10);
        let keys: Vec<&str> = rows.iter().map(|r| r.key.as_str()).collect();
        assert_eq!(keys, ["voided:order:3", "voided:order:2", "total:order:1"]);
        assert_eq!(rows[2].acknowledged_by.as_deref(), Some("console"));
        assert_eq!(rows[0].order, "order:3");
        // The limit keeps what needs attention.
        let keys: Vec<String> = items(&open, 2).into_iter().map(|r| r.key).collect();
        assert_eq!(keys, ["voided:order:3", "voided:order:2"]);
    }
}
