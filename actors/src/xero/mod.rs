//! The Xero client: OAuth 2.0 tokens, the tenant header, the shared budget, batched writes
//! with per-element outcomes and Idempotency-Key, and batched lookups. JSON in, JSON out:
//! typed models live in `model/`.

mod auth;
mod batch;
mod client;
mod config;
mod error;
mod lookup;
mod ms_date;
mod token;
mod token_store;

pub use auth::{new_pkce_verifier, pkce_challenge};
pub use batch::{
    ElementOutcome, MAX_BATCH_BYTES, MAX_BATCH_ELEMENTS, MAX_IDEMPOTENCY_KEY_LEN, WriteMethod,
    validate_idempotency_key,
};
pub use client::{XeroClient, XeroClientOptions, XeroCounters};
pub use config::{Grant, XeroConfig};
pub use error::XeroError;
pub use lookup::{LOOKUP_CHUNK, PAGE_SIZE};
pub use ms_date::parse_ms_date;
pub use token::TokenSet;
pub use token_store::{FileTokenStore, MemoryTokenStore, TokenStore, TokenStoreError};
