//! Signature checks for everything that arrives from outside, all over the raw body bytes and
//! all in constant time, before a byte of JSON is parsed.
//!
//! - Xero: `x-xero-signature` = base64(HMAC-SHA256(body, webhook key)).
//! - Plain Magento push: `x-tally-signature` = HMAC-SHA256(body, shared secret) as **lowercase or
//!   uppercase hex (64 chars)** or **standard base64 (44 chars)**; the two lengths cannot be
//!   confused, so senders may use whichever their tooling makes easy
//!   (`openssl dgst -sha256 -hmac "$SECRET"` prints hex).
//! - Adobe Commerce webhooks: `x-adobe-commerce-webhook-signature` = base64 RSA PKCS#1 v1.5
//!   SHA-256 signature of the body, checked against the PEM public key from the Commerce admin.

use aws_lc_rs::signature::{RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::daemon::config::ConfigError;

type HmacSha256 = Hmac<Sha256>;

fn mac(key: &SecretString, body: &[u8]) -> HmacSha256 {
    let mut m = HmacSha256::new_from_slice(key.expose_secret().as_bytes())
        .expect("HMAC takes keys of any length");
    m.update(body);
    m
}

/// Xero's scheme. A missing, non-base64 or wrong signature all answer `false`.
pub fn verify_xero(key: &SecretString, body: &[u8], header: Option<&str>) -> bool {
    let Some(sig) = header.and_then(|h| STANDARD.decode(h.trim()).ok()) else {
        return false;
    };
    mac(key, body).verify_slice(&sig).is_ok()
}

/// The signature Xero would send; used by tests and by operators checking a key.
pub fn sign_xero(key: &SecretString, body: &[u8]) -> String {
    STANDARD.encode(mac(key, body).finalize().into_bytes())
}

/// The plain push scheme, hex or base64 (see the module doc).
pub fn verify_tally(secret: &SecretString, body: &[u8], header: Option<&str>) -> bool {
    let Some(h) = header.map(str::trim) else {
        return false;
    };
    let sig = if h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()) {
        decode_hex(h)
    } else {
        STANDARD.decode(h).ok()
    };
    let Some(sig) = sig else { return false };
    mac(secret, body).verify_slice(&sig).is_ok()
}

/// Lowercase hex HMAC for `x-tally-signature`.
pub fn sign_tally_hex(secret: &SecretString, body: &[u8]) -> String {
    mac(secret, body)
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn decode_hex(h: &str) -> Option<Vec<u8>> {
    (0..h.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(h.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Compares a presented bearer token with the configured one without leaking where they differ
/// or how long the configured one is: both sides are hashed first, then compared in constant time.
pub fn token_matches(expected: &SecretString, presented: &str) -> bool {
    let a = Sha256::digest(expected.expose_secret().as_bytes());
    let b = Sha256::digest(presented.as_bytes());
    a.ct_eq(&b).into()
}

/// An Adobe Commerce webhook public key, parsed once at startup.
#[derive(Clone)]
pub struct RsaVerifier {
    der: Vec<u8>,
}

impl std::fmt::Debug for RsaVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RsaVerifier")
            .field("der_len", &self.der.len())
            .finish()
    }
}

impl RsaVerifier {
    /// Accepts `BEGIN PUBLIC KEY` (SubjectPublicKeyInfo, what Commerce shows) and
    /// `BEGIN RSA PUBLIC KEY` (PKCS#1).
    pub fn from_pem(pem: &str) -> Result<Self, ConfigError> {
        let bad = |reason: &str| ConfigError::BadPublicKey {
            reason: reason.to_owned(),
        };
        let mut in_block = false;
        let mut b64 = String::new();
        for line in pem.lines().map(str::trim) {
            if line.starts_with("-----BEGIN") {
                if !line.contains("PUBLIC KEY") {
                    return Err(bad("expected a PUBLIC KEY block"));
                }
                in_block = true;
            } else if line.starts_with("-----END") {
                break;
            } else if in_block {
                b64.push_str(line);
            }
        }
        if b64.is_empty() {
            return Err(bad("no -----BEGIN PUBLIC KEY----- block"));
        }
        let der = STANDARD
            .decode(b64)
            .map_err(|_| bad("the PEM body is not base64"))?;
        aws_lc_rs::rsa::PublicKey::from_der(&der).map_err(|e| bad(&e.to_string()))?;
        Ok(Self { der })
    }

    pub fn verify(&self, body: &[u8], header: Option<&str>) -> bool {
        let Some(sig) = header.and_then(|h| STANDARD.decode(h.trim()).ok()) else {
            return false;
        };
        UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, &self.der)
            .verify(body, &sig)
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(s: &str) -> SecretString {
        SecretString::from(s.to_owned())
    }

    #[test]
    fn xero_signature_round_trip_and_rejections() {
        let k = key("webhook-key");
        let body = br#"{"events":[],"firstEventSequence":0,"lastEventSequence":0,"entropy":"X"}"#;
        let sig = sign_xero(&k, body);
        assert!(verify_xero(&k, body, Some(&sig)));
        assert!(!verify_xero(&k, b"{}", Some(&sig)));
        assert!(!verify_xero(&key("other"), body, Some(&sig)));
        assert!(!verify_xero(&k, body, None));
        assert!(!verify_xero(&k, body, Some("")));
        assert!(!verify_xero(&k, body, Some("not base64!")));
    }

    #[test]
    fn tally_signature_accepts_hex_either_case_and_base64() {
        let s = key("shared");
        let body = br#"{"increment_id":"000000001"}"#;
        let hex = sign_tally_hex(&s, body);
        assert_eq!(hex.len(), 64);
        assert!(verify_tally(&s, body, Some(&hex)));
        assert!(verify_tally(&s, body, Some(&hex.to_uppercase())));
        let b64 = STANDARD.encode(decode_hex(&hex).unwrap());
        assert!(verify_tally(&s, body, Some(&b64)));
        assert!(!verify_tally(&s, b"{}", Some(&hex)));
        assert!(!verify_tally(&s, body, Some(&hex[..62])));
        assert!(!verify_tally(&s, body, None));
    }

    #[test]
    fn tokens_compare_by_value() {
        let t = key("abc");
        assert!(token_matches(&t, "abc"));
        assert!(!token_matches(&t, "abd"));
        assert!(!token_matches(&t, "abcd"));
        assert!(!token_matches(&t, ""));
    }

    #[test]
    fn pem_errors_name_the_key() {
        let err = RsaVerifier::from_pem("garbage").unwrap_err().to_string();
        assert!(err.contains("magento_webhook_public_key"), "{err}");
        let err =
            RsaVerifier::from_pem("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----")
                .unwrap_err();
        assert!(matches!(err, ConfigError::BadPublicKey { .. }));
    }
}
