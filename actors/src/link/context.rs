//! What every actor of a link shares: the clients, the ledger, the rules and the catalogue.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::RwLock;
use serde_json::{Value, json};

use super::parsed_orders::ParsedOrders;
use crate::budget::Priority;
use crate::ledger::{DeadLetter, EntityState, Ledger, LedgerError, Record, Write};
use crate::magento::{MagentoClient, MagentoError};
use crate::mapping::{MappingRules, OrgContext};
use crate::model::{Catalogue, JsonView, Order, RecordError};
use crate::xero::{XeroClient, XeroError};

/// Tunables of the flow; the defaults suit production, tests shorten the delays.
#[derive(Debug, Clone)]
pub struct LinkSettings {
    /// Elements per Xero write (Xero recommends at most 50).
    pub batch_size: usize,
    /// Entities one round picks up.
    pub round_limit: usize,
    /// Failed attempts before an entity is dead-lettered.
    pub max_attempts: u32,
    /// First retry delay; doubles per attempt up to `retry_max`.
    pub retry_base: Duration,
    pub retry_max: Duration,
    /// How often each stage looks for work that became due without being kicked.
    pub tick: Duration,
    /// How often ingest polls Magento.
    pub poll_interval: Duration,
    /// Batches in flight at once per stage (the Xero budget still caps calls at 5).
    pub concurrent_batches: usize,
    /// Write Magento back (comment, invoice) when the Xero invoice is paid.
    pub writeback: bool,
    /// Send first-attempt writeback comments through Magento's bulk API (one request per
    /// round), and wait this long for its consumer to apply them.
    pub bulk_comments: bool,
    pub bulk_wait: Duration,
    /// Bring Xero's tracked-item quantities back to Magento, read this often.
    pub stock: bool,
    pub stock_interval: Duration,
    /// Run the reconciler (`reconcile`), and how often it reads Xero's changes back.
    pub reconcile: bool,
    pub reconcile_interval: Duration,
}

impl Default for LinkSettings {
    fn default() -> Self {
        Self {
            batch_size: 50,
            round_limit: 500,
            max_attempts: 8,
            retry_base: Duration::from_millis(500),
            retry_max: Duration::from_secs(300),
            tick: Duration::from_secs(1),
            poll_interval: Duration::from_secs(5),
            concurrent_batches: 4,
            writeback: true,
            bulk_comments: true,
            bulk_wait: Duration::from_secs(30),
            stock: true,
            stock_interval: Duration::from_secs(60),
            reconcile: false,
            reconcile_interval: Duration::from_secs(300),
        }
    }
}

/// Registered actor names, unique per link so two links can run in one process.
#[derive(Debug, Clone)]
pub struct LinkNames {
    pub prefix: String,
}

impl LinkNames {
    pub fn of(&self, stage: &str) -> String {
        format!("{}/{stage}", self.prefix)
    }
}

pub struct LinkContext {
    pub ledger: Ledger,
    pub xero: XeroClient,
    pub magento: MagentoClient,
    pub rules: RwLock<Arc<MappingRules>>,
    pub org: RwLock<Arc<OrgContext>>,
    pub catalogue: RwLock<Catalogue>,
    /// The category tree and tax classes, kept to describe products fetched later.
    pub catalogue_sources: RwLock<(Value, Vec<Value>)>,
    pub settings: LinkSettings,
    pub names: LinkNames,
    /// The Magento REST base URL, for display.
    pub magento_base: String,
    /// Orders whose Magento change the poll moved past while their invoice was in flight.
    pub passed_over: super::passed_over::PassedOver,
    /// Writeback intents the payments stage committed with a `Paid` outcome, not yet acted on.
    pub fresh_intents: super::fresh_intents::FreshIntents,
    /// Payment batches the invoices stage committed with their invoices' outcomes, not yet sent.
    pub fresh_payments: super::fresh_payments::FreshPayments,
    /// Stored orders one stage parsed, for the next stage to reuse.
    pub parsed_orders: ParsedOrders,
}

/// The SKUs on `order`'s items that `cat` does not describe.
fn unknown_skus<'a, J: JsonView>(
    order: &'a J,
    cat: &'a Catalogue,
) -> impl Iterator<Item = &'a str> {
    order
        .member("items")
        .and_then(JsonView::elements)
        .into_iter()
        .flatten()
        .filter_map(|item| item.member("sku").and_then(JsonView::text))
        .filter(|sku| cat.product(sku).is_none())
}

/// Milliseconds since the Unix epoch: the ledger's time unit.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Why the organisation or store could not be described at start-up.
#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    #[error("Xero: {0}")]
    Xero(#[from] XeroError),
    #[error("Magento: {0}")]
    Magento(#[from] MagentoError),
    #[error("ledger: {0}")]
    Ledger(#[from] LedgerError),
    #[error("{0}")]
    Invalid(String),
}

impl LinkContext {
    pub fn rules(&self) -> Arc<MappingRules> {
        self.rules.read().clone()
    }

    pub fn org(&self) -> Arc<OrgContext> {
        self.org.read().clone()
    }

    /// Reads what the mapping needs from the organisation: base currency, tax rates, items.
    pub async fn load_org(&self) -> Result<(), ContextError> {
        let org = self.xero.organisation(Priority::Lookup).await?;
        let base = org
            .get("BaseCurrency")
            .and_then(Value::as_str)
            .ok_or_else(|| ContextError::Invalid("Xero Organisation has no BaseCurrency".into()))?
            .to_owned();
        let rates = self.xero.tax_rates(Priority::Lookup).await?;
        let mut tax_rates = HashMap::new();
        for r in &rates {
            let active = r
                .get("Status")
                .and_then(Value::as_str)
                .is_none_or(|s| s == "ACTIVE");
            let (Some(t), Some(rate)) = (
                r.get("TaxType").and_then(Value::as_str),
                r.get("EffectiveRate"),
            ) else {
                continue;
            };
            if active && let Ok(rate) = crate::model::money::parse_rate(rate) {
                tax_rates.insert(t.to_owned(), rate);
            }
        }
        let items = self.xero.items(Priority::Lookup).await?;
        let item_codes = items
            .iter()
            .filter_map(|i| i.get("Code").and_then(Value::as_str).map(str::to_owned))
            .collect();
        *self.org.write() = Arc::new(OrgContext {
            base_currency: base,
            tax_rates,
            item_codes,
        });
        Ok(())
    }

    /// Loads the whole catalogue once: products, the category tree and tax classes.
    pub async fn load_catalogue(&self) -> Result<(), ContextError> {
        let criteria = crate::magento::SearchCriteria::new();
        let products = self.magento.search_all("products", &criteria).await?;
        let tree = self.magento.categories().await?;
        let classes = self.magento.tax_classes().await?;
        let mut cat = Catalogue::from_magento(
            &json!({ "items": products }),
            &tree,
            &json!({ "items": classes.clone() }),
        )
        .map_err(|e| ContextError::Invalid(format!("Magento catalogue: {e}")))?;
        for code in &self.org().item_codes {
            cat.insert_xero_item(code.clone());
        }
        *self.catalogue.write() = cat;
        *self.catalogue_sources.write() = (tree, classes);
        Ok(())
    }

    /// Makes sure every SKU on `order` is described, fetching products added since start-up.
    pub async fn ensure_skus<J: JsonView>(&self, orders: &[&J]) -> Result<(), ContextError> {
        let mut missing = BTreeSet::new();
        {
            let cat = self.catalogue.read();
            for order in orders {
                missing.extend(unknown_skus(*order, &cat).map(str::to_owned));
            }
        }
        if missing.is_empty() {
            return Ok(());
        }
        let skus: Vec<String> = missing.into_iter().collect();
        let products = self.magento.products_by_skus(&skus).await?;
        if products.is_empty() {
            return Ok(());
        }
        let (tree, classes) = self.catalogue_sources.read().clone();
        let extra = Catalogue::from_magento(
            &json!({ "items": products }),
            &tree,
            &json!({ "items": classes }),
        )
        .map_err(|e| ContextError::Invalid(format!("Magento catalogue: {e}")))?;
        let mut cat = self.catalogue.write();
        for sku in &skus {
            if let Some(facts) = extra.product(sku) {
                cat.insert(sku.clone(), facts.clone());
            }
        }
        Ok(())
    }

    /// Parses a stored Magento order against the current catalogue.
    pub fn parse_order(&self, raw: &impl JsonView) -> Result<Order, RecordError> {
        Order::from_json(raw, &self.catalogue.read())
    }

    /// `s`'s stored order as an earlier stage parsed it, if its record and the catalogue are
    /// unchanged since (see `parsed_orders`). A hit needs no [`ensure_skus`](Self::ensure_skus):
    /// only orders whose every SKU was described are kept.
    pub fn parsed_order(&self, s: &EntityState) -> Option<Arc<Order>> {
        let revision = self.catalogue.read().revision();
        self.parsed_orders.get(&s.key, &s.data, revision)
    }

    /// Parses `raw` and, under the same read of the catalogue, says what a later stage may
    /// reuse it under: the catalogue revision it was parsed against, or `None` when it named
    /// a SKU the catalogue did not describe (a later stage may find that product and must
    /// parse again). Read apart, a catalogue change in between would tag an old parse with a
    /// new revision.
    pub fn parse_keepable(&self, raw: &impl JsonView) -> Result<(Order, Option<u64>), RecordError> {
        let cat = self.catalogue.read();
        let order = Order::from_json(raw, &cat)?;
        let clean = unknown_skus(raw, &cat).next().is_none();
        Ok((order, clean.then(|| cat.revision())))
    }

    /// Keeps `order`, parsed from the record `s` holds as [`parse_keepable`] described it,
    /// for the next stage to reuse.
    ///
    /// [`parse_keepable`]: Self::parse_keepable
    pub fn keep_parsed(&self, s: &EntityState, order: Arc<Order>, revision: Option<u64>) {
        if let Some(revision) = revision {
            self.parsed_orders.keep(&s.key, &s.data, revision, order);
        }
    }

    /// Parses `tree`, the parsed text of `s`'s stored record, and keeps a clean result for the
    /// next stage to reuse.
    pub fn parse_stored(
        &self,
        s: &EntityState,
        tree: &impl JsonView,
    ) -> Result<Arc<Order>, RecordError> {
        let (order, revision) = self.parse_keepable(tree)?;
        let order = Arc::new(order);
        self.keep_parsed(s, order.clone(), revision);
        Ok(order)
    }

    /// For each of `states`, its order as an earlier stage parsed it, else the tree of its
    /// record (`records`, the states' records in order) to parse.
    pub fn stored_orders<'a>(
        &self,
        states: &[EntityState],
        records: &'a [Record],
    ) -> Vec<super::parsed_orders::Stored<'a>> {
        use super::parsed_orders::Stored;
        states
            .iter()
            .zip(records)
            .map(|(s, r)| match self.parsed_order(s) {
                Some(order) => Stored::Parsed(order),
                None => Stored::Tree(r.tree()),
            })
            .collect()
    }

    /// Up to `round_limit` entities in `stage` that are not waiting for a retry.
    pub async fn due_in(
        &self,
        stage: crate::ledger::Stage,
    ) -> Result<Vec<EntityState>, super::stage::RoundError> {
        let now = now_ms();
        let all = self
            .ledger
            .by_stage(stage, self.settings.round_limit)
            .await
            .map_err(|e| e.to_string())?;
        Ok(all.into_iter().filter(|s| is_due(s, now)).collect())
    }

    /// The delay before attempt `attempts + 1`: exponential with full jitter.
    pub fn retry_delay(&self, attempts: u32) -> Duration {
        let s = &self.settings;
        let exp = s
            .retry_base
            .saturating_mul(2u32.saturating_pow(attempts.min(16)))
            .min(s.retry_max);
        let jitter = rand::random::<f64>();
        s.retry_base.max(exp.mul_f64(0.5 + jitter / 2.0))
    }
}

/// Builds the write that parks a failed entity for a retry, or dead-letters it when it has
/// used up its attempts. `remote` is the other system's own words, when it gave any.
pub fn fail_or_bury(
    ctx: &LinkContext,
    mut state: EntityState,
    actor: &str,
    reason: &str,
    remote: Option<String>,
) -> (Write, bool) {
    state.attempts += 1;
    state.last_error = Some(reason.to_owned());
    if state.attempts >= ctx.settings.max_attempts {
        let record = record_name(&state.key);
        let letter = DeadLetter {
            key: state.key.clone(),
            record,
            field: None,
            message: format!("gave up after {} attempts: {reason}", state.attempts),
            remote_message: remote,
            stage_at_death: Some(state.stage),
            attempts: state.attempts,
            first_failed_at_ms: state.updated_at_ms,
            dead_at_ms: now_ms(),
            payload: None,
        };
        return (
            Write::DeadLetter {
                letter,
                actor: actor.to_owned(),
            },
            true,
        );
    }
    state.retry_at_ms = Some(now_ms() + ctx.retry_delay(state.attempts).as_millis() as i64);
    let detail = format!("attempt {} failed: {reason}", state.attempts);
    (
        Write::Put {
            state,
            actor: actor.to_owned(),
            detail,
        },
        false,
    )
}

/// A dead letter for bad input or a permanent rejection: no retry can fix it, a person must.
pub fn bury(state: &EntityState, actor: &str, err: &RecordError, remote: Option<String>) -> Write {
    Write::DeadLetter {
        letter: DeadLetter {
            key: state.key.clone(),
            record: err.record.clone(),
            field: Some(err.field.clone()).filter(|f| !f.is_empty()),
            message: err.message.clone(),
            remote_message: remote,
            stage_at_death: Some(state.stage),
            attempts: state.attempts + 1,
            first_failed_at_ms: now_ms(),
            dead_at_ms: now_ms(),
            payload: None,
        },
        actor: actor.to_owned(),
    }
}

/// `order:000000123` → `order 000000123`.
pub fn record_name(key: &str) -> String {
    key.replacen(':', " ", 1)
}

/// True when the entity is not waiting for a retry.
pub fn is_due(state: &EntityState, now: i64) -> bool {
    state.retry_at_ms.is_none_or(|t| t <= now)
}

impl LinkContext {
    /// The store code from the Magento base URL (`…/rest/default` → `default`), for display.
    pub fn magento_store_label(&self) -> String {
        self.magento_base
            .rsplit('/')
            .next()
            .unwrap_or("store")
            .to_owned()
    }
}
