//! `tally report --format md|html`: the discrepancy report a finance team reads, grouped by
//! kind, each group saying what it means and what to do, each row both sides' values.
//!
//! CSV and JSON (in `report`) are for spreadsheets and scripts; these are for people.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::Value;
use tally_actors::ledger::discrepancy::is_acknowledged;
use tally_actors::reconcile::kinds::explain;

use crate::engine::discrepancy::kind_of;

/// One row as both renderings show it.
struct Row {
    order: String,
    invoice: String,
    raised: String,
    state: String,
    detail: String,
}

fn text(v: &Value, field: &str) -> String {
    v.get(field)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// The discrepancies grouped by kind (in the kinds' order), oldest first within a kind.
fn grouped(open: &[(String, Value)]) -> BTreeMap<String, Vec<Row>> {
    let mut groups: BTreeMap<String, Vec<(String, Row)>> = BTreeMap::new();
    for (key, v) in open {
        let state = if is_acknowledged(v) {
            let note = text(v, "acknowledged_note");
            format!(
                "acknowledged by {} at {}{}",
                text(v, "acknowledged_by"),
                text(v, "acknowledged_at"),
                if note.is_empty() {
                    String::new()
                } else {
                    format!(": {note}")
                }
            )
        } else {
            "needs attention".to_owned()
        };
        let row = Row {
            order: text(v, "order").trim_start_matches("order:").to_owned(),
            invoice: text(v, "invoice_id"),
            raised: text(v, "raised_at"),
            state,
            detail: text(v, "detail"),
        };
        groups
            .entry(kind_of(v).to_owned())
            .or_default()
            .push((format!("{}{key}", row.raised), row));
    }
    groups
        .into_iter()
        .map(|(kind, mut rows)| {
            rows.sort_by(|a, b| a.0.cmp(&b.0));
            (kind, rows.into_iter().map(|(_, r)| r).collect())
        })
        .collect()
}

fn headline(open: &[(String, Value)], generated_at: &str) -> String {
    let acknowledged = open.iter().filter(|(_, v)| is_acknowledged(v)).count();
    format!(
        "Generated {generated_at}: {} open, {} need attention, {acknowledged} acknowledged.",
        open.len(),
        open.len() - acknowledged
    )
}

/// A Markdown cell: pipes and line breaks would break the table.
fn md_cell(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('|', "\\|")
        .replace(['\n', '\r'], " ")
}

pub fn to_markdown(open: &[(String, Value)], generated_at: &str) -> String {
    let mut out = String::from("# Discrepancies between Magento and Xero\n\n");
    let _ = writeln!(out, "{}\n", headline(open, generated_at));
    if open.is_empty() {
        out.push_str("Magento and Xero agree on every order tally has compared.\n");
    }
    for (kind, rows) in grouped(open) {
        let (title, meaning) = explain(&kind);
        let _ = writeln!(out, "## {title} ({})\n\n`{kind}`: {meaning}\n", rows.len());
        out.push_str("| Order | Xero invoice | Raised | State | What differs |\n");
        out.push_str("|---|---|---|---|---|\n");
        for r in rows {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} |",
                md_cell(&r.order),
                md_cell(&r.invoice),
                md_cell(&r.raised),
                md_cell(&r.state),
                md_cell(&r.detail)
            );
        }
        out.push('\n');
    }
    out
}

/// Text for HTML: every value comes from Magento, Xero or an operator.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2em;color:#222}\
table{border-collapse:collapse;width:100%;margin-bottom:2em}\
th,td{border:1px solid #ccc;padding:.3em .5em;text-align:left;vertical-align:top}\
th{background:#f3f3f3}.attention{color:#a40}.ack{color:#777}code{background:#f3f3f3}";

/// A self-contained page (no scripts, no external resources): it can be mailed or archived.
pub fn to_html(open: &[(String, Value)], generated_at: &str) -> String {
    let mut out = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>Discrepancies between Magento and Xero</title><style>{STYLE}</style></head><body>\n\
         <h1>Discrepancies between Magento and Xero</h1>\n<p>{}</p>\n",
        esc(&headline(open, generated_at))
    );
    if open.is_empty() {
        out.push_str("<p>Magento and Xero agree on every order tally has compared.</p>\n");
    }
    for (kind, rows) in grouped(open) {
        let (title, meaning) = explain(&kind);
        let _ = write!(
            out,
            "<h2>{} ({})</h2>\n<p><code>{}</code>: {}</p>\n<table><thead><tr><th>Order</th>\
             <th>Xero invoice</th><th>Raised</th><th>State</th><th>What differs</th></tr></thead><tbody>\n",
            esc(title),
            rows.len(),
            esc(&kind),
            esc(meaning)
        );
        for r in rows {
            let class = if r.state == "needs attention" {
                "attention"
            } else {
                "ack"
            };
            let _ = writeln!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"{class}\">{}</td><td>{}</td></tr>",
                esc(&r.order),
                esc(&r.invoice),
                esc(&r.raised),
                esc(&r.state),
                esc(&r.detail)
            );
        }
        out.push_str("</tbody></table>\n");
    }
    out.push_str("</body></html>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn open() -> Vec<(String, Value)> {
        vec![
            (
                "total:order:000000002".into(),
                json!({"kind": "invoice_total_differs", "order": "order:000000002",
                       "invoice_id": "inv-2", "raised_at": "2026-11-28T08:00:00+00:00",
                       "detail": "Xero invoice totals 9.95 | grand total 10.00 <edited>",
                       "acknowledged_at": "2026-11-28T09:00:00+00:00", "acknowledged_by": "operator",
                       "acknowledged_note": "customer agreed"}),
            ),
            (
                "voided:order:000000003".into(),
                json!({"kind": "invoice_voided_in_xero", "order": "order:000000003",
                       "invoice_id": "inv-3", "raised_at": "2026-11-28T07:00:00+00:00",
                       "detail": "Xero invoice 000000003 is VOIDED"}),
            ),
            (
                "voided:order:000000001".into(),
                json!({"kind": "invoice_voided_in_xero", "order": "order:000000001",
                       "invoice_id": "inv-1", "raised_at": "2026-11-28T06:00:00+00:00",
                       "detail": "Xero invoice 000000001 is VOIDED"}),
            ),
        ]
    }

    #[test]
    fn markdown_groups_by_kind_explains_each_and_keeps_the_table_whole() {
        let md = to_markdown(&open(), "2026-11-28T10:00:00Z");
        assert!(
            md.contains("3 open, 2 need attention, 1 acknowledged"),
            "{md}"
        );
        assert!(md.contains("## Invoice voided in Xero (2)"), "{md}");
        assert!(md.contains("## Invoice total differs (1)"), "{md}");
        assert!(md.contains("correct it in Xero"), "{md}");
        // Oldest first within a kind.
        let (one, three) = (
            md.find("| 000000001 |").unwrap(),
            md.find("| 000000003 |").unwrap(),
        );
        assert!(one < three, "{md}");
        // A pipe in a detail is escaped, so every table row keeps its five cells.
        let row = md.lines().find(|l| l.starts_with("| 000000002")).unwrap();
        assert_eq!(row.matches(" | ").count(), 4, "{row}");
        assert!(
            row.contains("acknowledged by operator at 2026-11-28T09:00:00+00:00: customer agreed"),
            "{row}"
        );
        let empty = to_markdown(&[], "t");
        assert!(empty.contains("agree on every order"), "{empty}");
    }

    #[test]
    fn html_escapes_every_value_and_needs_nothing_external() {
        let html = to_html(&open(), "2026-11-28T10:00:00Z");
        assert!(html.contains("&lt;edited&gt;"), "{html}");
        assert!(!html.contains("<edited>"), "{html}");
        assert!(
            !html.contains("<script") && !html.contains("src="),
            "{html}"
        );
        assert_eq!(html.matches("<tr><td>").count(), 3);
        assert!(
            html.contains("<h2>Invoice voided in Xero (2)</h2>"),
            "{html}"
        );
    }
}
