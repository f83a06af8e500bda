//! The ledger as the Xero token store: rotated refresh tokens are committed (durably, in the
//! same file as everything else) before they are used.

use futures::future::BoxFuture;

use crate::ledger::Ledger;
use crate::xero::{TokenSet, TokenStore, TokenStoreError};

pub struct LedgerTokenStore {
    pub ledger: Ledger,
    pub name: String,
}

impl TokenStore for LedgerTokenStore {
    fn load(&self) -> BoxFuture<'_, Result<Option<TokenSet>, TokenStoreError>> {
        Box::pin(async move {
            let bytes = self
                .ledger
                .load_token(&self.name)
                .await
                .map_err(|e| TokenStoreError::Backend(e.to_string()))?;
            match bytes {
                None => Ok(None),
                Some(b) => serde_json::from_slice(&b)
                    .map(Some)
                    .map_err(|_| TokenStoreError::Corrupt),
            }
        })
    }

    fn save<'a>(&'a self, tokens: &'a TokenSet) -> BoxFuture<'a, Result<(), TokenStoreError>> {
        Box::pin(async move {
            let bytes = serde_json::to_vec(tokens).map_err(|_| TokenStoreError::Corrupt)?;
            self.ledger
                .save_token(&self.name, bytes)
                .await
                .map_err(|e| TokenStoreError::Backend(e.to_string()))
        })
    }
}
