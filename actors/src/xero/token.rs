//! An OAuth 2.0 token set as Xero issues it.

use std::fmt;

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Both tokens are bearer credentials (a refresh token lasts 60 days), so they are wrapped in
/// `SecretString` and `Debug` shows only their presence. `Serialize` does write them: it
/// exists for the token store, which must persist them (the ledger, or a 0600 file).
#[derive(Clone)]
pub struct TokenSet {
    pub access_token: SecretString,
    /// Absent for the client-credentials grant.
    pub refresh_token: Option<SecretString>,
    /// Wall-clock expiry of the access token, already converted to real time.
    pub expires_at: DateTime<Utc>,
    pub scope: Option<String>,
}

impl TokenSet {
    /// True while the access token has at least `margin` of life left.
    pub fn is_fresh(&self, margin: chrono::Duration) -> bool {
        Utc::now() + margin < self.expires_at
    }

    pub(crate) fn same_refresh_token(&self, other: &TokenSet) -> bool {
        match (&self.refresh_token, &other.refresh_token) {
            (Some(a), Some(b)) => a.expose_secret() == b.expose_secret(),
            (None, None) => true,
            _ => false,
        }
    }

    pub(crate) fn same_access_token(&self, token: &SecretString) -> bool {
        self.access_token.expose_secret() == token.expose_secret()
    }
}

impl fmt::Debug for TokenSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenSet")
            .field("access_token", &"[REDACTED]")
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| "[REDACTED]"),
            )
            .field("expires_at", &self.expires_at)
            .field("scope", &self.scope)
            .finish()
    }
}

#[derive(Serialize, Deserialize)]
struct Stored {
    version: u32,
    access_token: String,
    refresh_token: Option<String>,
    expires_at: DateTime<Utc>,
    scope: Option<String>,
}

impl Serialize for TokenSet {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        Stored {
            version: 1,
            access_token: self.access_token.expose_secret().to_owned(),
            refresh_token: self
                .refresh_token
                .as_ref()
                .map(|t| t.expose_secret().to_owned()),
            expires_at: self.expires_at,
            scope: self.scope.clone(),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for TokenSet {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = Stored::deserialize(d)?;
        if s.version != 1 {
            return Err(serde::de::Error::custom(format!(
                "unknown token set version {}",
                s.version
            )));
        }
        Ok(TokenSet {
            access_token: s.access_token.into(),
            refresh_token: s.refresh_token.map(Into::into),
            expires_at: s.expires_at,
            scope: s.scope,
        })
    }
}
