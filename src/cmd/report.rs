//! `tally report`: the open discrepancies, for the finance team's spreadsheet or a script.
//!
//! When the config's daemon answers, the report comes through its control API (the daemon
//! holds the ledger); otherwise it is read from the ledger file, so no engine need run.

use std::io::Write as _;
use std::process::ExitCode;

use anyhow::Context;
use serde_json::Value;

use super::engine::{link_config, open_ledger};
use crate::cli::{ReportArgs, ReportFormat};
use crate::config::RawConfig;
use crate::daemon::client::{ClientError, ControlClient};
use crate::daemon::server::Settings;
use crate::engine::discrepancy::kind_of;

/// The columns of the CSV export, in order.
pub const COLUMNS: [&str; 9] = [
    "key",
    "kind",
    "order",
    "invoice_id",
    "raised_at",
    "detail",
    "acknowledged_at",
    "acknowledged_by",
    "acknowledged_note",
];

fn text(v: &Value, field: &str) -> String {
    match v.get(field) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

/// The CSV text of `open` (key → stored value), one row per discrepancy.
pub fn to_csv(open: &[(String, Value)]) -> anyhow::Result<String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(COLUMNS)?;
    for (key, v) in open {
        w.write_record([
            key.clone(),
            kind_of(v).to_owned(),
            text(v, "order"),
            text(v, "invoice_id"),
            text(v, "raised_at"),
            text(v, "detail"),
            text(v, "acknowledged_at"),
            text(v, "acknowledged_by"),
            text(v, "acknowledged_note"),
        ])?;
    }
    Ok(String::from_utf8(w.into_inner()?)?)
}

/// The JSON export: every discrepancy with its key.
pub fn to_json(open: &[(String, Value)]) -> Value {
    Value::Array(
        open.iter()
            .map(|(key, v)| {
                let mut row = v.clone();
                if let Some(obj) = row.as_object_mut() {
                    obj.insert("key".into(), Value::String(key.clone()));
                    obj.insert("kind".into(), Value::String(kind_of(v).to_owned()));
                }
                row
            })
            .collect(),
    )
}

/// The open discrepancies from the running daemon, or `None` when none answers.
pub(crate) async fn from_daemon(raw: &RawConfig) -> anyhow::Result<Option<Vec<(String, Value)>>> {
    let Ok(client) = ControlClient::from_config(&Settings::from_raw(raw)?.daemon) else {
        return Ok(None);
    };
    match client.discrepancies().await {
        Ok(Value::Array(rows)) => Ok(Some(
            rows.into_iter()
                .map(|row| (text(&row, "key"), row))
                .collect(),
        )),
        Ok(other) => anyhow::bail!("the daemon answered with something else than a list: {other}"),
        Err(ClientError::Unreachable { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

fn generated_at() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// `2026-11-01` (midnight UTC) or an RFC 3339 instant, in ms since the epoch.
pub fn parse_instant(text: &str) -> anyhow::Result<i64> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(t.timestamp_millis());
    }
    let day = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| {
        anyhow::anyhow!("{text:?} is neither a day (2026-11-01) nor an RFC 3339 instant")
    })?;
    Ok(day
        .and_hms_opt(0, 0, 0)
        .expect("midnight exists")
        .and_utc()
        .timestamp_millis())
}

/// `tally report --history`: every discrepancy event of the period, through the daemon when
/// one runs, else from the ledger file.
async fn history(raw: &RawConfig, args: &ReportArgs) -> anyhow::Result<String> {
    let since = args
        .since
        .as_deref()
        .map(parse_instant)
        .transpose()?
        .unwrap_or(0);
    let until = args
        .until
        .as_deref()
        .map(parse_instant)
        .transpose()?
        .unwrap_or(i64::MAX);
    use crate::engine::discrepancy_history::{HistoryRow, history as read_history, to_csv};
    let through_daemon = match ControlClient::from_config(&Settings::from_raw(raw)?.daemon) {
        Ok(client) => match client.discrepancy_history(since, until).await {
            Ok(v) => Some(serde_json::from_value::<Vec<HistoryRow>>(v)?),
            Err(ClientError::Unreachable { .. }) => None,
            Err(e) => return Err(e.into()),
        },
        Err(_) => None,
    };
    let rows = match through_daemon {
        Some(rows) => rows,
        None => {
            let cfg = link_config(raw)?;
            let ledger = open_ledger(&cfg.ledger_path, cfg.ledger_options).await?;
            read_history(&ledger, since, until)
                .await
                .map_err(anyhow::Error::msg)?
        }
    };
    eprintln!("{} discrepancy events", rows.len());
    match args.format {
        ReportFormat::Json => Ok(format!("{}\n", serde_json::to_string_pretty(&rows)?)),
        ReportFormat::Csv => to_csv(&rows),
        ReportFormat::Md | ReportFormat::Html => {
            anyhow::bail!("--history exports csv or json")
        }
    }
}

pub async fn run(args: ReportArgs) -> anyhow::Result<ExitCode> {
    let raw = RawConfig::load(&args.config.config)?;
    if args.history {
        let body = history(&raw, &args).await?;
        return write_out(&args, &body).map(|_| ExitCode::SUCCESS);
    }
    let open = match from_daemon(&raw).await? {
        Some(open) => open,
        None => {
            let cfg = link_config(&raw)?;
            let ledger = open_ledger(&cfg.ledger_path, cfg.ledger_options).await?;
            ledger.discrepancies().await?
        }
    };
    let body = match args.format {
        ReportFormat::Csv => to_csv(&open)?,
        ReportFormat::Json => format!("{}\n", serde_json::to_string_pretty(&to_json(&open))?),
        ReportFormat::Md => super::report_render::to_markdown(&open, &generated_at()),
        ReportFormat::Html => super::report_render::to_html(&open, &generated_at()),
    };
    write_out(&args, &body)?;
    let acknowledged = crate::engine::discrepancy::acknowledged(&open);
    eprintln!(
        "{} open discrepancies ({} acknowledged)",
        open.len(),
        acknowledged
    );
    Ok(ExitCode::SUCCESS)
}

fn write_out(args: &ReportArgs, body: &str) -> anyhow::Result<()> {
    match &args.output {
        Some(path) => std::fs::write(path, body)
            .with_context(|| format!("cannot write the report to {}", path.display())),
        None => Ok(std::io::stdout().write_all(body.as_bytes())?),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn csv_quotes_details_and_keeps_one_row_per_discrepancy() {
        let open = vec![
            (
                "total:order:000000001".to_owned(),
                json!({"kind": "invoice_total_differs", "order": "order:000000001",
                       "invoice_id": "abc", "raised_at": "2026-11-28T07:00:00+00:00",
                       "detail": "Xero invoice 000000001 totals 9.95, grand total 10.00, \"edited\""}),
            ),
            ("old".to_owned(), json!({"detail": "written before kinds"})),
        ];
        let text = to_csv(&open).unwrap();
        let mut r = csv::Reader::from_reader(text.as_bytes());
        assert_eq!(
            r.headers().unwrap(),
            &csv::StringRecord::from(COLUMNS.to_vec())
        );
        let rows: Vec<csv::StringRecord> = r.records().map(Result::unwrap).collect();
        assert_eq!(rows.len(), 2);
        assert_eq!(&rows[0][1], "invoice_total_differs");
        assert!(
            rows[0][5].ends_with("\"edited\""),
            "quotes survive: {}",
            &rows[0][5]
        );
        assert_eq!(&rows[1][1], "unknown");
        let j = to_json(&open);
        assert_eq!(j[0]["key"], "total:order:000000001");
        assert_eq!(j[1]["kind"], "unknown");
    }
}
