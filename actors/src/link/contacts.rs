//! Contacts: finds or creates the Xero contact of every order's customer, in batches.
//!
//! One lookup serves a whole batch (`ContactNumber == … OR EmailAddress.ToLower() == …`), and
//! only customers Xero does not already know are created, with one PUT of up to 50. A
//! customer known from an earlier order costs no call at all: the ledger remembers the
//! ContactID. The create's intent is committed before the PUT; after a crash the next round
//! simply looks the batch up again, which finds whatever the lost PUT created.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use serde_json::Value;

use super::context::{LinkContext, bury, fail_or_bury, is_due, now_ms};
use super::keys::{batch_digests, batch_key};
use super::parsed_orders::Stored;
use super::stage::{RoundError, RoundReport, StageWorker};
use crate::budget::Priority;
use crate::ledger::{EntityKind, EntityState, Intent, Record, Stage, Write};
use crate::mapping::contact::{
    ContactMatch, contact_for, contact_number, disambiguated_name, find_existing, update_for,
};
use crate::model::xero::Contact;
use crate::model::{Order, RecordError};
use crate::xero::{ElementOutcome, WriteMethod};

const ACTOR: &str = "contacts";

pub struct ContactsWorker {
    ctx: Arc<LinkContext>,
}

impl ContactsWorker {
    pub fn new(ctx: Arc<LinkContext>) -> Self {
        Self { ctx }
    }
}

/// One customer and the orders waiting for them.
struct Group {
    number: String,
    email: String,
    wanted: Contact,
    orders: Vec<EntityState>,
}

const GUEST: &str = "guest-";
const REGISTERED: &str = "magento-";

/// The same person under another key: a guest checkout with a registered customer's email
/// (or the other way round) is one contact, matched by email case-insensitively. Two
/// registered accounts sharing an email (Magento allows it across websites) stay apart.
fn same_person_by_email<'a>(
    candidates: &'a [Contact],
    number: &str,
    email: &str,
) -> Option<&'a Contact> {
    candidates
        .iter()
        .filter(|c| c.contact_status.as_deref().is_none_or(|s| s == "ACTIVE"))
        .filter(|c| {
            c.email_address
                .as_deref()
                .is_some_and(|e| e.trim().eq_ignore_ascii_case(email.trim()))
        })
        .find(|c| {
            number.starts_with(GUEST)
                || !c
                    .contact_number
                    .as_deref()
                    .is_some_and(|n| n.starts_with(REGISTERED))
        })
}

fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

fn lookup_where(groups: &[Group]) -> String {
    let mut clauses = Vec::with_capacity(groups.len() * 2);
    for g in groups {
        clauses.push(format!("ContactNumber=={}", quote(&g.number)));
        if !g.email.is_empty() {
            clauses.push(format!("EmailAddress.ToLower()=={}", quote(&g.email)));
        }
    }
    clauses.join(" OR ")
}

/// Moves `order` to `ContactReady` with its customer's contact, and says so for the audit
/// trail. Shared with ingest, which links an order whose customer the ledger already knows
/// as it records it (see `known_contacts`).
pub(super) fn link_contact(order: &mut EntityState, contact_id: &str, number: &str) -> String {
    order.stage = Stage::ContactReady;
    order.retry_at_ms = None;
    order.last_error = None;
    order.attempts = 0;
    order
        .links
        .insert("contact_id".into(), contact_id.to_owned());
    order
        .links
        .insert("contact_number".into(), number.to_owned());
    format!("contact {number} is Xero ContactID={contact_id}")
}

fn ready(mut order: EntityState, contact_id: &str, number: &str) -> Write {
    let detail = link_contact(&mut order, contact_id, number);
    Write::Put {
        state: order,
        actor: ACTOR.into(),
        detail,
    }
}

/// The Xero ContactID of each contact number the ledger holds as done, read in one
/// transaction. A number missing from the map is not known yet, or is mid-create.
pub(super) async fn known_contacts(
    ctx: &LinkContext,
    numbers: BTreeSet<String>,
) -> Result<HashMap<String, String>, crate::ledger::LedgerError> {
    let numbers: Vec<String> = numbers.into_iter().collect();
    let keys = numbers.iter().map(|n| EntityKind::Contact.key(n)).collect();
    let stored = ctx.ledger.get_many(keys).await?;
    Ok(numbers
        .into_iter()
        .zip(stored)
        .filter_map(|(number, stored)| {
            let id = stored
                .filter(|s| s.stage == Stage::ContactDone)?
                .links
                .get("contact_id")
                .cloned()?;
            Some((number, id))
        })
        .collect())
}

fn contact_done(ctx_state: Option<EntityState>, g: &Group, contact_id: &str, how: &str) -> Write {
    let mut s = ctx_state.unwrap_or_else(|| {
        EntityState::new(
            EntityKind::Contact,
            &g.number,
            serde_json::to_value(&g.wanted).unwrap_or_default(),
        )
    });
    s.stage = Stage::ContactDone;
    s.intent = None;
    s.retry_at_ms = None;
    s.last_error = None;
    s.links.insert("contact_id".into(), contact_id.to_owned());
    s.links.insert("email".into(), g.email.clone());
    Write::Put {
        state: s,
        actor: ACTOR.into(),
        detail: format!("{how}: ContactID={contact_id}"),
    }
}

impl ContactsWorker {
    async fn process(&self, groups: Vec<Group>) -> Result<RoundReport, RoundError> {
        let ctx = &self.ctx;
        let mut report = RoundReport::default();
        let mut writes: Vec<Vec<Write>> = Vec::new();

        // 1. One lookup for the whole batch.
        let query = [
            ("where", lookup_where(&groups)),
            ("includeArchived", "true".to_owned()),
        ];
        let found = match ctx
            .xero
            .list_paged("Contacts", &query, None, Priority::Contact)
            .await
        {
            Ok(v) => v,
            Err(e) => {
                let reason = format!("contact lookup failed: {e}");
                for g in groups {
                    for o in g.orders {
                        let (w, dead) = fail_or_bury(ctx, o, ACTOR, &reason, None);
                        report.retrying += usize::from(!dead);
                        report.dead += usize::from(dead);
                        writes.push(vec![w]);
                    }
                }
                self.commit(writes).await?;
                return Ok(report);
            }
        };
        let candidates: Vec<Contact> = found
            .into_iter()
            .filter_map(|v| serde_json::from_value(v).ok())
            .collect();

        // 2. Adopt what Xero already has; collect updates and creates.
        let mut updates: Vec<(Group, Contact)> = Vec::new();
        let mut creates: Vec<Group> = Vec::new();
        for g in groups {
            let matched = match find_existing(&candidates, &g.number, &g.email) {
                ContactMatch::None => same_person_by_email(&candidates, &g.number, &g.email)
                    .map_or(ContactMatch::None, ContactMatch::ByEmail),
                m => m,
            };
            match matched {
                ContactMatch::ByNumber(c) | ContactMatch::ByEmail(c) if c.contact_id.is_some() => {
                    let id = c.contact_id.clone().unwrap_or_default();
                    // A guest order never rewrites a registered customer's contact.
                    let guest_on_registered = g.number.starts_with(GUEST)
                        && c.contact_number
                            .as_deref()
                            .is_some_and(|n| n.starts_with(REGISTERED));
                    if let Some(update) = update_for(c, &g.wanted).filter(|_| !guest_on_registered)
                    {
                        updates.push((g, update));
                        continue;
                    }
                    let existing = ctx
                        .ledger
                        .get(&EntityKind::Contact.key(&g.number))
                        .await
                        .map_err(|e| e.to_string())?;
                    let mut batch = vec![contact_done(existing, &g, &id, "found in Xero")];
                    report.done += g.orders.len();
                    batch.extend(g.orders.into_iter().map(|o| ready(o, &id, &g.number)));
                    writes.push(batch);
                }
                _ => creates.push(g),
            }
        }

        // 3. Updates (set our ContactNumber on a contact matched by email): one POST.
        if !updates.is_empty() {
            let bodies: Vec<Value> = updates
                .iter()
                .map(|(_, c)| serde_json::to_value(c).unwrap_or_default())
                .collect();
            let key = batch_key("contacts-update", &bodies);
            let outcome = ctx
                .xero
                .batch_write(
                    WriteMethod::Post,
                    "Contacts",
                    bodies,
                    &key,
                    Priority::Contact,
                )
                .await;
            match outcome {
                Ok(results) => {
                    for ((g, c), r) in updates.into_iter().zip(results) {
                        let id = c.contact_id.clone().unwrap_or_default();
                        if let ElementOutcome::Rejected { messages, .. } = &r {
                            tracing::warn!(contact = %g.number, messages = ?messages, "Contact update refused; using the contact as it is.");
                        }
                        let existing = ctx
                            .ledger
                            .get(&EntityKind::Contact.key(&g.number))
                            .await
                            .map_err(|e| e.to_string())?;
                        let mut batch = vec![contact_done(
                            existing,
                            &g,
                            &id,
                            "matched by email and updated",
                        )];
                        report.done += g.orders.len();
                        batch.extend(g.orders.into_iter().map(|o| ready(o, &id, &g.number)));
                        writes.push(batch);
                    }
                }
                Err(e) => {
                    let reason = format!("contact update failed: {e}");
                    for (g, _) in updates {
                        for o in g.orders {
                            let (w, dead) = fail_or_bury(ctx, o, ACTOR, &reason, None);
                            report.retrying += usize::from(!dead);
                            report.dead += usize::from(dead);
                            writes.push(vec![w]);
                        }
                    }
                }
            }
        }

        // 4. Creates: intent first, then one PUT; a name clash retries with a disambiguated name.
        let mut pending = creates;
        for _pass in 0..2 {
            if pending.is_empty() {
                break;
            }
            let bodies: Vec<Value> = pending
                .iter()
                .map(|g| serde_json::to_value(&g.wanted).unwrap_or_default())
                .collect();
            let (key, body_hashes) = batch_digests("contacts-create", &bodies);
            let mut intents = Vec::new();
            for ((g, body), body_sha256) in pending.iter().zip(&bodies).zip(body_hashes) {
                let ckey = EntityKind::Contact.key(&g.number);
                let mut s = match ctx.ledger.get(&ckey).await.map_err(|e| e.to_string())? {
                    Some(s) => s,
                    None => EntityState::new(EntityKind::Contact, &g.number, Record::null()),
                };
                s.data = Record::from_value(body);
                s.stage = Stage::ContactPosting;
                s.intent = Some(Intent {
                    op: "PUT Contacts".into(),
                    // The HTTP key covers the batch; the ledger's key names this element of it.
                    idempotency_key: format!("{key}/{}", s.key),
                    body_sha256,
                    batch_id: key.clone(),
                    committed_at_ms: now_ms(),
                });
                intents.push(Write::Put {
                    state: s,
                    actor: ACTOR.into(),
                    detail: format!("intent PUT Contacts key={key}"),
                });
            }
            self.ctx
                .ledger
                .commit(intents)
                .await
                .map_err(|e| format!("ledger: {e}"))?;
            let result = ctx
                .xero
                .batch_write(
                    WriteMethod::Put,
                    "Contacts",
                    bodies,
                    &key,
                    Priority::Contact,
                )
                .await;
            let results = match result {
                Ok(r) => r,
                Err(e) => {
                    let reason = format!("contact create failed: {e}");
                    let permanent = e.failure().is_permanent();
                    for g in pending.drain(..) {
                        for o in g.orders {
                            if permanent {
                                let err = RecordError::new(
                                    super::context::record_name(&o.key),
                                    "customer",
                                    reason.clone(),
                                );
                                writes.push(vec![bury(&o, ACTOR, &err, Some(e.to_string()))]);
                                report.dead += 1;
                            } else {
                                let (w, dead) = fail_or_bury(ctx, o, ACTOR, &reason, None);
                                report.retrying += usize::from(!dead);
                                report.dead += usize::from(dead);
                                writes.push(vec![w]);
                            }
                        }
                    }
                    break;
                }
            };
            let mut retry = Vec::new();
            for (mut g, r) in pending.drain(..).zip(results) {
                match r {
                    ElementOutcome::Ok { value } => {
                        let id = value
                            .get("ContactID")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_owned();
                        let existing = ctx
                            .ledger
                            .get(&EntityKind::Contact.key(&g.number))
                            .await
                            .map_err(|e| e.to_string())?;
                        let mut batch = vec![contact_done(existing, &g, &id, "created in Xero")];
                        report.done += g.orders.len();
                        batch.extend(g.orders.into_iter().map(|o| ready(o, &id, &g.number)));
                        writes.push(batch);
                    }
                    ElementOutcome::Rejected { messages, .. } => {
                        let text = messages.join("; ");
                        if text.contains("already assigned to another contact") && _pass == 0 {
                            let base = g.wanted.name.clone().unwrap_or_default();
                            g.wanted.name = Some(disambiguated_name(&base, &g.number));
                            retry.push(g);
                            continue;
                        }
                        for o in g.orders {
                            let err = RecordError::new(
                                super::context::record_name(&o.key),
                                "customer",
                                format!("Xero refused the contact {}", g.number),
                            );
                            writes.push(vec![bury(&o, ACTOR, &err, Some(text.clone()))]);
                            report.dead += 1;
                        }
                    }
                }
            }
            pending = retry;
        }
        self.commit(writes).await?;
        Ok(report)
    }

    /// Commits each group on its own so one stale entity cannot fail the others.
    async fn commit(&self, writes: Vec<Vec<Write>>) -> Result<(), RoundError> {
        for r in self.ctx.ledger.commit_each(writes).await {
            if let Err(e) = r {
                // A concurrent update (ingest refreshed the order) — the next round redoes it.
                tracing::debug!(error = %e, "Contact outcome not committed; will be redone.");
            }
        }
        Ok(())
    }
}

/// A stored order that does not parse is, here, a dead letter an operator sent back after
/// fixing the order in Magento (ingest buries bad input before this stage). The stored copy
/// is the one that failed, and ingest may not have polled the fix yet, so read Magento's
/// current copy before burying it again. `Err` keeps the freshest error. On success the
/// state gets the fresh copy and the links ingest gives a good order (it never gave them to
/// this one), which writeback needs to find the order in Magento.
async fn reread(
    ctx: &LinkContext,
    state: &mut EntityState,
    err: RecordError,
) -> Result<Order, RecordError> {
    let id = state
        .data
        .field("entity_id")
        .and_then(|v| v.as_u64().or_else(|| v.as_str()?.trim().parse().ok()));
    let Some(id) = id else {
        return Err(err);
    };
    let Ok(raw) = ctx.magento.get_order(id).await else {
        return Err(err);
    };
    if ctx.ensure_skus(&[&raw]).await.is_err() {
        return Err(err);
    }
    let order = ctx.parse_order(&raw)?;
    state.data = Record::from_value(&crate::model::order_fields::project(raw));
    state
        .links
        .insert("magento_entity_id".into(), id.to_string());
    state
        .links
        .insert("email".into(), order.customer.email_key.clone());
    Ok(order)
}

impl StageWorker for ContactsWorker {
    async fn round(&self) -> Result<RoundReport, RoundError> {
        let ctx = &self.ctx;
        let now = now_ms();
        let orders: Vec<EntityState> = ctx
            .ledger
            .by_stage(Stage::Seen, ctx.settings.round_limit)
            .await
            .map_err(|e| e.to_string())?
            .into_iter()
            // Stock items also wait in `Seen`; they are the stock worker's.
            .filter(|s| s.kind == EntityKind::Order && is_due(s, now))
            .collect();
        if orders.is_empty() {
            return Ok(RoundReport::default());
        }
        let mut report = RoundReport {
            picked: orders.len(),
            ..Default::default()
        };
        let records: Vec<Record> = orders.iter().map(|o| o.data.clone()).collect();
        let stored = ctx.stored_orders(&orders, &records);
        if let Err(e) = ctx.ensure_skus(&Stored::trees(&stored)).await {
            tracing::warn!(error = %e, "Could not describe SKUs; contacts wait.");
            return Ok(RoundReport::default());
        }
        // Group by customer; bad input is dead-lettered here.
        let mut groups: BTreeMap<String, Group> = BTreeMap::new();
        let mut immediate: Vec<Vec<Write>> = Vec::new();
        let mut parsed: Vec<(EntityState, Arc<Order>)> = Vec::with_capacity(orders.len());
        for (mut o, stored) in orders.into_iter().zip(stored) {
            let parsed_order = match &stored {
                Stored::Parsed(order) => Ok(order.clone()),
                Stored::Tree(value) => ctx.parse_stored(&o, value),
            };
            let order: Arc<Order> = match parsed_order {
                Ok(order) => {
                    // A dead letter whose fixed copy ingest already stored parses here, but
                    // ingest never gave it a good order's links; writeback needs this one.
                    if !o.links.contains_key("magento_entity_id") {
                        o.links
                            .insert("magento_entity_id".into(), order.entity_id.to_string());
                    }
                    order
                }
                Err(err) => match reread(ctx, &mut o, err).await {
                    Ok(order) => Arc::new(order),
                    Err(err) => {
                        immediate.push(vec![bury(&o, ACTOR, &err, None)]);
                        report.dead += 1;
                        continue;
                    }
                },
            };
            parsed.push((o, order));
        }
        // The customers' contacts, in one read for the round (not one per customer).
        let numbers = parsed
            .iter()
            .map(|(_, order)| contact_number(order))
            .collect();
        let known = known_contacts(ctx, numbers)
            .await
            .map_err(|e| e.to_string())?;
        for (o, order) in parsed {
            let number = contact_number(&order);
            if let Some(id) = known.get(&number) {
                immediate.push(vec![ready(o, id, &number)]);
                report.done += 1;
                continue;
            }
            let g = groups.entry(number.clone()).or_insert_with(|| Group {
                number,
                email: order.customer.email_key.clone(),
                wanted: contact_for(&order),
                orders: Vec::new(),
            });
            g.orders.push(o);
        }
        self.commit(immediate).await?;
        let groups = merge_same_person(groups);
        let batches: Vec<Vec<Group>> = chunk(groups, ctx.settings.batch_size);
        let results = futures::future::join_all(batches.into_iter().map(|b| self.process(b))).await;
        for r in results {
            report.add(RoundReport { picked: 0, ..r? });
        }
        Ok(report)
    }
}

/// A guest checkout and a registered account with the same email, new in the same round,
/// are one person: the guest's orders join the registered customer's contact.
fn merge_same_person(groups: BTreeMap<String, Group>) -> Vec<Group> {
    let mut registered: HashMap<String, String> = HashMap::new();
    for g in groups.values() {
        if g.number.starts_with(REGISTERED) && !g.email.is_empty() {
            registered
                .entry(g.email.clone())
                .or_insert_with(|| g.number.clone());
        }
    }
    let mut groups = groups;
    let guests: Vec<String> = groups
        .values()
        .filter(|g| g.number.starts_with(GUEST) && registered.contains_key(&g.email))
        .map(|g| g.number.clone())
        .collect();
    for number in guests {
        if let Some(guest) = groups.remove(&number)
            && let Some(target) = registered.get(&guest.email).and_then(|n| groups.get_mut(n))
        {
            target.orders.extend(guest.orders);
        }
    }
    groups.into_values().collect()
}

/// Splits a vector into chunks of at most `n`, keeping order.
pub fn chunk<T>(items: Vec<T>, n: usize) -> Vec<Vec<T>> {
    let mut out = Vec::new();
    let mut cur = Vec::with_capacity(n);
    for item in items {
        cur.push(item);
        if cur.len() == n {
            out.push(std::mem::replace(&mut cur, Vec::with_capacity(n)));
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}
