//! OAuth 2.0: client credentials, single-flight refresh, rotation persisted before use,
//! invalid_grant recovery, PKCE, token storage, and secrets kept out of Debug and errors.

mod xero_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use base64::Engine;
use chrono::Utc;
use secrecy::ExposeSecret;
use serde_json::json;
use sha2::Digest;
use tally_actors::budget::Priority;
use tally_actors::xero::{
    FileTokenStore, Grant, MemoryTokenStore, TokenSet, TokenStore, TokenStoreError, XeroError,
    new_pkce_verifier, pkce_challenge,
};
use xero_support::{CLIENT_SECRET, Recorded, Reply, client, config, start, with_identity};

fn organisation_ok(r: &Recorded) -> Reply {
    assert_eq!(r.header("xero-tenant-id"), Some("tenant-1"));
    assert_eq!(r.header("accept"), Some("application/json"));
    Reply::json(
        200,
        json!({"Organisations": [{"Name": "Demo", "BaseCurrency": "NZD"}]}),
    )
}

fn expired(access: &str, refresh: &str) -> TokenSet {
    TokenSet {
        access_token: access.to_owned().into(),
        refresh_token: Some(refresh.to_owned().into()),
        expires_at: Utc::now() - chrono::Duration::minutes(5),
        scope: None,
    }
}

#[tokio::test]
async fn client_credentials_token_is_requested_once_for_concurrent_callers() {
    let (base, mock) = start(with_identity(organisation_ok)).await;
    let xero = client(config(&base, ""), Arc::new(MemoryTokenStore::default()));
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let x = xero.clone();
        tasks.push(tokio::spawn(async move {
            x.organisation(Priority::Lookup).await
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap()["Name"], "Demo");
    }
    let token_calls = mock.hits("/connect/token");
    assert_eq!(
        token_calls.len(),
        1,
        "single flight: one token request for 10 callers"
    );
    assert_eq!(mock.hits("/connections").len(), 1, "tenant discovered once");
    let form = token_calls[0].form();
    assert_eq!(form["grant_type"], "client_credentials");
    assert!(form["scope"].contains("accounting.invoices"));
    let basic = token_calls[0].header("authorization").unwrap();
    let expected =
        base64::engine::general_purpose::STANDARD.encode(format!("client-abc:{CLIENT_SECRET}"));
    assert_eq!(basic, format!("Basic {expected}"));
    assert!(
        mock.api_hits()
            .iter()
            .all(|r| r.bearer() == Some("access-1"))
    );
    assert_eq!(xero.counters().token_requests, 1);
    assert_eq!(xero.counters().calls, 10);
}

#[tokio::test]
async fn an_expiring_token_is_re_requested_before_use() {
    // 61 s lifetime with a 60 s safety margin: stale one second after issue.
    let issued = Arc::new(parking_lot::Mutex::new(0));
    let i = issued.clone();
    let (base, mock) = start(move |r: &Recorded| match r.path.as_str() {
        "/connect/token" => {
            *i.lock() += 1;
            Reply::json(
                200,
                json!({"access_token": format!("short-{}", i.lock()), "expires_in": 61}),
            )
        }
        _ => Reply::json(200, json!({"Organisations": [{"Name": "Demo"}]})),
    })
    .await;
    let xero = client(
        config(&base, "tenant_id = \"tenant-1\""),
        Arc::new(MemoryTokenStore::default()),
    );
    xero.organisation(Priority::Lookup).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    xero.organisation(Priority::Lookup).await.unwrap();
    assert_eq!(*issued.lock(), 2);
    let bearers: Vec<_> = mock
        .api_hits()
        .iter()
        .map(|r| r.bearer().unwrap().to_owned())
        .collect();
    assert_eq!(bearers, vec!["short-1", "short-2"]);
    assert!(
        mock.hits("/connections").is_empty(),
        "configured tenant needs no discovery"
    );
}

#[tokio::test]
async fn a_401_refreshes_once_then_gives_up() {
    let (base, mock) = start(with_identity(|r: &Recorded| {
        if r.bearer() == Some("access-1") {
            Reply::json(
                401,
                json!({"Title": "Unauthorized", "Detail": "TokenExpired"}),
            )
        } else {
            organisation_ok(r)
        }
    }))
    .await;
    let xero = client(config(&base, ""), Arc::new(MemoryTokenStore::default()));
    xero.organisation(Priority::Lookup).await.unwrap();
    assert_eq!(mock.hits("/connect/token").len(), 2);
    assert_eq!(mock.api_hits().len(), 2);

    let (base, mock) = start(with_identity(|_| {
        Reply::json(401, json!({"Title": "Unauthorized"}))
    }))
    .await;
    let xero = client(config(&base, ""), Arc::new(MemoryTokenStore::default()));
    let err = xero.organisation(Priority::Lookup).await.unwrap_err();
    assert!(matches!(err, XeroError::Unauthorized), "{err:?}");
    assert!(err.failure().is_permanent());
    assert_eq!(
        mock.api_hits().len(),
        2,
        "one retry after one refresh, no more"
    );
}

const AUTH_CODE: &str = "grant = \"authorization_code\"\nredirect_uri = \"http://127.0.0.1:9/callback\"\ntenant_id = \"tenant-1\"";

#[tokio::test]
async fn rotated_tokens_are_persisted_before_use_and_refreshed_once() {
    let store = Arc::new(MemoryTokenStore::new(Some(expired(
        "access-old",
        "refresh-1",
    ))));
    let persisted_before_use = Arc::new(AtomicBool::new(true));
    let (s, ok) = (store.clone(), persisted_before_use.clone());
    let (base, mock) = start(move |r: &Recorded| match r.path.as_str() {
        "/connect/token" => {
            let form = r.form();
            assert_eq!(form["grant_type"], "refresh_token");
            if form["refresh_token"] == "refresh-1" {
                Reply::json(
                    200,
                    json!({"access_token": "access-2", "refresh_token": "refresh-2", "expires_in": 1800}),
                )
                .after(Duration::from_millis(100))
            } else {
                Reply::json(400, json!({"error": "invalid_grant"}))
            }
        }
        _ => {
            let stored = s.get().unwrap();
            if stored.access_token.expose_secret() != r.bearer().unwrap() {
                ok.store(false, Ordering::SeqCst);
            }
            organisation_ok(r)
        }
    })
    .await;
    let xero = client(config(&base, AUTH_CODE), store.clone());
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let x = xero.clone();
        tasks.push(tokio::spawn(async move {
            x.organisation(Priority::Invoice).await
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(
        mock.hits("/connect/token").len(),
        1,
        "one refresh for ten callers"
    );
    assert!(
        persisted_before_use.load(Ordering::SeqCst),
        "a token was used before it was stored"
    );
    let stored = store.get().unwrap();
    assert_eq!(stored.refresh_token.unwrap().expose_secret(), "refresh-2");
    assert!(
        mock.api_hits()
            .iter()
            .all(|r| r.bearer() == Some("access-2"))
    );
}

#[tokio::test]
async fn invalid_grant_rereads_the_store_before_asking_to_reconnect() {
    let store = Arc::new(MemoryTokenStore::new(Some(expired(
        "access-old",
        "refresh-1",
    ))));
    let s = store.clone();
    let (base, mock) = start(move |r: &Recorded| match r.path.as_str() {
        "/connect/token" => match r.form()["refresh_token"].as_str() {
            // Another process rotated refresh-1 a moment ago and stored its result.
            "refresh-1" => {
                s.set(Some(expired("access-other", "refresh-2")));
                Reply::json(400, json!({"error": "invalid_grant"}))
            }
            "refresh-2" => Reply::json(
                200,
                json!({"access_token": "access-3", "refresh_token": "refresh-3", "expires_in": 1800}),
            ),
            _ => Reply::json(400, json!({"error": "invalid_grant"})),
        },
        _ => organisation_ok(r),
    })
    .await;
    let xero = client(config(&base, AUTH_CODE), store.clone());
    xero.organisation(Priority::Lookup).await.unwrap();
    let refreshes: Vec<String> = mock
        .hits("/connect/token")
        .iter()
        .map(|r| r.form()["refresh_token"].clone())
        .collect();
    assert_eq!(refreshes, vec!["refresh-1", "refresh-2"]);
    assert_eq!(
        store.get().unwrap().refresh_token.unwrap().expose_secret(),
        "refresh-3"
    );
    assert_eq!(mock.api_hits()[0].bearer(), Some("access-3"));

    // Nothing newer in the store: a person has to reconnect.
    let store = Arc::new(MemoryTokenStore::new(Some(expired(
        "access-old",
        "refresh-dead",
    ))));
    let (base, mock) = start(|r: &Recorded| match r.path.as_str() {
        "/connect/token" => Reply::json(400, json!({"error": "invalid_grant"})),
        _ => organisation_ok(r),
    })
    .await;
    let xero = client(config(&base, AUTH_CODE), store);
    let err = xero.organisation(Priority::Lookup).await.unwrap_err();
    assert!(matches!(err, XeroError::ReconnectRequired), "{err:?}");
    assert_eq!(mock.hits("/connect/token").len(), 1);
    assert!(mock.api_hits().is_empty());

    // No stored tokens at all: also reconnect, without calling anyone.
    let xero = client(
        config(&base, AUTH_CODE),
        Arc::new(MemoryTokenStore::default()),
    );
    assert!(matches!(
        xero.organisation(Priority::Lookup).await,
        Err(XeroError::ReconnectRequired)
    ));
}

#[tokio::test]
async fn pkce_consent_url_and_code_exchange() {
    let (base, mock) = start(|r: &Recorded| match r.path.as_str() {
        "/connect/token" => Reply::json(
            200,
            json!({"access_token": "access-code", "refresh_token": "refresh-code", "expires_in": 1800, "scope": "offline_access accounting.invoices"}),
        ),
        _ => organisation_ok(r),
    })
    .await;
    let store = Arc::new(MemoryTokenStore::default());
    let xero = client(config(&base, AUTH_CODE), store.clone());
    let verifier = new_pkce_verifier();
    assert!((43..=128).contains(&verifier.len()));
    assert_ne!(verifier, new_pkce_verifier());

    let url = url::Url::parse(&xero.authorize_url("state-xyz", &verifier).unwrap()).unwrap();
    assert_eq!(url.path(), "/connect/authorize");
    let q: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(verifier.as_bytes()));
    assert_eq!(q["code_challenge"], challenge);
    assert_eq!(pkce_challenge(&verifier), challenge);
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["client_id"], "client-abc");
    assert_eq!(q["state"], "state-xyz");
    assert_eq!(q["redirect_uri"], "http://127.0.0.1:9/callback");

    xero.exchange_code("the-code", &verifier).await.unwrap();
    let form = mock.hits("/connect/token")[0].form();
    assert_eq!(form["grant_type"], "authorization_code");
    assert_eq!(form["code"], "the-code");
    assert_eq!(form["code_verifier"], verifier);
    assert_eq!(form["redirect_uri"], "http://127.0.0.1:9/callback");
    let saved = store.get().expect("exchanged tokens are persisted");
    assert_eq!(saved.refresh_token.unwrap().expose_secret(), "refresh-code");
    assert_eq!(
        saved.scope.as_deref(),
        Some("offline_access accounting.invoices")
    );
    // The exchanged token is used without another token call.
    xero.organisation(Priority::Lookup).await.unwrap();
    assert_eq!(mock.hits("/connect/token").len(), 1);
    assert_eq!(mock.api_hits()[0].bearer(), Some("access-code"));
}

#[tokio::test]
async fn secrets_never_reach_debug_output_or_errors() {
    let tokens = TokenSet {
        access_token: "acc-SECRET-123".to_owned().into(),
        refresh_token: Some("ref-SECRET-456".to_owned().into()),
        expires_at: Utc::now(),
        scope: Some("accounting.invoices".into()),
    };
    let dbg = format!("{tokens:?}");
    assert!(
        !dbg.contains("acc-SECRET-123") && !dbg.contains("ref-SECRET-456"),
        "{dbg}"
    );
    assert!(dbg.contains("REDACTED"));

    let (base, _mock) = start(|r: &Recorded| match r.path.as_str() {
        "/connect/token" => Reply::json(
            401,
            json!({"error": "invalid_client", "error_description": format!("client secret {CLIENT_SECRET} is wrong")}),
        ),
        _ => organisation_ok(r),
    })
    .await;
    let cfg = config(&base, "");
    let dbg = format!("{cfg:?}");
    assert!(!dbg.contains(CLIENT_SECRET), "{dbg}");
    let xero = client(cfg, Arc::new(MemoryTokenStore::new(Some(tokens))));
    let err = xero.organisation(Priority::Lookup).await.unwrap_err();
    assert!(
        matches!(err, XeroError::TokenRequest { status: 401, .. }),
        "{err:?}"
    );
    for text in [err.to_string(), format!("{err:?}"), format!("{xero:?}")] {
        assert!(!text.contains(CLIENT_SECRET), "{text}");
        assert!(
            !text.contains("acc-SECRET-123") && !text.contains("ref-SECRET-456"),
            "{text}"
        );
    }
    assert!(err.to_string().contains("invalid_client"));
}

#[tokio::test]
async fn file_store_writes_atomically_with_private_permissions() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("xero-tokens.json");
    let store = FileTokenStore::new(&path);
    assert!(store.load().await.unwrap().is_none());
    store.save(&expired("a-1", "r-1")).await.unwrap();
    store.save(&expired("a-2", "r-2")).await.unwrap();
    let loaded = store.load().await.unwrap().unwrap();
    assert_eq!(loaded.access_token.expose_secret(), "a-2");
    assert_eq!(loaded.refresh_token.unwrap().expose_secret(), "r-2");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 1, "no temporary file left behind: {names:?}");

    std::fs::write(&path, b"{\"access_token\": \"leaky-secret\"").unwrap();
    let err = store.load().await.unwrap_err();
    assert!(matches!(err, TokenStoreError::Corrupt));
    assert!(!err.to_string().contains("leaky-secret"));
}

#[test]
fn config_parses_the_sandbox_table_and_validates() {
    let cfg = config(
        "http://127.0.0.1:1",
        "time_scale = \"600\"\ntimeout_secs = \"5\"",
    );
    assert_eq!(cfg.grant, Grant::ClientCredentials);
    assert_eq!(cfg.time_scale, 600.0);
    assert_eq!(cfg.timeout_secs, 5);
    assert_eq!(cfg.budget_limits().time_scale, 600.0);
    assert_eq!(cfg.budget_limits().per_minute, 60);
    cfg.validate().unwrap();

    let cfg = config(
        "http://127.0.0.1:1",
        "limits = { per_minute = 30 }\ntime_scale = 2.5",
    );
    assert_eq!(
        (
            cfg.budget_limits().per_minute,
            cfg.budget_limits().concurrent
        ),
        (30, 5)
    );
    assert_eq!(cfg.budget_limits().time_scale, 2.5);

    let bad: Result<tally_actors::xero::XeroConfig, _> = toml::from_str(
        "api_url = \"http://x\"\nidentity_url = \"http://x\"\nclient_id = \"c\"\nclient_sercet = \"typo\"",
    );
    assert!(bad.is_err(), "unknown keys are refused");

    let cfg = config("http://127.0.0.1:1", "grant = \"authorization_code\"");
    assert!(
        matches!(cfg.validate(), Err(XeroError::Config(_))),
        "needs redirect_uri"
    );
    let cfg = config("http://127.0.0.1:1", "time_scale = 0");
    assert!(cfg.validate().is_err());
}
