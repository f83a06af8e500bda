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
//! memory: a restart empties it, and every leftover intent is looked up as before). A note
//! is made before the commit and confirmed after it (or dropped if any of its writes
//! failed); the payments stage takes confirmed batches whole, reads their members, and sends
//! a batch on its note only if every member is still at the version that commit wrote, with
//! the exact bodies and key its intents name. Anything else takes the lookup path. A note is
//! taken once: a second attempt is a retry. While a note waits for its confirmation, the
//! payments stage leaves its orders alone (it would look them up otherwise); a note still
//! unconfirmed after [`PENDING_LIMIT`] is dropped, so an invoices round that died between its
//! commit and the confirmation cannot hold its orders back for good.

use crate::fast_map::FastMap;
use parking_lot::Mutex;
use rust_decimal::Decimal;
use serde_json::Value;
use std::time::{Duration, Instant};

use crate::ledger::{EntityState, Stage};

/// One order of a noted batch: its entity key, the version its committed state has, and its
/// payment body and amount.
pub type Member = (String, u64, Value, Decimal);

/// How long a note may wait for its confirmation (normally microseconds: the invoices round
/// confirms right after its commit returns).
pub const PENDING_LIMIT: Duration = Duration::from_secs(30);

#[derive(Debug)]
struct Noted {
    members: Vec<Member>,
    confirmed: bool,
    at: Instant,
}

#[derive(Debug, Default)]
struct Notes {
    batches: FastMap<String, Noted>,
    /// Entity key → the batch noting it.
    holder: FastMap<String, String>,
}

impl Notes {
    fn remove(&mut self, batch: &str) -> Option<Noted> {
        let noted = self.batches.remove(batch)?;
        for m in &noted.members {
            if self.holder.get(&m.0).is_some_and(|b| b == batch) {
                self.holder.remove(&m.0);
            }
        }
        Some(noted)
    }
}

/// A noted batch ready to send: the key its intents name, and its members in order.
#[derive(Debug)]
pub struct FreshBatch {
    pub key: String,
    pub members: Vec<(EntityState, Value, Decimal)>,
}

#[derive(Debug, Default)]
pub struct FreshPayments(Mutex<Notes>);

impl FreshPayments {
    /// `members`, in batch order, are about to be committed with intents naming `batch`.
    pub fn note(&self, batch: &str, members: Vec<Member>) {
        let mut notes = self.0.lock();
        for m in &members {
            notes.holder.insert(m.0.clone(), batch.to_owned());
        }
        notes.batches.insert(
            batch.to_owned(),
            Noted {
                members,
                confirmed: false,
                at: Instant::now(),
            },
        );
    }

    /// Whether `key` belongs to a noted batch not taken yet: the payments stage leaves it to
    /// that batch instead of looking it up.
    pub fn holds(&self, key: &str) -> bool {
        self.0.lock().holder.contains_key(key)
    }

    /// Every write of `batch` committed: the payments stage may take it.
    pub fn confirm(&self, batch: &str) {
        if let Some(n) = self.0.lock().batches.get_mut(batch) {
            n.confirmed = true;
        }
    }

    /// A write of `batch` failed: the batch is not whole, and its orders take the lookup path.
    pub fn forget_batch(&self, batch: &str) {
        self.0.lock().remove(batch);
    }

    /// Takes every confirmed batch: `(key, members)`; drops notes unconfirmed for longer
    /// than [`PENDING_LIMIT`].
    pub fn take_confirmed(&self) -> Vec<(String, Vec<Member>)> {
        self.take_confirmed_at(Instant::now())
    }

    fn take_confirmed_at(&self, now: Instant) -> Vec<(String, Vec<Member>)> {
        let mut notes = self.0.lock();
        let done: Vec<(String, bool)> = notes
            .batches
            .iter()
            .filter(|(_, n)| n.confirmed || now.duration_since(n.at) > PENDING_LIMIT)
            .map(|(k, n)| (k.clone(), n.confirmed))
            .collect();
        let mut taken = Vec::new();
        for (key, confirmed) in done {
            let Some(noted) = notes.remove(&key) else {
                continue;
            };
            if confirmed {
                taken.push((key, noted.members));
            } else {
                tracing::warn!(batch = %key, "A payment batch's note was never confirmed; its orders are looked up instead.");
            }
        }
        taken
    }
}

/// The batches of `taken` whose every member `current` (read after the take, in the same
/// order as the members, flattened) shows in `PaymentPosting` at the noted version.
pub fn whole_batches(
    taken: Vec<(String, Vec<Member>)>,
    current: Vec<Option<EntityState>>,
) -> Vec<FreshBatch> {
    let mut current = current.into_iter();
    let mut batches = Vec::new();
    for (key, members) in taken {
        let states: Vec<Option<EntityState>> = current.by_ref().take(members.len()).collect();
        let whole = states.len() == members.len()
            && members.iter().zip(&states).all(|((k, v, _, _), s)| {
                s.as_ref().is_some_and(|s| {
                    s.key == *k && s.version == *v && s.stage == Stage::PaymentPosting
                })
            });
        if whole {
            batches.push(FreshBatch {
                key,
                members: members
                    .into_iter()
                    .zip(states)
                    .filter_map(|((_, _, body, amount), s)| Some((s?, body, amount)))
                    .collect(),
            });
        }
    }
    batches
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::EntityKind;
    use serde_json::json;

    fn state(id: &str, version: u64, stage: Stage) -> EntityState {
        let mut s = EntityState::new(EntityKind::Order, id, json!({}));
        s.version = version;
        s.stage = stage;
        s
    }

    fn member(id: &str, version: u64) -> Member {
        (
            format!("order:{id}"),
            version,
            json!({ "id": id }),
            Decimal::ONE,
        )
    }

    #[test]
    fn only_confirmed_batches_are_taken_and_only_once() {
        let f = FreshPayments::default();
        f.note("k1", vec![member("1", 4)]);
        f.note("k2", vec![member("2", 4)]);
        f.note("k3", vec![member("3", 4)]);
        assert!(f.take_confirmed().is_empty(), "nothing committed yet");
        assert!(f.holds("order:1") && f.holds("order:3"));
        f.confirm("k1");
        f.forget_batch("k2");
        let taken = f.take_confirmed();
        assert_eq!(taken.len(), 1);
        assert_eq!(taken[0].0, "k1");
        assert!(
            f.take_confirmed().is_empty(),
            "the second attempt is a retry"
        );
        assert!(
            !f.holds("order:1") && !f.holds("order:2"),
            "taken or forgotten"
        );
        f.confirm("k2");
        assert!(
            f.take_confirmed().is_empty(),
            "a forgotten batch stays forgotten"
        );
        f.confirm("k3");
        assert_eq!(f.take_confirmed().len(), 1);
    }

    #[test]
    fn a_note_never_confirmed_stops_holding_its_orders_after_the_limit() {
        let f = FreshPayments::default();
        f.note("k1", vec![member("1", 4)]);
        let now = Instant::now();
        assert!(f.take_confirmed_at(now).is_empty());
        assert!(f.holds("order:1"), "still waiting for its invoices round");
        let later = now + PENDING_LIMIT + Duration::from_secs(1);
        assert!(f.take_confirmed_at(later).is_empty(), "nothing to send");
        assert!(!f.holds("order:1"), "the payments stage may look it up now");
        f.confirm("k1");
        assert!(
            f.take_confirmed_at(later).is_empty(),
            "dropped, not revived"
        );
    }

    #[test]
    fn a_batch_is_sent_whole_at_its_versions_or_not_at_all() {
        let taken = vec![
            ("whole".to_owned(), vec![member("2", 4), member("1", 4)]),
            ("moved".to_owned(), vec![member("5", 4), member("6", 4)]),
            ("gone".to_owned(), vec![member("7", 2)]),
        ];
        let current = vec![
            Some(state("2", 4, Stage::PaymentPosting)),
            Some(state("1", 4, Stage::PaymentPosting)),
            Some(state("5", 4, Stage::PaymentPosting)),
            // Changed since the note (an operator, a retry): the batch is not sent on it.
            Some(state("6", 5, Stage::PaymentPosting)),
            None,
        ];
        let batches = whole_batches(taken, current);
        assert_eq!(batches.len(), 1);
        assert_eq!(batches[0].key, "whole");
        let order: Vec<(&str, &Value)> = batches[0]
            .members
            .iter()
            .map(|(s, body, _)| (s.key.as_str(), body))
            .collect();
        assert_eq!(
            order,
            [
                ("order:2", &json!({"id": "2"})),
                ("order:1", &json!({"id": "1"}))
            ]
        );
    }
}
