//! The command line: the contract users and scripts rely on (see README).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "tally", version, about = "Keeps a Magento 2 store and a Xero organisation in agreement")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Sandbox, engine and console in one process, orders flowing.
    Demo(DemoArgs),
    /// Run the simulated Magento store and Xero organisation until interrupted.
    Sandbox(SandboxArgs),
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Seed for the generated store.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Orders already in the store when the demo starts.
    #[arg(long, default_value_t = 200)]
    pub orders: usize,
}

#[derive(Debug, Args)]
pub struct SandboxArgs {
    /// Address of the simulated Magento store.
    #[arg(long, default_value = "127.0.0.1:8081")]
    pub magento_listen: SocketAddr,
    /// Address of the simulated Xero organisation (identity and accounting).
    #[arg(long, default_value = "127.0.0.1:8082")]
    pub xero_listen: SocketAddr,
    /// Seed for the generated catalogue, customers and orders.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Number of orders to generate.
    #[arg(long, default_value_t = 100)]
    pub orders: usize,
    /// Simulated seconds per real second (60 makes a rate-limit minute pass in a second).
    #[arg(long, default_value_t = 1.0)]
    pub time_scale: f64,
    /// Fault profile: none, slow, flaky, resets, timeouts, malformed, storm, chaos.
    #[arg(long, default_value = "none")]
    pub faults: String,
    /// Write a tally config pointing at the sandbox to this path.
    #[arg(long)]
    pub write_config: Option<PathBuf>,
}
