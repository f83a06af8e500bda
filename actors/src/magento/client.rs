//! The Magento REST client: one request path for every endpoint the engine uses, so auth,
//! encoding, budget, retries and error rendering are done the same way everywhere.
//!
//! Retries: reads are always retried on retriable or ambiguous failures; writes are retried
//! only when they are idempotent (absolute stock quantities) or when the failure proves the
//! request never reached Magento (connection refused, 429 backpressure). A non-idempotent
//! write whose outcome is unknown comes back as [`FailureKind::Ambiguous`] so the caller can
//! look the record up by its natural key (e.g. [`MagentoClient::invoices_for_order`]) before
//! sending it again.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use rust_decimal::Decimal;
use secrecy::{ExposeSecret, SecretString};
use serde_json::value::RawValue;
use serde_json::{Value, json};
use url::Url;

use super::auth::{AdminTokenCache, Auth};
use super::config::{AuthMode, MagentoConfig};
use super::criteria::{Condition, Filter, SearchCriteria};
use super::encode::{query_string, rfc3986};
use super::error::{FailureKind, MagentoError, render_error_body};
use super::oauth1::{self, Freshness, OAuth1Credentials, SignatureMethod};
use crate::budget::{MagentoBudget, Priority};
use crate::retry::{Failure, RetryPolicy, parse_retry_after};

/// One page of a search: `{items, total_count}` (the echoed `search_criteria` is dropped).
#[derive(Debug, Clone, PartialEq)]
pub struct SearchPage<T = Value> {
    pub items: Vec<T>,
    pub total_count: u64,
}

/// An MSI source item to write: an absolute quantity at one source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceItem {
    pub sku: String,
    pub source_code: String,
    pub quantity: Decimal,
    /// In stock (`status` 1) or out of stock (0).
    pub in_stock: bool,
}

/// Cheap to clone; clones share the HTTP pool, the admin-token cache and the budget.
#[derive(Clone)]
pub struct MagentoClient {
    inner: Arc<Inner>,
    retry: RetryPolicy,
    budget: Option<MagentoBudget>,
}

struct Inner {
    http: reqwest::Client,
    /// The REST root without a trailing slash, e.g. `http://host/rest/default`.
    base: String,
    auth: Auth,
    page_size: u32,
    /// Every configured credential, so anything echoed back by a server can be scrubbed.
    secrets: Vec<SecretString>,
}

impl std::fmt::Debug for MagentoClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mode = match &self.inner.auth {
            Auth::OAuth1(_) => "oauth1",
            Auth::Bearer(_) => "bearer",
            Auth::Admin(_) => "admin",
        };
        f.debug_struct("MagentoClient")
            .field("base", &self.inner.base)
            .field("auth", &mode)
            .field("page_size", &self.inner.page_size)
            .finish_non_exhaustive()
    }
}

/// Whether repeating a request can change the result beyond the first success.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Repeat {
    Safe,
    Unsafe,
}

struct Call {
    method: Method,
    /// Relative to the REST root, path segments already encoded: `V1/orders/12`.
    path: String,
    query: Vec<(String, String)>,
    body: Option<Vec<u8>>,
    repeat: Repeat,
    priority: Priority,
}

impl MagentoClient {
    /// Builds a client from the `[magento]` table (validated here).
    pub fn new(config: &MagentoConfig) -> Result<Self, MagentoError> {
        config.validate()?;
        let timeout = Duration::from_secs(config.timeout_secs);
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("tally/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| MagentoError::Config(format!("http client: {e}")))?;
        let need = |v: &Option<SecretString>| v.clone().expect("validated");
        let auth = match config.auth {
            AuthMode::Oauth1 => Auth::OAuth1(OAuth1Credentials {
                consumer_key: need(&config.consumer_key),
                consumer_secret: need(&config.consumer_secret),
                token: need(&config.access_token),
                token_secret: need(&config.access_token_secret),
            }),
            AuthMode::Bearer => Auth::Bearer(need(&config.token)),
            AuthMode::Admin => Auth::Admin(AdminTokenCache::new(
                config.username.clone().expect("validated"),
                need(&config.password),
            )),
        };
        let secrets = [
            &config.consumer_key,
            &config.consumer_secret,
            &config.access_token,
            &config.access_token_secret,
            &config.token,
            &config.password,
        ]
        .into_iter()
        .flatten()
        .cloned()
        .collect();
        let retry = RetryPolicy {
            max_attempts: config.max_attempts.max(1),
            ..RetryPolicy::default()
        };
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                base: config.base_url.trim_end_matches('/').to_string(),
                auth,
                page_size: config.effective_page_size(),
                secrets,
            }),
            retry,
            budget: None,
        })
    }

    /// Replaces the retry policy (tests use millisecond delays).
    pub fn with_retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// Makes every request wait for a permit of the link's Magento budget first.
    pub fn with_budget(mut self, budget: MagentoBudget) -> Self {
        self.budget = Some(budget);
        self
    }

    /// The page size used when a criteria does not set one (≤ 300).
    pub fn page_size(&self) -> u32 {
        self.inner.page_size
    }

    // ---- reads -----------------------------------------------------------------------

    /// `GET /V1/orders/{entity_id}`: the full order, including fields list calls omit.
    pub async fn get_order(&self, entity_id: u64) -> Result<Value, MagentoError> {
        self.get(format!("V1/orders/{entity_id}"), Vec::new()).await
    }

    /// `GET /V1/orders/{entity_id}?fields=…`: only the named fields (Magento's response
    /// projection), for callers that read a few fields of a ~10 KB order.
    pub async fn get_order_fields(
        &self,
        entity_id: u64,
        fields: &str,
    ) -> Result<Value, MagentoError> {
        self.get(
            format!("V1/orders/{entity_id}"),
            vec![("fields".to_owned(), fields.to_owned())],
        )
        .await
    }

    /// The current copies of orders by `entity_id`, with the fields the engine reads
    /// (`model::order_fields`), in `entity_id` order: one search per 300 ids.
    pub async fn orders_by_id(&self, ids: &[u64]) -> Result<Vec<Box<RawValue>>, MagentoError> {
        let mut ids = ids.to_vec();
        ids.sort_unstable();
        ids.dedup();
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(super::config::MAX_PAGE_SIZE as usize) {
            let ids: Vec<String> = chunk.iter().map(u64::to_string).collect();
            let criteria = SearchCriteria::new()
                .any_of([super::criteria::Filter::one_of("entity_id", &ids)])
                .sort("entity_id", super::criteria::Direction::Asc)
                .fields(crate::model::order_fields::search_fields());
            let page = |c: SearchCriteria| async move { self.search_raw("orders", &c).await };
            out.extend(self.all_pages(&criteria, page).await?);
        }
        Ok(out)
    }

    /// One page of `GET /V1/{resource}` (`orders`, `invoices`, `creditmemos`,
    /// `customers/search`, `products`, `taxClasses/search`, `inventory/source-items`). A
    /// criteria without a page size gets the configured one: Magento would otherwise return
    /// every match in one response.
    pub async fn search(
        &self,
        resource: &str,
        criteria: &SearchCriteria,
    ) -> Result<SearchPage, MagentoError> {
        self.search_as(resource, criteria, decode_page::<Value>)
            .await
    }

    /// Every match of a search, page by page with an explicit page size. Stops when
    /// `total_count` is reached or a page comes back short: Magento answers a page past the
    /// end with the last page again, so an "empty page" never comes.
    pub async fn search_all(
        &self,
        resource: &str,
        criteria: &SearchCriteria,
    ) -> Result<Vec<Value>, MagentoError> {
        self.all_pages(criteria, |c| async move { self.search(resource, &c).await })
            .await
    }

    /// [`search`](Self::search) with each item left as its JSON text.
    pub async fn search_raw(
        &self,
        resource: &str,
        criteria: &SearchCriteria,
    ) -> Result<SearchPage<Box<RawValue>>, MagentoError> {
        self.search_as(resource, criteria, decode_page::<Box<RawValue>>)
            .await
    }

    /// One search page, decoded inside the retry (a page of the wrong shape is retried like
    /// one that is not JSON).
    async fn search_as<T>(
        &self,
        resource: &str,
        criteria: &SearchCriteria,
        decode: Decode<SearchPage<T>>,
    ) -> Result<SearchPage<T>, MagentoError> {
        let call = Call {
            method: Method::GET,
            path: format!("V1/{}", resource.trim_matches('/')),
            query: self.paged(criteria).to_query(),
            body: None,
            repeat: Repeat::Safe,
            priority: Priority::Lookup,
        };
        self.execute_as(call, decode).await
    }

    /// `criteria` with the configured page size when it has none: Magento would otherwise
    /// return every match in one response.
    fn paged(&self, criteria: &SearchCriteria) -> SearchCriteria {
        let mut criteria = criteria.clone();
        if criteria.page_size.is_none() {
            criteria.page_size = Some(self.inner.page_size);
            criteria.current_page.get_or_insert(1);
        }
        criteria
    }

    /// Every page of a search, fetched by `page`.
    async fn all_pages<T, F, Fut>(
        &self,
        criteria: &SearchCriteria,
        fetch: F,
    ) -> Result<Vec<T>, MagentoError>
    where
        F: Fn(SearchCriteria) -> Fut,
        Fut: std::future::Future<Output = Result<SearchPage<T>, MagentoError>>,
    {
        let size = criteria
            .page_size
            .unwrap_or(self.inner.page_size)
            .clamp(1, super::config::MAX_PAGE_SIZE);
        let mut out = Vec::new();
        let mut page: u32 = 1;
        loop {
            let criteria = criteria.clone().page_size(size).current_page(page);
            let result = fetch(criteria).await?;
            let got = result.items.len();
            out.extend(result.items);
            let fetched = u64::from(page) * u64::from(size);
            if got < size as usize || fetched >= result.total_count {
                return Ok(out);
            }
            page += 1;
        }
    }

    /// Products by SKU, one `sku in (...)` search per chunk of at most a page.
    pub async fn products_by_skus(&self, skus: &[String]) -> Result<Vec<Value>, MagentoError> {
        let mut out = Vec::new();
        for chunk in skus.chunks(self.inner.page_size as usize) {
            let criteria = SearchCriteria::new().any_of([Filter::one_of("sku", chunk)]);
            out.extend(self.search_all("products", &criteria).await?);
        }
        Ok(out)
    }

    /// `GET /V1/categories`: the category tree from the root.
    pub async fn categories(&self) -> Result<Value, MagentoError> {
        self.get("V1/categories".into(), Vec::new()).await
    }

    /// Every tax class (product and customer).
    pub async fn tax_classes(&self) -> Result<Vec<Value>, MagentoError> {
        self.search_all("taxClasses/search", &SearchCriteria::new())
            .await
    }

    /// The sales invoices of one order: the natural-key lookup to run before
    /// [`create_invoice`](Self::create_invoice), so a crash after Magento created an invoice
    /// never produces a second one.
    pub async fn invoices_for_order(&self, entity_id: u64) -> Result<Vec<Value>, MagentoError> {
        let criteria =
            SearchCriteria::new().filter("order_id", Condition::Eq, entity_id.to_string());
        self.search_all("invoices", &criteria).await
    }

    /// `GET /V1/stockItems/{sku}` (legacy CatalogInventory): carries the `item_id` that
    /// [`set_stock_qty`](Self::set_stock_qty) needs.
    pub async fn get_stock_item(&self, sku: &str) -> Result<Value, MagentoError> {
        self.get(format!("V1/stockItems/{}", rfc3986(sku)), Vec::new())
            .await
    }

    /// Whether Inventory Management (MSI) is installed: its routes 404 when it is disabled.
    pub async fn has_msi(&self) -> Result<bool, MagentoError> {
        let criteria = SearchCriteria::new().page_size(1).current_page(1);
        match self
            .get("V1/inventory/sources".into(), criteria.to_query())
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e),
        }
    }

    // ---- writes ----------------------------------------------------------------------

    /// Appends a status-history comment, optionally recording `status` on it. Not
    /// idempotent (a repeat adds a second comment), so it is not retried when the outcome is
    /// unknown.
    pub async fn add_order_comment(
        &self,
        entity_id: u64,
        comment: &str,
        status: Option<&str>,
    ) -> Result<(), MagentoError> {
        let mut history = json!({
            "comment": comment,
            "is_customer_notified": 0,
            "is_visible_on_front": 0,
            "parent_id": entity_id,
        });
        if let Some(status) = status {
            history["status"] = Value::String(status.to_string());
        }
        let body = json!({ "statusHistory": history });
        self.send(
            Method::POST,
            format!("V1/orders/{entity_id}/comments"),
            Some(body),
            Repeat::Unsafe,
        )
        .await?;
        Ok(())
    }

    /// Creates a full sales invoice for the order (`capture: true` marks an offline payment
    /// as paid, moving the order to `processing`) and returns its id. Not idempotent: call
    /// [`invoices_for_order`](Self::invoices_for_order) first, and again after an
    /// [`FailureKind::Ambiguous`] error.
    pub async fn create_invoice(
        &self,
        entity_id: u64,
        capture: bool,
        comment: Option<&str>,
    ) -> Result<u64, MagentoError> {
        let mut body = json!({ "capture": capture, "notify": false });
        if let Some(comment) = comment {
            body["appendComment"] = Value::Bool(true);
            body["comment"] = json!({ "comment": comment, "is_visible_on_front": 0 });
        }
        let path = format!("V1/order/{entity_id}/invoice");
        let value = self
            .send(Method::POST, path.clone(), Some(body), Repeat::Unsafe)
            .await?;
        id_from(&value).ok_or_else(|| MagentoError::Decode {
            method: "POST".into(),
            path: format!("/{path}"),
            reason: format!("expected an invoice id, got {}", short(&value)),
        })
    }

    /// Legacy stock: sets the absolute quantity (and in-stock flag when positive) of one
    /// stock item. Absolute, so repeating it is harmless and it is retried like a read.
    pub async fn set_stock_qty(
        &self,
        sku: &str,
        item_id: u64,
        qty: Decimal,
    ) -> Result<u64, MagentoError> {
        let body = json!({
            "stockItem": { "qty": decimal_number(qty), "is_in_stock": qty > Decimal::ZERO }
        });
        let path = format!("V1/products/{}/stockItems/{item_id}", rfc3986(sku));
        let value = self
            .send(Method::PUT, path.clone(), Some(body), Repeat::Safe)
            .await?;
        id_from(&value).ok_or_else(|| MagentoError::Decode {
            method: "PUT".into(),
            path: format!("/{path}"),
            reason: format!("expected a stock item id, got {}", short(&value)),
        })
    }

    /// MSI: sets absolute quantities per (sku, source) in one request; idempotent.
    pub async fn set_source_items(&self, items: &[SourceItem]) -> Result<(), MagentoError> {
        if items.is_empty() {
            return Ok(());
        }
        let source_items: Vec<Value> = items
            .iter()
            .map(|i| {
                json!({
                    "sku": i.sku,
                    "source_code": i.source_code,
                    "quantity": decimal_number(i.quantity),
                    "status": u8::from(i.in_stock),
                })
            })
            .collect();
        self.send(
            Method::POST,
            "V1/inventory/source-items".into(),
            Some(json!({ "sourceItems": source_items })),
            Repeat::Safe,
        )
        .await?;
        Ok(())
    }

    // ---- plumbing --------------------------------------------------------------------

    pub(super) async fn get(
        &self,
        path: String,
        query: Vec<(String, String)>,
    ) -> Result<Value, MagentoError> {
        self.execute(Call {
            method: Method::GET,
            path,
            query,
            body: None,
            repeat: Repeat::Safe,
            priority: Priority::Lookup,
        })
        .await
    }

    pub(super) async fn send(
        &self,
        method: Method,
        path: String,
        body: Option<Value>,
        repeat: Repeat,
    ) -> Result<Value, MagentoError> {
        // Serialised once so every retry sends the same bytes.
        let body = body.map(|b| serde_json::to_vec(&b).expect("a Value always serialises"));
        self.execute(Call {
            method,
            path,
            query: Vec::new(),
            body,
            repeat,
            priority: Priority::Invoice,
        })
        .await
    }

    async fn execute(&self, call: Call) -> Result<Value, MagentoError> {
        self.execute_as(call, decode_value).await
    }

    /// [`execute`](Self::execute) with the body decoded by `decode`, inside the retry: a
    /// body that does not decode is retried like one that is not JSON.
    async fn execute_as<T>(&self, call: Call, decode: Decode<T>) -> Result<T, MagentoError> {
        let call = &call;
        self.retry
            .run(
                |_attempt| async move {
                    let _permit = match &self.budget {
                        Some(budget) => Some(budget.acquire(call.priority).await),
                        None => None,
                    };
                    self.attempt(call, decode).await
                },
                |e: &MagentoError| classify(e, call.repeat),
            )
            .await
    }

    /// One try, plus — for admin tokens only — one re-fetch and resend after a 401.
    async fn attempt<T>(&self, call: &Call, decode: Decode<T>) -> Result<T, MagentoError> {
        match &self.inner.auth {
            Auth::Admin(cache) => {
                let (token, generation) = self.admin_token(cache).await.map_err(not_sent)?;
                match self.attempt_with(call, Some(&token), decode).await {
                    Err(e) if e.status() == Some(401) => {
                        cache.invalidate(generation).await;
                        let (token, _) = self.admin_token(cache).await.map_err(not_sent)?;
                        self.attempt_with(call, Some(&token), decode).await
                    }
                    other => other,
                }
            }
            _ => self.attempt_with(call, None, decode).await,
        }
    }

    async fn admin_token(
        &self,
        cache: &AdminTokenCache,
    ) -> Result<(SecretString, u64), MagentoError> {
        let mut state = cache.lock().await;
        if let Some(usable) = state.usable(cache.ttl()) {
            return Ok(usable);
        }
        let path = "V1/integration/admin/token";
        let body = json!({
            "username": cache.username,
            "password": cache.password.expose_secret(),
        });
        let call = Call {
            method: Method::POST,
            path: path.into(),
            query: Vec::new(),
            body: Some(serde_json::to_vec(&body).expect("a Value always serialises")),
            repeat: Repeat::Safe,
            priority: Priority::Lookup,
        };
        let value = self.attempt_with(&call, None, decode_value).await?;
        let token =
            value
                .as_str()
                .filter(|t| !t.is_empty())
                .ok_or_else(|| MagentoError::Decode {
                    method: "POST".into(),
                    path: format!("/{path}"),
                    reason: "expected the token as a JSON string".into(),
                })?;
        let token = SecretString::from(token.to_string());
        let generation = state.store(token.clone());
        Ok((token, generation))
    }

    async fn attempt_with<T>(
        &self,
        call: &Call,
        admin_token: Option<&SecretString>,
        decode: Decode<T>,
    ) -> Result<T, MagentoError> {
        let shown_path = format!("/{}", call.path);
        let mut raw = format!("{}/{}", self.inner.base, call.path);
        if !call.query.is_empty() {
            raw.push('?');
            raw.push_str(&query_string(&call.query));
        }
        let url = Url::parse(&raw)
            .map_err(|e| MagentoError::Config(format!("request URL for {shown_path}: {e}")))?;
        let mut request = self
            .inner
            .http
            .request(call.method.clone(), url.clone())
            .header(reqwest::header::ACCEPT, "application/json");
        let authorization = match (&self.inner.auth, admin_token) {
            (Auth::OAuth1(creds), _) => Some(oauth1::authorization_header(
                creds,
                call.method.as_str(),
                &url,
                &call.query,
                SignatureMethod::HmacSha256,
                &Freshness::now(),
            )),
            (Auth::Bearer(token), _) => Some(format!("Bearer {}", token.expose_secret())),
            (Auth::Admin(_), Some(token)) => Some(format!("Bearer {}", token.expose_secret())),
            (Auth::Admin(_), None) => None,
        };
        if let Some(value) = authorization {
            let mut value = reqwest::header::HeaderValue::from_str(&value).map_err(|_| {
                MagentoError::Config(
                    "credentials contain characters not allowed in a header".into(),
                )
            })?;
            value.set_sensitive(true);
            request = request.header(reqwest::header::AUTHORIZATION, value);
        }
        if let Some(body) = &call.body {
            request = request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.clone());
        }

        let transport = |e: reqwest::Error| MagentoError::Transport {
            method: call.method.to_string(),
            path: shown_path.clone(),
            reason: self.scrub(Failure::from_reqwest(&e).reason()),
            maybe_sent: !e.is_connect(),
        };
        let response = request.send().await.map_err(transport)?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        let text = response.text().await.map_err(transport)?;
        if !status.is_success() {
            return Err(MagentoError::Api {
                status: status.as_u16(),
                method: call.method.to_string(),
                path: shown_path,
                message: self.scrub(&render_error_body(&text)),
                retry_after,
            });
        }
        decode(&text).map_err(|reason| MagentoError::Decode {
            method: call.method.to_string(),
            path: shown_path,
            reason,
        })
    }

    /// Removes any configured credential from text that came from outside (a server may echo
    /// a request back in an error page).
    fn scrub(&self, text: &str) -> String {
        let mut out = text.to_string();
        for secret in &self.inner.secrets {
            let s = secret.expose_secret();
            if s.len() >= 4 {
                out = out.replace(s, "[redacted]");
            }
        }
        out
    }
}

/// A failed admin-token fetch happens before the actual request goes out, so even an
/// unknown token outcome leaves the caller's write unsent and safe to retry.
fn not_sent(error: MagentoError) -> MagentoError {
    match error.kind() {
        FailureKind::Ambiguous => MagentoError::Transport {
            method: "POST".into(),
            path: "/V1/integration/admin/token".into(),
            reason: error.to_string(),
            maybe_sent: false,
        },
        _ => error,
    }
}

/// Maps an error onto the shared retry classification, taking into account whether the
/// request may be repeated: an unknown outcome is only retried when repeating is harmless.
fn classify(error: &MagentoError, repeat: Repeat) -> Failure {
    let reason = error.to_string();
    match (error.kind(), repeat) {
        (FailureKind::Retriable, _) => Failure::Retriable {
            reason,
            retry_after: error.retry_after(),
        },
        (FailureKind::Ambiguous, Repeat::Safe) => Failure::Retriable {
            reason,
            retry_after: error.retry_after(),
        },
        (FailureKind::Ambiguous, Repeat::Unsafe) | (FailureKind::Permanent, _) => {
            Failure::permanent(reason)
        }
    }
}

/// Turns a successful response body into what the caller wants, or says why it cannot.
type Decode<T> = fn(&str) -> Result<T, String>;

/// An empty body is `null` (a `DELETE`, a `PUT` that answers nothing).
fn decode_value(text: &str) -> Result<Value, String> {
    if text.trim().is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))
}

/// A search page, `{items, total_count}` (the echoed `search_criteria` is skipped), with
/// its items as `T`: `Value`, or `Box<RawValue>` for the poll, which keeps each order as the
/// text Magento sent instead of building a map of it only to write it out again (see
/// `PolledOrder`).
fn decode_page<T: serde::de::DeserializeOwned>(text: &str) -> Result<SearchPage<T>, String> {
    #[derive(serde::Deserialize)]
    struct Wire<'a> {
        #[serde(borrow, default)]
        items: Option<&'a RawValue>,
        #[serde(default)]
        total_count: Option<Value>,
    }
    let wire: Wire = match serde_json::from_str(text) {
        Ok(w) => w,
        Err(e) if e.is_data() => return Err("expected a search result object".into()),
        Err(e) => return Err(format!("not JSON: {e}")),
    };
    let items = match wire.items {
        None => Vec::new(),
        Some(raw) if raw.get() == "null" => Vec::new(),
        Some(raw) => serde_json::from_str::<Vec<T>>(raw.get())
            .map_err(|_| "`items` is not a list".to_string())?,
    };
    let total_count = match &wire.total_count {
        Some(v) => id_from(v).ok_or("`total_count` is not a count")?,
        None => return Err("missing `total_count`".into()),
    };
    Ok(SearchPage { items, total_count })
}

/// Magento returns ids as bare integers, occasionally as strings.
fn id_from(value: &Value) -> Option<u64> {
    match value {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A decimal as a JSON number without going through a float.
fn decimal_number(d: Decimal) -> Value {
    Value::Number(
        serde_json::Number::from_str(&d.normalize().to_string())
            .expect("a Decimal always renders as a JSON number"),
    )
}

fn short(value: &Value) -> String {
    let s = value.to_string();
    if s.len() > 80 {
        format!("{}…", s.chars().take(80).collect::<String>())
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    #[test]
    fn decimal_numbers_keep_their_digits() {
        assert_eq!(decimal_number(dec!(12.50)).to_string(), "12.5");
        assert_eq!(decimal_number(dec!(0.1)).to_string(), "0.1");
        assert_eq!(decimal_number(dec!(-3)).to_string(), "-3");
    }

    #[test]
    fn search_page_shapes() {
        let text = r#"{"items": [{"a": 1}], "search_criteria": {}, "total_count": "7"}"#;
        let page = decode_page::<Value>(text).unwrap();
        assert_eq!(page.total_count, 7);
        assert_eq!(page.items, vec![json!({"a": 1})]);
        let raw = decode_page::<Box<RawValue>>(text).unwrap();
        assert_eq!(raw.items[0].get(), r#"{"a": 1}"#);
        for empty in [
            r#"{"total_count": 0}"#,
            r#"{"items": null, "total_count": 0}"#,
        ] {
            assert!(decode_page::<Value>(empty).unwrap().items.is_empty());
        }
        for bad in [
            r#"{"items": []}"#,
            "[1]",
            r#"{"items": 3, "total_count": 1}"#,
            r#"{"items": [], "total_count": "x"}"#,
            "not json",
            "",
        ] {
            assert!(decode_page::<Value>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn classification_respects_repeatability() {
        let ambiguous = MagentoError::Api {
            status: 502,
            method: "POST".into(),
            path: "/V1/order/1/invoice".into(),
            message: "bad gateway".into(),
            retry_after: None,
        };
        assert!(classify(&ambiguous, Repeat::Unsafe).is_permanent());
        assert!(matches!(
            classify(&ambiguous, Repeat::Safe),
            Failure::Retriable { .. }
        ));
        let limited = MagentoError::Api {
            status: 429,
            method: "POST".into(),
            path: "/x".into(),
            message: "Too Many Requests".into(),
            retry_after: Some(Duration::from_secs(2)),
        };
        assert_eq!(
            classify(&limited, Repeat::Unsafe).retry_after(),
            Some(Duration::from_secs(2))
        );
    }
}
