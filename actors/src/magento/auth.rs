//! How each request proves who it is: OAuth 1.0a signing, a static bearer token, or a cached
//! admin token.
//!
//! Admin tokens expire (4 h by default, configurable by the merchant, and purged hourly by
//! cron), so the cached token is also dropped on the first 401 and fetched again once. A
//! generation number makes that single-flight: when many requests see a 401 for the same
//! token, only the first invalidation counts and they all share the next fetch.

use std::time::{Duration, Instant};

use secrecy::SecretString;
use tokio::sync::Mutex;

use super::oauth1::OAuth1Credentials;

/// Re-fetch a little before Magento's default 4 h lifetime; a shorter store setting is handled
/// by the 401 path.
pub const ADMIN_TOKEN_TTL: Duration = Duration::from_secs(4 * 3600 - 10 * 60);

#[derive(Debug)]
pub(crate) enum Auth {
    OAuth1(OAuth1Credentials),
    Bearer(SecretString),
    Admin(AdminTokenCache),
}

#[derive(Debug)]
pub(crate) struct AdminTokenCache {
    pub username: String,
    pub password: SecretString,
    ttl: Duration,
    state: Mutex<AdminTokenState>,
}

#[derive(Debug, Default)]
pub(crate) struct AdminTokenState {
    pub token: Option<(SecretString, Instant)>,
    /// Bumped on every fetch; a 401 invalidates only the generation it was sent with.
    pub generation: u64,
}

impl AdminTokenCache {
    pub fn new(username: String, password: SecretString) -> Self {
        Self {
            username,
            password,
            ttl: ADMIN_TOKEN_TTL,
            state: Mutex::new(AdminTokenState::default()),
        }
    }

    /// Locks the cache. The caller fetches a token while holding the guard when
    /// [`AdminTokenState::usable`] returns `None`, so concurrent callers wait for one fetch.
    pub async fn lock(&self) -> tokio::sync::MutexGuard<'_, AdminTokenState> {
        self.state.lock().await
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Forgets the token if it is still the one of `generation`.
    pub async fn invalidate(&self, generation: u64) {
        let mut state = self.state.lock().await;
        if state.generation == generation {
            state.token = None;
        }
    }
}

impl AdminTokenState {
    /// The cached token and its generation, if it has not reached its TTL.
    pub fn usable(&self, ttl: Duration) -> Option<(SecretString, u64)> {
        match &self.token {
            Some((token, fetched)) if fetched.elapsed() < ttl => {
                Some((token.clone(), self.generation))
            }
            _ => None,
        }
    }

    pub fn store(&mut self, token: SecretString) -> u64 {
        self.generation += 1;
        self.token = Some((token, Instant::now()));
        self.generation
    }
}
