//! `tally demo` without a terminal, as the README's first command runs in CI or over ssh:
//! the sandbox on loopback, the engine syncing its orders, a status line every few seconds
//! and a clean exit when the duration is up.

mod common;

use common::tally;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_headless_demo_syncs_orders_and_reports_status_until_its_time_is_up() {
    let run = tally(&[
        "demo",
        "--headless",
        "--duration-secs",
        "10",
        "--orders",
        "30",
    ])
    .await;
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr
            .contains("tally demo: sandbox at http://127.0.0.1:"),
        "the sandbox binds loopback: {}",
        run.stderr
    );
    let lines: Vec<&str> = run
        .stdout
        .lines()
        .filter(|l| l.contains(" | ingest "))
        .collect();
    assert!(lines.len() >= 2, "status lines:\n{}", run.stdout);
    for l in &lines {
        assert!(
            l.contains("discrepancies ") && l.contains(" open (") && l.contains("dead letters "),
            "{l}"
        );
    }
    // Invoices reached Xero: the invoices actor's done count (`invoices q… d<n>`) grew.
    let invoiced = |l: &str| -> u64 {
        l.split(" | ")
            .find(|part| part.starts_with("invoices "))
            .and_then(|part| part.split(' ').find(|w| w.starts_with('d')))
            .and_then(|w| w[1..].parse().ok())
            .unwrap_or(0)
    };
    let last = lines.last().unwrap();
    assert!(invoiced(last) > 0, "nothing invoiced: {last}");
}
