//! `FastMap`: a `HashMap` with foldhash instead of std's SipHash.
//!
//! The ledger writer and the stages' in-memory indexes hash an entity key or an idempotency
//! key several times per transition, on the writer thread every transition waits for. SipHash
//! guards against keys chosen to collide; these keys are the engine's own (entity keys built
//! from Magento increment ids, digests it computed), and foldhash is still seeded per map.
//! SipHash was about 3 % of the writer thread's profile.

pub(crate) type FastMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
