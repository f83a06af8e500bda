//! `tally daemon`, `tally status`, `tally reload` against config files, and the shipped examples.

mod daemon_support;

use std::path::Path;
use std::process::ExitCode;

use daemon_support::*;
use tally::config::RawConfig;
use tally::daemon::client::ControlClient;
use tally::daemon::commands::{reload, render_status, status};
use tally::daemon::{DaemonConfig, Readiness, Settings};
use tally_tui::state::ActorRow;

fn write_config(dir: &Path, listen: &str, token: &str) -> std::path::PathBuf {
    let path = dir.join("tally.toml");
    std::fs::write(
        &path,
        format!("[daemon]\nlisten = \"{listen}\"\ntoken = \"{token}\"\n"),
    )
    .unwrap();
    path
}

#[test]
fn shipped_example_config_and_env_parse_and_validate() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(root.join("deploy/tally.example.toml")).unwrap();
    let mut raw = RawConfig::parse(Path::new("tally.example.toml"), &text).unwrap();
    let env = std::fs::read_to_string(root.join("deploy/tally.example.env")).unwrap();
    let vars: Vec<(String, String)> = env
        .lines()
        .filter(|l| l.starts_with("TALLY_"))
        .map(|l| {
            let (k, _) = l.split_once('=').unwrap();
            (k.to_owned(), format!("value-of-{k}"))
        })
        .collect();
    assert!(vars.iter().any(|(k, _)| k == "TALLY_DAEMON_TOKEN"));
    raw.apply_env(vars);
    let s = Settings::from_raw(&raw).unwrap();
    assert_eq!(
        s.daemon.validate(None).unwrap().to_string(),
        "127.0.0.1:8787"
    );
    assert!(
        s.daemon.token.is_some()
            && s.daemon.xero_webhook_key.is_some()
            && s.alerts.webhook_url.is_some()
    );
    assert_eq!(
        (s.alerts.discrepancy_threshold, s.alerts.min_interval_secs),
        (Some(25), 300)
    );
    // Secrets from the environment never show up in Debug output.
    assert!(!format!("{s:?}").contains("value-of-"), "{s:?}");

    let unit = std::fs::read_to_string(root.join("deploy/tally.service")).unwrap();
    for line in [
        "User=tally",
        "EnvironmentFile=/etc/tally/tally.env",
        "ExecStart=/usr/local/bin/tally daemon --config /etc/tally/tally.toml",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "Restart=on-failure",
        "NoNewPrivileges=true",
        "ProtectSystem=strict",
        "ReadWritePaths=/var/lib/tally",
        "TimeoutStopSec=15",
    ] {
        assert!(unit.lines().any(|l| l == line), "missing {line}");
    }
}

#[tokio::test]
async fn status_and_reload_talk_to_the_daemon_of_a_config() {
    let s = Settings {
        daemon: DaemonConfig {
            listen: "127.0.0.1:0".into(),
            token: secret("cli-token"),
            ..Default::default()
        },
        ..Default::default()
    };
    let r = start(s).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), &r.daemon.local_addr().to_string(), "cli-token");

    assert_eq!(status(&cfg).await.unwrap(), ExitCode::SUCCESS);
    *r.engine.readiness.lock() = Readiness {
        ready: false,
        checks: vec![("xero".into(), false, "unreachable".into())],
    };
    assert_eq!(status(&cfg).await.unwrap(), ExitCode::from(1));

    assert_eq!(reload(&cfg).await.unwrap(), ExitCode::SUCCESS);
    *r.engine.reload_result.lock() = Err("bad rule".into());
    assert_eq!(reload(&cfg).await.unwrap(), ExitCode::from(1));
    assert_eq!(
        r.engine.reloads.load(std::sync::atomic::Ordering::SeqCst),
        2
    );

    let wrong = write_config(dir.path(), &r.daemon.local_addr().to_string(), "nope");
    let err = status(&wrong).await.unwrap_err().to_string();
    assert!(
        err.contains("refused the token") || format!("{err:#}").contains("401"),
        "{err}"
    );
    assert!(!err.contains("nope"), "the token is not echoed: {err}");
}

#[tokio::test]
async fn status_text_shows_what_an_operator_needs() {
    let r = start(loopback_settings()).await;
    r.engine.state.send_modify(|s| {
        s.actors = vec![ActorRow {
            name: "invoices".into(),
            queued: 12,
            dead: 2,
            ..Default::default()
        }];
        s.budget.day_used = 4200;
        s.budget.day_limit = 5000;
        s.budget.forecast_exhausted_at = Some("17:05".into());
        s.discrepancies_open = 4;
        s.discrepancies_by_kind = [("invoice_voided_in_xero".to_owned(), 4)].into();
        s.discrepancies_acknowledged = 2;
    });
    *r.engine.readiness.lock() = Readiness {
        ready: false,
        checks: vec![("xero".into(), false, "401 reconnect".into())],
    };
    let client = ControlClient::new(&r.base, None).unwrap();
    let text = render_status(
        client.base(),
        &client.ready().await.unwrap(),
        &client.state().await.unwrap(),
    );
    for needle in [
        "NOT READY",
        "FAIL xero: 401 reconnect",
        "invoices",
        "12",
        "day 4200/5000, runs out at 17:05",
        "dead letters  2",
        "discrepancies 4 (invoice_voided_in_xero 4), 2 acknowledged",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in\n{text}");
    }
}

#[test]
fn daemon_refuses_a_public_address_without_a_token_before_doing_anything() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("tally.toml");
    std::fs::write(&cfg, "[daemon]\nlisten = \"127.0.0.1:8787\"\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tally"))
        .args(["daemon", "--config"])
        .arg(&cfg)
        .args(["--listen", "0.0.0.0:8787"])
        .env_remove("TALLY_DAEMON_TOKEN")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("[daemon] token"), "{err}");
}
