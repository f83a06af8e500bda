//! Opening a ledger file: create it, upgrade it from a version this build knows, or refuse
//! it clearly when another schema wrote it.

use super::config::LedgerOptions;
use super::error::LedgerError;
use super::tables::*;
use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableError};
use std::cmp::Ordering;
use std::path::Path;

/// Reads the stored schema version without writing anything, so a file from another release is
/// refused untouched.
fn stored_version(db: &Database) -> Result<Option<u64>, LedgerError> {
    let rtx = db.begin_read()?;
    let meta = match rtx.open_table(META) {
        Ok(t) => t,
        Err(TableError::TableDoesNotExist(_)) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    Ok(meta.get(META_SCHEMA_VERSION)?.map(|g| g.value()))
}

/// Checks (or, for a new file, records) the schema version and makes sure every table exists,
/// so read transactions never meet a missing table.
pub(crate) fn prepare(
    db: &Database,
    path: &Path,
    options: LedgerOptions,
) -> Result<(), LedgerError> {
    let stored = stored_version(db)?;
    if let Some(found) = stored {
        match found.cmp(&SCHEMA_VERSION) {
            Ordering::Less if UPGRADABLE_FROM.contains(&found) => {}
            Ordering::Less => {
                return Err(LedgerError::SchemaTooOld {
                    path: path.to_owned(),
                    found,
                    expected: SCHEMA_VERSION,
                });
            }
            Ordering::Greater => {
                return Err(LedgerError::SchemaTooNew {
                    path: path.to_owned(),
                    found,
                    expected: SCHEMA_VERSION,
                });
            }
            Ordering::Equal => {}
        }
    }
    let mut txn = db.begin_write()?;
    txn.set_durability(Durability::Immediate)?;
    txn.set_quick_repair(options.quick_repair);
    {
        let mut meta = txn.open_table(META)?;
        if meta.get(META_SCHEMA_VERSION)?.is_none() {
            let now = u64::try_from(super::writer::now_ms()).unwrap_or(0);
            meta.insert(META_CREATED_AT_MS, now)?;
        }
        // New, current, or upgraded in place (the new tables are created just below).
        meta.insert(META_SCHEMA_VERSION, SCHEMA_VERSION)?;
        txn.open_table(ENTITY_TO_STATE)?;
        txn.open_table(ENTITY_TO_RECORD)?;
        // Derived in memory since version 3 (a no-op once they are gone).
        txn.delete_table(LEGACY_STAGE_TO_ENTITY)?;
        txn.delete_table(LEGACY_INTENT_TO_ENTITY)?;
        txn.delete_table(LEGACY_STAGE_TO_COUNT)?;
        txn.open_table(DUE_TO_ENTITY)?;
        // Derived in memory since version 4.
        txn.delete_table(LEGACY_LINK_TO_ENTITY)?;
        txn.open_table(AUDIT)?;
        txn.open_table(ENTITY_TO_AUDIT)?;
        txn.open_table(DEAD_LETTERS)?;
        txn.open_table(DISCREPANCIES)?;
        txn.open_table(CURSORS)?;
        txn.open_table(TOKENS)?;
    }
    txn.commit()?;
    Ok(())
}
