//! One store↔organisation pair: its supervisor and the entity actors.

pub mod supervisor;
