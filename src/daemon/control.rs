//! The control API under `/api/v1/`, used by `tally status`, `tally reload`, attached consoles
//! and scripts.
//!
//! Every route takes `Authorization: Bearer <[daemon] token>`. Without a configured token the
//! daemon only ever listens on loopback (config validation refuses anything else), and then the
//! API is open to local users, which is logged once as a warning.

use std::convert::Infallible;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Json;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::Stream;
use serde::{Deserialize, Serialize};
use tally_tui::{ConsoleCommand, ConsoleState};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::daemon::server::AppState;
use crate::daemon::signature::token_matches;

/// At most this many state events per second on `/api/v1/state/stream`: an engine publishing on
/// every operation must not turn each attached console into a firehose.
pub const STREAM_MIN_INTERVAL: Duration = Duration::from_millis(100);

/// How long a command may take before the API gives up waiting (the engine keeps going).
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// The answer to a command or a reload.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandReply {
    pub ok: bool,
    pub message: String,
}

pub async fn require_token(State(app): State<AppState>, req: Request, next: Next) -> Response {
    match app.settings.daemon.token.as_ref() {
        None => {
            if !app.warned_open_api.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    "No [daemon] token configured: the control API is open to every local user."
                );
            }
            next.run(req).await
        }
        Some(expected) => {
            let presented = req
                .headers()
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| {
                    v.strip_prefix("Bearer ")
                        .or_else(|| v.strip_prefix("bearer "))
                });
            if presented.is_some_and(|p| token_matches(expected, p.trim())) {
                next.run(req).await
            } else {
                (
                    StatusCode::UNAUTHORIZED,
                    [(header::WWW_AUTHENTICATE, "Bearer")],
                )
                    .into_response()
            }
        }
    }
}

pub async fn state(State(app): State<AppState>) -> Json<ConsoleState> {
    Json(app.engine.state().borrow().clone())
}

pub async fn state_stream(
    State(app): State<AppState>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    Sse::new(state_events(app.engine.state(), app.stopping.clone()))
        .keep_alive(KeepAlive::default())
}

/// The current state at once, then one event per change, at most one per
/// [`STREAM_MIN_INTERVAL`]; ends when the engine drops its sender or the daemon stops (so the
/// server's graceful shutdown is not held open by attached consoles).
pub fn state_events(
    rx: watch::Receiver<ConsoleState>,
    stopping: CancellationToken,
) -> impl Stream<Item = Result<Event, Infallible>> {
    futures::stream::unfold(
        (rx, stopping, None::<Instant>),
        |(mut rx, stopping, last)| async move {
            if let Some(last) = last {
                tokio::select! {
                    changed = rx.changed() => changed.ok()?,
                    () = stopping.cancelled() => return None,
                }
                tokio::select! {
                    () = tokio::time::sleep_until(last + STREAM_MIN_INTERVAL) => {}
                    () = stopping.cancelled() => return None,
                }
            }
            let snapshot = rx.borrow_and_update().clone();
            let event = Event::default()
                .event("state")
                .json_data(&snapshot)
                .unwrap_or_else(|e| {
                    tracing::error!(error = %e, "Console state did not serialise.");
                    Event::default().comment("state did not serialise")
                });
            Some((Ok(event), (rx, stopping, Some(Instant::now()))))
        },
    )
}

fn reply(result: Result<Result<String, String>, tokio::time::error::Elapsed>) -> Response {
    match result {
        Ok(Ok(message)) => Json(CommandReply { ok: true, message }).into_response(),
        Ok(Err(message)) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(CommandReply { ok: false, message }),
        )
            .into_response(),
        Err(_) => (
            StatusCode::GATEWAY_TIMEOUT,
            Json(CommandReply {
                ok: false,
                message: "the engine did not answer in time; it may still act on it".into(),
            }),
        )
            .into_response(),
    }
}

pub async fn command(State(app): State<AppState>, Json(cmd): Json<ConsoleCommand>) -> Response {
    reply(tokio::time::timeout(COMMAND_TIMEOUT, app.engine.command(cmd)).await)
}

pub async fn reload(State(app): State<AppState>) -> Response {
    reply(tokio::time::timeout(COMMAND_TIMEOUT, app.engine.reload()).await)
}

/// The open discrepancies, as `tally report --format json` prints them.
pub async fn discrepancies(State(app): State<AppState>) -> Response {
    match tokio::time::timeout(COMMAND_TIMEOUT, app.engine.discrepancies()).await {
        Ok(Ok(open)) => Json(crate::cmd::report::to_json(&open)).into_response(),
        Ok(Err(e)) => (StatusCode::SERVICE_UNAVAILABLE, e).into_response(),
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "the engine did not answer in time",
        )
            .into_response(),
    }
}

/// The period of `GET /api/v1/discrepancies/history`, in ms since the epoch.
#[derive(Debug, Deserialize)]
pub struct Period {
    #[serde(default)]
    pub since_ms: i64,
    #[serde(default = "forever")]
    pub until_ms: i64,
}

fn forever() -> i64 {
    i64::MAX
}

/// Every discrepancy event in a period, as `tally report --history --format json` prints it.
pub async fn discrepancy_history(
    State(app): State<AppState>,
    axum::extract::Query(p): axum::extract::Query<Period>,
) -> Response {
    match tokio::time::timeout(
        COMMAND_TIMEOUT,
        app.engine.discrepancy_history(p.since_ms, p.until_ms),
    )
    .await
    {
        Ok(Ok(rows)) => Json(rows).into_response(),
        Ok(Err(e)) => (StatusCode::SERVICE_UNAVAILABLE, e).into_response(),
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "the engine did not answer in time",
        )
            .into_response(),
    }
}

/// The optional body of an acknowledgement: `{"note": "why it is acceptable"}`.
#[derive(Debug, Default, Deserialize)]
pub struct AckBody {
    #[serde(default)]
    pub note: Option<String>,
}

/// `POST /api/v1/discrepancies/{key}/acknowledge`: what the console's `a` and `tally ack` do,
/// for a script or a ticketing system (422 with the reason when there is no such one open).
/// The body is optional.
pub async fn acknowledge_discrepancy(
    State(app): State<AppState>,
    axum::extract::Path(key): axum::extract::Path<String>,
    body: Option<Json<AckBody>>,
) -> Response {
    let note = body.and_then(|Json(b)| b.note);
    reply(
        tokio::time::timeout(
            COMMAND_TIMEOUT,
            app.engine
                .command(ConsoleCommand::Acknowledge { key, note }),
        )
        .await,
    )
}

/// `POST /api/v1/discrepancies/{key}/fix`: what the console's `f` does (422 with what to do
/// instead for a kind tally does not fix).
pub async fn fix_discrepancy(
    State(app): State<AppState>,
    axum::extract::Path(key): axum::extract::Path<String>,
) -> Response {
    reply(
        tokio::time::timeout(
            COMMAND_TIMEOUT,
            app.engine.command(ConsoleCommand::FixDiscrepancy(key)),
        )
        .await,
    )
}

pub async fn reconcile(State(app): State<AppState>) -> Response {
    reply(
        tokio::time::timeout(
            COMMAND_TIMEOUT,
            app.engine.command(ConsoleCommand::ReconcileNow),
        )
        .await,
    )
}
