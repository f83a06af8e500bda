//! Stored orders already parsed, so the stages after the first do not parse them again.
//!
//! Each stage reads an order's stored record from the ledger and parses it into an [`Order`]:
//! the contacts stage, then invoices, then payments, the same text three times. Whoever
//! moves an order to `contact_ready` keeps its parse here (the contacts stage, or ingest for
//! a returning customer's order) and the two stages after reuse it. Parsing is a pure
//! function of the record's text and the catalogue it is read against, so a result is reused
//! only when both are the same: the text compares equal (a few hundred nanoseconds, against
//! tens of microseconds to parse) and the catalogue's revision is the one it was parsed with.
//! Only clean results are kept: an order that failed to parse, or names a SKU the catalogue
//! did not know (the stages fetch missing products before parsing, and may find it next
//! time), is parsed afresh.
//!
//! Bounded: the entry read or kept longest ago leaves first, and an order leaves as soon as
//! its last reader is done with it, so a backfill of any size holds at most [`CAPACITY`]
//! parsed orders. Ingest does not keep the parse of an order that waits for the contacts
//! stage: in a backfill it runs far ahead of that stage, and the contacts stage parses
//! anyway to build the contact.

use crate::fast_map::FastMap;
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

use crate::ledger::Record;
use crate::model::{Json, Order};

/// Where a stage gets one stored order from: an earlier stage's parse, or the record's text
/// (as a tree, which also lists the SKUs to describe before parsing).
pub enum Stored<'a> {
    Parsed(Arc<Order>),
    Tree(Json<'a>),
}

impl<'a> Stored<'a> {
    /// The trees among `stored`: the orders still to parse.
    pub fn trees<'s>(stored: &'s [Stored<'a>]) -> Vec<&'s Json<'a>> {
        stored
            .iter()
            .filter_map(|s| match s {
                Stored::Tree(t) => Some(t),
                Stored::Parsed(_) => None,
            })
            .collect()
    }
}

/// Orders kept at most: the rounds in flight between the contacts and payments stages (a
/// round picks up to 500), a few kilobytes each (text and parse), about 10 MB at most.
pub const CAPACITY: usize = 2048;

#[derive(Debug)]
struct Entry {
    record: Record,
    revision: u64,
    order: Arc<Order>,
    /// Which keeping of the key this is, to tell its place in `age` from a forgotten one's.
    stamp: u64,
}

#[derive(Debug, Default)]
struct Inner {
    entries: FastMap<String, Entry>,
    /// Keys in the order they were last kept or read, with their stamp; the front leaves
    /// first. A place whose stamp is not its entry's (forgotten, or read again since) stays
    /// until it reaches the front or the queue is compacted.
    age: VecDeque<(String, u64)>,
    stamps: u64,
}

impl Inner {
    fn is_current(&self, key: &str, stamp: u64) -> bool {
        self.entries.get(key).is_some_and(|e| e.stamp == stamp)
    }
}

#[derive(Debug)]
pub struct ParsedOrders {
    inner: Mutex<Inner>,
    capacity: usize,
    /// Lookups answered, and lookups that left the stage to parse (the benchmark prints both).
    hits: AtomicU64,
    misses: AtomicU64,
}

/// How often a stage found its order already parsed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ParsedOrderStats {
    pub reused: u64,
    pub parsed: u64,
}

impl Default for ParsedOrders {
    fn default() -> Self {
        Self::with_capacity(CAPACITY)
    }
}

impl ParsedOrders {
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            inner: Mutex::new(Inner::default()),
            capacity: capacity.max(1),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// The order `key` parsed from exactly `record` against catalogue `revision`, if kept.
    pub fn get(&self, key: &str, record: &Record, revision: u64) -> Option<Arc<Order>> {
        let found = {
            let mut inner = self.inner.lock();
            let stamp = inner.stamps + 1;
            let found = inner
                .entries
                .get_mut(key)
                .filter(|e| e.revision == revision && e.record == *record)
                .map(|e| {
                    // Read again soon (the next stage): to the back of the queue.
                    e.stamp = stamp;
                    e.order.clone()
                });
            if found.is_some() {
                inner.stamps = stamp;
                inner.age.push_back((key.to_owned(), stamp));
                self.compact(&mut inner);
            }
            found
        };
        let counter = if found.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    pub fn stats(&self) -> ParsedOrderStats {
        ParsedOrderStats {
            reused: self.hits.load(Ordering::Relaxed),
            parsed: self.misses.load(Ordering::Relaxed),
        }
    }

    /// Keeps `order`, parsed from `record` against catalogue `revision`, for the next reader.
    pub fn keep(&self, key: &str, record: &Record, revision: u64, order: Arc<Order>) {
        let mut inner = self.inner.lock();
        inner.stamps += 1;
        let stamp = inner.stamps;
        // A key kept again takes the new parse and moves to the back, like a read.
        inner.entries.insert(
            key.to_owned(),
            Entry {
                record: record.clone(),
                revision,
                order,
                stamp,
            },
        );
        inner.age.push_back((key.to_owned(), stamp));
        while inner.entries.len() > self.capacity {
            let Some((oldest, stamp)) = inner.age.pop_front() else {
                break;
            };
            if inner.is_current(&oldest, stamp) {
                inner.entries.remove(&oldest);
            }
        }
        self.compact(&mut inner);
    }

    /// Drops the queue places of entries forgotten or moved back, once they are as many as
    /// the entries.
    fn compact(&self, inner: &mut Inner) {
        if inner.age.len() > 2 * self.capacity {
            let Inner { entries, age, .. } = inner;
            age.retain(|(k, st)| entries.get(k).is_some_and(|e| e.stamp == *st));
        }
    }

    /// `key` will not be parsed again (its last reader has it).
    pub fn forget(&self, key: &str) {
        self.inner.lock().entries.remove(key);
    }

    pub fn len(&self) -> usize {
        self.inner.lock().entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Catalogue, ProductFacts};
    use serde_json::json;

    fn order(id: u64) -> (Record, Arc<Order>) {
        let v = json!({
            "entity_id": id, "increment_id": format!("{id:09}"), "store_id": 1,
            "created_at": "2026-01-02 03:04:05", "customer_email": "a@example.com",
            "customer_firstname": "A", "customer_lastname": "B",
            "order_currency_code": "NZD", "base_currency_code": "NZD",
            "base_to_order_rate": 1, "grand_total": "10.00", "subtotal": "10.00",
            "tax_amount": "0.00", "shipping_amount": "0.00", "discount_amount": "0.00",
            "items": [{"item_id": 1, "sku": "S", "qty_ordered": 1, "price": "10.00",
                       "row_total": "10.00", "tax_amount": "0.00", "product_type": "simple"}],
            "payment": {"method": "checkmo", "amount_paid": "10.00"}
        });
        let record = Record::from_value(&v);
        let mut catalogue = Catalogue::default();
        catalogue.insert(
            "S",
            ProductFacts {
                categories: vec!["Goods".into()],
                tax_class: Some("Taxable Goods".into()),
                tax_class_id: Some("2".into()),
            },
        );
        let parsed = Order::from_json(&record.tree(), &catalogue).expect("the sample order parses");
        (record, Arc::new(parsed))
    }

    #[test]
    fn an_order_is_reused_only_for_the_same_text_and_catalogue() {
        let cache = ParsedOrders::default();
        let (record, parsed) = order(1);
        cache.keep("order:1", &record, 7, parsed.clone());
        let hit = cache
            .get("order:1", &record, 7)
            .expect("same text, same catalogue");
        assert!(Arc::ptr_eq(&hit, &parsed));
        // The same text read again from the ledger is another allocation: still a hit.
        let reread = Record::from_json(record.json().to_owned()).expect("valid JSON");
        assert!(cache.get("order:1", &reread, 7).is_some());
        assert!(
            cache.get("order:1", &record, 8).is_none(),
            "catalogue changed"
        );
        let (other, _) = order(2);
        assert!(cache.get("order:1", &other, 7).is_none(), "record changed");
        assert!(cache.get("order:2", &record, 7).is_none(), "another entity");
        cache.forget("order:1");
        assert!(cache.get("order:1", &record, 7).is_none(), "forgotten");
        assert!(cache.is_empty());
        assert_eq!(
            cache.stats(),
            ParsedOrderStats {
                reused: 2,
                parsed: 4
            }
        );
    }

    #[test]
    fn the_least_recent_leaves_first_and_a_forgotten_place_does_not_evict_a_newer_keeping() {
        let cache = ParsedOrders::with_capacity(3);
        let orders: Vec<_> = (0..5).map(order).collect();
        let key = |i: usize| format!("order:{i}");
        for (i, (r, o)) in orders.iter().enumerate().take(3) {
            cache.keep(&key(i), r, 1, o.clone());
        }
        // 0 is forgotten and kept again: its old place at the front must not evict it.
        cache.forget(&key(0));
        cache.keep(&key(0), &orders[0].0, 1, orders[0].1.clone());
        cache.keep(&key(3), &orders[3].0, 1, orders[3].1.clone());
        assert_eq!(cache.len(), 3);
        assert!(cache.get(&key(0), &orders[0].0, 1).is_some(), "kept again");
        assert!(
            cache.get(&key(1), &orders[1].0, 1).is_none(),
            "the oldest left"
        );
        assert!(cache.get(&key(2), &orders[2].0, 1).is_some());
        assert!(cache.get(&key(3), &orders[3].0, 1).is_some());
        // Read in the order 0, 2, 3 just above: 0 was read longest ago.
        cache.keep(&key(4), &orders[4].0, 1, orders[4].1.clone());
        assert!(
            cache.get(&key(0), &orders[0].0, 1).is_none(),
            "read longest ago"
        );
        assert!(cache.get(&key(2), &orders[2].0, 1).is_some());
    }

    #[test]
    fn a_read_entry_moves_to_the_back() {
        let cache = ParsedOrders::with_capacity(2);
        let orders: Vec<_> = (0..3).map(order).collect();
        let key = |i: usize| format!("order:{i}");
        cache.keep(&key(0), &orders[0].0, 1, orders[0].1.clone());
        cache.keep(&key(1), &orders[1].0, 1, orders[1].1.clone());
        assert!(cache.get(&key(0), &orders[0].0, 1).is_some());
        // 0 was read after 1 was kept: 1 leaves for 2.
        cache.keep(&key(2), &orders[2].0, 1, orders[2].1.clone());
        assert!(cache.get(&key(1), &orders[1].0, 1).is_none());
        assert!(cache.get(&key(0), &orders[0].0, 1).is_some());
        assert!(cache.get(&key(2), &orders[2].0, 1).is_some());
        // Kept again (a new parse, say after a catalogue change): to the back as well.
        cache.keep(&key(0), &orders[0].0, 2, orders[0].1.clone());
        cache.keep(&key(1), &orders[1].0, 1, orders[1].1.clone());
        assert!(
            cache.get(&key(2), &orders[2].0, 1).is_none(),
            "2 was used longest ago"
        );
        assert!(
            cache.get(&key(0), &orders[0].0, 1).is_none(),
            "the old parse is gone"
        );
        assert!(cache.get(&key(0), &orders[0].0, 2).is_some());
    }

    #[test]
    fn forgetting_many_keeps_the_queue_bounded() {
        let cache = ParsedOrders::with_capacity(4);
        let (r, o) = order(1);
        for i in 0..1000 {
            let k = format!("order:{i}");
            cache.keep(&k, &r, 1, o.clone());
            cache.forget(&k);
        }
        assert!(cache.is_empty());
        assert!(cache.inner.lock().age.len() <= 8 + 1);
        // Reading moves places too; the queue stays bounded.
        cache.keep("order:x", &r, 1, o.clone());
        for _ in 0..1000 {
            assert!(cache.get("order:x", &r, 1).is_some());
        }
        assert!(cache.inner.lock().age.len() <= 8 + 1);
    }
}
