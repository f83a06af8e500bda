//! Idempotency keys: derived from the request body, so a retry of the same batch always
//! carries the same key (Xero then replays its first answer) and a different batch never
//! reuses one.

use serde_json::Value;
use sha2::{Digest, Sha256};

pub fn sha256_hex(value: &Value) -> String {
    let bytes = serde_json::to_vec(value).unwrap_or_default();
    let digest = Sha256::digest(&bytes);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// `tally-<what>-<first 32 hex digits of sha256(body)>`: well under Xero's 128 characters.
pub fn batch_key(what: &str, bodies: &[Value]) -> String {
    let digest = sha256_hex(&Value::Array(bodies.to_vec()));
    format!("tally-{what}-{}", &digest[..32])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn same_body_same_key_and_different_body_different_key() {
        let a = [json!({"InvoiceNumber": "1"})];
        let b = [json!({"InvoiceNumber": "2"})];
        assert_eq!(batch_key("inv", &a), batch_key("inv", &a));
        assert_ne!(batch_key("inv", &a), batch_key("inv", &b));
        assert!(batch_key("inv", &a).len() <= 128);
    }
}
