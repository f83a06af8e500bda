//! The Xero contact for a Magento customer: its natural key, its body, and how to recognise
//! an existing contact so a customer is updated, never duplicated.
//!
//! Key: `ContactNumber` (API-only, ≤ 50 chars, made for external ids) = `magento-<customer_id>`
//! for registered customers, `guest-<email>` for guests. Xero's contact Name must be unique
//! among active contacts, so two different "John Smith"s need different names: the second
//! gets its contact number appended.

use sha2::{Digest, Sha256};

use crate::model::order::{Address as OrderAddress, Order};
use crate::model::xero::{Address, Contact};

/// Xero's limit on `ContactNumber`.
pub const MAX_CONTACT_NUMBER: usize = 50;
/// Xero's limit on `Name`.
pub const MAX_NAME: usize = 255;
const GUEST_PREFIX: &str = "guest-";
const CUSTOMER_PREFIX: &str = "magento-";

/// `magento-<id>` or `guest-<lowercased email>`; a guest email too long for Xero's 50
/// characters becomes `guest-` + a stable hash of it, so the key never depends on truncation.
pub fn contact_number(order: &Order) -> String {
    match order.customer.id {
        Some(id) => format!("{CUSTOMER_PREFIX}{id}"),
        None => guest_contact_number(&order.customer.email_key),
    }
}

/// The guest key for an email (lower-cased here too, so callers cannot get it wrong).
pub fn guest_contact_number(email: &str) -> String {
    let key = email.trim().to_lowercase();
    let plain = format!("{GUEST_PREFIX}{key}");
    if plain.chars().count() <= MAX_CONTACT_NUMBER {
        return plain;
    }
    let digest = Sha256::digest(key.as_bytes());
    format!("{GUEST_PREFIX}{}", hex::encode(&digest[..12]))
}

/// The contact body to create or update for this order's customer.
pub fn contact_for(order: &Order) -> Contact {
    let c = &order.customer;
    Contact {
        contact_number: Some(contact_number(order)),
        name: Some(truncate(&c.full_name(), MAX_NAME)),
        first_name: Some(c.first_name.clone()).filter(|s| !s.is_empty()),
        last_name: Some(c.last_name.clone()).filter(|s| !s.is_empty()),
        email_address: Some(c.email.clone()),
        addresses: c
            .billing_address
            .as_ref()
            .map(|a| vec![xero_address(a)])
            .unwrap_or_default(),
        ..Default::default()
    }
}

fn xero_address(a: &OrderAddress) -> Address {
    Address {
        address_type: Some("POBOX".to_owned()),
        address_line1: a.street.first().cloned(),
        address_line2: (a.street.len() > 1).then(|| a.street[1..].join(", ")),
        city: a.city.clone(),
        region: a.region.clone(),
        postal_code: a.postcode.clone(),
        country: a.country_id.clone(),
    }
}

/// "John Smith (magento-42)": used when Xero says the name is taken by a different person.
/// The base is shortened, never the suffix, so the result stays unique and within 255 chars.
pub fn disambiguated_name(base: &str, contact_number: &str) -> String {
    let suffix = format!(" ({contact_number})");
    let room = MAX_NAME.saturating_sub(suffix.chars().count());
    format!("{}{suffix}", truncate(base.trim(), room))
}

fn truncate(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

/// How an existing Xero contact was recognised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContactMatch<'a> {
    /// Same ContactNumber: certainly ours.
    ByNumber(&'a Contact),
    /// Same email (case-insensitive) on a contact without a conflicting Magento key: a contact
    /// made by hand, or a guest who has since registered. Update it (setting our number).
    ByEmail(&'a Contact),
    None,
}

impl<'a> ContactMatch<'a> {
    pub fn contact(&self) -> Option<&'a Contact> {
        match self {
            ContactMatch::ByNumber(c) | ContactMatch::ByEmail(c) => Some(c),
            ContactMatch::None => None,
        }
    }
}

fn usable(c: &Contact) -> bool {
    c.contact_status.as_deref() != Some("GDPRREQUEST")
}

fn number_eq(c: &Contact, number: &str) -> bool {
    c.contact_number
        .as_deref()
        .is_some_and(|n| n.trim().eq_ignore_ascii_case(number))
}

/// Finds the contact for `(contact_number, email)` among candidates (e.g. the results of a
/// lookup by numbers and emails): by ContactNumber first, then by email. An email match on a
/// contact that carries a *different* `magento-` number is a different customer (Magento
/// scopes emails per website) and is not a match. Active contacts win over archived ones.
pub fn find_existing<'a>(
    candidates: &'a [Contact],
    contact_number: &str,
    email: &str,
) -> ContactMatch<'a> {
    let rank = |c: &&Contact| {
        if c.contact_status.as_deref() == Some("ARCHIVED") {
            1
        } else {
            0
        }
    };
    let mut by_number: Vec<&Contact> = candidates
        .iter()
        .filter(|c| usable(c) && number_eq(c, contact_number))
        .collect();
    by_number.sort_by_key(rank);
    if let Some(c) = by_number.first() {
        return ContactMatch::ByNumber(c);
    }
    let email = email.trim();
    let mut by_email: Vec<&Contact> = candidates
        .iter()
        .filter(|c| usable(c))
        .filter(|c| {
            c.email_address
                .as_deref()
                .is_some_and(|e| e.trim().eq_ignore_ascii_case(email))
        })
        .filter(|c| match c.contact_number.as_deref().map(str::trim) {
            None | Some("") => true,
            Some(n) => !n.to_ascii_lowercase().starts_with(CUSTOMER_PREFIX),
        })
        .collect();
    by_email.sort_by_key(rank);
    by_email
        .first()
        .map_or(ContactMatch::None, |c| ContactMatch::ByEmail(c))
}

/// True when `existing` holds the name we want but belongs to someone else, so our contact
/// must use [`disambiguated_name`].
pub fn is_name_clash(
    existing: &Contact,
    wanted_name: &str,
    contact_number: &str,
    email: &str,
) -> bool {
    let same_name = existing
        .name
        .as_deref()
        .is_some_and(|n| n.trim().eq_ignore_ascii_case(wanted_name.trim()));
    let same_person = number_eq(existing, contact_number)
        || (existing
            .contact_number
            .as_deref()
            .is_none_or(|n| n.trim().is_empty())
            && existing
                .email_address
                .as_deref()
                .is_some_and(|e| e.trim().eq_ignore_ascii_case(email.trim())));
    same_name && !same_person && existing.contact_status.as_deref() != Some("ARCHIVED")
}

/// The update to send when a matched contact differs from what Magento says; `None` when it
/// already agrees (no call needed). Name is left alone once set: people rename contacts in
/// Xero and a disambiguated name must not flap back.
pub fn update_for(existing: &Contact, wanted: &Contact) -> Option<Contact> {
    let differs = |a: &Option<String>, b: &Option<String>| match (a, b) {
        (_, None) => false,
        (Some(x), Some(y)) => x.trim() != y.trim(),
        (None, Some(_)) => true,
    };
    let needs = differs(&existing.contact_number, &wanted.contact_number)
        || differs(&existing.email_address, &wanted.email_address)
        || existing.name.is_none();
    needs.then(|| Contact {
        contact_id: existing.contact_id.clone(),
        contact_number: wanted.contact_number.clone(),
        email_address: wanted.email_address.clone(),
        name: if existing.name.is_none() {
            wanted.name.clone()
        } else {
            None
        },
        first_name: wanted.first_name.clone(),
        last_name: wanted.last_name.clone(),
        ..Default::default()
    })
}
