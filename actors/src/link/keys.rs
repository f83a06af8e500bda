//! Idempotency keys: derived from the request body, so a retry of the same batch always
//! carries the same key (Xero then replays its first answer) and a different batch never
//! reuses one.

use serde_json::Value;
use sha2::{Digest, Sha256};

/// `tally-<what>-<first 32 hex digits of sha256(body)>`: well under Xero's 128 characters.
/// The body is the JSON array of `bodies` (see [`batch_digests`]).
pub fn batch_key<'a>(what: &str, bodies: impl IntoIterator<Item = &'a Value>) -> String {
    batch_digests(what, bodies).0
}

/// [`batch_key`] of `bodies` and the sha256 (hex) of each one's JSON, with each body written
/// once: the batch's array is hashed from the elements' own text (`[`, the elements joined by
/// `,`, `]`, byte for byte what serialising the array writes). Writing every body to JSON
/// twice (in the array, then alone) was a tenth of the cost of committing a batch's intents.
pub fn batch_digests<'a>(
    what: &str,
    bodies: impl IntoIterator<Item = &'a Value>,
) -> (String, Vec<String>) {
    let mut batch = Sha256::new();
    batch.update(b"[");
    let mut each = Vec::new();
    for (i, body) in bodies.into_iter().enumerate() {
        let text = serde_json::to_vec(body).unwrap_or_default();
        if i > 0 {
            batch.update(b",");
        }
        batch.update(&text);
        each.push(hex::encode(Sha256::digest(&text)));
    }
    batch.update(b"]");
    let digest = hex::encode(batch.finalize());
    (format!("tally-{what}-{}", &digest[..32]), each)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The hash of a value's JSON, computed the plain way, to check the one-pass digests.
    fn sha256_hex(value: &(impl serde::Serialize + ?Sized)) -> String {
        hex::encode(Sha256::digest(serde_json::to_vec(value).unwrap()))
    }

    #[test]
    fn same_body_same_key_and_different_body_different_key() {
        let a = [json!({"InvoiceNumber": "1"})];
        let b = [json!({"InvoiceNumber": "2"})];
        assert_eq!(batch_key("inv", &a), batch_key("inv", &a));
        assert_ne!(batch_key("inv", &a), batch_key("inv", &b));
        assert!(batch_key("inv", &a).len() <= 128);
        // The key of a batch is the hash of its JSON array, whatever holds the bodies.
        let both = [a[0].clone(), b[0].clone()];
        assert_eq!(
            batch_key("inv", &both),
            format!("tally-inv-{}", &sha256_hex(&json!(both))[..32])
        );
        assert_eq!(sha256_hex(&json!([])).len(), 64);
    }

    /// Keys already committed as intents must be re-derived identically: the one-pass digests
    /// equal the key of the array and the hash of each body, for none, one and several.
    #[test]
    fn batch_digests_equal_the_key_and_hashes_computed_apart() {
        let bodies = [
            json!({"InvoiceNumber": "1", "LineItems": [{"UnitAmount": "10.00"}]}),
            json!({"InvoiceNumber": "2", "Reference": "a \"quoted\" é"}),
            json!([]),
        ];
        for n in 0..=bodies.len() {
            let part = &bodies[..n];
            let (key, each) = batch_digests("inv", part);
            assert_eq!(
                key,
                format!("tally-inv-{}", &sha256_hex(part)[..32]),
                "{n} bodies"
            );
            let apart: Vec<String> = part.iter().map(sha256_hex).collect();
            assert_eq!(each, apart, "{n} bodies");
        }
    }
}
