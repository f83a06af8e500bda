//! A period's discrepancy history: every discrepancy raised, changed, acknowledged or closed
//! between two instants, read back from the orders' audit trails (the ledger writes those
//! lines with each change; see `ledger/writer.rs`). Open discrepancies say what is out of step
//! now; this says what was, and how each was resolved, for a period's close.

use serde::{Deserialize, Serialize};
use tally_actors::ledger::{AuditEntry, Ledger};

/// What the writer's audit lines begin with, as stored (`"detail":"discrepancy …`).
const NEEDLE: &str = "\"detail\":\"discrepancy ";

/// One event in a discrepancy's life.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryRow {
    pub at: String,
    pub order: String,
    pub key: String,
    /// `raised`, `changed`, `acknowledged` or `closed`.
    pub event: String,
    /// reconciler, ingest, xero-webhook, operator, …
    pub actor: String,
    pub detail: String,
}

/// The columns of the CSV export, in order.
pub const COLUMNS: [&str; 6] = ["at", "order", "key", "event", "actor", "detail"];

/// An audit line the writer made for a discrepancy, as a row; `None` for any other line.
pub fn row(entry: &AuditEntry) -> Option<HistoryRow> {
    let rest = entry.detail.strip_prefix("discrepancy ")?;
    let (head, detail) = rest.split_once(": ").unwrap_or((rest, ""));
    let (key, event) = head.rsplit_once(' ')?;
    if !matches!(event, "raised" | "changed" | "acknowledged" | "closed") {
        return None;
    }
    Some(HistoryRow {
        at: chrono::DateTime::from_timestamp_millis(entry.at_ms)
            .unwrap_or_default()
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        order: entry.entity.clone(),
        key: key.to_owned(),
        event: event.to_owned(),
        actor: entry.actor.clone(),
        detail: detail.to_owned(),
    })
}

/// Every discrepancy event in `[since_ms, until_ms)`, oldest first.
pub async fn history(
    ledger: &Ledger,
    since_ms: i64,
    until_ms: i64,
) -> Result<Vec<HistoryRow>, String> {
    let entries = ledger
        .audit_matching(NEEDLE, since_ms, until_ms)
        .await
        .map_err(|e| e.to_string())?;
    Ok(entries.iter().filter_map(row).collect())
}

/// The CSV text of `rows`.
pub fn to_csv(rows: &[HistoryRow]) -> anyhow::Result<String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(COLUMNS)?;
    for r in rows {
        w.write_record([&r.at, &r.order, &r.key, &r.event, &r.actor, &r.detail])?;
    }
    Ok(String::from_utf8(w.into_inner()?)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tally_actors::ledger::Stage;

    fn entry(detail: &str) -> AuditEntry {
        AuditEntry {
            seq: 1,
            at_ms: 1_764_316_800_000,
            entity: "order:000000007".into(),
            from: Some(Stage::Invoiced),
            to: Stage::Invoiced,
            actor: "reconciler".into(),
            detail: detail.into(),
        }
    }

    #[test]
    fn the_writers_lines_become_rows_and_nothing_else_does() {
        let r = row(&entry(
            "discrepancy total:order:000000007 changed: Xero invoice totals 9.95: edited",
        ))
        .unwrap();
        assert_eq!(
            (r.key.as_str(), r.event.as_str(), r.detail.as_str()),
            (
                "total:order:000000007",
                "changed",
                "Xero invoice totals 9.95: edited"
            )
        );
        assert_eq!(r.at, "2025-11-28T08:00:00Z");
        assert_eq!(r.order, "order:000000007");
        let closed = row(&entry(
            "discrepancy voided:order:000000007 closed: Magento and Xero agree",
        ))
        .unwrap();
        assert_eq!(closed.event, "closed");
        assert_eq!(row(&entry("Magento order updated")), None);
        assert_eq!(row(&entry("discrepancy of 5 cents noted")), None);
        let text = to_csv(&[r]).unwrap();
        assert!(
            text.starts_with("at,order,key,event,actor,detail\n"),
            "{text}"
        );
        assert!(
            text.contains("\"Xero invoice totals 9.95: edited\"")
                || text.contains("Xero invoice totals 9.95: edited")
        );
    }
}
