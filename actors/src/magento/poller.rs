//! Incremental order ingest by `updated_at`.
//!
//! Magento has no outbound events in Open Source (magento.md §7), so orders are polled. Two
//! facts shape the algorithm:
//! - `updated_at` has one-second resolution and is set when a save *starts*, so an order can
//!   become visible after a later-stamped one was already read. Each poll therefore starts
//!   `overlap` seconds before the cursor (`gteq`), and `(entity_id, updated_at)` pairs already
//!   emitted inside that window are remembered in the cursor so they are not emitted twice.
//! - Offset paging over a list that changes while it is read can skip rows (an order updated
//!   mid-scan moves to the end and everything after it shifts left). So the poller pages by
//!   key: after each full page the next request starts again at the page's last `updated_at`
//!   (`gteq`, so rows sharing that second are re-read and de-duplicated); only a run of more
//!   than a page of orders with the very same timestamp falls back to `current_page`.
//!
//! The cursor only moves forward to timestamps whose orders have all been returned, and the
//! caller persists the new cursor together with (or after) the orders it was given, so a crash
//! between the two re-delivers orders instead of losing them.
//!
//! Pages are read by key first (`entity_id`, `increment_id`, `updated_at`) and only the
//! orders the caller wants are then fetched whole by id ([`OrderPoller::poll_wanted`]): most
//! changes an engine sees in steady state are its own writeback re-saving orders it has
//! already finished with, and reading those whole cost as much as reading new ones.

use std::collections::HashSet;
use std::time::Duration;

use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::model::{JsonView, Kind};

use super::client::MagentoClient;
use super::criteria::{Condition, Direction, SearchCriteria};
use super::error::MagentoError;
use super::polled_order::PolledOrder;

const TIMESTAMP: &str = "%Y-%m-%d %H:%M:%S";

/// How many keys one poll may read per order it may return (see `with_max_per_poll`).
const KEYS_PER_WANTED: usize = 10;

/// What the forward read asks for first: enough to know what changed and whose it is.
pub const CHANGED_FIELDS: &str = "items[entity_id,increment_id,updated_at],total_count";

/// An order a poll found changed, before it is read whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangedOrder {
    pub entity_id: u64,
    /// Absent only if the server left it out; such an order is worth reading whole.
    pub increment_id: Option<String>,
}

/// A list item that carries more than the keys asked for: the server ignored `fields`.
fn is_whole(item: &Value) -> bool {
    item.get("grand_total").is_some() || item.get("items").is_some()
}

/// Where the order poll stands; persisted by the caller (in the ledger's cursors table).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderCursor {
    /// The newest `updated_at` returned so far (`YYYY-MM-DD HH:MM:SS`, UTC); empty = start
    /// from the beginning of the store's history.
    pub updated_at: String,
    /// `(entity_id, updated_at)` already returned whose timestamp is inside the overlap
    /// window behind `updated_at`; older pairs are dropped because no poll re-reads them.
    pub seen: Vec<(u64, String)>,
}

impl OrderCursor {
    /// A cursor that starts at `updated_at` (e.g. "only orders changed since go-live").
    pub fn starting_at(updated_at: impl Into<String>) -> Self {
        Self {
            updated_at: updated_at.into(),
            seen: Vec::new(),
        }
    }
}

/// Polls `GET /V1/orders` incrementally. Cheap to clone.
#[derive(Debug, Clone)]
pub struct OrderPoller {
    client: MagentoClient,
    overlap: Duration,
    page_size: u32,
    max_per_poll: usize,
}

impl OrderPoller {
    /// `overlap` is the config's `overlap_secs`. Pages use the client's page size.
    pub fn new(client: MagentoClient, overlap: Duration) -> Self {
        let page_size = client.page_size();
        Self {
            client,
            overlap,
            page_size,
            max_per_poll: 10 * page_size as usize,
        }
    }

    /// Overrides the page size (≤ 300).
    pub fn with_page_size(mut self, size: u32) -> Self {
        self.page_size = size.clamp(1, super::config::MAX_PAGE_SIZE);
        self
    }

    /// Caps how many new orders one poll returns, so a large backlog is committed in slices;
    /// a poll that hits the cap returns at least that many and the caller polls again at
    /// once. The cap is checked after whole pages. A poll also stops after reading ten
    /// times the cap in keys, so a long run of changes the caller does not want (its own
    /// writeback of a backfill) still moves the cursor in committed slices.
    pub fn with_max_per_poll(mut self, max: usize) -> Self {
        self.max_per_poll = max.max(1);
        self
    }

    /// Returns the orders changed since `cursor` that it has not returned before, oldest
    /// first (by `updated_at`, then `entity_id`), and the cursor to persist once they are
    /// committed. Orders are the list-call shape: fetch [`MagentoClient::get_order`] for the
    /// fields list calls omit.
    pub async fn poll(
        &self,
        cursor: &OrderCursor,
    ) -> Result<(Vec<PolledOrder>, OrderCursor), MagentoError> {
        self.poll_wanted(cursor, |keys| async move {
            keys.into_iter().map(|k| k.entity_id).collect()
        })
        .await
    }

    /// [`poll`](Self::poll), reading each page by key first and fetching whole only the
    /// orders `wanted` picks from it; the others still move the cursor past them. The
    /// caller knows which changes it would ignore: an order it has already carried past
    /// the point where a change matters is re-saved by the engine's own writeback, and
    /// would otherwise be transferred and parsed whole a second time for nothing.
    pub async fn poll_wanted<F, Fut>(
        &self,
        cursor: &OrderCursor,
        wanted: F,
    ) -> Result<(Vec<PolledOrder>, OrderCursor), MagentoError>
    where
        F: Fn(Vec<ChangedOrder>) -> Fut,
        Fut: std::future::Future<Output = HashSet<u64>>,
    {
        let mut seen: HashSet<(u64, String)> = cursor.seen.iter().cloned().collect();
        let mut newest = cursor.updated_at.clone();
        let mut emitted = Vec::new();
        if let Some(start) = self.window_start(&cursor.updated_at)? {
            for order in self.sweep(&start, &cursor.updated_at, &seen).await? {
                if seen.insert(order.key()) {
                    emitted.push(order);
                }
            }
        }
        let mut from = (!cursor.updated_at.is_empty()).then(|| cursor.updated_at.clone());
        let mut page: u32 = 1;
        let mut scanned = 0usize;
        for _ in 0..100_000 {
            if emitted.len() >= self.max_per_poll {
                break;
            }
            let mut criteria = SearchCriteria::new();
            if let Some(from) = &from {
                criteria = criteria.filter("updated_at", Condition::Gteq, from.clone());
            }
            let criteria = criteria
                .sort("updated_at", Direction::Asc)
                .sort("entity_id", Direction::Asc)
                .page_size(self.page_size)
                .current_page(page)
                .fields(CHANGED_FIELDS);
            let result = self.client.search("orders", &criteria).await?;
            let got = result.items.len();
            let mut last_ts: Option<String> = None;
            let mut changed = Vec::new();
            let mut whole = Vec::new();
            for item in result.items {
                let key = order_key(&item)?;
                if key.1 > newest {
                    newest = key.1.clone();
                }
                if last_ts.as_ref().is_none_or(|t| key.1 > *t) {
                    last_ts = Some(key.1.clone());
                }
                if seen.insert(key.clone()) {
                    changed.push(ChangedOrder {
                        entity_id: key.0,
                        increment_id: item
                            .get("increment_id")
                            .and_then(Value::as_str)
                            .map(str::to_owned),
                    });
                    // A server that ignores `fields` sent the whole order already.
                    if is_whole(&item) {
                        whole.push(PolledOrder::from_value(&item)?);
                    }
                }
            }
            if !changed.is_empty() {
                let picked = wanted(changed).await;
                let mut read = Vec::new();
                let mut kept: HashSet<u64> = HashSet::new();
                for order in whole {
                    let id = order.entity_id();
                    if picked.contains(&id) {
                        kept.insert(id);
                        read.push(order);
                    }
                }
                let fetch = picked.into_iter().filter(|id| !kept.contains(id)).collect();
                read.extend(self.fetch(fetch).await?);
                sort_by_change(&mut read);
                emitted.extend(read);
            }
            let fetched = u64::from(page) * u64::from(self.page_size);
            let last_page = got < self.page_size as usize || fetched >= result.total_count;
            scanned += got;
            let enough = emitted.len() >= self.max_per_poll
                || scanned >= self.max_per_poll.saturating_mul(KEYS_PER_WANTED);
            if last_page || enough {
                break;
            }
            match last_ts {
                Some(ts) if from.as_ref().is_none_or(|f| ts > *f) => {
                    from = Some(ts);
                    page = 1;
                }
                _ => page += 1,
            }
        }
        let next = OrderCursor {
            seen: self.prune(seen, &newest)?,
            updated_at: newest,
        };
        Ok((emitted, next))
    }

    /// Orders by `entity_id`, with the projected fields, oldest change first.
    async fn fetch(&self, ids: Vec<u64>) -> Result<Vec<PolledOrder>, MagentoError> {
        let mut out = self
            .client
            .orders_by_id(&ids)
            .await?
            .into_iter()
            .map(PolledOrder::from_raw)
            .collect::<Result<Vec<_>, _>>()?;
        sort_by_change(&mut out);
        Ok(out)
    }

    /// The orders in `[start, before)` (the overlap window behind the cursor) that were not
    /// returned yet: late commits. The window is re-read on every poll, and most of it was
    /// seen, so it is read by key only (`fields=items[entity_id,updated_at]`) and only the
    /// unseen orders are then fetched whole. Without this, every order the engine writes back
    /// to (which bumps its `updated_at`) came back in full on every poll for `overlap`
    /// seconds. A server that ignores `fields` returns whole orders, which are used as they
    /// are.
    async fn sweep(
        &self,
        start: &str,
        before: &str,
        seen: &HashSet<(u64, String)>,
    ) -> Result<Vec<PolledOrder>, MagentoError> {
        let page_size = super::config::MAX_PAGE_SIZE;
        let mut whole = Vec::new();
        let mut missing: Vec<u64> = Vec::new();
        let mut from = start.to_owned();
        let mut page: u32 = 1;
        for _ in 0..100_000 {
            let criteria = SearchCriteria::new()
                .filter("updated_at", Condition::Gteq, from.clone())
                .filter("updated_at", Condition::Lt, before.to_owned())
                .sort("updated_at", Direction::Asc)
                .sort("entity_id", Direction::Asc)
                .page_size(page_size)
                .current_page(page)
                .fields("items[entity_id,updated_at],total_count");
            let result = self.client.search("orders", &criteria).await?;
            let got = result.items.len();
            let mut last_ts: Option<String> = None;
            for item in result.items {
                let key = order_key(&item)?;
                if last_ts.as_ref().is_none_or(|t| key.1 > *t) {
                    last_ts = Some(key.1.clone());
                }
                // The forward read owns `before` onwards (also if a server ignored `lt`).
                if seen.contains(&key) || key.1.as_str() >= before {
                    continue;
                }
                if item.get("increment_id").is_some() {
                    whole.push(PolledOrder::from_value(&item)?);
                } else {
                    missing.push(key.0);
                }
            }
            let fetched = u64::from(page) * u64::from(page_size);
            if got < page_size as usize || fetched >= result.total_count {
                break;
            }
            match last_ts {
                Some(ts) if ts > from => {
                    from = ts;
                    page = 1;
                }
                _ => page += 1,
            }
        }
        whole.extend(self.fetch(missing).await?);
        sort_by_change(&mut whole);
        Ok(whole)
    }

    /// The `gteq` bound for a cursor: `overlap` before it, or none for an empty cursor.
    fn window_start(&self, updated_at: &str) -> Result<Option<String>, MagentoError> {
        if updated_at.is_empty() {
            return Ok(None);
        }
        let t = parse_ts(updated_at)?;
        let overlap = chrono::Duration::from_std(self.overlap).unwrap_or(chrono::Duration::MAX);
        let start = t.checked_sub_signed(overlap).unwrap_or(NaiveDateTime::MIN);
        Ok(Some(start.format(TIMESTAMP).to_string()))
    }

    /// Keeps the pairs a poll from `newest` can still read back, sorted for a stable cursor.
    fn prune(
        &self,
        seen: HashSet<(u64, String)>,
        newest: &str,
    ) -> Result<Vec<(u64, String)>, MagentoError> {
        let Some(start) = self.window_start(newest)? else {
            return Ok(Vec::new());
        };
        let mut kept: Vec<(u64, String)> =
            seen.into_iter().filter(|(_, ts)| *ts >= start).collect();
        kept.sort_by(|a, b| a.1.cmp(&b.1).then(a.0.cmp(&b.0)));
        Ok(kept)
    }
}

fn parse_ts(value: &str) -> Result<NaiveDateTime, MagentoError> {
    NaiveDateTime::parse_from_str(value, TIMESTAMP).map_err(|_| {
        MagentoError::Config(format!(
            "order cursor `{value}` is not a Magento timestamp (YYYY-MM-DD HH:MM:SS)"
        ))
    })
}

/// An order's `entity_id`, which Magento sends as a number or, from some endpoints and
/// extensions, as a numeric string.
pub fn order_entity_id(order: &impl JsonView) -> Option<u64> {
    match order.member("entity_id")?.kind() {
        Kind::Number(n) => n.parse().ok(),
        Kind::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Oldest change first, ties by `entity_id`: the order the poll's cursor moves in.
fn sort_by_change(orders: &mut [PolledOrder]) {
    orders.sort_by(|a, b| (a.updated_at(), a.entity_id()).cmp(&(b.updated_at(), b.entity_id())));
}

pub(crate) fn order_key(order: &impl JsonView) -> Result<(u64, String), MagentoError> {
    let decode = |reason: &str| MagentoError::Decode {
        method: "GET".into(),
        path: "/V1/orders".into(),
        reason: reason.to_string(),
    };
    let id =
        order_entity_id(order).ok_or_else(|| decode("an order without a numeric entity_id"))?;
    let updated_at = order
        .member("updated_at")
        .and_then(JsonView::text)
        .ok_or_else(|| decode("an order without updated_at"))?;
    parse_ts(updated_at).map_err(|_| decode("an order with a malformed updated_at"))?;
    Ok((id, updated_at.to_string()))
}
