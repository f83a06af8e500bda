//! tally's operator console: shows at a glance what flows between Magento and Xero, what is
//! stuck and why, and sends the engine the operator's fixes.
//!
//! The console knows nothing of the engine's types: it draws a [`state::ConsoleState`] from a
//! watch channel and answers with [`command::ConsoleCommand`]s, so it works the same in-process
//! and attached to a daemon.

pub mod app;
pub mod bench;
pub mod command;
pub mod fix_rule;
pub mod fixture;
pub mod fmt;
pub mod run;
pub mod scroll;
pub mod state;
pub mod terminal;
pub mod theme;
pub mod views;

pub use app::App;
pub use bench::{FrameStats, bench_frames};
pub use command::ConsoleCommand;
pub use fix_rule::FixRule;
pub use run::run;
pub use state::ConsoleState;
pub use theme::Theme;
