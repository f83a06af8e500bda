//! What can go wrong talking to Xero, typed so actors can decide: retry, reschedule,
//! dead-letter, or ask the operator to reconnect. No variant ever carries a token or secret.

use std::time::Duration;

use crate::retry::Failure;

use super::token_store::TokenStoreError;

#[derive(Debug, thiserror::Error)]
pub enum XeroError {
    #[error("invalid [xero] config: {0}")]
    Config(String),
    /// The refresh token was refused and the store held nothing newer: a person must
    /// connect the organisation again.
    #[error("the Xero connection must be re-authorised (refresh token rejected)")]
    ReconnectRequired,
    #[error("Xero token endpoint refused the request: HTTP {status} {error}")]
    TokenRequest { status: u16, error: String },
    #[error(transparent)]
    TokenStore(#[from] TokenStoreError),
    #[error("no Xero organisation is connected to this app")]
    NoTenant,
    /// A 429 whose `Retry-After` is longer than worth waiting inside one call (a daily
    /// limit); the tenant's budget is already paused until then.
    #[error("Xero rate limit ({problem}); retry after {retry_after:?}")]
    RateLimited {
        retry_after: Duration,
        problem: String,
    },
    /// A whole-request 400 `ValidationException`.
    #[error("Xero rejected the request: {}", messages.join("; "))]
    Validation { messages: Vec<String> },
    #[error("Xero rejected the request (HTTP 400): {message}")]
    BadRequest { message: String },
    #[error("Xero refused the access token even after a refresh")]
    Unauthorized,
    #[error("Xero refused access (HTTP 403): {message}")]
    Forbidden { message: String },
    #[error("not found in Xero: {path}")]
    NotFound { path: String },
    #[error("Xero server error (HTTP {status}): {message}")]
    Server { status: u16, message: String },
    #[error("unexpected HTTP {status} from Xero: {message}")]
    Http { status: u16, message: String },
    #[error("Xero call failed: {}", .0.reason())]
    Transport(Failure),
    #[error("malformed Xero response: {0}")]
    Malformed(String),
    #[error(
        "batch too large ({elements} elements, {bytes} bytes; at most 50 and 3.5 MB): split it"
    )]
    BatchTooLarge { elements: usize, bytes: usize },
    #[error("invalid Idempotency-Key: {0}")]
    InvalidIdempotencyKey(String),
}

impl XeroError {
    /// What this error means for a retry. `Transport` keeps its own classification so a
    /// timeout after sending stays `Ambiguous`.
    pub fn failure(&self) -> Failure {
        match self {
            XeroError::RateLimited { retry_after, .. } => Failure::Retriable {
                reason: self.to_string(),
                retry_after: Some(*retry_after),
            },
            XeroError::Server { .. } | XeroError::Malformed(_) => {
                Failure::retriable(self.to_string())
            }
            XeroError::Transport(f) => f.clone(),
            XeroError::TokenRequest { status, .. } if *status >= 500 || *status == 429 => {
                Failure::retriable(self.to_string())
            }
            XeroError::TokenStore(_) => Failure::retriable(self.to_string()),
            _ => Failure::permanent(self.to_string()),
        }
    }
}
