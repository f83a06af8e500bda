//! Batched reads: one request for many records, so "find or create" costs one call per
//! batch rather than one per order.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::client::{Call, XeroClient};
use super::error::XeroError;
use crate::budget::Priority;

/// Ids or numbers per request: keeps URLs well under common 8 KB limits even for long
/// `where` clauses.
pub const LOOKUP_CHUNK: usize = 40;
/// `where` clauses are longer per value than `IDs=`/`InvoiceNumbers=` lists.
const WHERE_CHUNK: usize = 20;
pub const PAGE_SIZE: usize = 100;

/// A string literal for a Xero `where` expression.
fn quoted(value: &str) -> String {
    format!("\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\""))
}

fn or_clauses<'a>(
    values: impl Iterator<Item = &'a String>,
    clause: impl Fn(&str) -> String,
) -> String {
    values.map(|v| clause(v)).collect::<Vec<_>>().join(" OR ")
}

impl XeroClient {
    /// Every page of `resource` matching `query`, following `page` until a short page or
    /// `pagination.pageCount`.
    pub async fn list_paged(
        &self,
        resource: &str,
        query: &[(&str, String)],
        modified_since: Option<DateTime<Utc>>,
        priority: Priority,
    ) -> Result<Vec<Value>, XeroError> {
        let mut out = Vec::new();
        let mut page = 1usize;
        loop {
            let (items, more) = self
                .list_page(resource, query, modified_since, page, priority)
                .await?;
            out.extend(items);
            if !more {
                return Ok(out);
            }
            page += 1;
        }
    }

    /// Page `page` (from 1) of `resource` matching `query`, and whether another follows: for
    /// a caller that handles a long listing a page at a time instead of holding all of it.
    pub async fn list_page(
        &self,
        resource: &str,
        query: &[(&str, String)],
        modified_since: Option<DateTime<Utc>>,
        page: usize,
        priority: Priority,
    ) -> Result<(Vec<Value>, bool), XeroError> {
        let mut q: Vec<(String, String)> = query
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect();
        q.push(("page".into(), page.to_string()));
        q.push(("pageSize".into(), PAGE_SIZE.to_string()));
        let mut call = Call::get(resource, q, priority);
        call.if_modified_since = modified_since;
        let body = self.execute(&call).await?;
        let items = elements(&body, resource)?;
        let got = items.len();
        let page_count = body
            .get("pagination")
            .and_then(|p| p.get("pageCount"))
            .and_then(Value::as_u64)
            .map(|n| n as usize);
        let more = match page_count {
            Some(n) => page < n,
            None => got >= PAGE_SIZE,
        };
        Ok((items, more && got > 0))
    }

    /// `values` split into chunks, each looked up with `param` built from its chunk.
    async fn chunked(
        &self,
        resource: &str,
        values: &[String],
        chunk: usize,
        extra: &[(&str, String)],
        param: impl Fn(&[String]) -> (&'static str, String),
        priority: Priority,
    ) -> Result<Vec<Value>, XeroError> {
        let mut unique: Vec<String> = Vec::with_capacity(values.len());
        for v in values {
            if !v.is_empty() && !unique.contains(v) {
                unique.push(v.clone());
            }
        }
        let mut out = Vec::new();
        for part in unique.chunks(chunk) {
            let mut query: Vec<(&str, String)> = extra.to_vec();
            query.push(param(part));
            out.extend(self.list_paged(resource, &query, None, priority).await?);
        }
        Ok(out)
    }

    /// Contacts by `ContactNumber` (tally sets it to the Magento customer key), archived
    /// ones included so an archived match is seen rather than duplicated.
    pub async fn find_contacts_by_numbers(
        &self,
        numbers: &[String],
        priority: Priority,
    ) -> Result<Vec<Value>, XeroError> {
        let extra = [("includeArchived", "true".to_owned())];
        self.chunked(
            "Contacts",
            numbers,
            WHERE_CHUNK,
            &extra,
            |part| {
                (
                    "where",
                    or_clauses(part.iter(), |n| format!("ContactNumber=={}", quoted(n))),
                )
            },
            priority,
        )
        .await
    }

    /// Contacts by email, case-insensitively.
    pub async fn find_contacts_by_emails(
        &self,
        emails: &[String],
        priority: Priority,
    ) -> Result<Vec<Value>, XeroError> {
        let lowered: Vec<String> = emails.iter().map(|e| e.trim().to_lowercase()).collect();
        let extra = [("includeArchived", "true".to_owned())];
        self.chunked(
            "Contacts",
            &lowered,
            WHERE_CHUNK,
            &extra,
            |part| {
                (
                    "where",
                    or_clauses(part.iter(), |e| {
                        format!("EmailAddress.ToLower()=={}", quoted(e))
                    }),
                )
            },
            priority,
        )
        .await
    }

    pub async fn find_invoices_by_numbers(
        &self,
        numbers: &[String],
        priority: Priority,
    ) -> Result<Vec<Value>, XeroError> {
        self.chunked(
            "Invoices",
            numbers,
            LOOKUP_CHUNK,
            &[],
            |part| ("InvoiceNumbers", part.join(",")),
            priority,
        )
        .await
    }

    pub async fn get_invoices_by_ids(
        &self,
        ids: &[String],
        priority: Priority,
    ) -> Result<Vec<Value>, XeroError> {
        self.chunked(
            "Invoices",
            ids,
            LOOKUP_CHUNK,
            &[],
            |part| ("IDs", part.join(",")),
            priority,
        )
        .await
    }

    /// Payments applied to the given invoices (there are no payment webhooks, so this is
    /// how a payment posted by a lost response is found again).
    pub async fn get_payments_for_invoices(
        &self,
        invoice_ids: &[String],
        priority: Priority,
    ) -> Result<Vec<Value>, XeroError> {
        self.chunked(
            "Payments",
            invoice_ids,
            WHERE_CHUNK,
            &[],
            |part| {
                (
                    "where",
                    or_clauses(part.iter(), |id| {
                        format!("Invoice.InvoiceID==guid({})", quoted(id))
                    }),
                )
            },
            priority,
        )
        .await
    }

    /// Invoices created or changed since `since` (an incremental sweep).
    pub async fn invoices_modified_since(
        &self,
        since: DateTime<Utc>,
        priority: Priority,
    ) -> Result<Vec<Value>, XeroError> {
        self.list_paged("Invoices", &[], Some(since), priority)
            .await
    }

    /// Single-page settings endpoints.
    async fn list_all(&self, resource: &str, priority: Priority) -> Result<Vec<Value>, XeroError> {
        let body = self.get_json(resource, &[], priority).await?;
        elements(&body, resource)
    }

    pub async fn items(&self, priority: Priority) -> Result<Vec<Value>, XeroError> {
        self.list_all("Items", priority).await
    }

    pub async fn accounts(&self, priority: Priority) -> Result<Vec<Value>, XeroError> {
        self.list_all("Accounts", priority).await
    }

    pub async fn tax_rates(&self, priority: Priority) -> Result<Vec<Value>, XeroError> {
        self.list_all("TaxRates", priority).await
    }

    pub async fn currencies(&self, priority: Priority) -> Result<Vec<Value>, XeroError> {
        self.list_all("Currencies", priority).await
    }

    pub async fn organisation(&self, priority: Priority) -> Result<Value, XeroError> {
        let body = self.get_json("Organisation", &[], priority).await?;
        elements(&body, "Organisations")?
            .into_iter()
            .next()
            .ok_or_else(|| XeroError::Malformed("Organisation: empty Organisations array".into()))
    }
}

/// The array Xero wraps a list in (`{"Invoices": [...]}`); an empty body (304) is no rows.
fn elements(body: &Value, key: &str) -> Result<Vec<Value>, XeroError> {
    match body {
        Value::Null => Ok(Vec::new()),
        Value::Object(m) => match m.get(key) {
            Some(Value::Array(a)) => Ok(a.clone()),
            None => Ok(Vec::new()),
            Some(_) => Err(XeroError::Malformed(format!("{key} is not an array"))),
        },
        _ => Err(XeroError::Malformed(format!(
            "{key}: response is not an object"
        ))),
    }
}
