//! Secrets never reach the logs: drive every path that logs (bad signatures, wrong tokens, an
//! open API warning, failing alert deliveries, shutdown) and grep what was written.

mod daemon_support;

use std::io::Write;
use std::sync::Arc;

use daemon_support::*;
use parking_lot::Mutex;
use tally::daemon::{AlertsConfig, DaemonConfig, Settings};
use tally_tui::state::ActorRow;

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

const TOKEN: &str = "tok-SECRET-1f2e3d";
const XERO_KEY: &str = "xero-SECRET-key-9a8b";
const MAGENTO_SECRET: &str = "magento-SECRET-7c6d";
const HOOK: &str = "http://127.0.0.1:9/services/T000/B000/hook-SECRET-5e4f";

// Single-threaded runtime: every daemon task logs through this thread's subscriber.
#[tokio::test(flavor = "current_thread")]
async fn nothing_secret_is_logged() {
    let capture = Capture::default();
    let sink = capture.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || sink.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let s = Settings {
        daemon: DaemonConfig {
            listen: "127.0.0.1:0".into(),
            token: secret(TOKEN),
            xero_webhook_key: secret(XERO_KEY),
            magento_webhook_secret: secret(MAGENTO_SECRET),
            shutdown_grace_secs: 1,
            ..Default::default()
        },
        alerts: AlertsConfig {
            webhook_url: secret(HOOK),
            ..Default::default()
        },
    };
    let r = start(s).await;
    let body = b"{\"events\":[]}".to_vec();
    r.http
        .post(format!("{}/webhooks/xero", r.base))
        .header("x-xero-signature", "AAAA")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    r.http
        .post(format!("{}/webhooks/magento", r.base))
        .header("x-tally-signature", "00")
        .body(body)
        .send()
        .await
        .unwrap();
    r.http
        .get(format!("{}/api/v1/state", r.base))
        .bearer_auth("wrong")
        .send()
        .await
        .unwrap();
    r.engine.state.send_modify(|s| {
        s.actors = vec![ActorRow {
            name: "x".into(),
            dead: 1,
            ..Default::default()
        }]
    });
    // The alert delivery fails (nothing listens on port 9); wait until that was logged.
    eventually("alert delivery failure logged", || {
        String::from_utf8_lossy(&capture.0.lock()).contains("Alert webhook unreachable")
    })
    .await;
    r.daemon.trigger().cancel();
    r.engine.release_shutdown.notify_one();
    r.daemon.wait().await;

    let logs = String::from_utf8_lossy(&capture.0.lock()).into_owned();
    assert!(logs.contains("Daemon listening"), "{logs}");
    assert!(
        !logs.contains("SECRET"),
        "a secret leaked into the logs:\n{logs}"
    );
}
