//! A tiny Magento stand-in for the client tests: records every request, checks OAuth 1.0a
//! signatures with its own verifier (written from RFC 5849, sharing no code with the
//! client), and answers through a per-test closure.
#![allow(dead_code)]

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use tally_actors::magento::{AuthMode, MagentoConfig};

pub const CONSUMER_KEY: &str = "ck-integration-key";
pub const CONSUMER_SECRET: &str = "cs-very-secret-value";
pub const ACCESS_TOKEN: &str = "at-access-token-value";
pub const ACCESS_TOKEN_SECRET: &str = "ats-very-secret-value";

#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    /// The query exactly as it arrived on the wire.
    pub raw_query: String,
    /// The query decoded (`+` and `%20` both as space).
    pub query: Vec<(String, String)>,
    pub authorization: Option<String>,
    pub body: String,
    /// `Some(true)` when an OAuth header verified, `Some(false)` when it did not.
    pub oauth_ok: Option<bool>,
    pub oauth_nonce: Option<String>,
}

impl Recorded {
    pub fn param(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

pub struct Reply {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
}

impl Reply {
    pub fn json(status: u16, body: serde_json::Value) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: body.to_string(),
        }
    }
    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
}

type Handler = Arc<dyn Fn(&Recorded) -> Reply + Send + Sync>;

struct Shared {
    requests: Mutex<Vec<Recorded>>,
    nonces: Mutex<HashSet<String>>,
    handler: Handler,
}

pub struct Mock {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
}

impl Mock {
    /// Starts the mock on 127.0.0.1:0. Requests with an OAuth header that does not verify
    /// (or reuses a nonce) get Magento's 401 without reaching `handler`.
    pub async fn start(handler: impl Fn(&Recorded) -> Reply + Send + Sync + 'static) -> Self {
        let shared = Arc::new(Shared {
            requests: Mutex::new(Vec::new()),
            nonces: Mutex::new(HashSet::new()),
            handler: Arc::new(handler),
        });
        let app = axum::Router::new()
            .fallback(serve)
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self { addr, shared }
    }

    pub fn base_url(&self) -> String {
        format!("http://{}/rest/default", self.addr)
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.requests.lock().unwrap().clone()
    }

    /// A config for this mock with the integration credentials above.
    pub fn oauth_config(&self) -> MagentoConfig {
        let mut cfg = MagentoConfig::new(self.base_url(), AuthMode::Oauth1);
        cfg.consumer_key = Some(CONSUMER_KEY.into());
        cfg.consumer_secret = Some(CONSUMER_SECRET.into());
        cfg.access_token = Some(ACCESS_TOKEN.into());
        cfg.access_token_secret = Some(ACCESS_TOKEN_SECRET.into());
        cfg
    }
}

async fn serve(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let raw_query = uri.query().unwrap_or_default().to_string();
    let query = decode_query(&raw_query);
    let authorization = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let host = headers
        .get("host")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let mut rec = Recorded {
        method: method.to_string(),
        path: uri.path().to_string(),
        raw_query,
        query,
        authorization: authorization.clone(),
        body: String::from_utf8_lossy(&body).into_owned(),
        oauth_ok: None,
        oauth_nonce: None,
    };
    if let Some(header) = authorization
        .as_deref()
        .and_then(|h| h.strip_prefix("OAuth "))
    {
        let params = parse_oauth_header(header);
        let nonce = params
            .iter()
            .find(|(k, _)| k == "oauth_nonce")
            .map(|(_, v)| v.clone());
        let fresh = nonce
            .as_ref()
            .is_some_and(|n| shared.nonces.lock().unwrap().insert(n.clone()));
        let ok = fresh && verify(&rec.method, &host, &rec.path, &rec.query, &params);
        rec.oauth_ok = Some(ok);
        rec.oauth_nonce = nonce;
    }
    shared.requests.lock().unwrap().push(rec.clone());
    let reply = if rec.oauth_ok == Some(false) {
        Reply::json(
            401,
            serde_json::json!({
                "message": "The consumer isn't authorized to access %resources.",
                "parameters": {"resources": "Magento_Sales::actions_view"}
            }),
        )
    } else {
        (shared.handler)(&rec)
    };
    let mut response = (
        StatusCode::from_u16(reply.status).unwrap(),
        [("content-type", "application/json")],
        reply.body,
    )
        .into_response();
    for (name, value) in reply.headers {
        response.headers_mut().insert(name, value.parse().unwrap());
    }
    response
}

/// Percent-decoding for application/x-www-form-urlencoded style queries.
pub fn decode_component(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
                out.push(u8::from_str_radix(hex, 16).unwrap());
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).unwrap()
}

pub fn decode_query(raw: &str) -> Vec<(String, String)> {
    raw.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode_component(k), decode_component(v))
        })
        .collect()
}

/// RFC 3986 §2.3 unreserved characters pass, every other byte becomes `%XX` (uppercase).
fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn parse_oauth_header(header: &str) -> Vec<(String, String)> {
    header
        .split(',')
        .filter_map(|part| {
            let (k, v) = part.trim().split_once('=')?;
            Some((k.to_string(), decode_component(v.trim_matches('"'))))
        })
        .collect()
}

/// RFC 5849 §3.4: rebuild the base string from what arrived and compare signatures.
fn verify(
    method: &str,
    host: &str,
    path: &str,
    query: &[(String, String)],
    oauth: &[(String, String)],
) -> bool {
    let get = |name: &str| {
        oauth
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    if get("oauth_consumer_key").as_deref() != Some(CONSUMER_KEY)
        || get("oauth_token").as_deref() != Some(ACCESS_TOKEN)
        || get("oauth_signature_method").as_deref() != Some("HMAC-SHA256")
    {
        return false;
    }
    let Some(signature) = get("oauth_signature") else {
        return false;
    };
    let mut params: Vec<(String, String)> = oauth
        .iter()
        .filter(|(k, _)| k != "oauth_signature")
        .chain(query.iter())
        .map(|(k, v)| (encode(k), encode(v)))
        .collect();
    params.sort();
    let joined = params
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    let base = format!(
        "{}&{}&{}",
        method,
        encode(&format!("http://{host}{path}")),
        encode(&joined)
    );
    let key = format!(
        "{}&{}",
        encode(CONSUMER_SECRET),
        encode(ACCESS_TOKEN_SECRET)
    );
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(base.as_bytes());
    let expected = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    expected == signature
}
