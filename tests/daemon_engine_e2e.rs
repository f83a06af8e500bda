//! `tally daemon` with the real engine against the in-process sandbox: Xero's webhook handshake,
//! an accountant's payment in Xero reaching Magento through the INVOICE webhook, `/metrics`,
//! `tally status`, and a SIGTERM in the middle of a backfill that loses and duplicates nothing.

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use rust_decimal::Decimal;
use serde_json::{Value, json};
use tally_fixtures::sandbox::SandboxOptions;

use common::{
    SandboxEnv, XeroReader, assert_books_balance, assert_no_xero_duplicates, dec, dec_or_zero,
    magento_customer_emails, path_str, payments_by_invoice_number, sales_invoices_by_number,
    sandbox_env_with, sync_once, tally,
};

/// Bounds on waiting for something the system must do; generous so a loaded 2-core CI machine
/// never flakes. They are not speed targets.
const WAIT: Duration = Duration::from_secs(60);

/// A loopback port nobody listens on right now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind an ephemeral port")
        .local_addr()
        .expect("local addr")
        .port()
}

/// The sandbox's config plus a `[daemon]` table on a free loopback port, with the sandbox's
/// Xero webhook key and a Magento push secret.
fn daemon_config(env: &SandboxEnv, extra: &str) -> (PathBuf, String) {
    let port = free_port();
    let key = env.sandbox.xero.config().webhook_key.clone();
    let text = format!(
        "{}\n{extra}\n[daemon]\nlisten = \"127.0.0.1:{port}\"\nxero_webhook_key = {}\nmagento_webhook_secret = \"e2e-push-secret\"\nshutdown_grace_secs = 8\n",
        std::fs::read_to_string(&env.config).expect("config readable"),
        toml::Value::String(key),
    );
    let path = env.write_config_variant("daemon.toml", &text);
    (path, format!("http://127.0.0.1:{port}"))
}

/// `tally daemon` as a child process, its output in a log file (a full pipe would stall it).
struct DaemonChild {
    child: tokio::process::Child,
    base: String,
    log: PathBuf,
}

impl DaemonChild {
    fn spawn(config: &Path, base: String, log: PathBuf) -> DaemonChild {
        let out = std::fs::File::create(&log).expect("log file");
        let err = out.try_clone().expect("log file clone");
        let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_tally"))
            .args(["daemon", "--config", path_str(config)])
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .kill_on_drop(true)
            .spawn()
            .expect("spawn tally daemon");
        DaemonChild { child, base, log }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until `/readyz` answers 200.
    async fn wait_ready(&mut self, http: &reqwest::Client) {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("daemon exited early ({status}):\n{}", self.log_text());
            }
            if let Ok(r) = http.get(format!("{}/readyz", self.base)).send().await
                && r.status().is_success()
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "daemon not ready within {WAIT:?}:\n{}",
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `kill -TERM` and the exit status with the time it took to stop.
    async fn sigterm(&mut self) -> (std::process::ExitStatus, Duration) {
        let pid = self.child.id().expect("daemon still running").to_string();
        let started = Instant::now();
        let killed = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("run kill");
        assert!(killed.success(), "kill -TERM {pid}");
        let status = tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("daemon ignored SIGTERM:\n{}", self.log_text()))
            .expect("wait for the daemon");
        (status, started.elapsed())
    }
}

/// The daemon's console state (`GET /api/v1/state`; no token on loopback).
async fn state(http: &reqwest::Client, base: &str) -> Value {
    http.get(format!("{base}/api/v1/state"))
        .send()
        .await
        .expect("state request")
        .error_for_status()
        .expect("state answered")
        .json()
        .await
        .expect("state JSON")
}

async fn metrics(http: &reqwest::Client, base: &str) -> String {
    http.get(format!("{base}/metrics"))
        .send()
        .await
        .expect("metrics request")
        .error_for_status()
        .expect("metrics answered")
        .text()
        .await
        .expect("metrics text")
}

/// The value of an unlabelled sample `name` in Prometheus text.
fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

/// A client-credentials token and the tenant, as an accountant's app connected to the
/// organisation would have them.
async fn xero_token(config: &Path) -> (reqwest::Client, String, String, String) {
    let t: toml::Table = toml::from_str(&std::fs::read_to_string(config).unwrap()).unwrap();
    let x = &t["xero"];
    let s = |k: &str| x[k].as_str().unwrap().to_owned();
    let http = reqwest::Client::new();
    let token: Value = http
        .post(format!("{}/connect/token", s("identity_url")))
        .basic_auth(s("client_id"), Some(s("client_secret")))
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", s("scopes").as_str()),
        ])
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .json()
        .await
        .unwrap();
    let connections: Value = http
        .get(format!("{}/connections", s("identity_url")))
        .bearer_auth(token["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    (
        http,
        s("api_url"),
        token["access_token"].as_str().unwrap().to_owned(),
        connections[0]["tenantId"].as_str().unwrap().to_owned(),
    )
}

/// Polls `check` (which returns `Some` when satisfied) every 100 ms up to [`WAIT`].
async fn eventually<T, F, Fut>(what: &str, daemon: &DaemonChild, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for: {what}\ndaemon log:\n{}",
            daemon.log_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn queued_keys(state: &Value) -> Vec<String> {
    state["queue"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|q| q["key"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payment_made_in_xero_reaches_magento_through_the_daemon() {
    let env = sandbox_env_with(SandboxOptions {
        seed: 11,
        orders: 40,
        time_scale: 60.0,
        ..SandboxOptions::default()
    })
    .await;
    let unpaid = env
        .seeded_orders()
        .into_iter()
        .find(|o| dec_or_zero(&o["payment"], "amount_paid").is_zero())
        .expect("the seed has an unpaid order");
    let number = unpaid["increment_id"].as_str().unwrap().to_owned();
    let entity_id = unpaid["entity_id"].as_i64().unwrap();
    assert!(
        dec_or_zero(&unpaid, "total_invoiced") < dec(&unpaid["grand_total"]),
        "the unpaid order is not invoiced in Magento yet"
    );

    let (config, base) = daemon_config(&env, "");
    let log = env.dir.path().join("daemon.log");
    let http = reqwest::Client::new();
    let mut daemon = DaemonChild::spawn(&config, base.clone(), log);
    daemon.wait_ready(&http).await;

    // The backfill: the unpaid order is invoiced in Xero and waits (not queued) for payment.
    let xero = XeroReader::connect(&env.config).await;
    let key = format!("order:{number}");
    let invoice = eventually("the unpaid order's invoice in Xero", &daemon, || async {
        let body = xero.get(&format!("Invoices?InvoiceNumbers={number}")).await;
        body["Invoices"].as_array()?.first().cloned()
    })
    .await;
    eventually("the unpaid order to leave the queue", &daemon, || async {
        let s = state(&http, &base).await;
        (!queued_keys(&s).contains(&key) && s["queue"].as_array().is_some_and(Vec::is_empty))
            .then_some(())
    })
    .await;
    assert_eq!(invoice["Status"], "AUTHORISED", "{invoice}");
    assert!(
        env.sandbox.magento.order(entity_id).unwrap()["payment"]
            .get("amount_paid")
            .is_none_or(|a| dec(a).is_zero()),
        "still unpaid in Magento"
    );

    // Metrics: the engine's operation counter is exported.
    let before = metrics(&http, &base).await;
    assert!(
        before.contains("tally_operations_total{"),
        "no tally_operations_total in:\n{before}"
    );
    let day_left_before =
        sample(&before, "tally_xero_budget_day_remaining").expect("day budget gauge");

    // `tally status` talks to the running daemon.
    let status = tally(&["status", "--config", path_str(&config)]).await;
    assert_eq!(status.code, Some(0), "{}\n{}", status.stdout, status.stderr);
    assert!(status.stdout.contains("ready"), "{}", status.stdout);
    for actor in ["ingest", "contacts", "invoices", "payments", "writeback"] {
        assert!(
            status.stdout.lines().any(|l| l.starts_with(actor)),
            "status lists {actor}:\n{}",
            status.stdout
        );
    }

    // Xero is told to deliver webhooks to the daemon; its intent-to-receive probes pass.
    let admin = env.sandbox.xero_admin_url();
    let configured = http
        .post(format!("{admin}webhooks"))
        .json(&json!({ "url": format!("{base}/webhooks/xero") }))
        .send()
        .await
        .expect("configure webhooks");
    assert_eq!(configured.status(), 202);
    let hook = eventually("the intent-to-receive to finish", &daemon, || async {
        let s: Value = http
            .get(format!("{admin}webhooks"))
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        (s["status"] != "intent_pending").then_some(s)
    })
    .await;
    assert_eq!(hook["status"], "ok", "{hook}");
    let probes = hook["intent"].as_array().unwrap();
    assert_eq!(probes.len(), 4, "{hook}");
    for p in probes {
        let expected = if p["correctly_signed"] == json!(true) {
            200
        } else {
            401
        };
        assert_eq!(p["status"], json!(expected), "{hook}");
    }

    // An accountant records the customer's payment directly in Xero.
    let (client, api, token, tenant) = xero_token(&env.config).await;
    let total = dec(&invoice["Total"]);
    let paid = client
        .put(format!("{api}/Payments"))
        .bearer_auth(&token)
        .header("xero-tenant-id", &tenant)
        .header("accept", "application/json")
        .json(&json!({ "Payments": [{
            "Invoice": { "InvoiceID": invoice["InvoiceID"] },
            "Account": { "Code": "090" },
            "Date": chrono::Utc::now().format("%Y-%m-%d").to_string(),
            "Amount": Value::Number(total.to_string().parse().unwrap()),
        }]}))
        .send()
        .await
        .expect("PUT Payments");
    let paid_status = paid.status();
    let paid_body = paid.text().await.unwrap();
    assert!(paid_status.is_success(), "{paid_status} {paid_body}");

    // The INVOICE UPDATE webhook reaches the daemon; the order is paid; Magento is invoiced.
    let order = eventually("Magento to invoice the order", &daemon, || async {
        let o = env.sandbox.magento.order(entity_id)?;
        (dec_or_zero(&o, "total_invoiced") == dec(&o["grand_total"])).then_some(o)
    })
    .await;
    assert_eq!(order["state"], "processing", "{}", order["state"]);
    let writes = &env.magento_counters()["writes"];
    assert_eq!(
        writes["invoices_per_order"][entity_id.to_string()],
        json!(1),
        "{writes}"
    );
    assert_eq!(writes["duplicate_invoices_total"], json!(0), "{writes}");
    let hook: Value = http
        .get(format!("{admin}webhooks"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        hook["delivered_events"].as_u64().unwrap() >= 1,
        "Xero delivered the event: {hook}"
    );
    let payments = payments_by_invoice_number(&xero.all("Payments").await);
    assert_eq!(
        payments.get(&number).map(Vec::len),
        Some(1),
        "only the accountant's payment, none from the engine: {:?}",
        payments.get(&number)
    );
    assert_no_xero_duplicates(&env.xero_counters());

    // The event cost a Xero call (the invoice is re-read): the day budget gauge moves.
    let after = eventually("the budget gauge to move", &daemon, || async {
        let m = metrics(&http, &base).await;
        let left = sample(&m, "tally_xero_budget_day_remaining")?;
        (left < day_left_before).then_some(m)
    })
    .await;
    assert!(
        after.contains("tally_webhooks_total{source=\"xero\",outcome=\"accepted\"}"),
        "{after}"
    );

    let (exit, took) = daemon.sigterm().await;
    assert!(exit.success(), "{exit}:\n{}", daemon.log_text());
    assert!(took < Duration::from_secs(10), "stopped in {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_mid_backfill_then_sync_loses_and_duplicates_nothing() {
    const ORDERS: usize = 400;
    let env = sandbox_env_with(SandboxOptions {
        seed: 12,
        orders: ORDERS,
        time_scale: 20.0,
        // Every call takes 200 ms, so the backfill is still under way (with calls in flight)
        // when SIGTERM lands, however fast the engine has become.
        faults: tally_fixtures::faults::FaultProfile {
            latency_ms: 200,
            ..tally_fixtures::faults::FaultProfile::default()
        },
        ..SandboxOptions::default()
    })
    .await;
    let customers = magento_customer_emails(&env).await;
    let contacts_before = XeroReader::connect(&env.config).await.all("Contacts").await;
    let (config, base) = daemon_config(&env, "");
    let log = env.dir.path().join("daemon.log");
    let http = reqwest::Client::new();
    let mut daemon = DaemonChild::spawn(&config, base, log);
    daemon.wait_ready(&http).await;

    // Stop as soon as Xero holds some of the invoices, with most of the work still to do.
    let invoices_now = || {
        env.xero_counters()["totals"]["invoices"]
            .as_u64()
            .unwrap_or(0)
    };
    let at_kill = eventually("the first invoices in Xero", &daemon, || async {
        let n = invoices_now();
        (n > 0).then_some(n)
    })
    .await;
    let (exit, took) = daemon.sigterm().await;
    eprintln!(
        "SIGTERM with {at_kill} of {ORDERS} invoices in Xero; stopped in {took:?} with {} invoices",
        invoices_now()
    );
    assert!(
        (at_kill as usize) < ORDERS && (invoices_now() as usize) < ORDERS,
        "the backfill was still under way at SIGTERM ({at_kill} then {} invoices)",
        invoices_now()
    );
    assert!(
        took < Duration::from_secs(10),
        "stopped in {took:?}:\n{}",
        daemon.log_text()
    );
    assert!(exit.success(), "{exit}:\n{}", daemon.log_text());

    let (run, summary) = sync_once(&config).await;
    assert_eq!(run.code, Some(0), "{summary}\n{}", run.stderr);
    assert_eq!(summary["finished"], json!(true));
    let books = assert_books_balance(&env, &customers, &contacts_before).await;
    assert_eq!(books.invoices, ORDERS);
    let invoices =
        sales_invoices_by_number(&XeroReader::connect(&env.config).await.all("Invoices").await);
    assert_eq!(invoices.len(), ORDERS);
    assert!(
        invoices
            .values()
            .all(|v| v.len() == 1 && dec(&v[0]["Total"]) > Decimal::ZERO)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_daemon_reports_idle_cost_and_push_latency() {
    let run = tally(&[
        "bench",
        "daemon",
        "--orders",
        "10",
        "--idle-secs",
        "1",
        "--latency-orders",
        "3",
        "--seed",
        "5",
    ])
    .await;
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    let r = run.json();
    let idle = &r["idle"];
    assert!(idle["window_secs"].as_f64().unwrap() >= 1.0, "{r}");
    assert!(idle["cpu_percent"].as_f64().unwrap() >= 0.0, "{r}");
    let rss = idle["vm_rss_kb"].as_u64().expect("VmRSS read");
    assert!(
        rss > 1000 && rss <= idle["vm_hwm_kb"].as_u64().unwrap(),
        "{r}"
    );
    let lat = &r["push_to_invoice"];
    assert_eq!(lat["orders"], json!(3), "{r}");
    let (p50, p99) = (
        lat["p50_ms"].as_f64().unwrap(),
        lat["p99_ms"].as_f64().unwrap(),
    );
    assert!(p50 > 0.0 && p50 <= p99, "{r}");
    for (k, v) in r["xero_duplicates"].as_object().unwrap() {
        assert_eq!(v, &json!(0), "duplicates.{k} in {r}");
    }
    assert!(r["sigterm_exit_secs"].as_f64().unwrap() < 10.0, "{r}");
}

/// The reconciler runs inside the daemon on its schedule: an invoice voided in Xero whose
/// webhook never came is found by a pass, counted in `/metrics`, and exported by
/// `tally report` once the daemon has stopped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemons_reconciler_finds_a_voided_invoice_no_webhook_announced() {
    let env = sandbox_env_with(SandboxOptions {
        seed: 41,
        orders: 30,
        time_scale: 120.0,
        ..SandboxOptions::default()
    })
    .await;
    let (run, summary) = sync_once(&env.config).await;
    assert_eq!(run.code, Some(0), "{summary}\n{}", run.stderr);
    let unpaid = common::unpaid_invoiced_orders(&env.ledger)
        .await
        .into_iter()
        .next()
        .expect("an unpaid invoiced order");
    XeroReader::connect(&env.config)
        .await
        .void_invoice(&unpaid.links["invoice_id"])
        .await;

    let (config, base) = daemon_config(&env, "[reconcile]\nevery_secs = 1\n");
    let log = env.dir.path().join("daemon.log");
    let http = reqwest::Client::new();
    let mut daemon = DaemonChild::spawn(&config, base.clone(), log);
    daemon.wait_ready(&http).await;
    let gauge = "tally_discrepancies_open{kind=\"invoice_voided_in_xero\"}";
    eventually("the voided invoice in /metrics", &daemon, || async {
        (sample(&metrics(&http, &base).await, gauge)? == 1.0).then_some(())
    })
    .await;
    // The same report through the running daemon (it holds the ledger) and from the file
    // once it has stopped.
    let report = || async {
        let run = tally(&["report", "--config", path_str(&config), "--format", "json"]).await;
        assert_eq!(run.code, Some(0), "{}", run.stderr);
        let report: Value = serde_json::from_str(&run.stdout).unwrap();
        let rows = report.as_array().unwrap().clone();
        assert_eq!(rows.len(), 1, "{report}");
        assert_eq!(rows[0]["order"], unpaid.key.as_str());
        assert_eq!(rows[0]["kind"], "invoice_voided_in_xero");
        assert!(
            rows[0]["raised_at"].is_string(),
            "raised by the reconciler: {report}"
        );
        rows
    };
    // The operator accepts it from a shell: through the daemon, which holds the ledger. It
    // stays listed, acknowledged, and stops counting as open in /metrics (and alerts).
    let key = format!("voided:{}", unpaid.key);
    let run = tally(&[
        "ack",
        "--config",
        path_str(&config),
        &key,
        "--note",
        "re-invoiced by hand",
    ])
    .await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(run.stdout.contains("through the daemon"), "{}", run.stdout);
    eventually("the acknowledgement in /metrics", &daemon, || async {
        let text = metrics(&http, &base).await;
        (sample(&text, gauge)? == 0.0 && sample(&text, "tally_discrepancies_acknowledged")? == 1.0)
            .then_some(())
    })
    .await;
    // `tally reconcile` asks the daemon for a pass; acknowledged, nothing needs attention.
    let run = tally(&["reconcile", "--config", path_str(&config)]).await;
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    let summary: Value = serde_json::from_str(&run.stdout).unwrap();
    assert!(summary["through_daemon"].is_string(), "{summary}");
    assert_eq!(summary["acknowledged"], 1, "{summary}");
    let s = state(&http, &base).await;
    assert_eq!(s["discrepancies"][0]["key"], key.as_str(), "{s}");
    assert_eq!(s["discrepancies"][0]["acknowledged_by"], "operator", "{s}");
    assert_eq!(
        s["discrepancies"][0]["acknowledged_note"], "re-invoiced by hand",
        "{s}"
    );
    let through_daemon = report().await;
    assert!(through_daemon[0]["acknowledged_at"].is_string());
    // The history, through the daemon: raised by its reconciler, acknowledged with the reason.
    let events: Vec<(String, String)> = common::discrepancy_events(&config)
        .await
        .into_iter()
        .map(|(_, event, _, detail)| (event, detail))
        .collect();
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(events[0].0, "raised");
    assert_eq!(events[1].0, "acknowledged");
    assert!(
        events[1].1.ends_with("(reason: re-invoiced by hand)"),
        "{events:?}"
    );
    let (status, _) = daemon.sigterm().await;
    assert!(status.success(), "{}", daemon.log_text());
    assert_eq!(report().await, through_daemon);
}
