//! A client of the control API: what `tally status`, `tally reload` and `tally console --attach`
//! use to talk to a running daemon.

use std::net::SocketAddr;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use tally_tui::{ConsoleCommand, ConsoleState};
use tokio::sync::watch;

use crate::daemon::config::{ConfigError, DaemonConfig};
use crate::daemon::control::CommandReply;
use crate::daemon::sse::SseParser;

/// The daemon sends a keep-alive comment every 15 s; silence for this long means it is gone.
pub const STREAM_IDLE_TIMEOUT: Duration = Duration::from_secs(45);

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("[daemon] listen / --attach address {0:?} is not usable")]
    BadAddress(String),
    #[error("daemon at {base} unreachable: {reason}")]
    Unreachable { base: String, reason: String },
    #[error("daemon at {base} refused the token (401): check [daemon] token / TALLY_DAEMON_TOKEN")]
    Unauthorized { base: String },
    #[error("daemon answered {status}: {body}")]
    Status { status: u16, body: String },
    #[error("daemon sent something unreadable: {0}")]
    Decode(String),
    #[error("daemon closed the state stream")]
    StreamEnded,
    #[error("daemon state stream silent for {0:?}")]
    StreamIdle(Duration),
}

#[derive(Clone)]
pub struct ControlClient {
    base: String,
    token: Option<SecretString>,
    http: reqwest::Client,
}

impl std::fmt::Debug for ControlClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlClient")
            .field("base", &self.base)
            .field("token", &self.token.as_ref().map(|_| "…"))
            .finish()
    }
}

/// `/readyz`'s body.
#[derive(Clone, Debug, Deserialize)]
pub struct ReadyReport {
    pub ready: bool,
    #[serde(default)]
    pub checks: Vec<ReadyCheck>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct ReadyCheck {
    pub name: String,
    pub ok: bool,
    pub detail: String,
}

impl ControlClient {
    /// `addr` is `host:port` or an `http(s)://` base URL.
    pub fn new(addr: &str, token: Option<SecretString>) -> Result<Self, ClientError> {
        let addr = addr.trim().trim_end_matches('/');
        if addr.is_empty() {
            return Err(ClientError::BadAddress(addr.to_owned()));
        }
        let base = if addr.starts_with("http://") || addr.starts_with("https://") {
            addr.to_owned()
        } else {
            format!("http://{addr}")
        };
        reqwest::Url::parse(&base).map_err(|_| ClientError::BadAddress(addr.to_owned()))?;
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| ClientError::Unreachable {
                base: base.clone(),
                reason: e.to_string(),
            })?;
        Ok(Self { base, token, http })
    }

    /// The daemon of a config file: its `[daemon] listen` (a wildcard address is reached on
    /// loopback) and token.
    pub fn from_config(cfg: &DaemonConfig) -> Result<Self, ClientError> {
        let addr: SocketAddr = cfg
            .validate(None)
            .map_err(|e: ConfigError| ClientError::BadAddress(e.to_string()))?;
        let addr = if addr.ip().is_unspecified() {
            let lo = if addr.is_ipv4() {
                std::net::Ipv4Addr::LOCALHOST.into()
            } else {
                std::net::Ipv6Addr::LOCALHOST.into()
            };
            SocketAddr::new(lo, addr.port())
        } else {
            addr
        };
        Self::new(&addr.to_string(), cfg.token.clone())
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    fn req(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let r = self.http.request(method, format!("{}{path}", self.base));
        match &self.token {
            Some(t) => r.bearer_auth(t.expose_secret()),
            None => r,
        }
    }

    async fn send(&self, rb: reqwest::RequestBuilder) -> Result<reqwest::Response, ClientError> {
        let res = rb.send().await.map_err(|e| ClientError::Unreachable {
            base: self.base.clone(),
            reason: e.without_url().to_string(),
        })?;
        if res.status() == reqwest::StatusCode::UNAUTHORIZED {
            return Err(ClientError::Unauthorized {
                base: self.base.clone(),
            });
        }
        Ok(res)
    }

    async fn ok_json<T: serde::de::DeserializeOwned>(
        &self,
        res: reqwest::Response,
    ) -> Result<T, ClientError> {
        let status = res.status();
        let body = res
            .bytes()
            .await
            .map_err(|e| ClientError::Decode(e.without_url().to_string()))?;
        if !status.is_success() {
            return Err(ClientError::Status {
                status: status.as_u16(),
                body: String::from_utf8_lossy(&body).into_owned(),
            });
        }
        serde_json::from_slice(&body).map_err(|e| ClientError::Decode(e.to_string()))
    }

    pub async fn state(&self) -> Result<ConsoleState, ClientError> {
        let res = self
            .send(self.req(reqwest::Method::GET, "/api/v1/state"))
            .await?;
        self.ok_json(res).await
    }

    /// The open discrepancies, each with its `key` and `kind` (see `tally report`).
    pub async fn discrepancies(&self) -> Result<serde_json::Value, ClientError> {
        let res = self
            .send(self.req(reqwest::Method::GET, "/api/v1/discrepancies"))
            .await?;
        self.ok_json(res).await
    }

    /// Every discrepancy event in `[since_ms, until_ms)` (see `tally report --history`).
    pub async fn discrepancy_history(
        &self,
        since_ms: i64,
        until_ms: i64,
    ) -> Result<serde_json::Value, ClientError> {
        let path = format!("/api/v1/discrepancies/history?since_ms={since_ms}&until_ms={until_ms}");
        let res = self.send(self.req(reqwest::Method::GET, &path)).await?;
        self.ok_json(res).await
    }

    /// `/readyz`: a 503 is an answer (not ready), not an error.
    pub async fn ready(&self) -> Result<ReadyReport, ClientError> {
        let res = self.send(self.req(reqwest::Method::GET, "/readyz")).await?;
        let body = res
            .bytes()
            .await
            .map_err(|e| ClientError::Decode(e.without_url().to_string()))?;
        serde_json::from_slice(&body).map_err(|e| ClientError::Decode(e.to_string()))
    }

    /// A command or reload: a refusal by the engine comes back as `ok: false`, not an error.
    async fn reply(&self, res: reqwest::Response) -> Result<CommandReply, ClientError> {
        let status = res.status();
        let body = res
            .bytes()
            .await
            .map_err(|e| ClientError::Decode(e.without_url().to_string()))?;
        serde_json::from_slice::<CommandReply>(&body).map_err(|_| ClientError::Status {
            status: status.as_u16(),
            body: String::from_utf8_lossy(&body).into_owned(),
        })
    }

    pub async fn command(&self, cmd: &ConsoleCommand) -> Result<CommandReply, ClientError> {
        let res = self
            .send(
                self.req(reqwest::Method::POST, "/api/v1/commands")
                    .json(cmd),
            )
            .await?;
        self.reply(res).await
    }

    pub async fn reload(&self) -> Result<CommandReply, ClientError> {
        let res = self
            .send(self.req(reqwest::Method::POST, "/api/v1/reload"))
            .await?;
        self.reply(res).await
    }

    /// Follows `/api/v1/state/stream` into `tx` until the connection ends; always returns the
    /// reason it ended. `on_connect` runs once the daemon has accepted the stream.
    pub async fn follow_state(
        &self,
        tx: &watch::Sender<ConsoleState>,
        on_connect: impl FnOnce(),
    ) -> ClientError {
        let res = match self
            .send(self.req(reqwest::Method::GET, "/api/v1/state/stream"))
            .await
        {
            Ok(r) if r.status().is_success() => r,
            Ok(r) => {
                return ClientError::Status {
                    status: r.status().as_u16(),
                    body: String::new(),
                };
            }
            Err(e) => return e,
        };
        on_connect();
        let mut res = res;
        let mut parser = SseParser::new();
        loop {
            let chunk = match tokio::time::timeout(STREAM_IDLE_TIMEOUT, res.chunk()).await {
                Err(_) => return ClientError::StreamIdle(STREAM_IDLE_TIMEOUT),
                Ok(Err(e)) => {
                    return ClientError::Unreachable {
                        base: self.base.clone(),
                        reason: e.without_url().to_string(),
                    };
                }
                Ok(Ok(None)) => return ClientError::StreamEnded,
                Ok(Ok(Some(c))) => c,
            };
            for ev in parser.push(&chunk) {
                if ev.event != "state" && !ev.event.is_empty() {
                    continue;
                }
                match serde_json::from_str::<ConsoleState>(&ev.data) {
                    Ok(state) => {
                        tx.send_replace(state);
                    }
                    Err(e) => return ClientError::Decode(e.to_string()),
                }
            }
        }
    }
}
