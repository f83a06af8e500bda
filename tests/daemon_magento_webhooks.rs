//! `POST /webhooks/magento`: Adobe Commerce RSA signatures and shared-secret pushes.

mod daemon_support;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{KeyPair, RSA_PKCS1_SHA256, RsaKeyPair};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use daemon_support::*;
use secrecy::SecretString;
use tally::daemon::signature::sign_tally_hex;
use tally::daemon::{DaemonConfig, MagentoChange, Settings};

const SECRET: &str = "magento-push-secret-77";

fn pem(key: &RsaKeyPair) -> String {
    let der = key.public_key().as_der().unwrap();
    let b64 = STANDARD.encode(der.as_ref());
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    format!(
        "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
        lines.join("\n")
    )
}

fn rsa_sign(key: &RsaKeyPair, body: &[u8]) -> String {
    let mut sig = vec![0; key.public_modulus_len()];
    key.sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), body, &mut sig)
        .unwrap();
    STANDARD.encode(sig)
}

fn settings(public_key: Option<String>) -> Settings {
    Settings {
        daemon: DaemonConfig {
            listen: "127.0.0.1:0".into(),
            magento_webhook_secret: secret(SECRET),
            magento_webhook_public_key: public_key,
            ..Default::default()
        },
        ..Default::default()
    }
}

async fn post(r: &Running, body: &[u8], header: Option<(&str, String)>) -> (u16, String) {
    let mut rb = r
        .http
        .post(format!("{}/webhooks/magento", r.base))
        .body(body.to_vec());
    if let Some((name, value)) = header {
        rb = rb.header(name, value);
    }
    let res = rb.send().await.unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

#[tokio::test]
async fn adobe_commerce_rsa_signed_push_is_accepted_and_tampering_rejected() {
    let key = RsaKeyPair::generate(KeySize::Rsa2048).unwrap();
    let r = start(settings(Some(pem(&key)))).await;
    let body = br#"{"eventName":"observer.sales_order_save_after","data":{"order":{"entity_id":"42","increment_id":"000000042"}}}"#;
    let sig = rsa_sign(&key, body);

    let (status, text) = post(
        &r,
        body,
        Some(("x-adobe-commerce-webhook-signature", sig.clone())),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&text).unwrap()["op"],
        "success"
    );

    let tampered = String::from_utf8(body.to_vec())
        .unwrap()
        .replace("000000042", "000000043");
    assert_eq!(
        post(
            &r,
            tampered.as_bytes(),
            Some(("x-adobe-commerce-webhook-signature", sig))
        )
        .await
        .0,
        401
    );
    let other = RsaKeyPair::generate(KeySize::Rsa2048).unwrap();
    assert_eq!(
        post(
            &r,
            body,
            Some(("x-adobe-commerce-webhook-signature", rsa_sign(&other, body)))
        )
        .await
        .0,
        401
    );
    assert_eq!(post(&r, body, None).await.0, 401);

    eventually("the signed change reaches the engine", || {
        r.engine.magento_changes.lock().len() == 1
    })
    .await;
    assert_eq!(
        r.engine.magento_changes.lock()[0],
        MagentoChange {
            entity_id: Some(42),
            increment_id: Some("000000042".into())
        }
    );
}

#[tokio::test]
async fn shared_secret_push_in_hex_or_base64() {
    let r = start(settings(None)).await;
    let secret = SecretString::from(SECRET.to_owned());
    let a = br#"{"entity_id": 7, "increment_id": "000000007"}"#;
    assert_eq!(
        post(
            &r,
            a,
            Some(("x-tally-signature", sign_tally_hex(&secret, a)))
        )
        .await
        .0,
        200
    );

    let b = br#"{"increment_id": "000000008"}"#;
    let hex = sign_tally_hex(&secret, b);
    let raw: Vec<u8> = (0..32)
        .map(|i| u8::from_str_radix(&hex[i * 2..i * 2 + 2], 16).unwrap())
        .collect();
    assert_eq!(
        post(&r, b, Some(("x-tally-signature", STANDARD.encode(raw))))
            .await
            .0,
        200
    );

    let wrong = SecretString::from("guess".to_owned());
    assert_eq!(
        post(
            &r,
            a,
            Some(("x-tally-signature", sign_tally_hex(&wrong, a)))
        )
        .await
        .0,
        401
    );
    // An RSA header without a configured public key is not a way around the secret.
    assert_eq!(
        post(
            &r,
            a,
            Some(("x-adobe-commerce-webhook-signature", "AAAA".into()))
        )
        .await
        .0,
        401
    );
    // Signed but without an order id: a 400 that says why.
    let c = br#"{"hello": "world"}"#;
    let (status, text) = post(
        &r,
        c,
        Some(("x-tally-signature", sign_tally_hex(&secret, c))),
    )
    .await;
    assert_eq!(status, 400);
    assert!(text.contains("entity_id"), "{text}");

    eventually("two changes", || r.engine.magento_changes.lock().len() == 2).await;
    let got = r.engine.magento_changes.lock().clone();
    assert_eq!(got[0].entity_id, Some(7));
    assert_eq!(got[1].increment_id.as_deref(), Some("000000008"));
}

#[tokio::test]
async fn bad_public_key_refuses_to_start() {
    let engine = std::sync::Arc::new(FakeEngine::default());
    let err = tally::daemon::Daemon::start(
        settings(Some(
            "-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----".into(),
        )),
        engine,
        None,
    )
    .await
    .err()
    .expect("refused");
    assert!(
        err.to_string().contains("magento_webhook_public_key"),
        "{err}"
    );
}
