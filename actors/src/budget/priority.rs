//! Which waiting call goes first when the budget frees a slot.

use serde::{Deserialize, Serialize};

/// Listed from most to least urgent. Payments come first because money already received
/// should reach the books before new documents; backfill (history, reconciliation sweeps)
/// only gets what live traffic leaves over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Priority {
    Payment,
    Invoice,
    Contact,
    Lookup,
    Backfill,
}

impl Priority {
    pub const ALL: [Priority; 5] = [
        Priority::Payment,
        Priority::Invoice,
        Priority::Contact,
        Priority::Lookup,
        Priority::Backfill,
    ];

    /// Lower rank is served first.
    pub(crate) fn rank(self) -> u8 {
        match self {
            Priority::Payment => 0,
            Priority::Invoice => 1,
            Priority::Contact => 2,
            Priority::Lookup => 3,
            Priority::Backfill => 4,
        }
    }
}
