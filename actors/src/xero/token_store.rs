//! Where rotated token sets live between runs.
//!
//! Xero refresh tokens are single-use: once a refresh succeeds, only the new token works
//! (after a 30-minute grace). So the new set must reach durable storage before anything uses
//! it, or a crash right after the refresh locks the app out. The ledger implements
//! [`TokenStore`] in production; the file store serves the CLI and tests.

use std::io::Write;
use std::path::{Path, PathBuf};

use futures::future::BoxFuture;
use parking_lot::Mutex;

use super::token::TokenSet;

#[derive(Debug, thiserror::Error)]
pub enum TokenStoreError {
    #[error("token store I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// Deliberately without the underlying serde message, which could quote the file.
    #[error("token store holds an unreadable token set")]
    Corrupt,
    #[error("token store backend error: {0}")]
    Backend(String),
}

/// Object-safe so one client can hold any store (`Arc<dyn TokenStore>`); implement with
/// `Box::pin(async move { ... })`.
pub trait TokenStore: Send + Sync + 'static {
    fn load(&self) -> BoxFuture<'_, Result<Option<TokenSet>, TokenStoreError>>;
    fn save<'a>(&'a self, tokens: &'a TokenSet) -> BoxFuture<'a, Result<(), TokenStoreError>>;
}

/// For client-credentials connections (nothing worth persisting) and tests.
#[derive(Debug, Default)]
pub struct MemoryTokenStore {
    tokens: Mutex<Option<TokenSet>>,
}

impl MemoryTokenStore {
    pub fn new(initial: Option<TokenSet>) -> Self {
        Self {
            tokens: Mutex::new(initial),
        }
    }

    pub fn get(&self) -> Option<TokenSet> {
        self.tokens.lock().clone()
    }

    pub fn set(&self, tokens: Option<TokenSet>) {
        *self.tokens.lock() = tokens;
    }
}

impl TokenStore for MemoryTokenStore {
    fn load(&self) -> BoxFuture<'_, Result<Option<TokenSet>, TokenStoreError>> {
        Box::pin(async move { Ok(self.get()) })
    }

    fn save<'a>(&'a self, tokens: &'a TokenSet) -> BoxFuture<'a, Result<(), TokenStoreError>> {
        Box::pin(async move {
            self.set(Some(tokens.clone()));
            Ok(())
        })
    }
}

/// A JSON file written atomically: a temporary file in the same directory (mode 0600),
/// fsync, rename over the old one, fsync the directory. A crash leaves either the old or
/// the new token set, never half of one.
#[derive(Debug, Clone)]
pub struct FileTokenStore {
    path: PathBuf,
}

impl FileTokenStore {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn read(path: &Path) -> Result<Option<TokenSet>, TokenStoreError> {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|_| TokenStoreError::Corrupt),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    fn write(path: &Path, bytes: &[u8]) -> Result<(), TokenStoreError> {
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
            _ => PathBuf::from("."),
        };
        let name = path
            .file_name()
            .ok_or_else(|| TokenStoreError::Backend("token file path has no file name".into()))?;
        let mut tmp_name = name.to_owned();
        tmp_name.push(format!(
            ".tmp-{}-{:016x}",
            std::process::id(),
            rand::random::<u64>()
        ));
        let tmp = dir.join(tmp_name);
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let result = (|| {
            let mut f = opts.open(&tmp)?;
            f.write_all(bytes)?;
            f.sync_all()?;
            drop(f);
            std::fs::rename(&tmp, path)?;
            #[cfg(unix)]
            std::fs::File::open(&dir)?.sync_all()?;
            Ok::<_, std::io::Error>(())
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        Ok(result?)
    }
}

impl TokenStore for FileTokenStore {
    fn load(&self) -> BoxFuture<'_, Result<Option<TokenSet>, TokenStoreError>> {
        let path = self.path.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || Self::read(&path))
                .await
                .map_err(|e| TokenStoreError::Backend(e.to_string()))?
        })
    }

    fn save<'a>(&'a self, tokens: &'a TokenSet) -> BoxFuture<'a, Result<(), TokenStoreError>> {
        let path = self.path.clone();
        let bytes = serde_json::to_vec(tokens);
        Box::pin(async move {
            let bytes = bytes.map_err(|_| TokenStoreError::Corrupt)?;
            tokio::task::spawn_blocking(move || Self::write(&path, &bytes))
                .await
                .map_err(|e| TokenStoreError::Backend(e.to_string()))?
        })
    }
}
