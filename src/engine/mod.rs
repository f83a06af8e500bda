//! The running engine as the console and the daemon see it: one link, a published
//! [`ConsoleState`], and the operator's commands.

pub mod discrepancy;
pub mod discrepancy_history;
mod events;
pub mod facts;
pub mod fix;
mod runtime;
mod view;

pub use runtime::EngineRuntime;
pub use view::{format_ms, state_from};
