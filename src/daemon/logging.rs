//! Log output for the daemon: JSON lines when stdout is not a terminal (journald, a log
//! shipper), human-readable otherwise; `RUST_LOG` picks the levels (default `info`).

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber; does nothing if one is already installed (tests, or a caller
/// that set up its own).
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let _ = if std::io::stdout().is_terminal() {
        builder.try_init()
    } else {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init()
    };
}
