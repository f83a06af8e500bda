//! The `[xero]` config table.

use std::fmt::Display;
use std::str::FromStr;
use std::time::Duration;

use secrecy::SecretString;
use serde::{Deserialize, Deserializer, de};

use super::error::XeroError;
use crate::budget::XeroLimits;

/// Which OAuth 2.0 grant the organisation was connected with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Grant {
    /// A Custom Connection: the access token is simply re-requested; no refresh tokens.
    #[default]
    ClientCredentials,
    /// A user consented in the browser; refresh tokens rotate and must be persisted.
    AuthorizationCode,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct XeroConfig {
    /// e.g. `https://api.xero.com/api.xro/2.0`
    pub api_url: String,
    /// e.g. `https://identity.xero.com`; the token endpoint is `{identity_url}/connect/token`.
    pub identity_url: String,
    #[serde(default)]
    pub grant: Grant,
    pub client_id: String,
    /// Optional only for public PKCE clients, which have none.
    #[serde(default)]
    pub client_secret: Option<SecretString>,
    #[serde(default)]
    pub redirect_uri: Option<String>,
    #[serde(default)]
    pub scopes: String,
    /// When absent, the first ORGANISATION from `/connections` is used.
    #[serde(default)]
    pub tenant_id: Option<String>,
    #[serde(default = "default_timeout_secs", deserialize_with = "lenient")]
    pub timeout_secs: u64,
    /// Simulated seconds per real second (the sandbox's clock); 1.0 against real Xero.
    #[serde(default = "default_time_scale", deserialize_with = "lenient")]
    pub time_scale: f64,
    /// Overrides Xero's published limits (the top-level `time_scale` still applies).
    #[serde(default)]
    pub limits: Option<XeroLimits>,
    /// Real Xero serves consent at `https://login.xero.com/identity/connect/authorize`,
    /// a different host from the token endpoint; default `{identity_url}/connect/authorize`.
    #[serde(default)]
    pub authorize_url: Option<String>,
    /// Default `{identity_url}/connect/token`.
    #[serde(default)]
    pub token_url: Option<String>,
    /// Real Xero lists connections at `https://api.xero.com/connections`;
    /// default `{identity_url}/connections`.
    #[serde(default)]
    pub connections_url: Option<String>,
}

fn default_timeout_secs() -> u64 {
    30
}

fn default_time_scale() -> f64 {
    1.0
}

/// Environment overrides arrive as strings (`TALLY_XERO_TIME_SCALE=600`); accept both.
fn lenient<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr + Deserialize<'de>,
    T::Err: Display,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either<T> {
        Value(T),
        Text(String),
    }
    match Either::<T>::deserialize(d)? {
        Either::Value(v) => Ok(v),
        Either::Text(s) => s.trim().parse().map_err(de::Error::custom),
    }
}

fn trim_slash(s: &str) -> &str {
    s.trim_end_matches('/')
}

impl XeroConfig {
    pub fn validate(&self) -> Result<(), XeroError> {
        if !(self.time_scale.is_finite() && self.time_scale > 0.0) {
            return Err(XeroError::Config(
                "time_scale must be a positive number".into(),
            ));
        }
        if self.timeout_secs == 0 {
            return Err(XeroError::Config("timeout_secs must be at least 1".into()));
        }
        for (name, value) in [
            ("api_url", Some(&self.api_url)),
            ("identity_url", Some(&self.identity_url)),
            ("authorize_url", self.authorize_url.as_ref()),
            ("token_url", self.token_url.as_ref()),
            ("connections_url", self.connections_url.as_ref()),
            ("redirect_uri", self.redirect_uri.as_ref()),
        ] {
            if let Some(v) = value {
                url::Url::parse(v)
                    .map_err(|e| XeroError::Config(format!("{name} is not a valid URL: {e}")))?;
            }
        }
        if self.client_id.trim().is_empty() {
            return Err(XeroError::Config("client_id is empty".into()));
        }
        match self.grant {
            Grant::ClientCredentials if self.client_secret.is_none() => Err(XeroError::Config(
                "grant = \"client_credentials\" needs client_secret".into(),
            )),
            Grant::AuthorizationCode if self.redirect_uri.is_none() => Err(XeroError::Config(
                "grant = \"authorization_code\" needs redirect_uri".into(),
            )),
            _ => Ok(()),
        }
    }

    /// The limits the budget should enforce, in this config's time scale.
    pub fn budget_limits(&self) -> XeroLimits {
        XeroLimits {
            time_scale: self.time_scale,
            ..self.limits.clone().unwrap_or_default()
        }
    }

    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout_secs)
    }

    /// Real duration of `secs` simulated seconds.
    pub fn real(&self, simulated_secs: f64) -> Duration {
        Duration::from_secs_f64(simulated_secs / self.time_scale)
    }

    pub(crate) fn api_base(&self) -> &str {
        trim_slash(&self.api_url)
    }

    pub(crate) fn token_endpoint(&self) -> String {
        self.token_url
            .clone()
            .unwrap_or_else(|| format!("{}/connect/token", trim_slash(&self.identity_url)))
    }

    pub(crate) fn authorize_endpoint(&self) -> String {
        self.authorize_url
            .clone()
            .unwrap_or_else(|| format!("{}/connect/authorize", trim_slash(&self.identity_url)))
    }

    pub(crate) fn connections_endpoint(&self) -> String {
        self.connections_url
            .clone()
            .unwrap_or_else(|| format!("{}/connections", trim_slash(&self.identity_url)))
    }
}
