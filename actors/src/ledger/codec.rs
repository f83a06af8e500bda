//! Versioned JSON for every record value: `{"v":1,"body":…}`. The version lets a later
//! release read old records (or refuse them clearly) instead of misreading them.

use super::error::LedgerError;
use serde::{Deserialize, Serialize, de::DeserializeOwned};

/// The record format version written by this build.
pub const RECORD_VERSION: u32 = 1;

#[derive(Serialize)]
struct EnvelopeOut<'a, T> {
    v: u32,
    body: &'a T,
}

#[derive(Deserialize)]
struct EnvelopeIn<T> {
    v: u32,
    body: T,
}

#[derive(Deserialize)]
struct VersionProbe {
    v: u32,
}

pub(crate) fn encode<T: Serialize>(what: &'static str, value: &T) -> Result<Vec<u8>, LedgerError> {
    // Sized for a state (a few hundred bytes) so the writer's encodes grow it rarely.
    let mut out = Vec::with_capacity(ENCODE_CAPACITY);
    serde_json::to_writer(
        &mut out,
        &EnvelopeOut {
            v: RECORD_VERSION,
            body: value,
        },
    )
    .map_err(|e| LedgerError::Encode {
        what,
        reason: e.to_string(),
    })?;
    Ok(out)
}

/// The first allocation of an encoded value.
const ENCODE_CAPACITY: usize = 1024;

pub(crate) fn decode<T: DeserializeOwned>(
    what: &'static str,
    key: &str,
    bytes: &[u8],
) -> Result<T, LedgerError> {
    match serde_json::from_slice::<EnvelopeIn<T>>(bytes) {
        Ok(env) if env.v == RECORD_VERSION => Ok(env.body),
        Ok(env) => Err(LedgerError::RecordVersion {
            what,
            key: key.to_owned(),
            found: env.v,
            supported: RECORD_VERSION,
        }),
        Err(e) => match serde_json::from_slice::<VersionProbe>(bytes) {
            Ok(p) if p.v != RECORD_VERSION => Err(LedgerError::RecordVersion {
                what,
                key: key.to_owned(),
                found: p.v,
                supported: RECORD_VERSION,
            }),
            _ => Err(LedgerError::Decode {
                what,
                key: key.to_owned(),
                reason: e.to_string(),
            }),
        },
    }
}
