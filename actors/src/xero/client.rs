//! The Xero Accounting API client: every call goes through the tenant's budget, carries the
//! bearer token and tenant header, feeds the rate headers back, and is retried by policy.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Utc};
use reqwest::Method;
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::OnceCell;
use tokio::time::Instant;

use super::auth::Auth;
use super::config::XeroConfig;
use super::error::XeroError;
use super::token_store::TokenStore;
use crate::budget::{Priority, XeroBudget};
use crate::retry::{Failure, RetryPolicy, parse_retry_after};

/// Counters the benchmark and the console read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct XeroCounters {
    /// Accounting API requests sent (each retry counts).
    pub calls: u64,
    /// 429 responses received.
    pub throttled: u64,
    pub retries: u64,
    /// Requests to the token endpoint.
    pub token_requests: u64,
}

/// Optional knobs for [`XeroClient::with_options`].
#[derive(Debug, Clone, Default)]
pub struct XeroClientOptions {
    /// Share one budget between clients of the same tenant; a new one otherwise.
    pub budget: Option<XeroBudget>,
    pub retry: RetryPolicy,
}

/// Cheap to clone: all clones share the token, the tenant id, the budget and the counters.
#[derive(Clone)]
pub struct XeroClient {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub cfg: Arc<XeroConfig>,
    http: reqwest::Client,
    auth: Auth,
    budget: XeroBudget,
    retry: RetryPolicy,
    tenant: OnceCell<String>,
    calls: AtomicU64,
    throttled: AtomicU64,
    retries: AtomicU64,
}

impl fmt::Debug for XeroClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("XeroClient")
            .field("api_url", &self.inner.cfg.api_url)
            .field("grant", &self.inner.cfg.grant)
            .field("tenant_id", &self.inner.tenant.get())
            .finish_non_exhaustive()
    }
}

/// One request as the retry loop re-sends it: the body is fixed bytes so every attempt is
/// byte-identical (Xero rejects a reused Idempotency-Key with a different body).
pub(crate) struct Call<'a> {
    pub method: Method,
    pub path: &'a str,
    pub query: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
    pub idempotency_key: Option<&'a str>,
    pub if_modified_since: Option<DateTime<Utc>>,
    pub priority: Priority,
}

impl<'a> Call<'a> {
    pub fn get(path: &'a str, query: Vec<(String, String)>, priority: Priority) -> Self {
        Self {
            method: Method::GET,
            path,
            query,
            body: None,
            idempotency_key: None,
            if_modified_since: None,
            priority,
        }
    }
}

#[derive(Deserialize)]
struct Connection {
    #[serde(rename = "tenantId")]
    tenant_id: String,
    #[serde(rename = "tenantType", default)]
    tenant_type: Option<String>,
}

/// Longest slice of an error body kept in an error message.
const MAX_DETAIL: usize = 300;
/// If Xero sends a 429 without `Retry-After`, wait out a whole (simulated) minute.
const DEFAULT_RETRY_AFTER_SIM_SECS: f64 = 60.0;

impl XeroClient {
    pub fn new(cfg: XeroConfig, store: Arc<dyn TokenStore>) -> Result<Self, XeroError> {
        Self::with_options(cfg, store, XeroClientOptions::default())
    }

    pub fn with_options(
        cfg: XeroConfig,
        store: Arc<dyn TokenStore>,
        opts: XeroClientOptions,
    ) -> Result<Self, XeroError> {
        cfg.validate()?;
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| XeroError::Config(format!("HTTP client: {e}")))?;
        let budget = opts
            .budget
            .unwrap_or_else(|| XeroBudget::new(cfg.budget_limits()));
        let cfg = Arc::new(cfg);
        let auth = Auth::new(cfg.clone(), http.clone(), store, opts.retry.clone());
        let tenant = OnceCell::new();
        if let Some(t) = cfg.tenant_id.clone().filter(|t| !t.trim().is_empty()) {
            let _ = tenant.set(t);
        }
        Ok(Self {
            inner: Arc::new(Inner {
                cfg,
                http,
                auth,
                budget,
                retry: opts.retry,
                tenant,
                calls: AtomicU64::new(0),
                throttled: AtomicU64::new(0),
                retries: AtomicU64::new(0),
            }),
        })
    }

    pub fn config(&self) -> &XeroConfig {
        &self.inner.cfg
    }

    pub fn budget(&self) -> &XeroBudget {
        &self.inner.budget
    }

    pub fn counters(&self) -> XeroCounters {
        let i = &self.inner;
        XeroCounters {
            calls: i.calls.load(Ordering::Relaxed),
            throttled: i.throttled.load(Ordering::Relaxed),
            retries: i.retries.load(Ordering::Relaxed),
            token_requests: i.auth.token_requests.load(Ordering::Relaxed),
        }
    }

    /// The consent URL for the authorization-code flow (PKCE S256 over `verifier`).
    pub fn authorize_url(&self, state: &str, verifier: &str) -> Result<String, XeroError> {
        self.inner.auth.authorize_url(state, verifier)
    }

    /// Trades the code from the redirect for tokens, persisting them before first use.
    pub async fn exchange_code(&self, code: &str, verifier: &str) -> Result<(), XeroError> {
        self.inner.auth.exchange_code(code, verifier).await
    }

    /// A valid access token (for callers that talk to Xero outside this client, e.g.
    /// webhooks re-fetching a resource through another path).
    pub async fn ensure_token(&self) -> Result<(), XeroError> {
        self.inner.auth.access_token().await.map(|_| ())
    }

    /// The tenant from config, else the first ORGANISATION from `/connections`.
    pub async fn tenant_id(&self) -> Result<String, XeroError> {
        self.inner
            .tenant
            .get_or_try_init(|| self.discover_tenant())
            .await
            .cloned()
    }

    async fn discover_tenant(&self) -> Result<String, XeroError> {
        let mut refreshed = false;
        loop {
            let token = self.inner.auth.access_token().await?;
            let resp = self
                .inner
                .http
                .get(self.inner.cfg.connections_endpoint())
                .bearer_auth(token.expose_secret())
                .header(ACCEPT, "application/json")
                .timeout(self.inner.cfg.timeout())
                .send()
                .await
                .map_err(|e| XeroError::Transport(Failure::from_reqwest(&e)))?;
            let status = resp.status().as_u16();
            let headers = resp.headers().clone();
            let body = resp
                .bytes()
                .await
                .map_err(|e| XeroError::Transport(Failure::from_reqwest(&e)))?;
            if status == 401 && !refreshed {
                refreshed = true;
                self.inner.auth.invalidate(&token);
                continue;
            }
            if !(200..300).contains(&status) {
                return Err(self.error_for(status, &headers, &body, "connections"));
            }
            let conns: Vec<Connection> = serde_json::from_slice(&body)
                .map_err(|_| XeroError::Malformed("connections is not a list of tenants".into()))?;
            return conns
                .into_iter()
                .find(|c| {
                    c.tenant_type
                        .as_deref()
                        .is_none_or(|t| t.eq_ignore_ascii_case("ORGANISATION"))
                })
                .map(|c| c.tenant_id)
                .ok_or(XeroError::NoTenant);
        }
    }

    /// GET `{api_url}/{path}` with `query`; the parsed body.
    pub async fn get_json(
        &self,
        path: &str,
        query: &[(&str, String)],
        priority: Priority,
    ) -> Result<Value, XeroError> {
        let query = query
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect();
        self.execute(&Call::get(path, query, priority)).await
    }

    /// Sends `call` until it succeeds or fails for good. Retries reuse the same bytes and
    /// the same Idempotency-Key. A 401 triggers one token refresh that does not count as an
    /// attempt; a 429 pauses the whole tenant's budget, so every other caller waits too.
    pub(crate) async fn execute(&self, call: &Call<'_>) -> Result<Value, XeroError> {
        self.execute_as(call, decode_value).await
    }

    /// [`execute`](Self::execute) with a successful body (2xx or 304) decoded by `decode`
    /// (status, body, path), inside the retry loop: a body that does not decode is retried
    /// like any malformed answer.
    pub(crate) async fn execute_as<T, D>(&self, call: &Call<'_>, decode: D) -> Result<T, XeroError>
    where
        D: Fn(u16, &[u8], &str) -> Result<T, XeroError>,
    {
        let tenant = self.tenant_id().await?;
        let url = format!(
            "{}/{}",
            self.inner.cfg.api_base(),
            call.path.trim_start_matches('/')
        );
        let mut attempt = 1;
        let mut refreshed = false;
        loop {
            // The token is fetched after the permit: a wait in the queue can outlast it.
            let permit = self.inner.budget.acquire(call.priority).await;
            let token = self.inner.auth.access_token().await?;
            self.inner.calls.fetch_add(1, Ordering::Relaxed);
            let mut req = self
                .inner
                .http
                .request(call.method.clone(), &url)
                .bearer_auth(token.expose_secret())
                .header("xero-tenant-id", &tenant)
                .header(ACCEPT, "application/json")
                .timeout(self.inner.cfg.timeout());
            if !call.query.is_empty() {
                req = req.query(&call.query);
            }
            if let Some(body) = &call.body {
                req = req
                    .header(CONTENT_TYPE, "application/json")
                    .body(body.clone());
            }
            if let Some(key) = call.idempotency_key {
                req = req.header("Idempotency-Key", key);
            }
            if let Some(since) = call.if_modified_since {
                req = req.header(
                    "If-Modified-Since",
                    since.format("%Y-%m-%dT%H:%M:%S").to_string(),
                );
            }
            let outcome = match req.send().await {
                Err(e) => Err(XeroError::Transport(Failure::from_reqwest(&e))),
                Ok(resp) => {
                    self.inner.budget.observe(resp.headers());
                    let status = resp.status().as_u16();
                    let headers = resp.headers().clone();
                    match resp.bytes().await {
                        Err(e) => Err(XeroError::Transport(Failure::from_reqwest(&e))),
                        Ok(body) => match status {
                            200..=299 | 304 => decode(status, &body, call.path),
                            _ => Err(self.error_for(status, &headers, &body, call.path)),
                        },
                    }
                }
            };
            drop(permit);
            let err = match outcome {
                Ok(v) => return Ok(v),
                Err(XeroError::Unauthorized) if !refreshed => {
                    refreshed = true;
                    self.inner.auth.invalidate(&token);
                    continue;
                }
                Err(e) => e,
            };
            let throttled = if let XeroError::RateLimited {
                retry_after,
                problem,
            } = &err
            {
                self.inner.throttled.fetch_add(1, Ordering::Relaxed);
                self.inner
                    .budget
                    .pause_until(Instant::now() + *retry_after, problem);
                true
            } else {
                false
            };
            match self.inner.retry.next_delay(attempt, &err.failure()) {
                Some(delay) => {
                    self.inner.retries.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(path = call.path, attempt, error = %err, "retrying Xero call");
                    // After a 429 the budget itself holds every caller until Retry-After.
                    if !throttled {
                        tokio::time::sleep(delay).await;
                    }
                    attempt += 1;
                }
                None => return Err(err),
            }
        }
    }

    fn error_for(&self, status: u16, headers: &HeaderMap, body: &[u8], path: &str) -> XeroError {
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let json: Option<Value> = serde_json::from_slice(body).ok();
        match status {
            429 => XeroError::RateLimited {
                retry_after: header("retry-after")
                    .and_then(parse_retry_after)
                    .unwrap_or_else(|| self.inner.cfg.real(DEFAULT_RETRY_AFTER_SIM_SECS)),
                problem: header("x-rate-limit-problem")
                    .unwrap_or("minute")
                    .to_owned(),
            },
            401 => XeroError::Unauthorized,
            400 => {
                let is_validation = json
                    .as_ref()
                    .and_then(|j| j.get("Type"))
                    .and_then(Value::as_str)
                    .is_some_and(|t| t == "ValidationException");
                if is_validation {
                    let mut messages = json.as_ref().map(validation_messages).unwrap_or_default();
                    if messages.is_empty()
                        && let Some(m) = json
                            .as_ref()
                            .and_then(|j| j.get("Message"))
                            .and_then(Value::as_str)
                    {
                        messages.push(m.to_owned());
                    }
                    XeroError::Validation { messages }
                } else {
                    XeroError::BadRequest {
                        message: detail(json.as_ref(), body),
                    }
                }
            }
            403 => XeroError::Forbidden {
                message: detail(json.as_ref(), body),
            },
            404 => XeroError::NotFound {
                path: path.to_owned(),
            },
            408 | 500..=599 => XeroError::Server {
                status,
                message: detail(json.as_ref(), body),
            },
            _ => XeroError::Http {
                status,
                message: detail(json.as_ref(), body),
            },
        }
    }
}

/// Every `ValidationErrors[].Message` in a Xero error body, element by element.
pub(crate) fn validation_messages(json: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let mut push_from = |v: &Value| {
        if let Some(errs) = v.get("ValidationErrors").and_then(Value::as_array) {
            out.extend(
                errs.iter()
                    .filter_map(|e| e.get("Message").and_then(Value::as_str))
                    .map(str::to_owned),
            );
        }
    };
    push_from(json);
    if let Some(elements) = json.get("Elements").and_then(Value::as_array) {
        elements.iter().for_each(&mut push_from);
    }
    out
}

/// A successful body as a `Value`: `null` for 304 or an empty body.
fn decode_value(status: u16, body: &[u8], path: &str) -> Result<Value, XeroError> {
    if status == 304 || body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Null);
    }
    serde_json::from_slice(body)
        .map_err(|_| XeroError::Malformed(format!("{path}: success body is not JSON")))
}

/// A short description of an error body: its message field if it has one, else its text.
fn detail(json: Option<&Value>, body: &[u8]) -> String {
    let from_json = json.and_then(|j| {
        ["Message", "Detail", "Title", "message", "error"]
            .iter()
            .find_map(|k| j.get(*k).and_then(Value::as_str))
            .map(str::to_owned)
    });
    let text = from_json.unwrap_or_else(|| String::from_utf8_lossy(body).into_owned());
    let mut text: String = text.chars().filter(|c| !c.is_control()).collect();
    if text.len() > MAX_DETAIL {
        let cut = (0..=MAX_DETAIL)
            .rev()
            .find(|i| text.is_char_boundary(*i))
            .unwrap_or(0);
        text.truncate(cut);
        text.push('…');
    }
    text
}
