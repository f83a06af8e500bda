//! The `tally` binary's library half: CLI, config, commands, daemon and report writers, kept
//! in a library so end-to-end tests can drive them in-process.

pub mod cli;
pub mod cmd;
pub mod config;
pub mod config_edit;
pub mod daemon;
pub mod engine;
