//! A fake engine and helpers shared by the daemon tests.
#![allow(dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use parking_lot::Mutex;
use secrecy::SecretString;
use tally::daemon::{
    Daemon, DaemonConfig, DaemonEngine, MagentoChange, Readiness, Settings, XeroEvent,
};
use tally_tui::{ConsoleCommand, ConsoleState};
use tokio::sync::{Notify, watch};

pub struct FakeEngine {
    pub state: watch::Sender<ConsoleState>,
    pub xero_events: Mutex<Vec<XeroEvent>>,
    pub magento_changes: Mutex<Vec<MagentoChange>>,
    pub commands: Mutex<Vec<ConsoleCommand>>,
    pub reloads: AtomicUsize,
    pub reload_result: Mutex<Result<String, String>>,
    pub readiness: Mutex<Readiness>,
    /// How long each `xero_event` takes (a slow Xero re-fetch).
    pub xero_delay: Mutex<Duration>,
    pub shutdown_called: AtomicBool,
    /// `shutdown()` waits for this; never released = an engine that hangs.
    pub release_shutdown: Notify,
    pub shutdown_hangs: AtomicBool,
}

impl Default for FakeEngine {
    fn default() -> Self {
        Self {
            state: watch::channel(ConsoleState {
                link: "Magento default ↔ Xero Test".into(),
                ..Default::default()
            })
            .0,
            xero_events: Mutex::default(),
            magento_changes: Mutex::default(),
            commands: Mutex::default(),
            reloads: AtomicUsize::new(0),
            reload_result: Mutex::new(Ok("mapping reloaded: 3 rules".into())),
            readiness: Mutex::new(Readiness {
                ready: true,
                checks: vec![("ledger".into(), true, "open".into())],
            }),
            xero_delay: Mutex::new(Duration::ZERO),
            shutdown_called: AtomicBool::new(false),
            release_shutdown: Notify::new(),
            shutdown_hangs: AtomicBool::new(false),
        }
    }
}

impl DaemonEngine for FakeEngine {
    fn state(&self) -> watch::Receiver<ConsoleState> {
        self.state.subscribe()
    }

    fn command(&self, cmd: ConsoleCommand) -> BoxFuture<'_, Result<String, String>> {
        async move {
            let reply = match &cmd {
                ConsoleCommand::Drop(k) if k == "order:missing" => {
                    Err(format!("no dead letter {k}"))
                }
                other => Ok(format!("done: {other:?}")),
            };
            self.commands.lock().push(cmd);
            reply
        }
        .boxed()
    }

    fn magento_order_changed(&self, change: MagentoChange) -> BoxFuture<'_, Result<(), String>> {
        async move {
            self.magento_changes.lock().push(change);
            Ok(())
        }
        .boxed()
    }

    fn xero_event(&self, event: XeroEvent) -> BoxFuture<'_, Result<(), String>> {
        async move {
            let delay = *self.xero_delay.lock();
            tokio::time::sleep(delay).await;
            self.xero_events.lock().push(event);
            Ok(())
        }
        .boxed()
    }

    fn reload(&self) -> BoxFuture<'_, Result<String, String>> {
        async move {
            self.reloads.fetch_add(1, Ordering::SeqCst);
            self.reload_result.lock().clone()
        }
        .boxed()
    }

    fn ready(&self) -> Readiness {
        self.readiness.lock().clone()
    }

    fn shutdown(&self) -> BoxFuture<'_, ()> {
        async move {
            self.shutdown_called.store(true, Ordering::SeqCst);
            if self.shutdown_hangs.load(Ordering::SeqCst) {
                futures::future::pending::<()>().await;
            }
            self.release_shutdown.notified().await;
        }
        .boxed()
    }
}

pub fn secret(s: &str) -> Option<SecretString> {
    Some(SecretString::from(s.to_owned()))
}

pub fn loopback_settings() -> Settings {
    Settings {
        daemon: DaemonConfig {
            listen: "127.0.0.1:0".into(),
            ..Default::default()
        },
        ..Default::default()
    }
}

pub struct Running {
    pub daemon: Daemon,
    pub engine: Arc<FakeEngine>,
    pub base: String,
    pub http: reqwest::Client,
}

pub async fn start_with(settings: Settings, engine: FakeEngine) -> Running {
    let engine = Arc::new(engine);
    let daemon = Daemon::start(settings, engine.clone(), None)
        .await
        .expect("daemon starts");
    let base = format!("http://{}", daemon.local_addr());
    Running {
        daemon,
        engine,
        base,
        http: reqwest::Client::new(),
    }
}

pub async fn start(settings: Settings) -> Running {
    start_with(settings, FakeEngine::default()).await
}

/// Polls `cond` every 10 ms for up to 10 s: long enough never to flake on a loaded machine,
/// and the tests that need a bound on time measure it separately.
pub async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
