//! Payment batches whose intents the invoices stage committed, and nobody has sent yet.
//!
//! When a batch of invoices comes back from Xero, the orders already paid in Magento move
//! straight to `PaymentPosting`: the invoice outcome and the payment's intent are one ledger
//! write, instead of an `Invoiced` write followed by a `PaymentPosting` write in the payments
//! stage (one transition fewer for every paid order). The intent is still in the ledger
//! before the payment call, as the protocol requires.
//!
//! An order found in `PaymentPosting` normally means "the call may have been made", and the
//! payments stage looks the payment up before sending. For the batches the invoices stage
//! just committed, only this process knows no call was made, so it notes them here (in
//! memory: a restart empties it, and every leftover intent is looked up as before). A batch
//! is sent on its note only whole, with the exact bodies and key its intents name, and only
//! from states at the version the noted commit wrote; anything else takes the lookup path.
//! A note is taken once: a second attempt is a retry.

use crate::fast_map::FastMap;
use parking_lot::Mutex;
use rust_decimal::Decimal;
use serde_json::Value;

use crate::ledger::EntityState;

/// One order's place in a noted batch.
#[derive(Debug, Clone)]
struct Member {
    batch: String,
    /// The version the committed state has.
    version: u64,
    /// How many orders the batch holds.
    size: usize,
    /// Its position in the batch, so the bodies are sent in the order the key covers.
    index: usize,
    body: Value,
    amount: Decimal,
}

/// A noted batch ready to send: the key its intents name, and its members in order.
#[derive(Debug)]
pub struct FreshBatch {
    pub key: String,
    pub members: Vec<(EntityState, Value, Decimal)>,
}

#[derive(Debug, Default)]
pub struct FreshPayments(Mutex<FastMap<String, Member>>);

impl FreshPayments {
    /// `members` (entity key, version the commit will write, body, amount), in batch order,
    /// are about to be committed with intents naming `batch`.
    pub fn note(&self, batch: &str, members: Vec<(String, u64, Value, Decimal)>) {
        let size = members.len();
        let mut notes = self.0.lock();
        for (index, (key, version, body, amount)) in members.into_iter().enumerate() {
            notes.insert(
                key,
                Member {
                    batch: batch.to_owned(),
                    version,
                    size,
                    index,
                    body,
                    amount,
                },
            );
        }
    }

    /// Drops every note of `batch` (one of its commits failed: the batch is not whole).
    pub fn forget_batch(&self, batch: &str) {
        self.0.lock().retain(|_, m| m.batch != batch);
    }

    /// Splits `stale` into the whole noted batches it holds and the rest. Every note met is
    /// taken, whether its batch is whole or not: the rest go through the lookup.
    pub fn take(&self, stale: Vec<EntityState>) -> (Vec<FreshBatch>, Vec<EntityState>) {
        let mut groups: FastMap<String, Vec<(Member, EntityState)>> = FastMap::default();
        let mut rest = Vec::new();
        {
            let mut notes = self.0.lock();
            for s in stale {
                match notes.remove(&s.key) {
                    Some(m) if m.version == s.version => {
                        groups.entry(m.batch.clone()).or_default().push((m, s))
                    }
                    _ => rest.push(s),
                }
            }
        }
        let mut batches = Vec::new();
        for (key, mut members) in groups {
            let whole = members
                .first()
                .is_some_and(|(m, _)| m.size == members.len());
            if whole {
                members.sort_by_key(|(m, _)| m.index);
                batches.push(FreshBatch {
                    key,
                    members: members
                        .into_iter()
                        .map(|(m, s)| (s, m.body, m.amount))
                        .collect(),
                });
            } else {
                rest.extend(members.into_iter().map(|(_, s)| s));
            }
        }
        (batches, rest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::EntityKind;
    use serde_json::json;

    fn state(id: &str, version: u64) -> EntityState {
        let mut s = EntityState::new(EntityKind::Order, id, json!({}));
        s.version = version;
        s
    }

    fn member(id: &str, version: u64) -> (String, u64, Value, Decimal) {
        (
            format!("order:{id}"),
            version,
            json!({ "id": id }),
            Decimal::ONE,
        )
    }

    fn keys(states: &[EntityState]) -> Vec<&str> {
        states.iter().map(|s| s.key.as_str()).collect()
    }

    #[test]
    fn a_whole_batch_at_its_versions_is_fresh_once_and_in_its_order() {
        let f = FreshPayments::default();
        f.note("k1", vec![member("2", 4), member("1", 4)]);
        let (batches, rest) = f.take(vec![state("1", 4), state("2", 4), state("3", 4)]);
        assert_eq!(keys(&rest), ["order:3"], "never noted");
        assert_eq!(batches.len(), 1);
        assert_eq!(batches[0].key, "k1");
        let order: Vec<&Value> = batches[0].members.iter().map(|m| &m.1).collect();
        assert_eq!(order, [&json!({"id": "2"}), &json!({"id": "1"})]);
        let (again, rest) = f.take(vec![state("1", 4), state("2", 4)]);
        assert!(again.is_empty(), "the second attempt is a retry");
        assert_eq!(rest.len(), 2);
    }

    #[test]
    fn a_partial_batch_another_version_or_a_forgotten_batch_is_not_fresh() {
        let f = FreshPayments::default();
        f.note("k1", vec![member("1", 4), member("2", 4)]);
        let (batches, rest) = f.take(vec![state("1", 4)]);
        assert!(
            batches.is_empty(),
            "half a batch cannot be sent under its key"
        );
        assert_eq!(keys(&rest), ["order:1"]);
        let (batches, _) = f.take(vec![state("2", 4)]);
        assert!(batches.is_empty(), "its note was taken with the first half");

        f.note("k2", vec![member("5", 4)]);
        let (batches, rest) = f.take(vec![state("5", 6)]);
        assert!(batches.is_empty(), "the order moved on since");
        assert_eq!(rest.len(), 1);

        f.note("k3", vec![member("7", 2), member("8", 2)]);
        f.forget_batch("k3");
        let (batches, rest) = f.take(vec![state("7", 2), state("8", 2)]);
        assert!(batches.is_empty(), "a commit of the batch failed");
        assert_eq!(rest.len(), 2);
    }
}
