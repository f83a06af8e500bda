//! `fix` end to end: orders dead-lettered on a tax class the config does not map, a refused
//! fix that changes nothing, the real fix (config edited with its comments kept, rules
//! reloaded, every blocked order retried and invoiced exactly once with the right TaxType),
//! `tally fix` on the command line, and the control API's token on the fix command.

mod common;
mod daemon_support;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::json;
use tally::engine::EngineRuntime;
use tally_tui::{ConsoleCommand, FixRule};

use common::{
    SandboxEnv, XeroReader, assert_no_xero_duplicates, path_str, sales_invoices_by_number,
    sandbox_env, sync_once, tally,
};

/// A bound on waiting for the engine, not a speed target.
const WAIT: Duration = Duration::from_secs(60);
const CLASS: &str = "Reduced Rate Goods";
const COMMENT: &str = "# Magento tax class -> Xero TaxType (the operator's note)";

/// The sandbox's config without a mapping for [`CLASS`], with an operator's comment above the
/// tax table.
fn config_without_class(env: &SandboxEnv) -> (PathBuf, String) {
    let text = std::fs::read_to_string(&env.config).expect("config readable");
    let mut out = String::new();
    for line in text.lines() {
        if line.starts_with("tax = {") {
            let kept = line.replace(&format!("\"{CLASS}\" = \"RROUTPUT\", "), "");
            assert_ne!(kept, line, "the sandbox maps {CLASS}");
            out.push_str(COMMENT);
            out.push('\n');
            out.push_str(&kept);
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    let path = env.write_config_variant("fix.toml", &out);
    (path, out)
}

/// The keys of the dead letters, and of those about [`CLASS`].
async fn letters(rt: &EngineRuntime) -> (BTreeSet<String>, BTreeSet<String>) {
    let all = rt.link.dead_letters().await.expect("dead letters");
    let about = all
        .iter()
        .filter(|l| l.message.contains(&format!("tax class {CLASS:?}")))
        .map(|l| l.key.clone())
        .collect();
    (all.into_iter().map(|l| l.key).collect(), about)
}

fn increment(key: &str) -> &str {
    key.strip_prefix("order:").expect("an order key")
}

/// Every line's TaxType of the live invoice of each order.
async fn tax_types(reader: &XeroReader, keys: &BTreeSet<String>) -> Vec<(String, Vec<String>)> {
    let invoices = sales_invoices_by_number(&reader.all("Invoices").await);
    keys.iter()
        .map(|k| {
            let found = invoices.get(increment(k)).cloned().unwrap_or_default();
            assert_eq!(
                found.len(),
                1,
                "{k} must be invoiced exactly once: {found:?}"
            );
            let full = &found[0];
            let types = full["LineItems"]
                .as_array()
                .map(|lines| {
                    lines
                        .iter()
                        .filter_map(|l| l["TaxType"].as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            (k.clone(), types)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fix_maps_the_class_reloads_and_invoices_every_blocked_order_once() {
    let env = sandbox_env(7, 30, 60.0).await;
    let (config, original) = config_without_class(&env);
    let rt = tally::cmd::console::start_runtime(&config)
        .await
        .expect("engine starts");
    assert!(rt.link.wait_idle(WAIT).await.expect("link runs"), "idle");
    let (before, blocked) = letters(&rt).await;
    assert!(
        !blocked.is_empty(),
        "some seeded orders carry {CLASS}: {before:?}"
    );
    let key = blocked.iter().next().unwrap().clone();

    // A TaxType the organisation lacks: refused, and nothing changes.
    let refused = rt
        .apply(ConsoleCommand::Fix {
            key: key.clone(),
            rule: FixRule::TaxClass {
                class: CLASS.into(),
                tax_type: "GSTONIMPORTS".into(),
            },
        })
        .await
        .expect_err("a TaxType the organisation lacks is refused");
    assert!(
        refused.contains("refused, nothing changed") && refused.contains("GSTONIMPORTS"),
        "{refused}"
    );
    assert_eq!(std::fs::read_to_string(&config).unwrap(), original);
    assert!(!rt.link.ctx.rules().tax.contains_key(CLASS));
    assert_eq!(letters(&rt).await.0, before, "no dead letter moved");
    let notice = rt
        .subscribe()
        .borrow()
        .notice
        .clone()
        .expect("answer published");
    assert!(!notice.ok && notice.message == refused, "{notice:?}");

    // The real fix.
    let reply = rt
        .apply(ConsoleCommand::Fix {
            key: key.clone(),
            rule: FixRule::TaxClass {
                class: CLASS.into(),
                tax_type: "RROUTPUT".into(),
            },
        })
        .await
        .expect("the fix is applied");
    assert!(
        reply.contains(&format!("{} dead letter(s) retried", blocked.len())),
        "every order blocked on {CLASS} is retried, not only {key}: {reply}"
    );
    let written = std::fs::read_to_string(&config).unwrap();
    assert!(written.contains(COMMENT), "comment kept:\n{written}");
    assert!(
        written.contains(&format!("\"{CLASS}\" = \"RROUTPUT\"")),
        "rule written:\n{written}"
    );
    assert_eq!(
        rt.link.ctx.rules().tax.get(CLASS).map(String::as_str),
        Some("RROUTPUT"),
        "rules reloaded"
    );
    assert!(rt.link.wait_idle(WAIT).await.expect("link runs"), "idle");
    let (after, still) = letters(&rt).await;
    assert!(still.is_empty(), "still dead: {after:?}");
    assert!(
        after.is_subset(&before),
        "the fix broke nothing new: {after:?}"
    );

    let reader = XeroReader::connect(&config).await;
    for (order, types) in tax_types(&reader, &blocked).await {
        assert!(
            types.iter().any(|t| t == "RROUTPUT"),
            "{order}'s {CLASS} lines carry RROUTPUT: {types:?}"
        );
    }
    assert_no_xero_duplicates(&env.xero_counters());
    rt.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tally_fix_on_the_command_line_edits_the_config_and_sends_the_letters_back() {
    let env = sandbox_env(7, 30, 60.0).await;
    let (config, _) = config_without_class(&env);
    let (_, summary) = sync_once(&config).await;
    let key = summary["dead_letters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["message"].as_str().is_some_and(|m| m.contains(CLASS)))
        .and_then(|l| l["key"].as_str())
        .unwrap_or_else(|| panic!("an order with {CLASS} is dead-lettered: {summary}"))
        .to_owned();

    let refused = tally(&[
        "fix",
        "--config",
        path_str(&config),
        &key,
        "--tax-class",
        &format!("{CLASS}=NOSUCHTYPE"),
    ])
    .await;
    assert_eq!(refused.code, Some(1), "{refused:?}");
    assert!(
        refused.stderr.contains("refused, nothing changed"),
        "{refused:?}"
    );

    let run = tally(&[
        "fix",
        "--config",
        path_str(&config),
        &key,
        "--tax-class",
        &format!("{CLASS}=RROUTPUT"),
    ])
    .await;
    assert_eq!(run.code, Some(0), "{run:?}");
    assert!(run.stdout.contains("dead letter(s) sent back"), "{run:?}");
    assert!(std::fs::read_to_string(&config).unwrap().contains(COMMENT));
    let (_, summary) = sync_once(&config).await;
    assert!(
        !summary["dead_letters"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["message"].as_str().is_some_and(|m| m.contains(CLASS))),
        "no {CLASS} letter left: {summary}"
    );
    let reader = XeroReader::connect(&config).await;
    let one: BTreeSet<String> = [key].into();
    let types = tax_types(&reader, &one).await;
    assert!(types[0].1.iter().any(|t| t == "RROUTPUT"), "{types:?}");
    assert_no_xero_duplicates(&env.xero_counters());
}

#[tokio::test]
async fn the_fix_command_needs_the_token_like_every_control_command() {
    let mut settings = daemon_support::loopback_settings();
    settings.daemon.token = daemon_support::secret("fix-token-8d1e");
    let r = daemon_support::start(settings).await;
    let fix = json!({
        "command": "fix",
        "arg": {"key": "order:000000007", "rule": {"kind": "tax_class", "class": CLASS, "tax_type": "RROUTPUT"}}
    });
    let url = format!("{}/api/v1/commands", r.base);
    let no_token = r.http.post(&url).json(&fix).send().await.unwrap();
    assert_eq!(no_token.status(), 401);
    let wrong = r
        .http
        .post(&url)
        .bearer_auth("fix-token-0000")
        .json(&fix)
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    assert!(
        r.engine.commands.lock().is_empty(),
        "nothing reached the engine"
    );
    let ok = r
        .http
        .post(&url)
        .bearer_auth("fix-token-8d1e")
        .json(&fix)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(
        r.engine.commands.lock().as_slice(),
        [ConsoleCommand::Fix {
            key: "order:000000007".into(),
            rule: FixRule::TaxClass {
                class: CLASS.into(),
                tax_type: "RROUTPUT".into()
            }
        }]
    );
}
