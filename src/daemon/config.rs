//! The `[daemon]` and `[alerts]` tables.
//!
//! Validation happens before anything binds: a daemon that would listen on a public address with
//! no token, or on an address nobody can parse, refuses to start with a message naming the key.
//! Secrets are `SecretString`s, so `Debug` output and errors never carry them.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;

/// Default control/webhook address: loopback, because only the webhook route should ever face
/// the internet, and then through a TLS-terminating proxy.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8787";
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;
pub const DEFAULT_SHUTDOWN_GRACE_SECS: u64 = 10;
pub const DEFAULT_ALERT_MIN_INTERVAL_SECS: u64 = 300;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DaemonConfig {
    /// Kept as text so an unparsable value is reported by key, not as a serde position.
    pub listen: String,
    /// Bearer token for `/api/v1/*`; required when `listen` is not loopback.
    pub token: Option<SecretString>,
    /// The Xero webhook signing key (developer portal → Webhooks).
    pub xero_webhook_key: Option<SecretString>,
    /// Shared secret for plain JSON pushes signed with `x-tally-signature`.
    pub magento_webhook_secret: Option<SecretString>,
    /// PEM public key of an Adobe Commerce webhook key pair (`x-adobe-commerce-webhook-signature`).
    pub magento_webhook_public_key: Option<String>,
    pub max_body_bytes: usize,
    pub shutdown_grace_secs: u64,
}

impl Default for DaemonConfig {
    fn default() -> Self {
        Self {
            listen: DEFAULT_LISTEN.to_owned(),
            token: None,
            xero_webhook_key: None,
            magento_webhook_secret: None,
            magento_webhook_public_key: None,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            shutdown_grace_secs: DEFAULT_SHUTDOWN_GRACE_SECS,
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertsConfig {
    /// Slack-compatible incoming webhook: receives `{"text": ...}`.
    pub webhook_url: Option<SecretString>,
    /// A program run with the alert JSON on stdin (e.g. a pager script).
    pub command: Option<PathBuf>,
    /// Alert when open discrepancies reach this many; `None` disables that alert.
    pub discrepancy_threshold: Option<u64>,
    /// At most one alert per kind in this many seconds.
    pub min_interval_secs: u64,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        Self {
            webhook_url: None,
            command: None,
            discrepancy_threshold: None,
            min_interval_secs: DEFAULT_ALERT_MIN_INTERVAL_SECS,
        }
    }
}

impl AlertsConfig {
    pub fn min_interval(&self) -> Duration {
        Duration::from_secs(self.min_interval_secs)
    }
}

/// Why the daemon refuses to start. Messages name keys, never values of secrets.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("[daemon] listen = {value:?} is not an address like 127.0.0.1:8787")]
    BadListen { value: String },
    #[error(
        "[daemon] listen = {addr} is not a loopback address and [daemon] token is not set: \
         set a token (TALLY_DAEMON_TOKEN) or listen on 127.0.0.1"
    )]
    PublicWithoutToken { addr: SocketAddr },
    #[error("[daemon] token is empty")]
    EmptyToken,
    #[error("[daemon] magento_webhook_public_key is not a PEM RSA public key: {reason}")]
    BadPublicKey { reason: String },
    #[error("[daemon] max_body_bytes must be at least 1")]
    ZeroBodyLimit,
}

impl DaemonConfig {
    /// The address to bind: `override_listen` (from `--listen`) wins over the config, and both
    /// go through the same loopback/token rule.
    pub fn validate(&self, override_listen: Option<&str>) -> Result<SocketAddr, ConfigError> {
        use secrecy::ExposeSecret;
        let text = override_listen.unwrap_or(&self.listen);
        let addr: SocketAddr = text.trim().parse().map_err(|_| ConfigError::BadListen {
            value: text.to_owned(),
        })?;
        if let Some(t) = &self.token
            && t.expose_secret().trim().is_empty()
        {
            return Err(ConfigError::EmptyToken);
        }
        if !addr.ip().is_loopback() && self.token.is_none() {
            return Err(ConfigError::PublicWithoutToken { addr });
        }
        if self.max_body_bytes == 0 {
            return Err(ConfigError::ZeroBodyLimit);
        }
        if let Some(pem) = &self.magento_webhook_public_key {
            crate::daemon::signature::RsaVerifier::from_pem(pem)?;
        }
        Ok(addr)
    }

    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_secs(self.shutdown_grace_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(listen: &str, token: Option<&str>) -> DaemonConfig {
        DaemonConfig {
            listen: listen.into(),
            token: token.map(|t| SecretString::from(t.to_owned())),
            ..Default::default()
        }
    }

    #[test]
    fn defaults_and_tables_parse() {
        let d: DaemonConfig = toml::from_str("").unwrap();
        assert_eq!(d.listen, DEFAULT_LISTEN);
        assert_eq!(d.max_body_bytes, DEFAULT_MAX_BODY_BYTES);
        assert_eq!(d.shutdown_grace_secs, 10);
        let a: AlertsConfig = toml::from_str("discrepancy_threshold = 5").unwrap();
        assert_eq!(
            (a.discrepancy_threshold, a.min_interval_secs),
            (Some(5), 300)
        );
        assert!(toml::from_str::<DaemonConfig>("listn = \"x\"").is_err());
    }

    #[test]
    fn loopback_without_token_is_allowed_public_is_not() {
        assert_eq!(cfg("127.0.0.1:0", None).validate(None).unwrap().port(), 0);
        assert!(cfg("[::1]:9000", None).validate(None).is_ok());
        let err = cfg("0.0.0.0:8787", None)
            .validate(None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("[daemon] token"), "{err}");
        assert!(cfg("0.0.0.0:8787", Some("s3cret")).validate(None).is_ok());
        let err = cfg("127.0.0.1:1", None)
            .validate(Some("10.0.0.1:80"))
            .unwrap_err();
        assert!(matches!(err, ConfigError::PublicWithoutToken { .. }));
    }

    #[test]
    fn unparsable_listen_names_the_key_and_secrets_stay_out_of_debug() {
        let err = cfg("localhost", None)
            .validate(None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("[daemon] listen"), "{err}");
        let c = cfg("127.0.0.1:1", Some("hunter2-token"));
        assert!(!format!("{c:?}").contains("hunter2"));
        assert!(matches!(
            cfg("127.0.0.1:1", Some("  ")).validate(None),
            Err(ConfigError::EmptyToken)
        ));
    }
}
