//! One listener serving webhooks, the control API, health and metrics, and the order in which a
//! daemon stops.
//!
//! Stopping (SIGTERM/SIGINT or [`Daemon::trigger`]): webhooks answer 503 at once (senders retry),
//! queued webhook events are still handed to the engine, `engine.shutdown()` is awaited, then the
//! listener closes. The whole sequence is bounded by `shutdown_grace_secs`, so a hung engine
//! delays exit but never prevents it; what was left behind is logged and returned.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use parking_lot::Mutex;
use serde::Serialize;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tower_http::limit::RequestBodyLimitLayer;

use crate::daemon::alerts;
use crate::daemon::config::{AlertsConfig, ConfigError, DaemonConfig};
use crate::daemon::control;
use crate::daemon::dedup::RecentSet;
use crate::daemon::engine::{DaemonEngine, MagentoChange, XeroEvent};
use crate::daemon::intake::Intake;
use crate::daemon::metrics;
use crate::daemon::signature::RsaVerifier;
use crate::daemon::webhooks::{self, XeroDedupKey};

/// The `[daemon]` and `[alerts]` tables together.
#[derive(Clone, Debug, Default)]
pub struct Settings {
    pub daemon: DaemonConfig,
    pub alerts: AlertsConfig,
}

impl Settings {
    pub fn from_raw(raw: &crate::config::RawConfig) -> anyhow::Result<Self> {
        Ok(Self {
            daemon: raw.table_or_default("daemon")?,
            alerts: raw.table_or_default("alerts")?,
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub engine: Arc<dyn DaemonEngine>,
    pub settings: Arc<Settings>,
    pub magento_rsa: Option<Arc<RsaVerifier>>,
    pub xero_seen: Arc<Mutex<RecentSet<XeroDedupKey>>>,
    pub xero_intake: Intake<XeroEvent>,
    pub magento_intake: Intake<MagentoChange>,
    /// Set when shutdown begins: webhooks answer 503 and `/readyz` fails.
    pub draining: Arc<AtomicBool>,
    /// Fired when the listener is about to close; ends the state streams.
    pub stopping: CancellationToken,
    pub warned_open_api: Arc<AtomicBool>,
}

impl AppState {
    pub fn draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }
}

/// What a shutdown achieved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShutdownReport {
    /// `engine.shutdown()` resolved within the grace period.
    pub engine_finished: bool,
    /// Webhook events accepted but not handed to the engine when the daemon gave up waiting.
    pub undelivered_events: usize,
    /// The listener closed by itself (connections drained) rather than being cut.
    pub server_drained: bool,
    pub elapsed: Duration,
}

/// A running daemon.
pub struct Daemon {
    addr: SocketAddr,
    trigger: CancellationToken,
    task: JoinHandle<ShutdownReport>,
}

impl Daemon {
    /// Validates the settings, binds, and starts serving, following the engine's state for
    /// metrics and alerts. `listen` (from `--listen`) overrides `[daemon] listen`.
    pub async fn start(
        settings: Settings,
        engine: Arc<dyn DaemonEngine>,
        listen: Option<&str>,
    ) -> Result<Self, DaemonError> {
        let addr = settings.daemon.validate(listen)?;
        let magento_rsa = match &settings.daemon.magento_webhook_public_key {
            Some(pem) => Some(Arc::new(RsaVerifier::from_pem(pem)?)),
            None => None,
        };
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| DaemonError::Bind { addr, source })?;
        let addr = listener
            .local_addr()
            .map_err(|source| DaemonError::Bind { addr, source })?;
        let prom = metrics::prometheus();

        let trigger = CancellationToken::new();
        let intake_stop = CancellationToken::new();
        let stopping = CancellationToken::new();
        let followers_stop = CancellationToken::new();

        let e = engine.clone();
        let (xero_intake, xero_worker) =
            Intake::spawn("xero", intake_stop.clone(), move |ev: XeroEvent| {
                let e = e.clone();
                async move { e.xero_event(ev).await }
            });
        let e = engine.clone();
        let (magento_intake, magento_worker) =
            Intake::spawn("magento", intake_stop.clone(), move |c: MagentoChange| {
                let e = e.clone();
                async move { e.magento_order_changed(c).await }
            });

        let settings = Arc::new(settings);
        let app = AppState {
            engine: engine.clone(),
            settings: settings.clone(),
            magento_rsa,
            xero_seen: Arc::new(Mutex::new(webhooks::new_xero_dedup())),
            xero_intake: xero_intake.clone(),
            magento_intake: magento_intake.clone(),
            draining: Arc::new(AtomicBool::new(false)),
            stopping: stopping.clone(),
            warned_open_api: Arc::new(AtomicBool::new(false)),
        };
        let router = router(app.clone(), prom.clone());

        let followers = vec![
            tokio::spawn(follow_metrics(engine.state(), prom, followers_stop.clone())),
            tokio::spawn(alerts::follow(
                engine.state(),
                settings.alerts.clone(),
                followers_stop.clone(),
            )),
        ];

        let server_stop = stopping.clone();
        let mut server = tokio::spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(server_stop.cancelled_owned())
                .await
        });
        tracing::info!(%addr, "Daemon listening.");

        let grace = settings.daemon.shutdown_grace();
        let trig = trigger.clone();
        let task = tokio::spawn(async move {
            tokio::select! {
                () = trig.cancelled() => {}
                res = &mut server => {
                    tracing::error!(result = ?res.map(|r| r.map_err(|e| e.to_string())), "Listener stopped on its own; shutting down.");
                }
            }
            let started = Instant::now();
            let deadline = started + grace;
            tracing::info!(
                grace_secs = grace.as_secs(),
                "Shutting down: webhooks now answer 503."
            );
            app.draining.store(true, Ordering::Release);

            intake_stop.cancel();
            let drain_by = started + grace / 2;
            let workers = async {
                let _ = xero_worker.await;
                let _ = magento_worker.await;
            };
            if tokio::time::timeout_at(drain_by, workers).await.is_err() {
                tracing::warn!(
                    "Webhook queues not drained in time; the engine's polling will pick those changes up."
                );
            }
            let margin = (grace / 5).min(Duration::from_secs(1));
            let engine_finished = tokio::time::timeout_at(deadline - margin, engine.shutdown())
                .await
                .is_ok();
            if !engine_finished {
                tracing::error!(
                    "Engine did not finish shutting down within the grace period; exiting anyway."
                );
            }
            followers_stop.cancel();
            stopping.cancel();
            let server_drained = matches!(
                tokio::time::timeout_at(deadline, &mut server).await,
                Ok(Ok(Ok(())))
            );
            if !server_drained {
                server.abort();
            }
            for f in followers {
                f.abort();
            }
            let undelivered_events = xero_intake.pending() + magento_intake.pending();
            if undelivered_events > 0 {
                tracing::warn!(
                    undelivered_events,
                    "Webhook events left undelivered at exit."
                );
            }
            let report = ShutdownReport {
                engine_finished,
                undelivered_events,
                server_drained,
                elapsed: started.elapsed(),
            };
            tracing::info!(?report, "Daemon stopped.");
            report
        });
        Ok(Self {
            addr,
            trigger,
            task,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// A handle that starts the shutdown sequence when cancelled (what SIGTERM does).
    pub fn trigger(&self) -> CancellationToken {
        self.trigger.clone()
    }

    /// Waits for the daemon to stop (after [`Self::trigger`] or a listener failure).
    pub async fn wait(self) -> ShutdownReport {
        match self.task.await {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "Shutdown task failed.");
                ShutdownReport {
                    engine_finished: false,
                    undelivered_events: 0,
                    server_drained: false,
                    elapsed: Duration::ZERO,
                }
            }
        }
    }
}

fn router(app: AppState, prom: metrics_exporter_prometheus::PrometheusHandle) -> Router {
    let limit = app.settings.daemon.max_body_bytes;
    let webhook = |source: &'static str, handler: axum::routing::MethodRouter<AppState>| {
        handler
            .layer(RequestBodyLimitLayer::new(limit))
            .layer(axum::middleware::map_response(
                move |res: Response| async move {
                    webhooks::count(source, &res);
                    res
                },
            ))
    };
    let api = Router::new()
        .route("/state", get(control::state))
        .route("/state/stream", get(control::state_stream))
        .route("/commands", post(control::command))
        .route("/reload", post(control::reload))
        .route("/reconcile", post(control::reconcile))
        .route("/discrepancies", get(control::discrepancies))
        .route("/discrepancies/history", get(control::discrepancy_history))
        .route(
            "/discrepancies/{key}/acknowledge",
            post(control::acknowledge_discrepancy),
        )
        .route("/discrepancies/{key}/fix", post(control::fix_discrepancy))
        .layer(RequestBodyLimitLayer::new(limit))
        .route_layer(axum::middleware::from_fn_with_state(
            app.clone(),
            control::require_token,
        ));
    let metrics_route = Router::new()
        .route(
            "/metrics",
            get(move || async move { render_metrics(&prom) }),
        )
        .route_layer(axum::middleware::from_fn_with_state(
            app.clone(),
            control::require_token,
        ));
    Router::new()
        .route("/webhooks/xero", webhook("xero", post(webhooks::xero)))
        .route(
            "/webhooks/magento",
            webhook("magento", post(webhooks::magento)),
        )
        .nest("/api/v1", api)
        .merge(metrics_route)
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        // The limit layers above answer 413 from Content-Length before reading; axum's own
        // 2 MiB default would otherwise override a larger configured limit.
        .layer(DefaultBodyLimit::disable())
        .with_state(app)
}

fn render_metrics(prom: &metrics_exporter_prometheus::PrometheusHandle) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        prom.render(),
    )
        .into_response()
}

#[derive(Serialize)]
struct ReadyBody {
    ready: bool,
    /// Only the failing checks when not ready, every check when ready.
    checks: Vec<Check>,
}

#[derive(Serialize)]
struct Check {
    name: String,
    ok: bool,
    detail: String,
}

async fn readyz(State(app): State<AppState>) -> Response {
    if app.draining() {
        let body = ReadyBody {
            ready: false,
            checks: vec![Check {
                name: "daemon".into(),
                ok: false,
                detail: "shutting down".into(),
            }],
        };
        return (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response();
    }
    let r = app.engine.ready();
    let checks = r
        .checks
        .into_iter()
        .filter(|(_, ok, _)| r.ready || !ok)
        .map(|(name, ok, detail)| Check { name, ok, detail })
        .collect();
    let status = if r.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        axum::Json(ReadyBody {
            ready: r.ready,
            checks,
        }),
    )
        .into_response()
}

/// Keeps the gauges current and runs the exporter's upkeep (histogram maintenance).
async fn follow_metrics(
    mut rx: tokio::sync::watch::Receiver<tally_tui::ConsoleState>,
    prom: metrics_exporter_prometheus::PrometheusHandle,
    stop: CancellationToken,
) {
    let mut upkeep = tokio::time::interval(Duration::from_secs(5));
    metrics::record_state(&rx.borrow_and_update());
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            _ = upkeep.tick() => prom.run_upkeep(),
            changed = rx.changed() => {
                if changed.is_err() {
                    break;
                }
                metrics::record_state(&rx.borrow_and_update());
            }
        }
    }
}
