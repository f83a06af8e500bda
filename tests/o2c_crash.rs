//! Acceptance: crash safety. `tally sync --once` is SIGKILLed at seeded random moments
//! during a backfill, restarted each time, and finally allowed to finish; the sandbox runs in
//! this test's process so it outlives every kill. Afterwards both systems must hold exactly
//! one of everything (no duplicate and no missing invoice, payment, contact or Magento
//! write), and the ledger must reopen with a complete, intent-before-outcome audit trail.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tally_actors::ledger::{AuditEntry, EntityKind, Ledger, Stage};

use common::{
    SandboxEnv, XeroReader, assert_books_balance, config_with, magento_customer_emails,
    sandbox_env, spawn_sync, sync_once,
};

const ORDERS: usize = 3000;
const SEED: u64 = 2024;
/// A rate-limit minute passes in half a second: the engine still has to pace itself, so a
/// run lasts long enough to be killed in every stage.
const TIME_SCALE: f64 = 120.0;
const MIN_KILLS: usize = 24;
/// Gives up (fails) if some stage was still never interrupted after this many kills.
const MAX_KILLS: usize = 60;
/// The stages a kill must have landed in at least once.
const STAGES: [&str; 5] = ["ingest", "contacts", "invoices", "payments", "writeback"];
const KILL_SEED: u64 = 0x7a11_c2a5;

/// SplitMix64: a few lines of seeded, reproducible randomness without a dependency.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..hi` (the tiny modulo bias is irrelevant here).
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo)
    }
}

/// What the ledger said after one kill (orders only: the ledger also holds contacts and
/// stock items).
#[derive(Debug, Default, Clone)]
struct AfterKill {
    by_stage: BTreeMap<Stage, u64>,
    orders: u64,
    /// Operations of the entities caught between a committed intent and its outcome.
    open_intents: Vec<String>,
}

impl AfterKill {
    fn n(&self, s: Stage) -> u64 {
        self.by_stage.get(&s).copied().unwrap_or(0)
    }

    /// The stages that still had work when the process died, i.e. the ones a kill at this
    /// moment could have interrupted.
    fn busy(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        if self.orders < ORDERS as u64 {
            out.push("ingest");
        }
        if self.n(Stage::Seen) > 0 || self.open_intents.iter().any(|o| o == "PUT Contacts") {
            out.push("contacts");
        }
        if self.n(Stage::ContactReady) + self.n(Stage::InvoicePosting) > 0 {
            out.push("invoices");
        }
        if self.n(Stage::Invoiced) + self.n(Stage::PaymentPosting) > 0 {
            out.push("payments");
        }
        if self.n(Stage::Paid) > 0 {
            out.push("writeback");
        }
        out
    }
}

const ORDER_STAGES: [Stage; 9] = [
    Stage::Seen,
    Stage::ContactReady,
    Stage::InvoicePosting,
    Stage::Invoiced,
    Stage::PaymentPosting,
    Stage::Paid,
    Stage::WrittenBack,
    Stage::Skipped,
    Stage::Dead,
];

/// Opens the ledger (repairing it after the kill, as the next run would), reads what it
/// needs, and closes it again before the next run opens it.
async fn read_ledger(path: &Path) -> AfterKill {
    let p = path.to_owned();
    let ledger = tokio::task::spawn_blocking(move || Ledger::open(&p))
        .await
        .unwrap()
        .expect("the ledger reopens after SIGKILL");
    let mut after = AfterKill::default();
    for stage in ORDER_STAGES {
        let n = ledger
            .by_stage(stage, usize::MAX)
            .await
            .unwrap()
            .iter()
            .filter(|s| s.kind == EntityKind::Order)
            .count() as u64;
        after.orders += n;
        after.by_stage.insert(stage, n);
    }
    after.open_intents = ledger
        .with_intent()
        .await
        .unwrap()
        .into_iter()
        .filter(|s| matches!(s.kind, EntityKind::Order | EntityKind::Contact))
        .filter_map(|s| s.intent.map(|i| i.op))
        .collect();
    drop(ledger);
    after
}

/// The `to` stages of an audit trail, with the detail of intent entries marked.
fn trail(audit: &[AuditEntry]) -> Vec<String> {
    audit
        .iter()
        .map(|e| {
            if e.detail.starts_with("intent ") || e.detail.contains("; intent ") {
                format!("{}({})", e.to.as_str(), e.detail)
            } else {
                e.to.as_str().to_owned()
            }
        })
        .collect()
}

/// Whether an audit entry records an intent for `op`: on its own ("intent PUT Invoices
/// key=…"), or committed with an outcome ("created in Xero: …; intent PUT Payments key=…").
fn records_intent(detail: &str, op: &str) -> bool {
    detail.starts_with(&format!("intent {op}")) || detail.contains(&format!("; intent {op}"))
}

/// Every move out of `posting` into one of `outcomes` must come after an intent entry for
/// `op` into `posting` that no other outcome has consumed: nothing was sent without its
/// intent committed first. (An invoice's outcome may carry the payment's intent and move
/// the order on to `PaymentPosting` at once.)
fn assert_intent_before_outcome(
    key: &str,
    audit: &[AuditEntry],
    posting: Stage,
    op: &str,
    outcomes_of: &[Stage],
) {
    let mut open_intent = false;
    let mut outcomes = 0;
    for e in audit {
        if outcomes_of.contains(&e.to) && e.from == Some(posting) {
            assert!(
                open_intent,
                "{key}: moved to {} without a committed {op} intent: {:?}",
                e.to,
                trail(audit)
            );
            open_intent = false;
            outcomes += 1;
        }
        if e.to == posting && records_intent(&e.detail, op) {
            open_intent = true;
        }
    }
    assert!(
        outcomes <= 1,
        "{key}: left {posting} {outcomes} times: {:?}",
        trail(audit)
    );
}

/// Requests the Xero simulator has received on routes matching `route`.
fn xero_requests(env: &SandboxEnv, route: impl Fn(&str) -> bool) -> u64 {
    env.sandbox
        .xero
        .counters()
        .snapshot()
        .requests
        .iter()
        .filter(|(r, _)| route(r))
        .map(|(_, by_status)| by_status.values().sum::<u64>())
        .sum()
}

/// Requests the Magento simulator has answered on routes matching `route`.
fn magento_requests(env: &SandboxEnv, route: impl Fn(&str) -> bool) -> u64 {
    env.sandbox
        .magento
        .counters_json()
        .get("requests")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter(|(r, _)| route(r))
        .flat_map(|(_, by_status)| by_status.as_object().into_iter().flatten())
        .filter_map(|(_, n)| n.as_u64())
        .sum()
}

/// The moment a kill's random delay counts from, as seen by the sandbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Anchor {
    /// The run has connected: it read the Xero Organisation.
    Connected,
    /// The run's ingest has read its first page of orders (and commits only after the last).
    Ingesting,
    /// Xero has answered a batch write (`PUT /api.xro/2.0/{resource}`): its intents are
    /// committed and its documents exist, and the run is about to commit the outcomes.
    Answered(&'static str),
}

impl Anchor {
    fn count(self, env: &SandboxEnv) -> u64 {
        match self {
            Anchor::Connected => xero_requests(env, |r| r == "GET /api.xro/2.0/Organisation"),
            Anchor::Ingesting => magento_requests(env, |r| r == "GET /V1/orders"),
            Anchor::Answered(resource) => {
                xero_requests(env, |r| r == format!("PUT /api.xro/2.0/{resource}"))
            }
        }
    }
}

/// Waits until this run reaches `anchor`, or the process exits. A bound on a hang, not a
/// speed target.
async fn reached(env: &SandboxEnv, child: &mut tokio::process::Child, anchor: Anchor) -> bool {
    let before = anchor.count(env);
    let deadline = Instant::now() + Duration::from_secs(120);
    while anchor.count(env) == before {
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        assert!(Instant::now() < deadline, "tally never reached {anchor:?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    true
}

struct Kill {
    delay: Duration,
    after: AfterKill,
}

/// Xero writes a kill must have interrupted at least once between their committed intent and
/// their outcome: the window in which a naive engine duplicates.
const INTERRUPTED: [&str; 2] = ["PUT Invoices", "PUT Payments"];

fn covered(kills: &[Kill]) -> bool {
    STAGES
        .iter()
        .all(|s| kills.iter().any(|k| k.after.busy().contains(s)))
        && INTERRUPTED.iter().all(|op| {
            kills
                .iter()
                .any(|k| k.after.open_intents.iter().any(|o| o == op))
        })
}

/// Starts `tally sync --once` again and again, SIGKILLing it each time at a seeded random
/// delay after it connected (the first two: just after ingest read its first page), until
/// at least [`MIN_KILLS`] kills have landed, every stage has had work in progress at one of
/// them, and [`INTERRUPTED`] writes were caught in flight (or the backfill finishes on its
/// own).
///
/// The delay is drawn from a window that adapts to the machine: a run killed before it
/// committed anything gets a longer window next time, one that made progress a shorter one,
/// so the backfill always moves forward in small steps and kills keep landing in whatever
/// stage is running rather than only at start-up (or only after the end).
async fn crash_repeatedly(env: &SandboxEnv, config: &Path) -> Vec<Kill> {
    let mut rng = SplitMix(KILL_SEED);
    let mut kills: Vec<Kill> = Vec::new();
    // The window halves after a kill that let the backfill move on and widens after one
    // that did not, so kills keep landing mid-run however fast the engine has become (at
    // 3,000 orders/s a run of the whole backfill takes under a second).
    let mut window_ms = 300;
    let mut last = AfterKill::default();
    while kills.len() < MIN_KILLS || !covered(&kills) {
        assert!(
            kills.len() < MAX_KILLS,
            "{MAX_KILLS} kills and some stage or write was never interrupted"
        );
        // The first two kills land mid-ingest for certain, however fast the machine. A
        // batch write is a call of a few milliseconds between a round's intents and its
        // outcomes, which kills timed from the start of a run hit only by luck: until one
        // has caught each of [`INTERRUPTED`], every third kill is timed from Xero's answer
        // to such a batch instead, the moment its documents exist in Xero and its outcomes
        // are not yet in the ledger.
        let uncaught = INTERRUPTED.iter().find(|op| {
            !kills
                .iter()
                .any(|k| k.after.open_intents.iter().any(|o| o == *op))
        });
        let (anchor, delay) = match uncaught {
            _ if kills.len() < 2 => (Anchor::Ingesting, rng.range(0, 100)),
            Some(op) if kills.len() % 3 == 2 => {
                let resource = op.trim_start_matches("PUT ");
                (Anchor::Answered(resource), rng.range(0, 4))
            }
            _ => (Anchor::Connected, rng.range(window_ms / 5, window_ms)),
        };
        let delay = Duration::from_millis(delay);
        let mut child = spawn_sync(config, false);
        let mut finished = !reached(env, &mut child, anchor).await;
        if !finished {
            tokio::select! {
                _ = child.wait() => finished = true,
                _ = tokio::time::sleep(delay) => child.kill().await.expect("SIGKILL tally"),
            }
        }
        if finished {
            let status = child.wait().await.unwrap();
            eprintln!(
                "the backfill finished ({status}) after {} kills",
                kills.len()
            );
            break;
        }
        let after = read_ledger(&env.ledger).await;
        let progressed = after.by_stage != last.by_stage;
        // The window tracks the kills timed from the start of a run.
        if anchor == Anchor::Connected {
            window_ms = if progressed {
                (window_ms / 2).max(20)
            } else {
                window_ms + 300
            };
        }
        eprintln!(
            "kill {:>2}: {:>4} ms after {:<10} busy {:<38} open intents {:>3} {:?}",
            kills.len() + 1,
            delay.as_millis(),
            format!("{anchor:?};"),
            after.busy().join("+"),
            after.open_intents.len(),
            after
                .by_stage
                .iter()
                .filter(|(_, n)| **n > 0)
                .map(|(s, n)| format!("{}={n}", s.as_str()))
                .collect::<Vec<_>>()
        );
        last = after.clone();
        kills.push(Kill { delay, after });
    }
    kills
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_points_leaves_no_duplicate_and_nothing_missing() {
    let started = Instant::now();
    let env = sandbox_env(SEED, ORDERS, TIME_SCALE).await;
    // Quick retries: a kill can leave work waiting on a retry time.
    let config = config_with(
        &env,
        "crash.toml",
        &[("sync", "retry_base_ms", toml::Value::Integer(50))],
    );
    let customer_emails = magento_customer_emails(&env).await;
    let contacts_before = XeroReader::connect(&env.config).await.all("Contacts").await;

    let kills = crash_repeatedly(&env, &config).await;
    assert!(
        kills.len() >= 20,
        "only {} kills before the backfill finished",
        kills.len()
    );

    // Then let it finish.
    let (run, summary) = sync_once(&config).await;
    assert_eq!(
        run.code,
        Some(0),
        "summary: {summary}\nstderr: {}",
        run.stderr
    );
    assert_eq!(summary["finished"], json!(true));
    assert_eq!(summary["dead_letters"], json!([]));

    let mut per_stage: BTreeMap<&str, usize> = BTreeMap::new();
    let mut per_intent: BTreeMap<String, usize> = BTreeMap::new();
    for k in &kills {
        for s in k.after.busy() {
            *per_stage.entry(s).or_default() += 1;
        }
        let mut ops: Vec<&String> = k.after.open_intents.iter().collect();
        ops.sort();
        ops.dedup();
        for op in ops {
            *per_intent.entry(op.clone()).or_default() += 1;
        }
    }
    let longest = kills.iter().map(|k| k.delay).max().unwrap_or_default();
    eprintln!(
        "{} kills (longest delay {longest:?}); kills by stage with work in progress: {per_stage:?}; kills that left \
         intents without outcome, by operation: {per_intent:?}",
        kills.len()
    );
    for stage in STAGES {
        assert!(
            per_stage.get(stage).copied().unwrap_or(0) > 0,
            "no kill landed while {stage} had work: {per_stage:?}"
        );
    }
    for op in INTERRUPTED {
        assert!(
            per_intent.get(op).copied().unwrap_or(0) > 0,
            "no kill landed between a {op} intent and its outcome: {per_intent:?}"
        );
    }

    let books = assert_books_balance(&env, &customer_emails, &contacts_before).await;
    eprintln!("after {} kills: {books:?}", kills.len());

    // The ledger reopens; every order is settled, no intent is left open, and every order's
    // audit trail has each intent committed before its outcome.
    let settled = read_ledger(&env.ledger).await;
    assert_eq!(
        settled.n(Stage::WrittenBack) + settled.n(Stage::Skipped),
        ORDERS as u64,
        "every order written back or awaiting payment: {:?}",
        settled.by_stage
    );
    assert_eq!(settled.n(Stage::WrittenBack) as usize, books.payments);
    assert!(
        settled.open_intents.is_empty(),
        "open intents remain: {:?}",
        settled.open_intents
    );
    let p = env.ledger.clone();
    let ledger = tokio::task::spawn_blocking(move || Ledger::open(&p))
        .await
        .unwrap()
        .expect("ledger reopens");
    assert!(ledger.dead_letters().await.unwrap().is_empty());
    let mut adopted = Vec::new();
    for id in 1..=ORDERS {
        let key = EntityKind::Order.key(&format!("{id:09}"));
        let audit = ledger.audit_for(&key).await.unwrap();
        assert!(!audit.is_empty(), "{key} has no audit trail");
        // Ingest records every order first: as seen, or already linked to its customer's
        // contact when the ledger knew that customer.
        assert!(
            audit[0].actor == "ingest"
                && audit[0].from.is_none()
                && matches!(audit[0].to, Stage::Seen | Stage::ContactReady),
            "{key}: {:?}",
            trail(&audit)
        );
        assert_intent_before_outcome(
            &key,
            &audit,
            Stage::InvoicePosting,
            "PUT Invoices",
            &[Stage::Invoiced, Stage::PaymentPosting],
        );
        assert_intent_before_outcome(
            &key,
            &audit,
            Stage::PaymentPosting,
            "PUT Payments",
            &[Stage::Paid],
        );
        if audit.iter().any(|e| {
            e.detail
                .starts_with("found in Xero after an interrupted post")
        }) {
            adopted.push(key);
        }
    }
    // A sample: a paid order's whole life, in order.
    let sample = ledger
        .by_stage(Stage::WrittenBack, 1)
        .await
        .unwrap()
        .pop()
        .expect("a written-back order");
    let audit = ledger.audit_for(&sample.key).await.unwrap();
    let stages: Vec<Stage> = audit.iter().map(|e| e.to).collect();
    let first = |s: Stage| {
        stages
            .iter()
            .position(|x| *x == s)
            .unwrap_or_else(|| panic!("{}: never {s}: {:?}", sample.key, trail(&audit)))
    };
    // `Invoiced` is passed over when the invoice's outcome carried the payment's intent.
    let life = [
        Stage::Seen,
        Stage::ContactReady,
        Stage::InvoicePosting,
        Stage::PaymentPosting,
        Stage::Paid,
        Stage::WrittenBack,
    ];
    let positions: Vec<usize> = life.iter().map(|s| first(*s)).collect();
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "{}: stages out of order: {:?}",
        sample.key,
        trail(&audit)
    );
    assert!(
        audit[first(Stage::InvoicePosting)]
            .detail
            .starts_with("intent PUT Invoices"),
        "{:?}",
        trail(&audit)
    );
    assert!(
        records_intent(&audit[first(Stage::PaymentPosting)].detail, "PUT Payments"),
        "{:?}",
        trail(&audit)
    );
    eprintln!("sample {}: {:?}", sample.key, trail(&audit));
    eprintln!(
        "{} orders were adopted from Xero after an interrupted post, e.g. {:?}; {:?} in all",
        adopted.len(),
        adopted.first(),
        started.elapsed()
    );
}
