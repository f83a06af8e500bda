//! `tally sandbox` and, until the engine lands, `tally demo`.
//!
//! `tally sandbox` prints one `name: value` line per fact so scripts (and the CLI test) can
//! read the bound addresses, which matter when the ports were chosen by the OS (`:0`).

use std::io::Write;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use tally_fixtures::faults::FaultProfile;
use tally_fixtures::sandbox::{Sandbox, SandboxOptions};

use crate::cli::{DemoArgs, SandboxArgs};

/// Resolves `--faults`, naming the valid profiles when the name is unknown.
pub fn fault_profile(name: &str) -> anyhow::Result<FaultProfile> {
    FaultProfile::named(name).ok_or_else(|| {
        anyhow::anyhow!(
            "unknown fault profile {name:?}; valid profiles are: {}",
            FaultProfile::NAMES.join(", ")
        )
    })
}

fn describe(sb: &Sandbox, out: &mut impl Write) -> std::io::Result<()> {
    let m = sb.magento.config();
    let x = sb.xero.config();
    let c = sb.counts();
    writeln!(out, "magento: {}", sb.magento_base_url())?;
    writeln!(out, "magento-admin: {}", sb.magento_admin_url())?;
    writeln!(out, "xero-api: {}", sb.xero_api_url())?;
    writeln!(out, "xero-identity: {}", sb.xero_identity_url())?;
    writeln!(out, "xero-admin: {}", sb.xero_admin_url())?;
    // The sandbox's own fixed, fake credentials: printing them is the point.
    writeln!(
        out,
        "magento-oauth1: consumer_key={} consumer_secret={} access_token={} access_token_secret={}",
        m.consumer_key, m.consumer_secret, m.access_token, m.access_token_secret
    )?;
    writeln!(
        out,
        "magento-admin-login: username={} password={}",
        m.admin_username, m.admin_password
    )?;
    writeln!(
        out,
        "xero-app: client_id={} client_secret={} tenant_id={} webhook_key={}",
        x.client_id, x.client_secret, x.tenant_id, x.webhook_key
    )?;
    writeln!(
        out,
        "seeded: products={} customers={} orders={} xero_accounts={} xero_tax_rates={} xero_items={} xero_contacts={}",
        c.products,
        c.customers,
        c.orders,
        c.xero_accounts,
        c.xero_tax_rates,
        c.xero_items,
        c.xero_contacts
    )?;
    writeln!(out, "time-scale: {}", sb.clock().scale())
}

/// Resolves on Ctrl-C or SIGTERM.
async fn interrupted() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

pub async fn run(args: SandboxArgs) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let faults = fault_profile(&args.faults)?;
    let sb = Sandbox::start(SandboxOptions {
        magento_listen: args.magento_listen,
        xero_listen: args.xero_listen,
        seed: args.seed,
        orders: args.orders,
        time_scale: args.time_scale,
        faults,
        allow_public: args.allow_public,
        ..SandboxOptions::default()
    })
    .await?;
    let mut out = std::io::stdout().lock();
    describe(&sb, &mut out)?;
    writeln!(out, "faults: {}", args.faults)?;
    if let Some(path) = &args.write_config {
        let ledger = args
            .ledger
            .clone()
            .unwrap_or_else(|| path.with_file_name("tally.redb"));
        sb.write_config(path, &ledger)
            .with_context(|| format!("cannot write the config to {}", path.display()))?;
        writeln!(out, "config: {}", path.display())?;
    }
    writeln!(
        out,
        "ready: {} ms (Ctrl-C to stop)",
        started.elapsed().as_millis()
    )?;
    out.flush()?;
    drop(out);

    interrupted().await;
    eprintln!("stopping the sandbox");
    sb.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

/// One status line: where things are and how much traffic each simulator has served.
fn status_line(sb: &Sandbox) -> String {
    let total = |v: &serde_json::Value| -> u64 {
        v["requests"]
            .as_object()
            .map(|routes| {
                routes
                    .values()
                    .filter_map(|s| s.as_object())
                    .flat_map(|s| s.values())
                    .filter_map(|n| n.as_u64())
                    .sum()
            })
            .unwrap_or(0)
    };
    let c = sb.counters();
    format!(
        "magento {} · xero {} · requests {}/{} · 429s {} · sim {}",
        sb.magento_addr(),
        sb.xero_addr(),
        total(&c["magento"]),
        total(&c["xero"]),
        c["xero"]["rate_limited_429"].as_u64().unwrap_or(0),
        sb.clock().now().format("%Y-%m-%d %H:%M:%S"),
    )
}

pub async fn demo(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let sb = Sandbox::start(SandboxOptions {
        seed: args.seed,
        orders: args.orders,
        ..SandboxOptions::default()
    })
    .await?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(
            out,
            "tally demo: the engine is not wired in yet, so this runs the sandbox alone."
        )?;
        describe(&sb, &mut out)?;
        out.flush()?;
    }
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let stop = interrupted();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            _ = tick.tick() => {
                let mut out = std::io::stdout().lock();
                write!(out, "\r\x1b[2K{}", status_line(&sb))?;
                out.flush()?;
            }
        }
    }
    println!();
    sb.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_fault_profile_lists_the_valid_ones() {
        let err = fault_profile("gremlins").unwrap_err().to_string();
        assert!(err.contains("gremlins"));
        for name in FaultProfile::NAMES {
            assert!(err.contains(name), "{err}");
        }
        assert_eq!(
            fault_profile("storm").unwrap(),
            FaultProfile::named("storm").unwrap()
        );
    }
}
