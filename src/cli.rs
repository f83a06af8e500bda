//! The command line: the contract users and scripts rely on (see README).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "tally",
    version,
    about = "Keeps a Magento 2 store and a Xero organisation in agreement"
)]
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
    /// Sync orders, contacts and payments from Magento into Xero.
    Sync(SyncArgs),
    /// Dry run for one order: the exact Xero requests, nothing sent.
    Plan(PlanArgs),
    /// Check every account code, tax type, bank account, currency and category rule in the
    /// config against the live organisation and store.
    Check(ConfigArg),
    /// Inspect and act on the dead-letter queue.
    Dlq(DlqArgs),
    /// One reconciliation pass now: what Xero changed since the last one, compared with
    /// Magento; a JSON summary, exit 1 if anything needs attention (through the daemon when
    /// one runs).
    Reconcile(ReconcileArgs),
    /// Export the discrepancies between Magento and Xero: the open ones (CSV, JSON, Markdown
    /// or HTML), or a period's history (--history).
    Report(ReportArgs),
    /// Acknowledge an open discrepancy: accepted for now, it stops counting in alerts until
    /// its detail changes; through the daemon when one runs.
    Ack(AckArgs),
    /// Fix a mapping gap: write one rule into [mapping] (checked against the organisation
    /// first) and retry every dead letter it unblocks; through the daemon when one runs.
    Fix(crate::cmd::fix::FixArgs),
    /// Benchmarks that print numbers (JSON).
    Bench(BenchArgs),
    /// Headless: ingest, sync, reconcile, webhooks, control API and /metrics until SIGTERM.
    Daemon(DaemonArgs),
    /// The operator console, in-process (--config) or attached to a running daemon (--attach).
    Console(ConsoleArgs),
    /// Ask the running daemon of this config how it is doing (exit 1 when not ready).
    Status(ConfigArg),
    /// Make the running daemon of this config re-read its mapping rules.
    Reload(ConfigArg),
}

#[derive(Debug, Args)]
pub struct DaemonArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// Listen address, overriding [daemon] listen (a non-loopback address needs a token).
    #[arg(long)]
    pub listen: Option<String>,
}

#[derive(Debug, Args)]
pub struct ConsoleArgs {
    /// Run the engine in this process from this config.
    #[arg(long, short, conflicts_with = "attach")]
    pub config: Option<PathBuf>,
    /// Attach to a running daemon's control API, e.g. 127.0.0.1:8787.
    #[arg(long)]
    pub attach: Option<String>,
    /// The daemon's [daemon] token (prefer the environment variable: arguments show in `ps`).
    #[arg(long, env = "TALLY_DAEMON_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

#[derive(Debug, Args)]
pub struct ConfigArg {
    /// Path to the tally config (TOML).
    #[arg(long, short, env = "TALLY_CONFIG", default_value = "tally.toml")]
    pub config: PathBuf,
}

#[derive(Debug, Args)]
pub struct SyncArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// Catch up, print a summary and exit (non-zero if anything was dead-lettered).
    #[arg(long)]
    pub once: bool,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// The Magento order number (increment id), e.g. 000000123.
    #[arg(long)]
    pub order: String,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// `csv` (one row per discrepancy, for a spreadsheet), `json` (for scripts), `md` or
    /// `html` (for people: grouped by kind, each saying what it means and what to do).
    #[arg(long, value_enum, default_value_t = ReportFormat::Csv)]
    pub format: ReportFormat,
    /// Write to this file instead of standard output.
    #[arg(long, visible_alias = "out")]
    pub output: Option<std::path::PathBuf>,
    /// Every discrepancy raised, changed, acknowledged or closed in a period (from the
    /// orders' audit trails) instead of the open ones: a period close's report. CSV or JSON.
    #[arg(long)]
    pub history: bool,
    /// With --history: from this day (`2026-11-01`, UTC) or instant (RFC 3339).
    #[arg(long, requires = "history")]
    pub since: Option<String>,
    /// With --history: up to this day or instant (exclusive).
    #[arg(long, requires = "history")]
    pub until: Option<String>,
}

#[derive(Debug, Args)]
pub struct ReconcileArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// Compare every invoice since the ledger began, not only those changed since the last
    /// pass (runs here: stop the daemon first).
    #[arg(long)]
    pub full: bool,
}

#[derive(Debug, Args)]
pub struct AckArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// The discrepancy's key, as `tally report` lists it, e.g. total:order:000000123.
    pub key: String,
    /// Why the difference is acceptable: kept in the order's audit trail and the report.
    #[arg(long)]
    pub note: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    Csv,
    Json,
    Md,
    Html,
}

#[derive(Debug, Args)]
pub struct DlqArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    #[command(subcommand)]
    pub action: DlqAction,
}

#[derive(Debug, Subcommand)]
pub enum DlqAction {
    /// List dead letters: record, field and remote message.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Send dead letters back into the flow (after fixing the cause).
    Retry {
        /// The dead letter's key (as shown by `list`), e.g. order:000000123.
        id: Option<String>,
        /// Retry every dead letter.
        #[arg(long, conflicts_with = "id")]
        all: bool,
    },
    /// Remove a dead letter for good (the record stays out of Xero).
    Drop { id: String },
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub what: BenchWhat,
}

#[derive(Debug, Subcommand)]
pub enum BenchWhat {
    /// Sandbox plus engine in one process: a backfill of N orders.
    Backfill {
        #[arg(long, default_value_t = 2000)]
        orders: usize,
        /// Simulated seconds per real second for the sandbox and the budget.
        #[arg(long, default_value_t = 60.0)]
        time_scale: f64,
        /// Lift Xero's rate limits (measures the engine, not the budget).
        #[arg(long)]
        unlimited: bool,
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Run the engine as its own process (`tally sync --once`) so its peak memory is
        /// measured apart from the sandbox's; the budget is then not sampled.
        #[arg(long)]
        engine_process: bool,
        /// A `[sync]` tunable for this run, as TOML (`--sync concurrent_batches=8`);
        /// repeatable. For measuring the engine's settings, not for production.
        #[arg(long = "sync", value_name = "KEY=VALUE")]
        sync: Vec<String>,
    },
    /// Console frame time (median, p99, worst) with N operations queued.
    Console {
        #[arg(long, default_value_t = 100_000)]
        items: usize,
        #[arg(long, default_value_t = 2000)]
        frames: usize,
    },
    /// `tally daemon` over the sandbox: idle CPU and memory, then Magento push → Xero invoice
    /// latency (p50/p99).
    Daemon {
        /// Orders in the store before the daemon starts (its backlog).
        #[arg(long, default_value_t = 50)]
        orders: usize,
        /// Seconds of the idle window.
        #[arg(long, default_value_t = 10)]
        idle_secs: u64,
        /// Orders pushed one at a time for the latency figure.
        #[arg(long, default_value_t = 100)]
        latency_orders: usize,
        /// Pause after each pushed order is invoiced, so the pushes measure the engine and not
        /// the Xero rate budget (60 calls per simulated minute).
        #[arg(long, default_value_t = 100)]
        gap_ms: u64,
        #[arg(long, default_value_t = 60.0)]
        time_scale: f64,
        #[arg(long, default_value_t = 42)]
        seed: u64,
    },
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Seed for the generated store.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Orders already in the store when the demo starts.
    #[arg(long, default_value_t = 200)]
    pub orders: usize,
    /// Print status lines instead of drawing the console (automatic without a terminal).
    #[arg(long)]
    pub headless: bool,
    /// Stop after this many seconds (headless runs only).
    #[arg(long)]
    pub duration_secs: Option<u64>,
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
    /// Ledger path put in the written config (default: `tally.redb` beside the config).
    #[arg(long, requires = "write_config")]
    pub ledger: Option<PathBuf>,
    /// Allow listening on non-loopback addresses (the sandbox's credentials are public).
    #[arg(long)]
    pub allow_public: bool,
}
