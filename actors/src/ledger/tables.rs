//! Every redb table of the ledger, in one place, so the key → value shape of the whole file
//! can be read at a glance and a schema change is a visible diff here plus a bump of
//! [`SCHEMA_VERSION`].
//!
//! Values are versioned JSON envelopes (see `codec`), keys are plain strings or tuples so the
//! file can be inspected with generic redb tooling.

use redb::TableDefinition;

/// Bumped on any incompatible change to a table's key/value types or a record's meaning.
/// The ledger refuses to open a file written with another version instead of guessing:
/// a silently misread ledger would re-push or skip orders.
pub const SCHEMA_VERSION: u64 = 4;

/// Older versions this build upgrades in place when it opens them. Version 1 kept each
/// entity's record inside its state; version 2 keeps it in [`ENTITY_TO_RECORD`]. A version 1
/// state still carries its record and is read as it is; its next write splits it. Versions
/// 1 and 2 kept the stage and intent indexes and the stage counts as tables
/// ([`LEGACY_STAGE_TO_ENTITY`], [`LEGACY_INTENT_TO_ENTITY`], [`LEGACY_STAGE_TO_COUNT`]);
/// version 3 derives them from the states and keeps them in memory, and opening deletes the
/// tables: a version 2 build must not open a file whose tables have stopped following the
/// states. Version 4 does the same for the link index ([`LEGACY_LINK_TO_ENTITY`]), for the
/// same reason: a version 3 build would answer webhooks from a table nothing writes.
pub const UPGRADABLE_FROM: &[u64] = &[1, 2, 3];

/// The key in [`META`] that holds the schema version.
pub const META_SCHEMA_VERSION: &str = "schema_version";
/// The key in [`META`] that holds the creation time of the file (ms since the epoch).
pub const META_CREATED_AT_MS: &str = "created_at_ms";

/// Schema version and other file-level facts.
pub const META: TableDefinition<&str, u64> = TableDefinition::new("META");

/// Entity key (`order:000000123`) → versioned JSON `EntityState`.
///
/// The Magento ↔ Xero id links live inside `EntityState::links` rather than a separate
/// `MAGENTO_TO_XERO` table: a link is always learned in the same write as the stage move it
/// causes, so one record keeps them from ever disagreeing. The reverse direction is
/// the in-memory link index (`link_index`).
pub const ENTITY_TO_STATE: TableDefinition<&str, &[u8]> = TableDefinition::new("ENTITY_TO_STATE");

/// Entity key → the entity's source record (the Magento order, a contact body, …) as JSON
/// text; see `Record`. Apart from the state because the state is rewritten on every
/// transition (about seven in an order's life) and the record, kilobytes to the state's few
/// hundred bytes, changes once or twice: the writer rewrites it only when its text changed.
pub const ENTITY_TO_RECORD: TableDefinition<&str, &[u8]> = TableDefinition::new("ENTITY_TO_RECORD");

/// (stage name, entity key) → (): the stage index of schema versions 1 and 2, deleted when
/// such a file is upgraded. The index is now derived from the states at open and kept in
/// memory (`stage_index`): two B-tree writes per transition for data the states hold.
pub const LEGACY_STAGE_TO_ENTITY: TableDefinition<(&str, &str), ()> =
    TableDefinition::new("STAGE_TO_ENTITY");

/// Stage name → number of entities in it: schema versions 1 and 2 kept it in step with the
/// stage table. Version 3 counts the in-memory stage index instead, and deletes this table.
pub const LEGACY_STAGE_TO_COUNT: TableDefinition<&str, u64> =
    TableDefinition::new("STAGE_TO_COUNT");

/// (retry_at_ms, entity key) → (): failed entities waiting for their next attempt, in due order.
pub const DUE_TO_ENTITY: TableDefinition<(i64, &str), ()> = TableDefinition::new("DUE_TO_ENTITY");

/// Idempotency key → entity key, for every intent committed without an outcome yet: the
/// table of schema versions 1 and 2, deleted when such a file is upgraded. Version 3 derives
/// it from the states at open and keeps it in memory (`intent_index`).
pub const LEGACY_INTENT_TO_ENTITY: TableDefinition<&str, &str> =
    TableDefinition::new("INTENT_TO_ENTITY");

/// (`"{link name}:{value}"`, entity key) → (): the link index of schema versions 1 to 3,
/// deleted when such a file is upgraded. Its keys are Xero UUIDs, so every insert landed on a
/// random page; version 4 derives the index from the states' links at open and keeps it in
/// memory (`link_index`).
pub const LEGACY_LINK_TO_ENTITY: TableDefinition<(&str, &str), ()> =
    TableDefinition::new("LINK_TO_ENTITY");

/// The links the in-memory link index holds: the Xero ids a webhook names (Xero sends
/// `INVOICE` and `CONTACT` events; a payment reaches a reconciliation through its
/// invoice). An order carries others (`email`, `magento_entity_id`, `invoice_number`,
/// `payment_id`) that are only read from its state; `by_link` answers indexed names only.
pub const INDEXED_LINKS: &[&str] = &["invoice_id", "contact_id"];

/// Sequence number → versioned JSON `AuditEntry`. Append-only.
pub const AUDIT: TableDefinition<u64, &[u8]> = TableDefinition::new("AUDIT");

/// (entity key, sequence number) → (): one entity's audit trail in order.
pub const ENTITY_TO_AUDIT: TableDefinition<(&str, u64), ()> =
    TableDefinition::new("ENTITY_TO_AUDIT");

/// Entity key → versioned JSON `DeadLetter`.
pub const DEAD_LETTERS: TableDefinition<&str, &[u8]> = TableDefinition::new("DEAD_LETTERS");

/// Discrepancy key → versioned JSON value raised by the reconciler.
pub const DISCREPANCIES: TableDefinition<&str, &[u8]> = TableDefinition::new("DISCREPANCIES");

/// Cursor name (e.g. `magento.orders.updated_at`) → versioned JSON value.
pub const CURSORS: TableDefinition<&str, &[u8]> = TableDefinition::new("CURSORS");

/// Token name → opaque bytes (the Xero client's serialized token set). Never logged.
pub const TOKENS: TableDefinition<&str, &[u8]> = TableDefinition::new("TOKENS");
