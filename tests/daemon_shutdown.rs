//! Graceful shutdown: webhooks refused while the engine stops, the engine's shutdown awaited,
//! and the grace period honoured even when the engine hangs.

mod daemon_support;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use daemon_support::*;
use tally::daemon::signature::sign_xero;
use tally::daemon::{DaemonConfig, Settings};

fn settings(grace_secs: u64) -> Settings {
    Settings {
        daemon: DaemonConfig {
            listen: "127.0.0.1:0".into(),
            xero_webhook_key: secret("k"),
            shutdown_grace_secs: grace_secs,
            ..Default::default()
        },
        ..Default::default()
    }
}

#[tokio::test]
async fn webhooks_get_503_while_the_engine_shuts_down_and_its_shutdown_is_awaited() {
    let r = start(settings(30)).await;
    let body =
        br#"{"events":[],"firstEventSequence":0,"lastEventSequence":0,"entropy":"E"}"#.to_vec();
    let sig = sign_xero(&secrecy::SecretString::from("k".to_owned()), &body);
    let post = || {
        r.http
            .post(format!("{}/webhooks/xero", r.base))
            .header("x-xero-signature", sig.clone())
            .body(body.clone())
            .send()
    };
    assert_eq!(post().await.unwrap().status().as_u16(), 200);

    r.daemon.trigger().cancel();
    eventually("engine.shutdown() called", || {
        r.engine.shutdown_called.load(Ordering::SeqCst)
    })
    .await;
    assert_eq!(post().await.unwrap().status().as_u16(), 503);
    assert_eq!(
        r.http
            .get(format!("{}/readyz", r.base))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        503
    );

    r.engine.release_shutdown.notify_one();
    let Running {
        daemon, base, http, ..
    } = r;
    let report = tokio::time::timeout(Duration::from_secs(10), daemon.wait())
        .await
        .expect("stops once the engine is done");
    assert!(report.engine_finished, "{report:?}");
    assert!(report.server_drained, "{report:?}");
    assert!(
        http.get(format!("{base}/healthz")).send().await.is_err(),
        "listener closed"
    );
}

#[tokio::test]
async fn a_hung_engine_does_not_hold_the_process_past_the_grace_period() {
    let engine = FakeEngine::default();
    engine.shutdown_hangs.store(true, Ordering::SeqCst);
    let r = start_with(settings(1), engine).await;
    // An attached console's stream must not keep the listener open either.
    let stream = r
        .http
        .get(format!("{}/api/v1/state/stream", r.base))
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status().as_u16(), 200);

    let started = Instant::now();
    r.daemon.trigger().cancel();
    let report = r.daemon.wait().await;
    let took = started.elapsed();
    assert!(!report.engine_finished, "{report:?}");
    assert!(r.engine.shutdown_called.load(Ordering::SeqCst));
    // Grace is 1 s; the bound leaves room for a loaded machine but not for waiting on the engine.
    assert!(took < Duration::from_secs(3), "took {took:?}");
    assert!(report.elapsed < Duration::from_secs(2), "{report:?}");
}

#[tokio::test]
async fn events_queued_before_shutdown_still_reach_the_engine() {
    let r = start(settings(10)).await;
    let key = secrecy::SecretString::from("k".to_owned());
    for i in 0..20 {
        let body = serde_json::to_vec(&serde_json::json!({"events": [{
            "resourceId": format!("inv-{i}"), "resourceUrl": "", "tenantId": "t",
            "eventCategory": "INVOICE", "eventType": "UPDATE", "eventDateUtc": "2026-01-01T00:00:00"
        }]}))
        .unwrap();
        let sig = sign_xero(&key, &body);
        let res = r
            .http
            .post(format!("{}/webhooks/xero", r.base))
            .header("x-xero-signature", sig)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16(), 200);
    }
    r.daemon.trigger().cancel();
    r.engine.release_shutdown.notify_one();
    let report = r.daemon.wait().await;
    assert_eq!(report.undelivered_events, 0);
    assert_eq!(r.engine.xero_events.lock().len(), 20);
}
