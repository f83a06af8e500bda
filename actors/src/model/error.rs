//! The one error shape a bad record produces.
//!
//! A record that cannot be mapped is parked in the dead-letter queue and shown in the console;
//! an operator has to be able to find the offending value in Magento from the message alone,
//! so every error names the record and the JSON path of the field.

use std::fmt;

/// Why one record (order, credit memo, ...) cannot be synced as it stands.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct RecordError {
    /// e.g. `order 000000123`
    pub record: String,
    /// e.g. `items[2].price`
    pub field: String,
    pub message: String,
}

impl RecordError {
    pub fn new(
        record: impl Into<String>,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            record: record.into(),
            field: field.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.record, self.field, self.message)
    }
}
