//! Alerts: transitions, de-duplication, rate limits, resolution, and both delivery paths.

mod daemon_support;

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::routing::post;
use daemon_support::*;
use parking_lot::Mutex;
use serde_json::Value;
use tally::daemon::alerts::{AlertKind, AlertMonitor, AlertStatus};
use tally::daemon::{AlertsConfig, DaemonConfig, Settings};
use tally_tui::ConsoleState;
use tally_tui::state::{ActorRow, HealthRow};
use tokio::time::Instant;

fn with_dead(n: u64) -> ConsoleState {
    ConsoleState {
        link: "L".into(),
        actors: vec![ActorRow {
            name: "invoices".into(),
            dead: n,
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn monitor(threshold: Option<u64>) -> AlertMonitor {
    AlertMonitor::new(&AlertsConfig {
        discrepancy_threshold: threshold,
        min_interval_secs: 300,
        ..Default::default()
    })
}

#[test]
fn a_burst_of_dead_letters_is_one_alert_then_a_summary_after_the_mute() {
    let mut m = monitor(None);
    let t0 = Instant::now();
    let mut fired = Vec::new();
    for n in 1..=1000 {
        fired.extend(m.observe(&with_dead(n), t0 + Duration::from_millis(n)));
    }
    assert_eq!(fired.len(), 1, "{fired:?}");
    assert_eq!(
        (fired[0].kind, fired[0].status),
        (AlertKind::DeadLetters, AlertStatus::Firing)
    );
    assert!(
        fired[0].text.starts_with("1 new dead letter "),
        "{}",
        fired[0].text
    );
    // Still muted a minute later; after the interval the pile-up is summarised once.
    assert!(
        m.observe(&with_dead(1000), t0 + Duration::from_secs(60))
            .is_empty()
    );
    let summary = m.observe(&with_dead(1000), t0 + Duration::from_secs(301));
    assert_eq!(summary.len(), 1);
    assert!(
        summary[0]
            .text
            .starts_with("999 new dead letters (1000 waiting"),
        "{}",
        summary[0].text
    );
    assert!(
        m.observe(&with_dead(1000), t0 + Duration::from_secs(700))
            .is_empty(),
        "no news, no alert"
    );
    let resolved = m.observe(&with_dead(0), t0 + Duration::from_secs(701));
    assert_eq!(resolved.len(), 1);
    assert_eq!(resolved[0].status, AlertStatus::Resolved);
    assert!(
        m.observe(&with_dead(0), t0 + Duration::from_secs(702))
            .is_empty()
    );
}

#[test]
fn a_flapping_condition_respects_the_rate_limit() {
    let mut m = monitor(Some(10));
    let t0 = Instant::now();
    let over = ConsoleState {
        discrepancies_open: 12,
        ..Default::default()
    };
    let under = ConsoleState {
        discrepancies_open: 2,
        ..Default::default()
    };
    let a = m.observe(&over, t0);
    assert_eq!(a.len(), 1);
    assert_eq!(a[0].kind, AlertKind::Discrepancies);
    assert!(a[0].text.contains("12 open discrepancies"), "{}", a[0].text);
    assert_eq!(
        m.observe(&under, t0 + Duration::from_secs(10))[0].status,
        AlertStatus::Resolved
    );
    // Back over the threshold within the interval: muted, and so is its resolution.
    assert!(m.observe(&over, t0 + Duration::from_secs(20)).is_empty());
    assert!(m.observe(&under, t0 + Duration::from_secs(30)).is_empty());
    assert!(m.observe(&over, t0 + Duration::from_secs(40)).is_empty());
    // Still over once the interval has passed: one alert.
    assert_eq!(m.observe(&over, t0 + Duration::from_secs(301)).len(), 1);
}

#[test]
fn budget_and_reconnect_alerts_fire_and_resolve() {
    let mut m = monitor(None);
    let t0 = Instant::now();
    let mut s = ConsoleState::default();
    s.budget.forecast_exhausted_at = Some("16:40".into());
    s.budget.day_used = 4100;
    s.budget.day_limit = 5000;
    s.health = vec![
        HealthRow {
            system: "Magento".into(),
            ok: true,
            detail: "200 OK".into(),
            latency_ms: Some(20),
        },
        HealthRow {
            system: "Xero".into(),
            ok: false,
            detail: "invalid_grant: Reconnect Xero with tally auth".into(),
            latency_ms: None,
        },
    ];
    let mut kinds: Vec<AlertKind> = m.observe(&s, t0).into_iter().map(|a| a.kind).collect();
    kinds.sort_by_key(|k| format!("{k:?}"));
    assert_eq!(kinds, vec![AlertKind::XeroBudget, AlertKind::XeroReconnect]);
    // A Xero error that is not about reconnecting is not this alert.
    s.health[1].detail = "503 Service Unavailable".into();
    s.budget.forecast_exhausted_at = None;
    let resolved = m.observe(&s, t0 + Duration::from_secs(1));
    assert_eq!(resolved.len(), 2);
    assert!(resolved.iter().all(|a| a.status == AlertStatus::Resolved));
}

#[tokio::test]
async fn alerts_reach_the_webhook_and_the_command_hook_once_per_incident() {
    let received: Arc<Mutex<Vec<Value>>> = Arc::default();
    let sink = received.clone();
    let receiver = axum::Router::new().route(
        "/hook",
        post(move |Json(v): Json<Value>| {
            let sink = sink.clone();
            async move {
                sink.lock().push(v);
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook_url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, receiver).await });

    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("alerts.jsonl");
    let script = dir.path().join("alert-hook.sh");
    std::fs::write(&script, format!("#!/bin/sh\ncat >> '{}'\n", out.display())).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    let settings = Settings {
        daemon: DaemonConfig {
            listen: "127.0.0.1:0".into(),
            ..Default::default()
        },
        alerts: AlertsConfig {
            webhook_url: secret(&hook_url),
            command: Some(script),
            ..Default::default()
        },
    };
    let r = start(settings).await;
    for n in 1..=1000u64 {
        r.engine.state.send_modify(|s| {
            s.actors = vec![ActorRow {
                name: "payments".into(),
                dead: n,
                ..Default::default()
            }];
        });
        if n % 50 == 0 {
            tokio::task::yield_now().await;
        }
    }
    eventually("the firing alert", || !received.lock().is_empty()).await;
    // Give the monitor time to (wrongly) send more: several ticks of its 1 s re-check.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(received.lock().len(), 1, "{:?}", received.lock());
    let text = received.lock()[0]["text"].as_str().unwrap().to_owned();
    assert!(
        text.starts_with("[tally] ALERT Magento default ↔ Xero Test:"),
        "{text}"
    );
    assert!(text.contains("dead letter"), "{text}");

    r.engine.state.send_modify(|s| s.actors[0].dead = 0);
    eventually("the resolved message", || received.lock().len() == 2).await;
    assert!(
        received.lock()[1]["text"]
            .as_str()
            .unwrap()
            .contains("RESOLVED")
    );

    eventually("both alerts through the command hook", || {
        std::fs::read_to_string(&out)
            .map(|t| t.lines().count() == 2)
            .unwrap_or(false)
    })
    .await;
    let lines: Vec<Value> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["kind"], "dead_letters");
    assert_eq!(lines[0]["status"], "firing");
    assert_eq!(lines[1]["status"], "resolved");
}

#[tokio::test]
async fn a_dead_receiver_does_not_stop_the_daemon() {
    let settings = Settings {
        daemon: DaemonConfig {
            listen: "127.0.0.1:0".into(),
            ..Default::default()
        },
        alerts: AlertsConfig {
            // Nothing listens on port 9 of loopback (discard), and the hook does not exist.
            webhook_url: secret("http://127.0.0.1:9/hook"),
            command: Some("/nonexistent/tally-alert-hook".into()),
            ..Default::default()
        },
    };
    let r = start(settings).await;
    r.engine.state.send_modify(|s| {
        s.actors = vec![ActorRow {
            name: "x".into(),
            dead: 3,
            ..Default::default()
        }]
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        r.http
            .get(format!("{}/healthz", r.base))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        200
    );
}
