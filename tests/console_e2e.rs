//! `tally console` in a real terminal (a tmux pane) with the real engine against the in-process
//! sandbox: a broken order shows up in the Errors view with its field, the shop fixes it, `r`
//! retries it, it reaches Xero once; the shop cancels an invoiced order, the Discrepancies view
//! lists it and `f` voids its invoice in Xero; and `q` gives the terminal back.
//!
//! Needs tmux (CI installs it). Without it the test fails, unless `TALLY_SKIP_TMUX=1`.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use rust_decimal::Decimal;
use serde_json::{Value, json};

use common::{
    XeroReader, assert_no_xero_duplicates, copy_order_as, dec, path_str, sales_invoices_by_number,
    sandbox_env,
};

/// A bound on waiting for the engine or the screen, not a speed target.
const WAIT: Duration = Duration::from_secs(60);
const PROMPT: &str = "tally-e2e$ ";

/// A tmux server of our own (its own socket), killed when dropped.
struct Tmux {
    socket: String,
}

impl Tmux {
    /// Starts a 120×36 pane running a plain shell with a known prompt, in `dir`.
    fn start(dir: &Path) -> Option<Tmux> {
        if Command::new("tmux").arg("-V").output().is_err() {
            return None;
        }
        let t = Tmux {
            socket: format!("tally-console-e2e-{}", std::process::id()),
        };
        t.run(&[
            "-f",
            "/dev/null",
            "new-session",
            "-d",
            "-x",
            "120",
            "-y",
            "36",
            "-s",
            "e2e",
            "-c",
            path_str(dir),
            "-e",
            "RUST_LOG=off",
            "/bin/sh",
        ]);
        Some(t)
    }

    fn run(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .args(["-L", &self.socket])
            .args(args)
            .output()
            .expect("run tmux");
        assert!(
            out.status.success(),
            "tmux {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Keys as tmux names them (`Enter`, `Escape`) or literal text.
    fn send(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "e2e"];
        args.extend_from_slice(keys);
        self.run(&args);
    }

    fn screen(&self) -> String {
        self.run(&["capture-pane", "-p", "-t", "e2e"])
    }

    fn alternate_screen_on(&self) -> bool {
        self.run(&["display-message", "-p", "-t", "e2e", "#{alternate_on}"])
            .trim()
            == "1"
    }

    /// Polls the screen until `check` holds; the last screen on timeout.
    async fn wait_for(&self, what: &str, check: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let screen = self.screen();
            if check(&screen) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; the screen:\n{screen}"
            );
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .output();
    }
}

/// The screen without its last line, the status bar (which echoes the last command sent).
fn above_status_bar(screen: &str) -> String {
    let lines: Vec<&str> = screen.trim_end().lines().collect();
    lines[..lines.len().saturating_sub(1)].join("\n")
}

/// A paid, single-line, simple-product order: the breakage is the only thing wrong with its copy.
fn template(orders: &[Value]) -> Value {
    orders
        .iter()
        .find(|o| {
            let items = o["items"].as_array().unwrap();
            items.len() == 1
                && items[0]["product_type"] == "simple"
                && o["payment"]
                    .get("amount_paid")
                    .is_some_and(|a| dec(a) > Decimal::ZERO)
        })
        .cloned()
        .expect("the seed has a paid single-line order")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_shows_a_broken_order_and_retries_it_after_the_fix() {
    let env = sandbox_env(21, 30, 60.0).await;
    let Some(tmux) = Tmux::start(env.dir.path()) else {
        if std::env::var("TALLY_SKIP_TMUX").as_deref() == Ok("1") {
            eprintln!("tmux is not installed; skipped because TALLY_SKIP_TMUX=1");
            return;
        }
        panic!(
            "tmux is not installed: the console end-to-end test needs it \
             (apt-get install tmux), or set TALLY_SKIP_TMUX=1 to skip it"
        );
    };

    // A new order whose only line has a price Magento would never accept from a real checkout.
    let orders = env.seeded_orders();
    let template = template(&orders);
    let id = orders.len() as i64 + 1;
    let mut broken = copy_order_as(&template, id);
    let good_price = broken["items"][0]["price"].clone();
    broken["items"][0]["price"] = json!("12,99");
    let stored = env.sandbox.magento.insert_order(broken);
    let number = stored["increment_id"].as_str().unwrap().to_owned();
    let key = format!("order:{number}");

    // sh sets its own prompt for root, whatever the environment says.
    tmux.send(&[&format!("PS1='{PROMPT}'"), "Enter"]);
    tmux.wait_for("the shell prompt", |s| s.contains(PROMPT.trim()))
        .await;
    tmux.send(&[
        &format!(
            "{} console --config {}; echo console-exit=$?",
            env!("CARGO_BIN_EXE_tally"),
            path_str(&env.config)
        ),
        "Enter",
    ]);
    tmux.wait_for("the console", |s| s.contains("Overview"))
        .await;
    assert!(
        tmux.alternate_screen_on(),
        "the console uses the alternate screen"
    );

    // `?` shows every key; Esc closes it.
    // Waiting for every line, not the first: a capture can land mid-frame.
    tmux.send(&["?"]);
    let lines = [
        "retry selected",
        "switch view",
        "retry all (asks first)",
        "quit",
    ];
    tmux.wait_for("the help overlay, every key listed", |s| {
        lines.iter().all(|l| s.contains(l))
    })
    .await;
    tmux.send(&["Escape"]);
    tmux.wait_for("the help to close", |s| !s.contains("retry selected"))
        .await;

    // The Errors view names the order and the field.
    tmux.send(&["3"]);
    tmux.wait_for("the dead letter in the Errors view", |s| {
        s.contains(&key) && s.contains("items[0].price") && s.contains("dead")
    })
    .await;

    // The shop fixes the price (same entity_id: an update); the engine's next poll refreshes
    // its copy of the dead-lettered order, which the Log view shows.
    let mut fixed = env.sandbox.magento.order(id).unwrap();
    fixed["items"][0]["price"] = good_price;
    env.sandbox.magento.insert_order(fixed);
    tmux.send(&["5"]);
    tmux.wait_for("the engine to read the fixed order", |s| {
        s.contains("updated while dead-lettered")
    })
    .await;

    // `r` on the selected (only) error sends it back; it leaves the Errors view.
    tmux.send(&["3"]);
    tmux.wait_for("the Errors view", |s| s.contains(&key)).await;
    tmux.send(&["r"]);
    tmux.wait_for("the error to clear", |s| {
        s.contains("Errors · 0 dead · 0 retrying") && !above_status_bar(s).contains(&key)
    })
    .await;

    // The order reaches Xero once, for the corrected amount.
    let xero = XeroReader::connect(&env.config).await;
    let deadline = Instant::now() + WAIT;
    let invoice = loop {
        let body = xero.get(&format!("Invoices?InvoiceNumbers={number}")).await;
        if let Some(inv) = body["Invoices"].as_array().and_then(|a| a.first()) {
            break inv.clone();
        }
        assert!(
            Instant::now() < deadline,
            "the retried order never reached Xero; the screen:\n{}",
            tmux.screen()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(dec(&invoice["Total"]), dec(&stored["grand_total"]));
    let all = sales_invoices_by_number(&xero.all("Invoices").await);
    assert_eq!(all.get(&number).map(Vec::len), Some(1), "invoiced once");
    assert_no_xero_duplicates(&env.xero_counters());
    let errors = tmux.screen();
    assert!(
        !above_status_bar(&errors).contains(&key),
        "still listed:\n{errors}"
    );
    // The header counts what waits now: nothing is dead or retrying any more.
    tmux.wait_for("the header to drop the dead count", |s| {
        let header = s.lines().next().unwrap_or_default();
        !header.contains(" dead") && !header.contains("retrying")
    })
    .await;

    // The shop cancels an order tally invoiced and nobody paid: the Discrepancies view lists
    // it, `f` voids its invoice in Xero after asking, and the row goes.
    let unpaid = env
        .seeded_orders()
        .into_iter()
        .find(|o| common::dec_or_zero(&o["payment"], "amount_paid").is_zero())
        .expect("the seed has an unpaid order");
    let unpaid_number = unpaid["increment_id"].as_str().unwrap().to_owned();
    let deadline = Instant::now() + WAIT;
    let unpaid_invoice = loop {
        let body = xero
            .get(&format!("Invoices?InvoiceNumbers={unpaid_number}"))
            .await;
        if let Some(inv) = body["Invoices"].as_array().and_then(|a| a.first()) {
            break inv.clone();
        }
        assert!(
            Instant::now() < deadline,
            "the unpaid order never reached Xero"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    env.sandbox.magento.insert_order(
        json!({"entity_id": unpaid["entity_id"], "state": "canceled", "status": "canceled"}),
    );
    tmux.send(&["6"]);
    tmux.wait_for("the cancellation in the Discrepancies view", |s| {
        s.contains("cancelled in Magento") && s.contains(&unpaid_number)
    })
    .await;
    tmux.send(&["f"]);
    tmux.wait_for("the question before voiding", |s| {
        s.contains(&format!("Void the Xero invoice of {unpaid_number}"))
    })
    .await;
    tmux.send(&["y"]);
    tmux.wait_for("the discrepancy to close", |s| {
        s.contains("Discrepancies · 0 need attention")
    })
    .await;
    let id = unpaid_invoice["InvoiceID"].as_str().unwrap();
    let voided = xero.get(&format!("Invoices/{id}")).await;
    assert_eq!(voided["Invoices"][0]["Status"], "VOIDED", "{voided}");

    // `q` quits and gives the terminal back: normal screen, the shell's prompt, exit code 0.
    tmux.send(&["q"]);
    let shell = tmux
        .wait_for("the shell after the console", |s| {
            s.lines().any(|l| l.starts_with("console-exit="))
        })
        .await;
    assert!(
        shell.lines().any(|l| l.trim_end() == "console-exit=0"),
        "{shell}"
    );
    assert!(!tmux.alternate_screen_on(), "alternate screen left on");
    assert!(
        shell.lines().any(|l| l.trim_end() == PROMPT.trim_end()),
        "the shell prompt is back:\n{shell}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_console_prints_frame_times() {
    let run = common::tally(&["bench", "console", "--items", "5000", "--frames", "40"]).await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let r = run.json();
    assert_eq!(r["bench"], "console");
    assert_eq!(r["items"], json!(5000));
    assert_eq!(r["frames"], json!(40));
    let ms = |k: &str| r[k].as_f64().unwrap_or_else(|| panic!("{k} in {r}"));
    assert!(ms("median_ms") > 0.0, "{r}");
    assert!(
        ms("median_ms") <= ms("p99_ms") && ms("p99_ms") <= ms("worst_ms"),
        "{r}"
    );
    assert_eq!(r["p99_within_target"], json!(ms("p99_ms") < 5.0), "{r}");
}
