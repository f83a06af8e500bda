//! A deterministic, realistic [`ConsoleState`]: the snapshot tests and `bench_frames` draw it,
//! and it lets the console be looked at without an engine.

use crate::state::{
    ActorRow, ActorStatus, BudgetView, ConsoleState, DiscrepancyItem, EntityView, ErrorItem,
    HealthRow, LogLevel, LogLine, QueueItem, TrailEntry,
};

const STAGES: [&str; 5] = [
    "seen",
    "contact_ready",
    "invoice_posting",
    "invoiced",
    "payment_posting",
];
const OPS: [&str; 5] = [
    "find or create contact",
    "create contact",
    "create invoice",
    "apply payment",
    "write back status",
];

/// The example state with `queue_items` queued operations keyed `order 000000001` upwards.
pub fn sample_state(queue_items: usize) -> ConsoleState {
    ConsoleState {
        link: "Magento default ↔ Xero Tally Sandbox Ltd".into(),
        actors: actors(),
        budget: BudgetView {
            minute_used: 42,
            minute_limit: 60,
            day_used: 3_180,
            day_limit: 5_000,
            forecast_exhausted_at: Some("2025-06-01T17:40:00Z".into()),
            in_flight: 3,
            in_flight_limit: 5,
            paused_until: None,
            throttled_total: 12,
        },
        health: vec![
            HealthRow {
                system: "Magento".into(),
                ok: true,
                detail: "200 OK".into(),
                latency_ms: Some(38),
            },
            HealthRow {
                system: "Xero".into(),
                ok: true,
                detail: "200 OK".into(),
                latency_ms: Some(212),
            },
        ],
        queue: (1..=queue_items).map(queue_item).collect(),
        errors: errors(),
        entity: Some(entity()),
        search_results: vec![
            "order 000000123".into(),
            "contact jo@example.com".into(),
            "invoice INV-000123".into(),
        ],
        discrepancies_open: 3,
        discrepancies_by_kind: [("invoice_voided_in_xero".to_owned(), 3)].into(),
        discrepancies_acknowledged: 1,
        discrepancies: discrepancies(),
        notice: None,
        log: log(),
        generated_at: "2025-06-01T12:00:05Z".into(),
    }
}

fn discrepancies() -> Vec<DiscrepancyItem> {
    let voided = |n: &str, at: &str| DiscrepancyItem {
        key: format!("voided:order:{n}"),
        kind: "invoice_voided_in_xero".into(),
        order: format!("order:{n}"),
        detail: format!("Xero invoice {n} of order {n} is VOIDED; Magento still has the order"),
        raised_at: at.into(),
        acknowledged_at: None,
        acknowledged_by: None,
        acknowledged_note: None,
    };
    vec![
        voided("000000118", "2025-06-01T11:40:00Z"),
        DiscrepancyItem {
            key: "total:order:000000097".into(),
            kind: "invoice_total_differs".into(),
            order: "order:000000097".into(),
            detail: "Xero invoice 000000097 totals 118.95, order 000000097's grand total is 119.00 (difference -0.05)".into(),
            raised_at: "2025-06-01T10:02:00Z".into(),
            acknowledged_at: Some("2025-06-01T10:15:00Z".into()),
            acknowledged_by: Some("operator".into()),
            acknowledged_note: Some("customer agreed to a 5 cent goodwill discount".into()),
        },
        voided("000000121", "2025-06-01T11:52:00Z"),
        voided("000000122", "2025-06-01T11:58:00Z"),
    ]
}

fn actors() -> Vec<ActorRow> {
    let spec: [(&str, ActorStatus, [u64; 5], Option<&str>); 7] = [
        ("ingest", ActorStatus::Running, [0, 1, 1_240, 0, 0], None),
        ("contacts", ActorStatus::Running, [12, 2, 830, 1, 0], None),
        (
            "invoices",
            ActorStatus::Running,
            [48, 5, 812, 3, 2],
            Some("ValidationException: Account code '4000' is not a valid code for this document."),
        ),
        ("payments", ActorStatus::Paused, [20, 0, 640, 0, 0], None),
        (
            "stock",
            ActorStatus::Restarting,
            [3, 0, 96, 1, 0],
            Some("Magento 503 Service Unavailable on PUT /V1/products/SKU-1/stockItems/1"),
        ),
        ("writeback", ActorStatus::Running, [7, 1, 512, 0, 0], None),
        (
            "reconciler",
            ActorStatus::Failed,
            [0, 0, 14, 0, 1],
            Some("Xero 401 token expired: re-authorise the connection"),
        ),
    ];
    spec.iter()
        .enumerate()
        .map(|(n, (name, status, c, err))| ActorRow {
            name: (*name).into(),
            status: *status,
            queued: c[0],
            in_flight: c[1],
            done: c[2],
            failed: c[3],
            dead: c[4],
            throughput: (0..120u64).map(|s| (s * 7 + n as u64 * 5) % 11).collect(),
            last_error: err.map(str::to_string),
        })
        .collect()
}

fn queue_item(i: usize) -> QueueItem {
    let attempts = (i % 4) as u32;
    QueueItem {
        key: format!("order {i:09}"),
        stage: STAGES[i % STAGES.len()].into(),
        op: OPS[i % OPS.len()].into(),
        attempts,
        next_retry: (attempts > 0)
            .then(|| format!("2025-06-01T12:{:02}:{:02}Z", (i / 60) % 60, i % 60)),
        age: (i as u64 * 37) % 90_000,
    }
}

fn errors() -> Vec<ErrorItem> {
    let e = |key: &str,
             record: &str,
             field: &str,
             message: &str,
             remote: &str,
             attempts,
             stage: &str,
             at: &str,
             dead| ErrorItem {
        key: key.into(),
        record: record.into(),
        field: field.into(),
        message: message.into(),
        remote_message: remote.into(),
        attempts,
        stage: stage.into(),
        at: at.into(),
        dead,
    };
    vec![
        e(
            "order 000000123",
            "Invoice INV-000123",
            "LineItems[0].AccountCode",
            "Sales account 4000 is not in Xero's chart of accounts; map it in [mapping]",
            "Account code '4000' is not a valid code for this document.",
            5,
            "invoice_posting",
            "2025-06-01T11:58:02Z",
            true,
        ),
        e(
            "order 000000131",
            "Contact jo@example.com",
            "Name",
            "A different Xero contact already uses this name",
            "The contact name Jo Bloggs is already assigned to another contact. The contact name must be unique across all active contacts.",
            2,
            "seen",
            "2025-06-01T11:59:40Z",
            false,
        ),
        e(
            "order 000000140",
            "Payment for INV-000140",
            "Account.Code",
            "Payment account 091 cannot receive payments; enable it in Xero",
            "Payments can only be made to bank accounts or accounts with payments enabled.",
            5,
            "payment_posting",
            "2025-06-01T11:41:13Z",
            true,
        ),
        e(
            "order 000000152",
            "Invoice INV-000152",
            "",
            "Xero rate limit: waiting for the minute window",
            "429 Too Many Requests (X-Rate-Limit-Problem: minute)",
            1,
            "invoice_posting",
            "2025-06-01T12:00:01Z",
            false,
        ),
        e(
            "sku SKU-1",
            "Magento stock item SKU-1",
            "qty",
            "Magento rejected the stock update",
            "503 Service Unavailable",
            3,
            "stock",
            "2025-06-01T11:50:30Z",
            false,
        ),
    ]
}

fn entity() -> EntityView {
    let t = |at: &str, system: &str, from: &str, to: &str, detail: &str| TrailEntry {
        at: at.into(),
        system: system.into(),
        from: from.into(),
        to: to.into(),
        detail: detail.into(),
    };
    EntityView {
        key: "order 000000123".into(),
        summary: vec![
            (
                "Magento order".into(),
                "000000123 · processing · £120.00".into(),
            ),
            ("Customer".into(), "Jo Bloggs <jo@example.com>".into()),
            ("Xero contact".into(), "CUST-000042 (2f0c…e91a)".into()),
            ("Xero invoice".into(), "INV-000123 · not created".into()),
            (
                "State".into(),
                "dead at invoice_posting after 5 attempts".into(),
            ),
        ],
        trail: vec![
            t(
                "2025-06-01T11:52:00Z",
                "magento",
                "",
                "placed",
                "order 000000123 £120.00, 2 lines",
            ),
            t(
                "2025-06-01T11:52:04Z",
                "tally",
                "",
                "seen",
                "picked up by ingest (updated_at poll)",
            ),
            t(
                "2025-06-01T11:52:05Z",
                "xero",
                "seen",
                "contact_ready",
                "contact CUST-000042 found by email",
            ),
            t(
                "2025-06-01T11:52:06Z",
                "tally",
                "contact_ready",
                "invoice_posting",
                "intent committed, key 7d1e…",
            ),
            t(
                "2025-06-01T11:52:07Z",
                "xero",
                "invoice_posting",
                "failed",
                "400 ValidationException: account 4000",
            ),
            t(
                "2025-06-01T11:53:07Z",
                "xero",
                "failed",
                "failed",
                "attempt 2: same error",
            ),
            t(
                "2025-06-01T11:55:07Z",
                "xero",
                "failed",
                "failed",
                "attempt 3: same error",
            ),
            t(
                "2025-06-01T11:57:02Z",
                "xero",
                "failed",
                "failed",
                "attempt 4: same error",
            ),
            t(
                "2025-06-01T11:58:02Z",
                "tally",
                "failed",
                "dead",
                "attempt 5: gave up, waiting for operator",
            ),
        ],
    }
}

fn log() -> Vec<LogLine> {
    let messages: [(LogLevel, &str); 6] = [
        (LogLevel::Info, "ingest: 25 orders since 11:59:00"),
        (LogLevel::Info, "invoices: posted batch of 25, 25 created"),
        (LogLevel::Warn, "xero: 429 minute limit, waiting 14s"),
        (
            LogLevel::Error,
            "invoices: order 000000123 dead after 5 attempts",
        ),
        (
            LogLevel::Debug,
            "budget: 42/60 this minute, 3180/5000 today",
        ),
        (LogLevel::Info, "payments: paused by operator"),
    ];
    (0..30)
        .map(|i| {
            let (level, message) = messages[i % messages.len()];
            LogLine {
                at: format!("2025-06-01T11:{:02}:{:02}Z", 30 + i, (i * 7) % 60),
                level,
                message: message.into(),
            }
        })
        .collect()
}
