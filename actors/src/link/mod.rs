//! One store↔organisation pair: its supervisor and the entity actors.

pub mod stage;
pub mod supervisor;
