//! A scriptable stand-in for Xero's identity and accounting servers, on loopback.

#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use parking_lot::Mutex;
use tally_actors::retry::RetryPolicy;
use tally_actors::xero::{TokenStore, XeroClient, XeroClientOptions, XeroConfig};

#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: Method,
    pub path: String,
    pub query: Vec<(String, String)>,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    pub at: Instant,
}

impl Recorded {
    pub fn q(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn bearer(&self) -> Option<&str> {
        self.header("authorization")
            .and_then(|v| v.strip_prefix("Bearer "))
    }

    pub fn form(&self) -> HashMap<String, String> {
        url::form_urlencoded::parse(&self.body)
            .into_owned()
            .collect()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

pub struct Reply {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
    pub delay: Duration,
}

impl Reply {
    pub fn json(status: u16, body: serde_json::Value) -> Self {
        Self {
            status,
            headers: vec![("content-type", "application/json".into())],
            body: body.to_string(),
            delay: Duration::ZERO,
        }
    }

    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    pub fn body_text(mut self, body: &str) -> Self {
        self.body = body.to_owned();
        self
    }

    pub fn after(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

pub type Script = Arc<dyn Fn(&Recorded) -> Reply + Send + Sync>;

#[derive(Clone)]
pub struct Mock {
    pub requests: Arc<Mutex<Vec<Recorded>>>,
    script: Script,
}

impl Mock {
    pub fn hits(&self, path: &str) -> Vec<Recorded> {
        self.requests
            .lock()
            .iter()
            .filter(|r| r.path == path)
            .cloned()
            .collect()
    }

    pub fn api_hits(&self) -> Vec<Recorded> {
        self.requests
            .lock()
            .iter()
            .filter(|r| r.path.starts_with("/api.xro/2.0/"))
            .cloned()
            .collect()
    }
}

async fn handle(
    State(mock): State<Mock>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let query = uri
        .query()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default();
    let rec = Recorded {
        method,
        path: uri.path().to_owned(),
        query,
        headers,
        body: body.to_vec(),
        at: Instant::now(),
    };
    mock.requests.lock().push(rec.clone());
    let reply = (mock.script)(&rec);
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    let mut resp = (StatusCode::from_u16(reply.status).unwrap(), reply.body).into_response();
    for (k, v) in reply.headers {
        resp.headers_mut().insert(k, v.parse().unwrap());
    }
    resp
}

/// Starts the mock; returns its root URL.
pub async fn start(script: impl Fn(&Recorded) -> Reply + Send + Sync + 'static) -> (String, Mock) {
    let mock = Mock {
        requests: Arc::new(Mutex::new(Vec::new())),
        script: Arc::new(script),
    };
    let app = Router::new().fallback(handle).with_state(mock.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (format!("http://{addr}"), mock)
}

pub const CLIENT_SECRET: &str = "very-secret-client-secret-7f3a";

/// A `[xero]` table as the sandbox writes it, plus `extra` lines.
pub fn config(base: &str, extra: &str) -> XeroConfig {
    let text = format!(
        r#"
api_url = "{base}/api.xro/2.0"
identity_url = "{base}"
client_id = "client-abc"
client_secret = "{CLIENT_SECRET}"
scopes = "accounting.invoices accounting.payments accounting.contacts accounting.settings"
{extra}
"#
    );
    toml::from_str(&text).unwrap()
}

pub fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 4,
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(40),
        max_retry_after: Duration::from_secs(5),
    }
}

pub fn client(cfg: XeroConfig, store: Arc<dyn TokenStore>) -> XeroClient {
    XeroClient::with_options(
        cfg,
        store,
        XeroClientOptions {
            budget: None,
            retry: fast_retry(),
        },
    )
    .unwrap()
}

/// Token endpoint + connections for a client-credentials connection; `api` answers the rest.
pub fn with_identity(
    api: impl Fn(&Recorded) -> Reply + Send + Sync + 'static,
) -> impl Fn(&Recorded) -> Reply + Send + Sync + 'static {
    let issued = Arc::new(Mutex::new(0u32));
    move |r: &Recorded| match r.path.as_str() {
        "/connect/token" => {
            let mut n = issued.lock();
            *n += 1;
            Reply::json(
                200,
                serde_json::json!({"access_token": format!("access-{}", *n), "expires_in": 1800, "token_type": "Bearer"}),
            )
            // Slow enough that concurrent callers pile up behind one refresh.
            .after(Duration::from_millis(50))
        }
        "/connections" => Reply::json(
            200,
            serde_json::json!([
                {"id": "c-0", "tenantId": "practice-1", "tenantType": "PRACTICE", "tenantName": "Practice"},
                {"id": "c-1", "tenantId": "tenant-1", "tenantType": "ORGANISATION", "tenantName": "Demo"}
            ]),
        ),
        _ => api(r),
    }
}
