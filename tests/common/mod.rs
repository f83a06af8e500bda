//! Shared by the end-to-end tests: a sandbox with its config on disk, the `tally` binary run
//! as a user would run it, and readers of both systems' data that go over HTTP (or straight
//! to the simulator's store) rather than trusting the engine's own ledger.
//!
//! Each test binary uses a different subset, hence the `dead_code` allowance.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::str::FromStr;
use std::time::Duration;

use rust_decimal::Decimal;
use serde_json::{Value, json};
use tally_fixtures::sandbox::{Sandbox, SandboxOptions};
use tempfile::TempDir;

/// A running sandbox, a temp dir, and a tally config in it pointing at the sandbox.
pub struct SandboxEnv {
    pub sandbox: Sandbox,
    pub dir: TempDir,
    pub config: PathBuf,
    pub ledger: PathBuf,
}

/// Starts a sandbox (loopback, OS-chosen ports) seeded with `orders` orders and writes its
/// config (`tally.toml`, ledger `tally.redb`) into a fresh temp dir.
pub async fn sandbox_env(seed: u64, orders: usize, time_scale: f64) -> SandboxEnv {
    sandbox_env_with(SandboxOptions {
        seed,
        orders,
        time_scale,
        ..SandboxOptions::default()
    })
    .await
}

/// [`sandbox_env`] with full control over the sandbox options.
pub async fn sandbox_env_with(opts: SandboxOptions) -> SandboxEnv {
    let sandbox = Sandbox::start(opts).await.expect("sandbox starts");
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("tally.toml");
    let ledger = dir.path().join("tally.redb");
    sandbox
        .write_config(&config, &ledger)
        .expect("config written");
    SandboxEnv {
        sandbox,
        dir,
        config,
        ledger,
    }
}

impl SandboxEnv {
    /// The shop cancels the order of this ledger entity (by its `magento_entity_id` link):
    /// an update, stamped now, that the next poll reads.
    pub fn cancel_in_magento(&self, order: &tally_actors::ledger::EntityState) {
        let entity_id: i64 = order.links["magento_entity_id"]
            .parse()
            .expect("a numeric Magento entity id");
        self.sandbox.magento.insert_order(
            json!({"entity_id": entity_id, "state": "canceled", "status": "canceled"}),
        );
    }

    /// The config as TOML, e.g. to read `[mapping] payments` or to write a variant of it.
    pub fn config_toml(&self) -> toml::Table {
        toml::from_str(&std::fs::read_to_string(&self.config).expect("config readable"))
            .expect("config is TOML")
    }

    /// Writes `text` as another config file in the temp dir and returns its path.
    pub fn write_config_variant(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).expect("config variant written");
        path
    }

    /// The Xero simulator's counters (`/_sandbox/counters`).
    pub fn xero_counters(&self) -> Value {
        self.sandbox.xero.counters_json()
    }

    /// The Magento simulator's counters, including the writes it received.
    pub fn magento_counters(&self) -> Value {
        self.sandbox.magento.counters_json()
    }

    /// Every seeded order, as the simulator stores it (entity ids 1..=N).
    pub fn seeded_orders(&self) -> Vec<Value> {
        let n = self.sandbox.counts().orders as i64;
        (1..=n)
            .map(|id| {
                self.sandbox
                    .magento
                    .order(id)
                    .unwrap_or_else(|| panic!("seeded order {id} exists"))
            })
            .collect()
    }
}

/// What one run of the `tally` binary did.
#[derive(Debug)]
pub struct Run {
    /// `None` when killed by a signal.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Stdout parsed as JSON (the sync summary, `dlq list --json`).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }
}

/// A bound on a hung child, not a speed target: the slowest legitimate run (a 2,000-order
/// debug backfill on a loaded 2-core machine) takes a few minutes at most.
const RUN_LIMIT: Duration = Duration::from_secs(600);

/// Runs the `tally` binary with `args` and waits for it, while this test's runtime keeps
/// serving the sandbox.
pub async fn tally(args: &[&str]) -> Run {
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_tally"))
        .args(args)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn tally");
    let out = tokio::time::timeout(RUN_LIMIT, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("tally {args:?} did not exit within {RUN_LIMIT:?}"))
        .expect("tally ran");
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `tally sync --once --config PATH`: the run and its JSON summary.
pub async fn sync_once(config: &Path) -> (Run, Value) {
    let run = tally(&["sync", "--once", "--config", path_str(config)]).await;
    let summary = run.json();
    (run, summary)
}

pub fn path_str(p: &Path) -> &str {
    p.to_str().expect("temp paths are UTF-8")
}

/// A money amount from a JSON number or numeric string, without passing through a float
/// (serde_json keeps the literal with `arbitrary_precision`).
pub fn dec(v: &Value) -> Decimal {
    let text = match v {
        Value::Number(n) => n.as_str().to_owned(),
        Value::String(s) => s.trim().to_owned(),
        other => panic!("not an amount: {other}"),
    };
    Decimal::from_str_exact(&text)
        .or_else(|_| Decimal::from_scientific(&text))
        .or_else(|_| Decimal::from_str(&text))
        .unwrap_or_else(|e| panic!("not an amount: {text:?} ({e})"))
}

/// `dec` of `obj[key]`, zero when the key is absent or null.
pub fn dec_or_zero(obj: &Value, key: &str) -> Decimal {
    match obj.get(key) {
        None | Some(Value::Null) => Decimal::ZERO,
        Some(v) => dec(v),
    }
}

/// The Xero organisation as an outside client sees it: a client-credentials token from
/// `/connect/token`, the tenant from `/connections`, then paged reads. Tokens live 30
/// simulated minutes, seconds at a high time scale, so each read takes a fresh one.
pub struct XeroReader {
    client: reqwest::Client,
    api_url: String,
    identity_url: String,
    client_id: String,
    client_secret: String,
    scopes: String,
    tenant: String,
}

impl XeroReader {
    /// Connects with the client credentials written in the config at `config`.
    pub async fn connect(config: &Path) -> XeroReader {
        let t: toml::Table =
            toml::from_str(&std::fs::read_to_string(config).expect("config readable"))
                .expect("config is TOML");
        let x = &t["xero"];
        let s = |k: &str| {
            x[k].as_str()
                .unwrap_or_else(|| panic!("[xero] {k} in config"))
                .to_owned()
        };
        let mut reader = XeroReader {
            client: reqwest::Client::new(),
            api_url: s("api_url").trim_end_matches('/').to_owned(),
            identity_url: s("identity_url").trim_end_matches('/').to_owned(),
            client_id: s("client_id"),
            client_secret: s("client_secret"),
            scopes: s("scopes"),
            tenant: String::new(),
        };
        let token = reader.token().await;
        let connections: Value = reader
            .client
            .get(format!("{}/connections", reader.identity_url))
            .bearer_auth(&token)
            .send()
            .await
            .expect("connections request")
            .error_for_status()
            .expect("connections listed")
            .json()
            .await
            .expect("connections JSON");
        reader.tenant = connections[0]["tenantId"]
            .as_str()
            .expect("one connected tenant")
            .to_owned();
        reader
    }

    /// A fresh access token (client credentials grant).
    pub async fn token(&self) -> String {
        let token: Value = self
            .client
            .post(format!("{}/connect/token", self.identity_url))
            .basic_auth(&self.client_id, Some(&self.client_secret))
            .form(&[
                ("grant_type", "client_credentials"),
                ("scope", self.scopes.as_str()),
            ])
            .send()
            .await
            .expect("token request")
            .error_for_status()
            .expect("token granted")
            .json()
            .await
            .expect("token JSON");
        token["access_token"]
            .as_str()
            .expect("access_token")
            .to_owned()
    }

    /// `GET {api}/{path}` with a fresh token and the tenant; the JSON body (panics on a
    /// non-2xx).
    pub async fn get(&self, path_and_query: &str) -> Value {
        let resp = self
            .client
            .get(format!("{}/{}", self.api_url, path_and_query))
            .bearer_auth(self.token().await)
            .header("xero-tenant-id", &self.tenant)
            .header("accept", "application/json")
            .send()
            .await
            .expect("Xero GET");
        let status = resp.status();
        let text = resp.text().await.expect("Xero body");
        assert!(status.is_success(), "GET {path_and_query}: {status} {text}");
        serde_json::from_str(&text).expect("Xero JSON")
    }

    /// `method {api}/{path}` with a JSON body, as someone working in Xero would; the
    /// status and JSON body.
    pub async fn send(&self, method: reqwest::Method, path: &str, body: Value) -> (u16, Value) {
        let resp = self
            .client
            .request(method, format!("{}/{}", self.api_url, path))
            .bearer_auth(self.token().await)
            .header("xero-tenant-id", &self.tenant)
            .header("accept", "application/json")
            .json(&body)
            .send()
            .await
            .expect("Xero write");
        let status = resp.status().as_u16();
        let text = resp.text().await.expect("Xero body");
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// Someone adds a line of `amount` to invoice `id` in Xero, changing its total (panics
    /// unless Xero accepts it).
    pub async fn add_line(&self, id: &str, description: &str, amount: u32) {
        let invoice = self.get(&format!("Invoices/{id}")).await;
        let mut lines = invoice["Invoices"][0]["LineItems"]
            .as_array()
            .expect("line items")
            .clone();
        lines.push(
            json!({"Description": description, "Quantity": 1, "UnitAmount": amount,
                          "AccountCode": "200"}),
        );
        let (st, body) = self
            .send(
                reqwest::Method::POST,
                &format!("Invoices/{id}"),
                json!({"Invoices": [{"LineItems": lines}]}),
            )
            .await;
        assert_eq!(st, 200, "editing {id}: {body}");
    }

    /// Someone voids invoice `id` in Xero (panics unless Xero accepts it).
    pub async fn void_invoice(&self, id: &str) {
        let (st, body) = self
            .send(
                reqwest::Method::POST,
                &format!("Invoices/{id}"),
                serde_json::json!({"Invoices": [{"Status": "VOIDED"}]}),
            )
            .await;
        assert_eq!(st, 200, "voiding {id}: {body}");
    }

    /// Someone records a payment of what invoice `id` still owes, in Xero, to the bank
    /// account 090 (panics unless Xero accepts it).
    pub async fn pay_invoice_in_full(&self, id: &str) {
        let due = self.get(&format!("Invoices/{id}")).await["Invoices"][0]["AmountDue"].clone();
        let (st, body) = self
            .send(
                reqwest::Method::PUT,
                "Payments",
                serde_json::json!({"Payments": [{"Invoice": {"InvoiceID": id},
                    "Account": {"Code": "090"}, "Amount": due, "Date": "2026-11-28"}]}),
            )
            .await;
        assert_eq!(st, 200, "paying {id}: {body}");
    }

    /// Every element of `resource` (`Invoices`, `Payments`, `Contacts`, ...), paged 1,000 at
    /// a time as Xero allows.
    pub async fn all(&self, resource: &str) -> Vec<Value> {
        let mut out = Vec::new();
        for page in 1.. {
            let body = self
                .get(&format!("{resource}?page={page}&pageSize=1000"))
                .await;
            let items = body[resource].as_array().cloned().unwrap_or_default();
            let n = items.len();
            out.extend(items);
            if n < 1000 {
                break;
            }
        }
        out
    }
}

/// Live (not voided/deleted) ACCREC invoices by `InvoiceNumber`; more than one per number is
/// kept so a test can see a duplicate.
pub fn sales_invoices_by_number(invoices: &[Value]) -> BTreeMap<String, Vec<Value>> {
    let mut by: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for inv in invoices {
        if inv["Type"] != "ACCREC" || matches!(inv["Status"].as_str(), Some("VOIDED" | "DELETED")) {
            continue;
        }
        let n = inv["InvoiceNumber"].as_str().unwrap_or_default().to_owned();
        by.entry(n).or_default().push(inv.clone());
    }
    by
}

/// Live payments by the `InvoiceNumber` they pay.
pub fn payments_by_invoice_number(payments: &[Value]) -> BTreeMap<String, Vec<Value>> {
    let mut by: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for p in payments {
        if matches!(p["Status"].as_str(), Some("DELETED")) {
            continue;
        }
        let n = p["Invoice"]["InvoiceNumber"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        by.entry(n).or_default().push(p.clone());
    }
    by
}

/// A shopper as the store knows them: a registered customer id, or (for a guest) the
/// lower-cased email.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Shopper {
    Registered(i64),
    Guest(String),
}

/// The distinct people behind `orders`: registered customers by id, guests by email compared
/// case-insensitively, and a guest whose email is a registered customer's (any case) is that
/// customer. `registered_emails` maps customer id → email from the store's customer records.
/// Returns each person with their lower-cased email.
pub fn distinct_shoppers(
    orders: &[Value],
    registered_emails: &BTreeMap<i64, String>,
) -> BTreeMap<Shopper, String> {
    let by_email: BTreeMap<String, i64> = registered_emails
        .iter()
        .map(|(id, e)| (e.trim().to_lowercase(), *id))
        .collect();
    let mut out = BTreeMap::new();
    for o in orders {
        let email = o["customer_email"]
            .as_str()
            .unwrap_or_default()
            .trim()
            .to_lowercase();
        let guest = o["customer_is_guest"] == json!(1) || o["customer_id"].is_null();
        let who = if !guest {
            let id = o["customer_id"]
                .as_i64()
                .expect("registered order has an id");
            let email = registered_emails
                .get(&id)
                .map(|e| e.to_lowercase())
                .unwrap_or(email);
            (Shopper::Registered(id), email)
        } else if let Some(id) = by_email.get(&email) {
            (Shopper::Registered(*id), email)
        } else {
            (Shopper::Guest(email.clone()), email)
        };
        out.insert(who.0, who.1);
    }
    out
}

/// The store's registered customers (id → email), read over REST with an admin token.
pub async fn magento_customer_emails(env: &SandboxEnv) -> BTreeMap<i64, String> {
    let base = env.sandbox.magento_base_url();
    let token = magento_admin_token(env).await;
    let body: Value = reqwest::Client::new()
        .get(format!(
            "{base}/V1/customers/search?searchCriteria[pageSize]=10000"
        ))
        .bearer_auth(&token)
        .send()
        .await
        .expect("customer search")
        .error_for_status()
        .expect("customer search ok")
        .json()
        .await
        .expect("customer JSON");
    body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|c| {
            (
                c["id"].as_i64().expect("customer id"),
                c["email"].as_str().expect("customer email").to_owned(),
            )
        })
        .collect()
}

/// An admin bearer token for the sandbox store.
pub async fn magento_admin_token(env: &SandboxEnv) -> String {
    let m = env.sandbox.magento.config();
    reqwest::Client::new()
        .post(format!(
            "{}/V1/integration/admin/token",
            env.sandbox.magento_base_url()
        ))
        .json(&json!({ "username": m.admin_username, "password": m.admin_password }))
        .send()
        .await
        .expect("admin token request")
        .error_for_status()
        .expect("admin token granted")
        .json()
        .await
        .expect("admin token JSON")
}

/// `POST {magento}/{path}` with an admin token, as an admin or another integration would;
/// panics unless Magento answers 2xx with JSON.
pub async fn magento_post(env: &SandboxEnv, path: &str, body: Value) -> Value {
    let token = magento_admin_token(env).await;
    reqwest::Client::new()
        .post(format!("{}/{path}", env.sandbox.magento_base_url()))
        .bearer_auth(&token)
        .json(&body)
        .send()
        .await
        .unwrap_or_else(|e| panic!("POST {path}: {e}"))
        .error_for_status()
        .unwrap_or_else(|e| panic!("POST {path}: {e}"))
        .json()
        .await
        .unwrap_or_else(|e| panic!("POST {path}: not JSON: {e}"))
}

/// Creates or updates a product in the store over REST (`POST /V1/products`).
pub async fn magento_save_product(env: &SandboxEnv, product: Value) -> Value {
    magento_post(env, "V1/products", json!({ "product": product })).await
}

/// `tally sync --once --config PATH` as a child the caller may kill; its stdout (the JSON
/// summary) and stderr are piped when `capture`, else discarded.
pub fn spawn_sync(config: &Path, capture: bool) -> tokio::process::Child {
    let out = || {
        if capture {
            Stdio::piped()
        } else {
            Stdio::null()
        }
    };
    tokio::process::Command::new(env!("CARGO_BIN_EXE_tally"))
        .args(["sync", "--once", "--config", path_str(config)])
        .env("RUST_LOG", "error")
        .stdin(Stdio::null())
        .stdout(out())
        .stderr(out())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn tally sync")
}

/// A copy of `order` as a new order `entity_id` (increment id `{entity_id:09}`): its items
/// renumbered (`1_000_000 + entity_id × 100 + n`, parent links kept), and the payment's id
/// and transaction id dropped, so it shares no Magento id with the original.
pub fn copy_order_as(order: &Value, entity_id: i64) -> Value {
    let mut o = order.clone();
    o["entity_id"] = json!(entity_id);
    o["increment_id"] = json!(format!("{entity_id:09}"));
    if let Some(items) = o["items"].as_array_mut() {
        let renumber: BTreeMap<i64, i64> = items
            .iter()
            .enumerate()
            .filter_map(|(n, i)| {
                Some((
                    i["item_id"].as_i64()?,
                    1_000_000 + entity_id * 100 + n as i64,
                ))
            })
            .collect();
        for (n, item) in items.iter_mut().enumerate() {
            item["item_id"] = json!(1_000_000 + entity_id * 100 + n as i64);
            item["order_id"] = json!(entity_id);
            if let Some(parent) = item["parent_item_id"].as_i64() {
                item["parent_item_id"] = json!(renumber[&parent]);
            }
            if let Some(m) = item.as_object_mut() {
                m.remove("parent_item");
            }
        }
    }
    if let Some(p) = o["payment"].as_object_mut() {
        p.remove("entity_id");
        p.remove("last_trans_id");
    }
    if let Some(m) = o.as_object_mut() {
        m.remove("status_histories");
        m.remove("billing_address_id");
        m.remove("extension_attributes");
    }
    o
}

/// Routes (`"METHOD /path"`) of Xero accounting writes (PUT/POST under `/api.xro/`) and how
/// many requests each received.
pub fn xero_accounting_writes(counters: &Value) -> BTreeMap<String, u64> {
    counters["requests"]
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(route, _)| {
            (route.starts_with("PUT ") || route.starts_with("POST ")) && route.contains("/api.xro/")
        })
        .map(|(route, by_status)| {
            let n = by_status
                .as_object()
                .into_iter()
                .flatten()
                .filter_map(|(_, n)| n.as_u64())
                .sum();
            (route.clone(), n)
        })
        .collect()
}

/// Asserts the Xero simulator saw no duplicate invoice, contact or over-payment.
pub fn assert_no_xero_duplicates(counters: &Value) {
    let d = &counters["duplicates"];
    for k in [
        "invoices_per_reference",
        "contacts_per_email",
        "contacts_per_number",
        "payments_over",
    ] {
        assert_eq!(d[k], json!(0), "duplicates.{k} in {d}");
    }
    assert!(
        counters["creates_per_idempotency_key_over_one"]
            .as_object()
            .is_none_or(|m| m.is_empty()),
        "an idempotency key ran twice: {}",
        counters["creates_per_idempotency_key_over_one"]
    );
}

/// Keys of the dead letters in a sync summary or a `dlq list --json` array.
pub fn dead_letter_keys(letters: &Value) -> BTreeSet<String> {
    letters
        .as_array()
        .expect("dead letters are an array")
        .iter()
        .map(|l| l["key"].as_str().expect("key").to_owned())
        .collect()
}

// ---- Order-to-cash books check (crash and fault tests) ----

/// What [`assert_books_balance`] counted, for the test's report line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Books {
    pub invoices: usize,
    pub payments: usize,
    /// Contacts the engine created (shoppers Xero did not know before).
    pub contacts: usize,
}

/// The comments tally wrote on a Magento order (they start with the engine's marker).
pub fn tally_comments(order: &Value) -> usize {
    order["status_histories"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|h| {
            h["comment"]
                .as_str()
                .is_some_and(|c| c.starts_with(tally_actors::link::writeback::MARKER))
        })
        .count()
}

/// Checks both systems (read over HTTP and from the simulators, never from the ledger) after
/// a backfill of every order in the store: nothing duplicated and nothing missing.
///
/// * Xero: no duplicate natural keys, no idempotency key run twice, no over-payment;
///   exactly one live sales invoice per order, numbered with its increment id, whose
///   `Total` is Magento's `grand_total`, and no other; exactly one payment per paid order
///   for what Magento says was paid, none for an unpaid one; one active contact per
///   distinct shopper, the one each of their invoices is addressed to.
/// * Magento: no order invoiced twice by the engine; exactly one tally comment on every
///   paid order and none on an unpaid one.
///
/// `contacts_before` is the organisation's contact list before the first sync. Faults
/// must be off: this reads through the same API the engine uses.
pub async fn assert_books_balance(
    env: &SandboxEnv,
    customer_emails: &BTreeMap<i64, String>,
    contacts_before: &[Value],
) -> Books {
    let counters = env.xero_counters();
    assert_no_xero_duplicates(&counters);
    let writes = &env.magento_counters()["writes"];
    assert_eq!(
        writes["duplicate_invoices_total"],
        json!(0),
        "Magento orders invoiced more than once: {}",
        writes["duplicate_invoices"]
    );

    let orders = env.seeded_orders();
    let xero = XeroReader::connect(&env.config).await;
    let invoices = sales_invoices_by_number(&xero.all("Invoices").await);
    let payments = payments_by_invoice_number(&xero.all("Payments").await);
    let contacts_after = xero.all("Contacts").await;

    assert_eq!(
        invoices.values().map(Vec::len).sum::<usize>(),
        orders.len(),
        "one live sales invoice per order and no other"
    );
    let mut paid_orders = 0;
    for o in &orders {
        let number = o["increment_id"].as_str().expect("increment_id");
        let found = invoices.get(number).map(Vec::as_slice).unwrap_or_default();
        assert_eq!(
            found.len(),
            1,
            "order {number}: {} live invoices",
            found.len()
        );
        assert_eq!(
            dec(&found[0]["Total"]),
            dec(&o["grand_total"]),
            "order {number}: Xero Total vs Magento grand_total"
        );
        let paid = o["payment"].get("amount_paid").map(dec).unwrap_or_default();
        let pays = payments.get(number).map(Vec::as_slice).unwrap_or_default();
        if paid > Decimal::ZERO {
            paid_orders += 1;
            assert_eq!(
                pays.len(),
                1,
                "paid order {number}: {} payments",
                pays.len()
            );
            assert_eq!(
                dec(&pays[0]["Amount"]),
                paid,
                "order {number}: payment amount"
            );
            assert_eq!(
                tally_comments(o),
                1,
                "paid order {number}: tally comments in Magento"
            );
        } else {
            assert!(
                pays.is_empty(),
                "unpaid order {number} has payments: {pays:?}"
            );
            assert_eq!(
                tally_comments(o),
                0,
                "unpaid order {number} was written back"
            );
        }
    }
    assert_eq!(
        payments.values().map(Vec::len).sum::<usize>(),
        paid_orders,
        "no payment beyond one per paid order"
    );

    let shoppers = distinct_shoppers(&orders, customer_emails);
    let email_of = |c: &Value| {
        c["EmailAddress"]
            .as_str()
            .unwrap_or_default()
            .trim()
            .to_lowercase()
    };
    let active: Vec<&Value> = contacts_after
        .iter()
        .filter(|c| c["ContactStatus"].as_str().is_none_or(|s| s == "ACTIVE"))
        .collect();
    let mut contact_of: BTreeMap<String, String> = BTreeMap::new();
    for email in shoppers.values() {
        let matching: Vec<&&Value> = active.iter().filter(|c| email_of(c) == *email).collect();
        assert_eq!(matching.len(), 1, "contacts for {email}: {matching:?}");
        let id = matching[0]["ContactID"].as_str().expect("ContactID");
        contact_of.insert(email.clone(), id.to_owned());
    }
    let existed: BTreeSet<String> = contacts_before.iter().map(email_of).collect();
    let new_people = shoppers.values().filter(|e| !existed.contains(*e)).count();
    assert_eq!(
        contacts_after.len(),
        contacts_before.len() + new_people,
        "{} shoppers, {new_people} of them new to Xero",
        shoppers.len()
    );
    for o in &orders {
        let number = o["increment_id"].as_str().expect("increment_id");
        let email = match o["customer_id"].as_i64() {
            Some(id) if o["customer_is_guest"] != json!(1) => customer_emails[&id].to_lowercase(),
            _ => o["customer_email"]
                .as_str()
                .unwrap_or_default()
                .trim()
                .to_lowercase(),
        };
        assert_eq!(
            invoices[number][0]["Contact"]["ContactID"].as_str(),
            Some(contact_of[&email].as_str()),
            "order {number} is invoiced to its shopper's contact"
        );
    }
    Books {
        invoices: orders.len(),
        payments: paid_orders,
        contacts: new_people,
    }
}

/// A copy of the config at `env.config` with `(table, key, value)` overrides (tables are
/// created when absent, e.g. `[sync]`), written next to it as `name`.
pub fn config_with(env: &SandboxEnv, name: &str, set: &[(&str, &str, toml::Value)]) -> PathBuf {
    let mut t = env.config_toml();
    for (table, key, value) in set {
        let entry = t
            .entry((*table).to_owned())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        entry
            .as_table_mut()
            .unwrap_or_else(|| panic!("[{table}] is a table"))
            .insert((*key).to_owned(), value.clone());
    }
    env.write_config_variant(name, &toml::to_string(&t).expect("config serialises"))
}

/// The orders of the ledger at `path` that tally invoiced and that wait, unpaid, for their
/// payment (`invoiced` or `skipped` with a Xero invoice).
pub async fn unpaid_invoiced_orders(path: &Path) -> Vec<tally_actors::ledger::EntityState> {
    use tally_actors::ledger::{Ledger, Stage};
    let ledger = Ledger::open(path).expect("ledger opens");
    let mut out = Vec::new();
    for stage in [Stage::Invoiced, Stage::Skipped] {
        out.extend(
            ledger
                .by_stage(stage, 10_000)
                .await
                .expect("ledger read")
                .into_iter()
                .filter(|s| {
                    s.links.contains_key("invoice_id") && !s.links.contains_key("payment_id")
                }),
        );
    }
    out
}

/// `tally report --history --format json` for the config at `config`: every discrepancy
/// event, each as (key, event, actor, detail).
pub async fn discrepancy_events(config: &Path) -> Vec<(String, String, String, String)> {
    let run = tally(&[
        "report",
        "--config",
        path_str(config),
        "--history",
        "--format",
        "json",
    ])
    .await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let events: Vec<Value> = serde_json::from_str(&run.stdout).expect("a JSON list");
    let text = |e: &Value, f: &str| e[f].as_str().unwrap_or_default().to_owned();
    events
        .iter()
        .map(|e| {
            (
                text(e, "key"),
                text(e, "event"),
                text(e, "actor"),
                text(e, "detail"),
            )
        })
        .collect()
}
