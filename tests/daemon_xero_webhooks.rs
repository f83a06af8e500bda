//! `POST /webhooks/xero`: signatures, intent to receive, de-duplication, ordering, body limits.

mod daemon_support;

use std::time::{Duration, Instant};

use daemon_support::*;
use secrecy::SecretString;
use serde_json::json;
use tally::daemon::signature::sign_xero;
use tally::daemon::{DaemonConfig, Settings};

const KEY: &str = "xero-webhook-key-Jf8s9d";

fn settings() -> Settings {
    Settings {
        daemon: DaemonConfig {
            listen: "127.0.0.1:0".into(),
            xero_webhook_key: secret(KEY),
            ..Default::default()
        },
        ..Default::default()
    }
}

fn key() -> SecretString {
    SecretString::from(KEY.to_owned())
}

fn event(id: &str, kind: &str, at: &str) -> serde_json::Value {
    json!({
        "resourceUrl": format!("https://api.xero.com/api.xro/2.0/Invoices/{id}"),
        "resourceId": id,
        "eventDateUtc": at,
        "eventType": kind,
        "eventCategory": "INVOICE",
        "tenantId": "c2cc9b6e-9458-4c7d-93cc-f02b81b0594f",
        "tenantType": "ORGANISATION"
    })
}

fn delivery(events: Vec<serde_json::Value>) -> Vec<u8> {
    serde_json::to_vec(&json!({"events": events, "firstEventSequence": 1, "lastEventSequence": 1, "entropy": "S0m3r4Nd0mt3xt"}))
        .unwrap()
}

fn intent_to_receive() -> Vec<u8> {
    br#"{"events":[],"firstEventSequence":0,"lastEventSequence":0,"entropy":"YSXPYJNZNLSBSCZRGSXT"}"#.to_vec()
}

async fn post(r: &Running, body: Vec<u8>, sig: Option<String>) -> (u16, String) {
    let mut rb = r
        .http
        .post(format!("{}/webhooks/xero", r.base))
        .header("content-type", "application/json")
        .body(body);
    if let Some(s) = sig {
        rb = rb.header("x-xero-signature", s);
    }
    let res = rb.send().await.unwrap();
    let status = res.status().as_u16();
    assert!(
        res.headers().get("set-cookie").is_none(),
        "Xero wants no cookies"
    );
    (status, res.text().await.unwrap())
}

#[tokio::test]
async fn signature_good_bad_empty_tampered_and_missing() {
    let r = start(settings()).await;
    let body = delivery(vec![event("inv-1", "CREATE", "2026-01-01T10:00:00.000")]);
    let good = sign_xero(&key(), &body);

    assert_eq!(
        post(&r, body.clone(), Some(good.clone())).await,
        (200, String::new())
    );
    assert_eq!(
        post(
            &r,
            body.clone(),
            Some(sign_xero(&SecretString::from("wrong".to_owned()), &body))
        )
        .await,
        (401, String::new())
    );
    assert_eq!(
        post(&r, body.clone(), Some(String::new())).await,
        (401, String::new())
    );
    let mut tampered = body.clone();
    let pos = tampered.windows(5).position(|w| w == b"inv-1").unwrap();
    tampered[pos + 4] = b'2';
    assert_eq!(post(&r, tampered, Some(good)).await, (401, String::new()));
    assert_eq!(post(&r, body, None).await, (401, String::new()));

    eventually("the one good event reaches the engine", || {
        r.engine.xero_events.lock().len() == 1
    })
    .await;
    assert_eq!(r.engine.xero_events.lock()[0].resource_id, "inv-1");
}

#[tokio::test]
async fn intent_to_receive_sequence_answers_fast_even_when_the_engine_is_slow() {
    let engine = FakeEngine::default();
    *engine.xero_delay.lock() = Duration::from_secs(30);
    let r = start_with(settings(), engine).await;
    // A real event first, so the engine is busy for 30 s while the probes arrive.
    let busy = delivery(vec![event("inv-9", "UPDATE", "2026-01-01T10:00:00.000")]);
    let started = Instant::now();
    assert_eq!(
        post(&r, busy.clone(), Some(sign_xero(&key(), &busy)))
            .await
            .0,
        200
    );
    let itr = intent_to_receive();
    for round in 0..3 {
        assert_eq!(
            post(&r, itr.clone(), Some(sign_xero(&key(), &itr))).await,
            (200, String::new()),
            "round {round}"
        );
        let bad = sign_xero(&SecretString::from("not-the-key".to_owned()), &itr);
        assert_eq!(
            post(&r, itr.clone(), Some(bad)).await,
            (401, String::new()),
            "round {round}"
        );
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "answered in {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn duplicate_deliveries_reach_the_engine_once_and_reordered_ones_both_arrive() {
    let r = start(settings()).await;
    let first = event("inv-1", "UPDATE", "2026-01-01T10:00:00.000");
    let second = event("inv-1", "UPDATE", "2026-01-01T10:05:00.000");
    // Xero retries the same delivery; one delivery may also repeat an event.
    let dup = delivery(vec![first.clone(), first.clone()]);
    for _ in 0..3 {
        assert_eq!(
            post(&r, dup.clone(), Some(sign_xero(&key(), &dup))).await.0,
            200
        );
    }
    // The later change arrives before… then the earlier one again, and a new one after it.
    let later = delivery(vec![second.clone()]);
    assert_eq!(
        post(&r, later.clone(), Some(sign_xero(&key(), &later)))
            .await
            .0,
        200
    );
    let contact = json!({"resourceId": "c-1", "resourceUrl": "", "tenantId": "t", "eventCategory": "CONTACT",
        "eventType": "CREATE", "eventDateUtc": "2026-01-01T09:00:00.000"});
    let earlier = delivery(vec![contact, first]);
    assert_eq!(
        post(&r, earlier.clone(), Some(sign_xero(&key(), &earlier)))
            .await
            .0,
        200
    );

    eventually("three distinct events", || {
        r.engine.xero_events.lock().len() == 3
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let got: Vec<(String, String)> = r
        .engine
        .xero_events
        .lock()
        .iter()
        .map(|e| (e.resource_id.clone(), e.event_date_utc.clone()))
        .collect();
    assert_eq!(
        got,
        vec![
            ("inv-1".into(), "2026-01-01T10:00:00.000".into()),
            ("inv-1".into(), "2026-01-01T10:05:00.000".into()),
            ("c-1".into(), "2026-01-01T09:00:00.000".into()),
        ]
    );
}

#[tokio::test]
async fn oversized_bodies_are_refused_with_413() {
    let mut s = settings();
    s.daemon.max_body_bytes = 4096;
    let r = start(s).await;
    let big = vec![b' '; 64 * 1024];
    let sig = sign_xero(&key(), &big);
    assert_eq!(post(&r, big.clone(), Some(sig.clone())).await.0, 413);
    // Chunked (no Content-Length): refused once the limit is crossed, without reading it all.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut conn = tokio::net::TcpStream::connect(r.daemon.local_addr())
        .await
        .unwrap();
    let head = format!(
        "POST /webhooks/xero HTTP/1.1\r\nhost: x\r\nx-xero-signature: {sig}\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n"
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    for _ in 0..8 {
        // The server may stop reading (and close) once it has answered; that is the point.
        if conn
            .write_all(format!("400\r\n{}\r\n", " ".repeat(1024)).as_bytes())
            .await
            .is_err()
        {
            break;
        }
    }
    let _ = conn.write_all(b"0\r\n\r\n").await;
    let mut answer = Vec::new();
    let _ = conn.read_to_end(&mut answer).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(r.engine.xero_events.lock().is_empty());
}

#[tokio::test]
async fn unconfigured_key_means_no_xero_webhooks() {
    let r = start(loopback_settings()).await;
    let itr = intent_to_receive();
    assert_eq!(
        post(&r, itr.clone(), Some(sign_xero(&key(), &itr))).await.0,
        404
    );
}
