//! Which entities carry each indexed link (a Xero `invoice_id` or `contact_id`), in memory,
//! rebuilt from the states at open.
//!
//! A webhook names a Xero id and the engine needs the order behind it. Kept as a redb table
//! keyed by `name:value`, every invoice and contact id was a B-tree insert at a random place
//! (the ids are UUIDs): one page copied and written per order per commit, a fifth of the
//! bytes the writer wrote in a backfill. The states already hold every link, so like the
//! stage and intent indexes this one is derived: built with the ledger, changed only by the
//! writer thread after a commit, never stored.

use crate::fast_map::FastMap;

use parking_lot::RwLock;

/// The index's key for a link: `"{name}:{value}"`, e.g. `invoice_id:2f1c…`.
pub(crate) fn link_key(name: &str, value: &str) -> String {
    format!("{name}:{value}")
}

/// One link gained or lost by one entity in a transaction, in the order the writer made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LinkChange {
    /// `"{name}:{value}"`, e.g. `invoice_id:2f1c…`.
    pub link: String,
    pub key: String,
    pub present: bool,
}

/// `name:value` → the keys of the entities carrying it, sorted. Most links have one holder
/// (an invoice id); a contact id has one per order of that customer.
#[derive(Debug, Default)]
pub(crate) struct LinkIndex {
    holders: RwLock<FastMap<String, Vec<String>>>,
}

impl LinkIndex {
    /// The index of `(name:value, entity key)` pairs read from the stored states.
    pub(crate) fn build(pairs: impl IntoIterator<Item = (String, String)>) -> Self {
        let mut holders: FastMap<String, Vec<String>> = FastMap::default();
        for (link, key) in pairs {
            holders.entry(link).or_default().push(key);
        }
        for keys in holders.values_mut() {
            keys.sort_unstable();
            keys.dedup();
        }
        Self {
            holders: RwLock::new(holders),
        }
    }

    /// Applies a committed transaction's changes, in the order they were made.
    pub(crate) fn committed(&self, changes: Vec<LinkChange>) {
        if changes.is_empty() {
            return;
        }
        let mut holders = self.holders.write();
        for c in changes {
            if c.present {
                let keys = holders.entry(c.link).or_default();
                if let Err(at) = keys.binary_search(&c.key) {
                    keys.insert(at, c.key);
                }
            } else if let Some(keys) = holders.get_mut(&c.link) {
                if let Ok(at) = keys.binary_search(&c.key) {
                    keys.remove(at);
                }
                if keys.is_empty() {
                    holders.remove(&c.link);
                }
            }
        }
    }

    /// The entities carrying `link` (`name:value`), in key order.
    pub(crate) fn keys(&self, link: &str) -> Vec<String> {
        self.holders.read().get(link).cloned().unwrap_or_default()
    }

    /// Every pair, sorted, for comparing with a rebuild.
    pub(crate) fn snapshot(&self) -> Vec<(String, String)> {
        let mut all: Vec<_> = self
            .holders
            .read()
            .iter()
            .flat_map(|(link, keys)| keys.iter().map(|k| (link.clone(), k.clone())))
            .collect();
        all.sort();
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(link: &str, key: &str, present: bool) -> LinkChange {
        LinkChange {
            link: link.into(),
            key: key.into(),
            present,
        }
    }

    #[test]
    fn changes_apply_in_order_and_an_emptied_link_disappears() {
        let index = LinkIndex::build([
            ("contact_id:c".to_owned(), "order:2".to_owned()),
            ("contact_id:c".to_owned(), "order:1".to_owned()),
        ]);
        assert_eq!(index.keys("contact_id:c"), ["order:1", "order:2"]);
        index.committed(vec![
            change("invoice_id:i", "order:1", true),
            change("contact_id:c", "order:1", false),
            // Added and removed in one transaction: gone.
            change("invoice_id:j", "order:3", true),
            change("invoice_id:j", "order:3", false),
            // Added twice: held once.
            change("contact_id:c", "order:0", true),
            change("contact_id:c", "order:0", true),
        ]);
        assert_eq!(index.keys("contact_id:c"), ["order:0", "order:2"]);
        assert_eq!(index.keys("invoice_id:i"), ["order:1"]);
        assert!(index.keys("invoice_id:j").is_empty());
        index.committed(vec![
            change("contact_id:c", "order:0", false),
            change("contact_id:c", "order:2", false),
        ]);
        assert!(index.keys("contact_id:c").is_empty());
        assert_eq!(
            index.snapshot(),
            [("invoice_id:i".to_owned(), "order:1".to_owned())]
        );
    }
}
