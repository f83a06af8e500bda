//! How a stored discrepancy changes when it is raised again or acknowledged.
//!
//! Three paths raise discrepancies (the reconciler, ingest and Xero webhooks) and an operator
//! acknowledges them. The writer merges each raise into what is stored, inside the
//! transaction: a pass that read the discrepancies before an operator acknowledged one would
//! otherwise write its older copy back over the acknowledgement.

use chrono::DateTime;
use serde_json::{Value, json};

/// When the discrepancy was first raised (RFC 3339): kept while it stays open.
pub const RAISED_AT: &str = "raised_at";
/// When an operator acknowledged it (RFC 3339), who, and why (when they said).
pub const ACKNOWLEDGED_AT: &str = "acknowledged_at";
pub const ACKNOWLEDGED_BY: &str = "acknowledged_by";
pub const ACKNOWLEDGED_NOTE: &str = "acknowledged_note";
const ACKNOWLEDGEMENT: [&str; 3] = [ACKNOWLEDGED_AT, ACKNOWLEDGED_BY, ACKNOWLEDGED_NOTE];

fn rfc3339(ms: i64) -> Value {
    json!(
        DateTime::from_timestamp_millis(ms)
            .unwrap_or_default()
            .to_rfc3339()
    )
}

/// The value stored when `raised` is raised over `stored`. An open discrepancy keeps its
/// `raised_at`, so its age survives every pass. It keeps its acknowledgement only while its
/// `detail` is the same: an acknowledged difference that changes (another edit in Xero, a
/// new amount) is a new fact and asks for the operator again.
pub fn merged(raised: &Value, stored: Option<&Value>, now_ms: i64) -> Value {
    let mut v = raised.clone();
    let Some(obj) = v.as_object_mut() else {
        return v;
    };
    let raised_at = stored
        .and_then(|s| s.get(RAISED_AT))
        .cloned()
        .or_else(|| raised.get(RAISED_AT).cloned())
        .unwrap_or_else(|| rfc3339(now_ms));
    obj.insert(RAISED_AT.into(), raised_at);
    for field in ACKNOWLEDGEMENT {
        obj.remove(field);
    }
    if let Some(s) = stored
        && s.get("detail") == raised.get("detail")
    {
        for field in ACKNOWLEDGEMENT {
            if let Some(x) = s.get(field) {
                obj.insert(field.into(), x.clone());
            }
        }
    }
    v
}

/// `stored`, acknowledged by `by` at `now_ms`, with the reason `note` if one was given; an
/// acknowledged one keeps its first acknowledgement (acknowledging twice changes nothing).
pub fn acknowledged(stored: &Value, by: &str, note: Option<&str>, now_ms: i64) -> Value {
    let mut v = stored.clone();
    if is_acknowledged(stored) {
        return v;
    }
    if let Some(obj) = v.as_object_mut() {
        obj.insert(ACKNOWLEDGED_AT.into(), rfc3339(now_ms));
        obj.insert(ACKNOWLEDGED_BY.into(), json!(by));
        if let Some(note) = note.map(str::trim).filter(|n| !n.is_empty()) {
            obj.insert(ACKNOWLEDGED_NOTE.into(), json!(note));
        }
    }
    v
}

/// Whether an operator acknowledged it (it is still open: the systems still disagree).
pub fn is_acknowledged(v: &Value) -> bool {
    v.get(ACKNOWLEDGED_AT).is_some_and(|a| !a.is_null())
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_764_313_200_000; // 2025-11-28T07:00:00Z
    const T1: i64 = T0 + 60_000;

    fn raised(detail: &str) -> Value {
        json!({"kind": "invoice_total_differs", "order": "order:1", "detail": detail})
    }

    #[test]
    fn a_new_discrepancy_is_stamped_now_and_an_open_one_keeps_its_age() {
        let first = merged(&raised("9.95 vs 10.00"), None, T0);
        assert_eq!(first[RAISED_AT], rfc3339(T0));
        assert!(!is_acknowledged(&first));
        let again = merged(&raised("9.95 vs 10.00"), Some(&first), T1);
        assert_eq!(again, first, "a quiet pass changes nothing");
        let changed = merged(&raised("9.00 vs 10.00"), Some(&first), T1);
        assert_eq!(changed[RAISED_AT], rfc3339(T0));
        assert_eq!(changed["detail"], "9.00 vs 10.00");
    }

    #[test]
    fn an_acknowledgement_lasts_while_the_detail_does() {
        let open = merged(&raised("9.95 vs 10.00"), None, T0);
        let acked = acknowledged(&open, "operator", Some(" customer agreed "), T1);
        assert!(is_acknowledged(&acked));
        assert_eq!(acked[ACKNOWLEDGED_BY], "operator");
        assert_eq!(acked[ACKNOWLEDGED_AT], rfc3339(T1));
        assert_eq!(acked[ACKNOWLEDGED_NOTE], "customer agreed");
        assert!(
            acknowledged(&open, "operator", Some("  "), T1)
                .get(ACKNOWLEDGED_NOTE)
                .is_none()
        );
        assert_eq!(
            acknowledged(&acked, "someone else", None, T1 + 5),
            acked,
            "the first acknowledgement stands"
        );
        // The same finding raised again (a pass, a webhook) keeps it…
        assert_eq!(
            merged(&raised("9.95 vs 10.00"), Some(&acked), T1 + 9),
            acked
        );
        // …a different one asks again, and a raise never brings its own acknowledgement.
        let changed = merged(&raised("8.00 vs 10.00"), Some(&acked), T1 + 9);
        assert!(!is_acknowledged(&changed));
        let forged = json!({"detail": "x", ACKNOWLEDGED_AT: "2025-01-01T00:00:00Z"});
        assert!(!is_acknowledged(&merged(&forged, None, T0)));
    }
}
