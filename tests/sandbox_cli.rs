//! End to end: the real `tally sandbox` binary on OS-chosen ports, read back from its
//! stdout, answering HTTP and writing a config that points at itself.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

/// Kills the child even when an assertion fails first.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `tally sandbox ARGS` and collects its `name: value` lines up to `ready:`.
fn start(args: &[&str]) -> (Running, HashMap<String, String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tally"))
        .arg("sandbox")
        .args([
            "--magento-listen",
            "127.0.0.1:0",
            "--xero-listen",
            "127.0.0.1:0",
        ])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn tally");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let running = Running(child);
    let mut facts = HashMap::new();
    loop {
        // A bound on a hang, not a speed target.
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("tally sandbox printed `ready:`");
        if let Some((k, v)) = line.split_once(": ") {
            facts.insert(k.to_owned(), v.to_owned());
        }
        if line.starts_with("ready:") {
            return (running, facts);
        }
    }
}

fn kv(line: &str) -> HashMap<&str, &str> {
    line.split_whitespace()
        .filter_map(|p| p.split_once('='))
        .collect()
}

#[tokio::test]
async fn sandbox_serves_on_printed_addresses_and_writes_its_config() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tally.toml");
    let (_child, facts) = start(&[
        "--orders",
        "500",
        "--seed",
        "9",
        "--time-scale",
        "60",
        "--write-config",
        config.to_str().unwrap(),
    ]);

    let magento = &facts["magento"];
    assert!(
        magento.starts_with("http://127.0.0.1:") && magento.ends_with("/rest/default"),
        "{magento}"
    );
    assert!(!magento.contains(":0/"), "the actual port is printed");
    let xero_api = &facts["xero-api"];
    let xero_identity = &facts["xero-identity"];
    assert_eq!(xero_api, &format!("{xero_identity}/api.xro/2.0"));
    assert!(facts["magento-admin"].ends_with("/_sandbox/"));
    assert!(facts["seeded"].contains("orders=500"));
    let login = kv(&facts["magento-admin-login"]);
    let app = kv(&facts["xero-app"]);

    let client = reqwest::Client::new();
    let token: String = client
        .post(format!("{magento}/V1/integration/admin/token"))
        .json(&serde_json::json!({ "username": login["username"], "password": login["password"] }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let orders: Value = client
        .get(format!("{magento}/V1/orders?searchCriteria[pageSize]=1"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(orders["total_count"], 500);

    let counters: Value = client
        .get(format!("{}counters", facts["xero-admin"]))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(counters.is_object());

    let text = std::fs::read_to_string(&config).unwrap();
    let t: toml::Table = toml::from_str(&text).unwrap();
    assert_eq!(t["magento"]["base_url"].as_str(), Some(magento.as_str()));
    assert_eq!(t["xero"]["api_url"].as_str(), Some(xero_api.as_str()));
    assert_eq!(
        t["xero"]["identity_url"].as_str(),
        Some(xero_identity.as_str())
    );
    assert_eq!(t["xero"]["client_id"].as_str(), Some(app["client_id"]));
    assert_eq!(t["xero"]["time_scale"].as_float(), Some(60.0));
    assert_eq!(
        t["ledger"]["path"].as_str(),
        dir.path().join("tally.redb").to_str()
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&config).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }

    // The credentials in the written config are the ones the Xero simulator accepts.
    let x = &t["xero"];
    let resp = client
        .post(format!("{xero_identity}/connect/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", x["client_id"].as_str().unwrap()),
            ("client_secret", x["client_secret"].as_str().unwrap()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

#[test]
fn unknown_fault_profile_fails_with_the_valid_names() {
    let out = Command::new(env!("CARGO_BIN_EXE_tally"))
        .args([
            "sandbox",
            "--magento-listen",
            "127.0.0.1:0",
            "--xero-listen",
            "127.0.0.1:0",
            "--faults",
            "gremlins",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("gremlins") && err.contains("flaky") && err.contains("chaos"),
        "{err}"
    );
}

#[test]
fn refuses_a_public_address_without_allow_public() {
    let out = Command::new(env!("CARGO_BIN_EXE_tally"))
        .args([
            "sandbox",
            "--magento-listen",
            "0.0.0.0:0",
            "--xero-listen",
            "127.0.0.1:0",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("loopback"));
}
