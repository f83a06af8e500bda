//! OAuth 2.0 against Xero's identity server: client credentials, authorization code with
//! PKCE, and rotating refresh tokens.
//!
//! Refreshes are single-flight per client (one async lock): Xero's refresh tokens are
//! single-use, so two concurrent refreshes with the same token would race and one would get
//! `invalid_grant`. The winner persists the new set before releasing the lock; everyone
//! queued behind it re-checks and finds a fresh token.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::Utc;
use parking_lot::Mutex;
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::config::{Grant, XeroConfig};
use super::error::XeroError;
use super::token::TokenSet;
use super::token_store::TokenStore;
use crate::retry::RetryPolicy;

/// A fresh PKCE code verifier: 32 random bytes, base64url (43 characters, within RFC 7636's
/// 43–128 from the unreserved set).
pub fn new_pkce_verifier() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The S256 challenge for `verifier`.
pub fn pkce_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    refresh_token: Option<String>,
    #[serde(default)]
    expires_in: Option<serde_json::Number>,
    #[serde(default)]
    scope: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct OAuthError {
    error: String,
}

enum TokenCallError {
    InvalidGrant,
    Other(XeroError),
}

impl From<XeroError> for TokenCallError {
    fn from(e: XeroError) -> Self {
        TokenCallError::Other(e)
    }
}

/// Seconds of simulated time before expiry at which a token counts as stale; a call started
/// just before expiry must not arrive just after it.
const EXPIRY_MARGIN_SIM_SECS: f64 = 60.0;

pub(crate) struct Auth {
    cfg: Arc<XeroConfig>,
    http: reqwest::Client,
    store: Arc<dyn TokenStore>,
    current: Mutex<Option<TokenSet>>,
    refresh_lock: tokio::sync::Mutex<()>,
    retry: RetryPolicy,
    pub token_requests: AtomicU64,
}

impl Auth {
    pub fn new(
        cfg: Arc<XeroConfig>,
        http: reqwest::Client,
        store: Arc<dyn TokenStore>,
        retry: RetryPolicy,
    ) -> Self {
        Self {
            cfg,
            http,
            store,
            current: Mutex::new(None),
            refresh_lock: tokio::sync::Mutex::new(()),
            retry,
            token_requests: AtomicU64::new(0),
        }
    }

    fn margin(&self) -> chrono::Duration {
        chrono::Duration::from_std(self.cfg.real(EXPIRY_MARGIN_SIM_SECS))
            .unwrap_or(chrono::Duration::zero())
    }

    fn cached(&self) -> Option<SecretString> {
        let margin = self.margin();
        self.current
            .lock()
            .as_ref()
            .filter(|t| t.is_fresh(margin))
            .map(|t| t.access_token.clone())
    }

    /// A usable access token, obtaining or refreshing one if needed.
    pub async fn access_token(&self) -> Result<SecretString, XeroError> {
        if let Some(t) = self.cached() {
            return Ok(t);
        }
        let _guard = self.refresh_lock.lock().await;
        if let Some(t) = self.cached() {
            return Ok(t);
        }
        let tokens = match self.cfg.grant {
            Grant::ClientCredentials => self.client_credentials().await?,
            Grant::AuthorizationCode => self.refreshed().await?,
        };
        let access = tokens.access_token.clone();
        *self.current.lock() = Some(tokens);
        Ok(access)
    }

    /// After a 401 with `used`: forget it, unless another caller already replaced it.
    pub fn invalidate(&self, used: &SecretString) {
        let mut cur = self.current.lock();
        if let Some(t) = cur.as_mut()
            && t.same_access_token(used)
        {
            t.expires_at = Utc::now() - chrono::Duration::seconds(1);
        }
    }

    async fn client_credentials(&self) -> Result<TokenSet, XeroError> {
        let mut form = vec![("grant_type", "client_credentials".to_owned())];
        if !self.cfg.scopes.trim().is_empty() {
            form.push(("scope", self.cfg.scopes.clone()));
        }
        match self.token_call(&form).await {
            Ok(t) => Ok(t),
            Err(TokenCallError::InvalidGrant) => Err(XeroError::TokenRequest {
                status: 400,
                error: "invalid_grant".into(),
            }),
            Err(TokenCallError::Other(e)) => Err(e),
        }
    }

    /// The stored set if still fresh, otherwise a rotated one, persisted before returning.
    async fn refreshed(&self) -> Result<TokenSet, XeroError> {
        let margin = self.margin();
        let known = self.current.lock().clone();
        let known = match known {
            Some(t) => t,
            None => self
                .store
                .load()
                .await?
                .ok_or(XeroError::ReconnectRequired)?,
        };
        if known.is_fresh(margin) {
            return Ok(known);
        }
        match self.refresh_with(&known).await {
            Err(TokenCallError::InvalidGrant) => {}
            other => {
                return other.map_err(|e| match e {
                    TokenCallError::Other(e) => e,
                    TokenCallError::InvalidGrant => XeroError::ReconnectRequired,
                });
            }
        }
        // Another process sharing the store may have rotated the token under us.
        let stored = self
            .store
            .load()
            .await?
            .ok_or(XeroError::ReconnectRequired)?;
        if stored.same_refresh_token(&known) {
            return Err(XeroError::ReconnectRequired);
        }
        if stored.is_fresh(margin) {
            return Ok(stored);
        }
        self.refresh_with(&stored).await.map_err(|e| match e {
            TokenCallError::InvalidGrant => XeroError::ReconnectRequired,
            TokenCallError::Other(e) => e,
        })
    }

    async fn refresh_with(&self, tokens: &TokenSet) -> Result<TokenSet, TokenCallError> {
        let Some(refresh) = tokens.refresh_token.as_ref() else {
            return Err(TokenCallError::Other(XeroError::ReconnectRequired));
        };
        let form = vec![
            ("grant_type", "refresh_token".to_owned()),
            ("refresh_token", refresh.expose_secret().to_owned()),
        ];
        let mut new = self.token_call(&form).await?;
        if new.refresh_token.is_none() {
            // Not rotated this time: keep using the one we have.
            new.refresh_token = tokens.refresh_token.clone();
        }
        self.store.save(&new).await.map_err(XeroError::from)?;
        Ok(new)
    }

    /// Completes the authorization-code flow: the new set is persisted, then used.
    pub async fn exchange_code(&self, code: &str, verifier: &str) -> Result<(), XeroError> {
        let redirect = self.cfg.redirect_uri.clone().ok_or_else(|| {
            XeroError::Config("redirect_uri is required to exchange a code".into())
        })?;
        let form = vec![
            ("grant_type", "authorization_code".to_owned()),
            ("code", code.to_owned()),
            ("redirect_uri", redirect),
            ("code_verifier", verifier.to_owned()),
        ];
        let _guard = self.refresh_lock.lock().await;
        let tokens = match self.token_call(&form).await {
            Ok(t) => t,
            Err(TokenCallError::InvalidGrant) => {
                return Err(XeroError::TokenRequest {
                    status: 400,
                    error: "invalid_grant".into(),
                });
            }
            Err(TokenCallError::Other(e)) => return Err(e),
        };
        self.store.save(&tokens).await?;
        *self.current.lock() = Some(tokens);
        Ok(())
    }

    pub fn authorize_url(&self, state: &str, verifier: &str) -> Result<String, XeroError> {
        let redirect = self.cfg.redirect_uri.as_deref().ok_or_else(|| {
            XeroError::Config("redirect_uri is required for the consent URL".into())
        })?;
        let challenge = pkce_challenge(verifier);
        let url = url::Url::parse_with_params(
            &self.cfg.authorize_endpoint(),
            [
                ("response_type", "code"),
                ("client_id", self.cfg.client_id.as_str()),
                ("redirect_uri", redirect),
                ("scope", self.cfg.scopes.as_str()),
                ("state", state),
                ("code_challenge", challenge.as_str()),
                ("code_challenge_method", "S256"),
            ],
        )
        .map_err(|e| XeroError::Config(format!("authorize URL: {e}")))?;
        Ok(url.into())
    }

    /// One token-endpoint POST, retried on transport errors and 5xx. Retrying a refresh
    /// with the same refresh token is safe: Xero honours a used one for a grace period.
    async fn token_call(&self, form: &[(&str, String)]) -> Result<TokenSet, TokenCallError> {
        self.retry
            .run(
                |_| self.token_call_once(form),
                |e| match e {
                    TokenCallError::InvalidGrant => {
                        crate::retry::Failure::permanent("invalid_grant")
                    }
                    TokenCallError::Other(e) => e.failure(),
                },
            )
            .await
    }

    async fn token_call_once(&self, form: &[(&str, String)]) -> Result<TokenSet, TokenCallError> {
        self.token_requests.fetch_add(1, Ordering::Relaxed);
        let mut req = self
            .http
            .post(self.cfg.token_endpoint())
            .timeout(self.cfg.timeout());
        let mut form: Vec<(&str, String)> = form.to_vec();
        match &self.cfg.client_secret {
            Some(secret) => req = req.basic_auth(&self.cfg.client_id, Some(secret.expose_secret())),
            None => form.push(("client_id", self.cfg.client_id.clone())),
        }
        let resp = req
            .header(reqwest::header::ACCEPT, "application/json")
            .form(&form)
            .send()
            .await
            .map_err(|e| XeroError::Transport(crate::retry::Failure::from_reqwest(&e)))?;
        let status = resp.status().as_u16();
        let body = resp
            .bytes()
            .await
            .map_err(|e| XeroError::Transport(crate::retry::Failure::from_reqwest(&e)))?;
        if (200..300).contains(&status) {
            let parsed: TokenResponse = serde_json::from_slice(&body).map_err(|_| {
                XeroError::Malformed("token response is not the expected JSON".into())
            })?;
            return Ok(self.token_set(parsed));
        }
        // Only the OAuth error code is kept: descriptions may echo what was sent.
        let error = serde_json::from_slice::<OAuthError>(&body)
            .map(|e| e.error)
            .unwrap_or_default();
        if error == "invalid_grant" {
            return Err(TokenCallError::InvalidGrant);
        }
        let error: String = error
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
            .take(64)
            .collect();
        Err(XeroError::TokenRequest { status, error }.into())
    }

    fn token_set(&self, r: TokenResponse) -> TokenSet {
        // expires_in is in the issuer's (possibly simulated) seconds.
        let lifetime_sim = r
            .expires_in
            .and_then(|n| n.as_str().parse::<f64>().ok())
            .filter(|s| s.is_finite() && *s > 0.0)
            .unwrap_or(1800.0);
        let lifetime = chrono::Duration::from_std(self.cfg.real(lifetime_sim))
            .unwrap_or(chrono::Duration::zero());
        let scope = match r.scope {
            Some(serde_json::Value::String(s)) => Some(s),
            Some(serde_json::Value::Array(a)) => Some(
                a.iter()
                    .filter_map(|v| v.as_str())
                    .collect::<Vec<_>>()
                    .join(" "),
            ),
            _ => None,
        };
        TokenSet {
            access_token: r.access_token.into(),
            refresh_token: r.refresh_token.map(Into::into),
            expires_at: Utc::now() + lifetime,
            scope,
        }
    }
}
