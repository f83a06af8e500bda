//! The control API: auth, state, the state stream, commands, reload, health and readiness.

mod daemon_support;

use std::time::Duration;

use daemon_support::*;
use serde_json::{Value, json};
use tally::daemon::client::ControlClient;
use tally::daemon::{Daemon, DaemonConfig, Readiness, Settings};
use tally_tui::ConsoleCommand;
use tally_tui::state::ActorRow;
use tokio::sync::watch;

const TOKEN: &str = "ctl-token-4f9a2c";

fn with_token() -> Settings {
    Settings {
        daemon: DaemonConfig {
            listen: "127.0.0.1:0".into(),
            token: secret(TOKEN),
            ..Default::default()
        },
        ..Default::default()
    }
}

#[tokio::test]
async fn api_requires_the_configured_token() {
    let r = start(with_token()).await;
    let url = format!("{}/api/v1/state", r.base);
    assert_eq!(
        r.http.get(&url).send().await.unwrap().status().as_u16(),
        401
    );
    assert_eq!(
        r.http
            .get(&url)
            .bearer_auth("wrong")
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        401
    );
    assert_eq!(
        r.http
            .get(&url)
            .header("authorization", TOKEN)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        401
    );
    let ok = r.http.get(&url).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(ok.status().as_u16(), 200);
    let state: Value = ok.json().await.unwrap();
    assert_eq!(state["link"], "Magento default ↔ Xero Test");
    for path in [
        "/api/v1/reload",
        "/api/v1/reconcile",
        "/api/v1/discrepancies/total:order:1/acknowledge",
        "/api/v1/discrepancies/total:order:1/fix",
    ] {
        assert_eq!(
            r.http
                .post(format!("{}{path}", r.base))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16(),
            401,
            "{path}"
        );
    }
    assert_eq!(
        r.http
            .get(format!("{}/metrics", r.base))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        401
    );
    // Liveness and readiness stay open for load balancers and systemd.
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
    assert_eq!(
        r.http
            .get(format!("{}/readyz", r.base))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        200
    );
    assert!(
        r.engine.commands.lock().is_empty(),
        "nothing reached the engine without the token"
    );
    assert_eq!(
        r.engine.reloads.load(std::sync::atomic::Ordering::SeqCst),
        0
    );
}

#[tokio::test]
async fn loopback_without_token_is_open() {
    let r = start(loopback_settings()).await;
    assert_eq!(
        r.http
            .get(format!("{}/api/v1/state", r.base))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        200
    );
}

#[tokio::test]
async fn public_address_without_token_is_refused_at_startup() {
    let engine = std::sync::Arc::new(FakeEngine::default());
    let s = Settings {
        daemon: DaemonConfig {
            listen: "0.0.0.0:0".into(),
            ..Default::default()
        },
        ..Default::default()
    };
    let err = Daemon::start(s.clone(), engine.clone(), None)
        .await
        .err()
        .expect("refused")
        .to_string();
    assert!(err.contains("[daemon] token"), "{err}");
    let err = Daemon::start(loopback_settings(), engine.clone(), Some("0.0.0.0:0"))
        .await
        .err()
        .expect("refused by --listen");
    assert!(err.to_string().contains("not a loopback"), "{err}");
    let err = Daemon::start(loopback_settings(), engine, Some("127.0.0.1"))
        .await
        .err()
        .expect("unparsable");
    assert!(err.to_string().contains("[daemon] listen"), "{err}");
}

#[tokio::test]
async fn commands_reload_and_reconcile_are_forwarded() {
    let r = start(with_token()).await;
    let client = ControlClient::new(&r.base, secret(TOKEN)).unwrap();
    let reply = client
        .command(&ConsoleCommand::Retry("order:000000123".into()))
        .await
        .unwrap();
    assert!(reply.ok, "{reply:?}");
    let refused = client
        .command(&ConsoleCommand::Drop("order:missing".into()))
        .await
        .unwrap();
    assert!(!refused.ok);
    assert_eq!(refused.message, "no dead letter order:missing");

    let res = r
        .http
        .post(format!("{}/api/v1/reconcile", r.base))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(res.json::<Value>().await.unwrap()["ok"], true);
    // A raw JSON command, as a script would send it.
    let res = r
        .http
        .post(format!("{}/api/v1/commands", r.base))
        .bearer_auth(TOKEN)
        .json(&json!({"command": "pause", "arg": "invoices"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    // A discrepancy acknowledged (with a reason, and without a body) and fixed by its own
    // URL, as a ticketing system would.
    for (action, body) in [
        (
            "acknowledge",
            Some(json!({"note": "refund agreed by phone"})),
        ),
        ("acknowledge", None),
        ("fix", None),
    ] {
        let mut req = r
            .http
            .post(format!(
                "{}/api/v1/discrepancies/cancelled:order:000000007/{action}",
                r.base
            ))
            .bearer_auth(TOKEN);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let res = req.send().await.unwrap();
        assert_eq!(res.status().as_u16(), 200, "{action}");
    }
    assert_eq!(
        *r.engine.commands.lock(),
        vec![
            ConsoleCommand::Retry("order:000000123".into()),
            ConsoleCommand::Drop("order:missing".into()),
            ConsoleCommand::ReconcileNow,
            ConsoleCommand::Pause("invoices".into()),
            ConsoleCommand::Acknowledge {
                key: "cancelled:order:000000007".into(),
                note: Some("refund agreed by phone".into()),
            },
            ConsoleCommand::Acknowledge {
                key: "cancelled:order:000000007".into(),
                note: None,
            },
            ConsoleCommand::FixDiscrepancy("cancelled:order:000000007".into()),
        ]
    );

    let reply = client.reload().await.unwrap();
    assert_eq!(
        (reply.ok, reply.message.as_str()),
        (true, "mapping reloaded: 3 rules")
    );
    *r.engine.reload_result.lock() =
        Err("[mapping] account_rules[1]: account 999 does not exist".into());
    let reply = client.reload().await.unwrap();
    assert!(!reply.ok);
    assert!(reply.message.contains("account 999"));
}

#[tokio::test]
async fn readyz_lists_failing_checks_with_503() {
    let r = start(loopback_settings()).await;
    *r.engine.readiness.lock() = Readiness {
        ready: false,
        checks: vec![
            ("ledger".into(), true, "open".into()),
            ("xero".into(), false, "401 reconnect needed".into()),
        ],
    };
    let res = r
        .http
        .get(format!("{}/readyz", r.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 503);
    let body: Value = res.json().await.unwrap();
    assert_eq!(
        body,
        json!({"ready": false, "checks": [{"name": "xero", "ok": false, "detail": "401 reconnect needed"}]})
    );
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

#[tokio::test]
async fn state_stream_delivers_changes() {
    let r = start(with_token()).await;
    let client = ControlClient::new(&r.daemon.local_addr().to_string(), secret(TOKEN)).unwrap();
    let (tx, mut rx) = watch::channel(Default::default());
    let follower = tokio::spawn(async move { client.follow_state(&tx, || {}).await });
    rx.changed().await.unwrap();
    assert_eq!(rx.borrow_and_update().link, "Magento default ↔ Xero Test");

    r.engine.state.send_modify(|s| {
        s.actors.push(ActorRow {
            name: "invoices".into(),
            queued: 17,
            ..Default::default()
        });
    });
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            rx.changed().await.unwrap();
            if rx
                .borrow_and_update()
                .actors
                .first()
                .is_some_and(|a| a.queued == 17)
            {
                break;
            }
        }
    })
    .await
    .expect("the update arrives on the stream");
    follower.abort();
}

#[tokio::test]
async fn state_stream_is_throttled() {
    use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
    let r = start(loopback_settings()).await;
    let client = ControlClient::new(&r.base, None).unwrap();
    let (tx, mut rx) = watch::channel(tally_tui::ConsoleState::default());
    let seen = std::sync::Arc::new(AtomicUsize::new(0));
    let last = std::sync::Arc::new(AtomicU64::new(0));
    let (counter, latest) = (seen.clone(), last.clone());
    let counting = tokio::spawn(async move {
        while rx.changed().await.is_ok() {
            counter.fetch_add(1, Ordering::SeqCst);
            latest.store(rx.borrow_and_update().discrepancies_open, Ordering::SeqCst);
        }
    });
    let follower = tokio::spawn(async move { client.follow_state(&tx, || {}).await });
    eventually("first snapshot", || seen.load(Ordering::SeqCst) >= 1).await;
    // 60 changes, 10 ms apart: unthrottled that is ~60 events; at ≤ 10/s it is ~7.
    let started = std::time::Instant::now();
    for n in 1..=60u64 {
        r.engine.state.send_modify(|s| s.discrepancies_open = n);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    eventually("the last change arrives", || {
        last.load(Ordering::SeqCst) == 60
    })
    .await;
    let elapsed = started.elapsed();
    let events = seen.load(Ordering::SeqCst);
    let bound = 2 + (elapsed.as_millis() / 100) as usize;
    assert!(
        events <= bound,
        "{events} events in {elapsed:?} (bound {bound})"
    );
    assert!(events < 30, "{events} events for 60 changes");
    follower.abort();
    counting.abort();
}
