//! The `[magento]` table of the config file.
//!
//! Secrets are `SecretString` so that a config printed with `{:?}` (logs, panics, error
//! reports) never shows them. Environment overrides are applied by the binary before the
//! table reaches this type.

use secrecy::SecretString;
use serde::Deserialize;

use super::error::MagentoError;

/// Magento rejects page sizes above 300 when its input limits are on (magento.md §8), so a
/// larger configured value would fail on some stores and not on others; clamp instead.
pub const MAX_PAGE_SIZE: u32 = 300;

/// How requests are authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    /// Integration credentials, every request signed with OAuth 1.0a HMAC-SHA256: never
    /// expires, needs no 2FA and works with Magento's default configuration.
    #[default]
    Oauth1,
    /// A static bearer token (an integration token with "use as standalone bearer" enabled).
    Bearer,
    /// An admin token fetched with username and password, cached and re-fetched on 401.
    Admin,
}

/// The `[magento]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MagentoConfig {
    /// Store-scoped REST root, e.g. `http://127.0.0.1:8081/rest/default`; `/V1/...` is appended.
    pub base_url: String,
    #[serde(default)]
    pub auth: AuthMode,
    #[serde(default)]
    pub consumer_key: Option<SecretString>,
    #[serde(default)]
    pub consumer_secret: Option<SecretString>,
    #[serde(default)]
    pub access_token: Option<SecretString>,
    #[serde(default)]
    pub access_token_secret: Option<SecretString>,
    /// Bearer token for `auth = "bearer"`.
    #[serde(default)]
    pub token: Option<SecretString>,
    /// Admin user for `auth = "admin"`.
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<SecretString>,
    #[serde(default = "default_page_size")]
    pub page_size: u32,
    #[serde(default = "default_poll_interval_secs")]
    pub poll_interval_secs: u64,
    /// How far behind the `updated_at` cursor each poll starts again, to catch orders whose
    /// transaction committed after a later order was already seen.
    #[serde(default = "default_overlap_secs")]
    pub overlap_secs: u64,
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
    /// Attempts per request (first try included) for failures that are safe to retry.
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
}

fn default_page_size() -> u32 {
    100
}
fn default_poll_interval_secs() -> u64 {
    5
}
fn default_overlap_secs() -> u64 {
    120
}
fn default_timeout_secs() -> u64 {
    30
}
fn default_max_attempts() -> u32 {
    4
}

impl MagentoConfig {
    /// A config with defaults and no credentials, for code and tests that fill fields in.
    pub fn new(base_url: impl Into<String>, auth: AuthMode) -> Self {
        Self {
            base_url: base_url.into(),
            auth,
            consumer_key: None,
            consumer_secret: None,
            access_token: None,
            access_token_secret: None,
            token: None,
            username: None,
            password: None,
            page_size: default_page_size(),
            poll_interval_secs: default_poll_interval_secs(),
            overlap_secs: default_overlap_secs(),
            timeout_secs: default_timeout_secs(),
            max_attempts: default_max_attempts(),
        }
    }

    /// The page size actually sent: at least 1, at most [`MAX_PAGE_SIZE`].
    pub fn effective_page_size(&self) -> u32 {
        self.page_size.clamp(1, MAX_PAGE_SIZE)
    }

    /// Checks that the credentials the chosen auth mode needs are present and the URL parses,
    /// so a bad config fails at start-up instead of on the first request.
    pub fn validate(&self) -> Result<(), MagentoError> {
        let url = url::Url::parse(&self.base_url)
            .map_err(|e| MagentoError::Config(format!("base_url is not a URL: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(MagentoError::Config(
                "base_url must be http or https".to_string(),
            ));
        }
        if url.query().is_some() {
            return Err(MagentoError::Config(
                "base_url must not carry a query string".to_string(),
            ));
        }
        let missing = |name: &str| MagentoError::Config(format!("auth mode needs `{name}`"));
        match self.auth {
            AuthMode::Oauth1 => {
                for (name, value) in [
                    ("consumer_key", &self.consumer_key),
                    ("consumer_secret", &self.consumer_secret),
                    ("access_token", &self.access_token),
                    ("access_token_secret", &self.access_token_secret),
                ] {
                    if value.is_none() {
                        return Err(missing(name));
                    }
                }
            }
            AuthMode::Bearer => {
                if self.token.is_none() {
                    return Err(missing("token"));
                }
            }
            AuthMode::Admin => {
                if self.username.is_none() {
                    return Err(missing("username"));
                }
                if self.password.is_none() {
                    return Err(missing("password"));
                }
            }
        }
        if self.timeout_secs == 0 {
            return Err(MagentoError::Config("timeout_secs must be > 0".to_string()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: serde_json::Value) -> Result<MagentoConfig, serde_json::Error> {
        serde_json::from_value(json)
    }

    #[test]
    fn defaults_apply_and_page_size_is_capped() {
        let cfg = parse(serde_json::json!({
            "base_url": "http://127.0.0.1:1/rest/default",
            "auth": "bearer", "token": "t", "page_size": 1000
        }))
        .unwrap();
        assert_eq!(cfg.auth, AuthMode::Bearer);
        assert_eq!(cfg.effective_page_size(), 300);
        assert_eq!(cfg.poll_interval_secs, 5);
        assert_eq!(cfg.overlap_secs, 120);
        assert_eq!(cfg.timeout_secs, 30);
        cfg.validate().unwrap();
    }

    /// The exact table `tally sandbox --write-config` writes.
    #[test]
    fn sandbox_toml_table_parses() {
        let text = r#"
            base_url = "http://127.0.0.1:8081/rest/default"
            auth = "oauth1"
            consumer_key = "ck"
            consumer_secret = "cs"
            access_token = "at"
            access_token_secret = "ats"
            page_size = 100
            poll_interval_secs = 2
        "#;
        let cfg: MagentoConfig = toml::from_str(text).unwrap();
        cfg.validate().unwrap();
        assert_eq!(cfg.auth, AuthMode::Oauth1);
        assert_eq!(cfg.poll_interval_secs, 2);
        assert_eq!(cfg.effective_page_size(), 100);
    }

    #[test]
    fn unknown_fields_and_missing_credentials_are_rejected() {
        assert!(parse(serde_json::json!({"base_url": "http://x/rest", "colour": 1})).is_err());
        let cfg = parse(serde_json::json!({
            "base_url": "http://x/rest/default", "auth": "oauth1",
            "consumer_key": "k", "consumer_secret": "s", "access_token": "t"
        }))
        .unwrap();
        let err = cfg.validate().unwrap_err().to_string();
        assert!(err.contains("access_token_secret"), "{err}");
        let admin = parse(
            serde_json::json!({"base_url": "http://x/rest", "auth": "admin", "username": "u"}),
        )
        .unwrap();
        assert!(
            admin
                .validate()
                .unwrap_err()
                .to_string()
                .contains("password")
        );
    }

    #[test]
    fn debug_never_shows_secrets() {
        let cfg = parse(serde_json::json!({
            "base_url": "http://x/rest/default", "auth": "oauth1",
            "consumer_key": "ck-VALUE", "consumer_secret": "cs-VALUE",
            "access_token": "at-VALUE", "access_token_secret": "ats-VALUE",
            "password": "pw-VALUE", "token": "tok-VALUE"
        }))
        .unwrap();
        let dbg = format!("{cfg:?}");
        for secret in [
            "ck-VALUE",
            "cs-VALUE",
            "at-VALUE",
            "ats-VALUE",
            "pw-VALUE",
            "tok-VALUE",
        ] {
            assert!(!dbg.contains(secret), "{secret} leaked in {dbg}");
        }
    }
}
