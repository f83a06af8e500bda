//! The validated internal order: what a Magento order means for accounting.
//!
//! Parsing is done field by field from a JSON tree (any [`JsonView`]: a `serde_json::Value`,
//! or the borrowed [`Json`] of a stored record) so a rejection names the
//! field (`items[2].price`). The line rules follow the Magento fact sheet §11: one line per priced
//! item, a configurable parent's amounts under its child's SKU, bundle amounts on whichever side
//! Magento priced (children for dynamic price, the parent for fixed price), never both.

use std::collections::HashMap;

use chrono::{NaiveDate, NaiveDateTime};
use rust_decimal::Decimal;
use serde_json::Value;

use super::json::Json;
use super::json_view::{JsonView, Kind};

use super::catalogue::Catalogue;
use super::error::RecordError;
use super::money::{MoneyError, parse_money, parse_rate, round_dp, round2};

/// Differences up to this are Magento's own rounding, not a broken order.
const TOTALS_SLACK: Decimal = Decimal::from_parts(1, 0, 0, false, 2);

/// A validated Magento order, amounts in the order currency.
#[derive(Debug, Clone, PartialEq)]
pub struct Order {
    pub increment_id: String,
    pub entity_id: u64,
    pub store_id: u32,
    pub state: Option<String>,
    pub status: Option<String>,
    pub created_at: NaiveDateTime,
    pub updated_at: Option<NaiveDateTime>,
    pub customer: Customer,
    pub currency: Currency,
    pub lines: Vec<OrderLine>,
    pub shipping: Shipping,
    /// Order-level discount as Magento reports it: negative.
    pub discount_amount: Decimal,
    pub discount_tax_compensation: Decimal,
    pub tax_amount: Decimal,
    pub subtotal: Decimal,
    pub grand_total: Decimal,
    /// In the store's base currency, for reconciling against base-currency reports.
    pub base_grand_total: Option<Decimal>,
    pub payment: Payment,
}

impl Order {
    /// `order 000000123`, the record name used in every error about this order.
    pub fn record(&self) -> String {
        format!("order {}", self.increment_id)
    }

    /// The accounting date of the order (Magento stores UTC).
    pub fn date(&self) -> NaiveDate {
        self.created_at.date()
    }
}

/// Who bought. Guests have no id; their identity is the email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Customer {
    pub id: Option<u64>,
    /// As Magento has it; shown to people and sent to Xero.
    pub email: String,
    /// Lower-cased, trimmed: the form used for keys and matching.
    pub email_key: String,
    pub first_name: String,
    pub last_name: String,
    pub billing_address: Option<Address>,
}

impl Customer {
    pub fn is_guest(&self) -> bool {
        self.id.is_none()
    }

    /// "First Last", or the email when Magento has no name at all.
    pub fn full_name(&self) -> String {
        let name = format!("{} {}", self.first_name.trim(), self.last_name.trim())
            .trim()
            .to_owned();
        if name.is_empty() {
            self.email.clone()
        } else {
            name
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Address {
    pub street: Vec<String>,
    pub city: Option<String>,
    pub region: Option<String>,
    pub postcode: Option<String>,
    pub country_id: Option<String>,
    pub telephone: Option<String>,
    pub company: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Currency {
    /// The currency every amount of this order is in.
    pub order: String,
    pub base: String,
    /// Order-currency units per base-currency unit (Magento: base × rate = order).
    pub base_to_order_rate: Decimal,
    pub global: Option<String>,
    /// Global-currency units per base-currency unit.
    pub base_to_global_rate: Option<Decimal>,
}

/// One priced line, amounts in the order currency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderLine {
    /// JSON path of the item carrying the amounts (`items[3]`), for error messages.
    pub path: String,
    pub sku: String,
    pub name: String,
    pub qty: Decimal,
    pub unit_price_excl: Decimal,
    pub unit_price_incl: Decimal,
    pub row_total: Decimal,
    pub row_total_incl: Decimal,
    pub tax_amount: Decimal,
    pub tax_percent: Decimal,
    /// Positive, as Magento reports it on items.
    pub discount_amount: Decimal,
    pub discount_tax_compensation: Decimal,
    pub tax_class: String,
    pub categories: Vec<String>,
}

impl OrderLine {
    /// What this line adds to the grand total, tax excluded: Magento's row total after
    /// discount, with the hidden tax of an incl-tax discount put back.
    pub fn net(&self) -> Decimal {
        self.row_total - self.discount_amount + self.discount_tax_compensation
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Shipping {
    pub amount: Decimal,
    pub tax_amount: Decimal,
    pub incl_tax: Decimal,
    /// Positive.
    pub discount_amount: Decimal,
    pub discount_tax_compensation: Decimal,
    pub description: Option<String>,
}

impl Shipping {
    pub fn net(&self) -> Decimal {
        self.amount - self.discount_amount + self.discount_tax_compensation
    }

    pub fn is_free(&self) -> bool {
        self.net().is_zero() && self.tax_amount.is_zero() && self.amount.is_zero()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Payment {
    pub method: Option<String>,
    pub amount_paid: Option<Decimal>,
    pub last_trans_id: Option<String>,
}

struct Parser {
    record: String,
}

fn id_text(v: &impl JsonView) -> Option<String> {
    match v.kind() {
        Kind::Number(n) => Some(n.to_owned()),
        Kind::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        _ => None,
    }
}

fn str_field(obj: &impl JsonView, key: &str) -> Option<String> {
    obj.member(key)
        .and_then(JsonView::text)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

fn truthy(v: Option<&impl JsonView>) -> bool {
    match v.map(JsonView::kind) {
        Some(Kind::Bool(b)) => b,
        Some(Kind::Number(n)) => n != "0",
        Some(Kind::String(s)) => s == "1" || s.eq_ignore_ascii_case("true"),
        _ => false,
    }
}

fn money_message(e: &MoneyError) -> String {
    match e {
        MoneyError::Missing => "missing".to_owned(),
        other => other.to_string(),
    }
}

impl Parser {
    fn err(&self, field: impl Into<String>, message: impl Into<String>) -> RecordError {
        RecordError::new(self.record.clone(), field, message)
    }

    fn path(prefix: &str, key: &str) -> String {
        if prefix.is_empty() {
            key.to_owned()
        } else {
            format!("{prefix}.{key}")
        }
    }

    /// An optional amount: absent or null is `None`, anything else must be valid money.
    fn money_opt(
        &self,
        obj: &impl JsonView,
        prefix: &str,
        key: &str,
    ) -> Result<Option<Decimal>, RecordError> {
        match obj.member(key) {
            None => Ok(None),
            Some(v) if v.null() => Ok(None),
            Some(v) => parse_money(v)
                .map(Some)
                .map_err(|e| self.err(Self::path(prefix, key), money_message(&e))),
        }
    }

    fn money(&self, obj: &impl JsonView, prefix: &str, key: &str) -> Result<Decimal, RecordError> {
        self.money_opt(obj, prefix, key)?
            .ok_or_else(|| self.err(Self::path(prefix, key), "missing"))
    }

    fn money_or_zero(
        &self,
        obj: &impl JsonView,
        prefix: &str,
        key: &str,
    ) -> Result<Decimal, RecordError> {
        Ok(self.money_opt(obj, prefix, key)?.unwrap_or_default())
    }

    fn non_negative(
        &self,
        obj: &impl JsonView,
        prefix: &str,
        key: &str,
        what: &str,
    ) -> Result<Decimal, RecordError> {
        let v = self.money_or_zero(obj, prefix, key)?;
        if v.is_sign_negative() && !v.is_zero() {
            return Err(self.err(Self::path(prefix, key), format!("negative {what} ({v})")));
        }
        Ok(v)
    }

    fn date(&self, obj: &impl JsonView, key: &str) -> Result<Option<NaiveDateTime>, RecordError> {
        let Some(v) = obj.member(key).filter(|v| !v.null()) else {
            return Ok(None);
        };
        let text = v
            .text()
            .ok_or_else(|| self.err(key, format!("not a date ({v})")))?;
        for fmt in [
            "%Y-%m-%d %H:%M:%S",
            "%Y-%m-%dT%H:%M:%S",
            "%Y-%m-%dT%H:%M:%SZ",
            "%Y-%m-%d %H:%M:%S%.f",
        ] {
            if let Ok(d) = NaiveDateTime::parse_from_str(text, fmt) {
                return Ok(Some(d));
            }
        }
        Err(self.err(
            key,
            format!("not a date ({text:?}); expected YYYY-MM-DD HH:MM:SS"),
        ))
    }
}

/// A deliberately plain check: Magento already validated the address at checkout; this only
/// rejects what would make a useless key (empty, no domain, spaces).
pub fn is_plausible_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && email.len() <= 254
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
}

impl Order {
    /// Validates a Magento order (`GET /V1/orders/{id}` shape) against the catalogue.
    pub fn from_magento(json: &Value, catalogue: &Catalogue) -> Result<Order, RecordError> {
        Order::from_json(json, catalogue)
    }

    /// [`Order::from_magento`] for a stored record's text, parsed into a borrowed tree
    /// ([`Json`]); text that is not JSON is read as `null` (not an object).
    pub fn from_text(text: &str, catalogue: &Catalogue) -> Result<Order, RecordError> {
        Order::from_json(&Json::parse(text).unwrap_or(Json::Null), catalogue)
    }

    /// The parser behind both: any JSON tree.
    pub fn from_json(json: &impl JsonView, catalogue: &Catalogue) -> Result<Order, RecordError> {
        let entity_id = json.member("entity_id").and_then(id_text);
        let increment_id = json.member("increment_id").and_then(id_text);
        let record = match (&increment_id, &entity_id) {
            (Some(inc), _) => format!("order {inc}"),
            (None, Some(id)) => format!("order entity {id}"),
            (None, None) => "order (unidentified)".to_owned(),
        };
        let p = Parser { record };
        if !json.object() {
            return Err(p.err("", "not a JSON object"));
        }
        let increment_id = increment_id.ok_or_else(|| p.err("increment_id", "missing"))?;
        let entity_id = entity_id
            .ok_or_else(|| p.err("entity_id", "missing"))?
            .parse::<u64>()
            .map_err(|_| p.err("entity_id", "not a positive integer"))?;
        let store_id = match json.member("store_id").and_then(id_text) {
            Some(s) => s
                .parse::<u32>()
                .map_err(|_| p.err("store_id", format!("not a store id ({s:?})")))?,
            None => return Err(p.err("store_id", "missing")),
        };
        let created_at = p
            .date(json, "created_at")?
            .ok_or_else(|| p.err("created_at", "missing"))?;
        let updated_at = p.date(json, "updated_at")?;

        let customer = parse_customer(&p, json)?;
        let currency = parse_currency(&p, json)?;
        let lines = parse_lines(&p, json, catalogue)?;

        let shipping_amount = p.non_negative(json, "", "shipping_amount", "shipping amount")?;
        let shipping_tax = p.non_negative(json, "", "shipping_tax_amount", "shipping tax")?;
        let shipping = Shipping {
            amount: shipping_amount,
            tax_amount: shipping_tax,
            incl_tax: p
                .money_opt(json, "", "shipping_incl_tax")?
                .unwrap_or(shipping_amount + shipping_tax),
            discount_amount: p.money_or_zero(json, "", "shipping_discount_amount")?.abs(),
            discount_tax_compensation: p.money_or_zero(
                json,
                "",
                "shipping_discount_tax_compensation_amount",
            )?,
            description: str_field(json, "shipping_description"),
        };

        let subtotal = p.money(json, "", "subtotal")?;
        let discount_amount = p.money_or_zero(json, "", "discount_amount")?;
        let tax_amount = p.non_negative(json, "", "tax_amount", "tax")?;
        let discount_tax_compensation =
            p.money_or_zero(json, "", "discount_tax_compensation_amount")?;
        let grand_total = p.money(json, "", "grand_total")?;
        if grand_total.is_sign_negative() && !grand_total.is_zero() {
            return Err(p.err(
                "grand_total",
                format!("negative grand total ({grand_total})"),
            ));
        }
        let expected = subtotal
            + shipping.amount
            + discount_amount
            + tax_amount
            + discount_tax_compensation
            + shipping.discount_tax_compensation;
        if (grand_total - expected).abs() > TOTALS_SLACK {
            return Err(p.err(
                "grand_total",
                format!(
                    "does not add up: grand_total is {grand_total} but subtotal + shipping_amount + discount_amount \
                     + tax_amount + discount_tax_compensation_amount + shipping_discount_tax_compensation_amount \
                     is {expected}"
                ),
            ));
        }

        let payment = match json.member("payment").filter(|v| v.object()) {
            None => Payment::default(),
            Some(pay) => {
                let amount_paid = p.money_opt(pay, "payment", "amount_paid")?;
                if let Some(a) = amount_paid.filter(|a| a.is_sign_negative() && !a.is_zero()) {
                    return Err(p.err("payment.amount_paid", format!("negative amount paid ({a})")));
                }
                Payment {
                    method: str_field(pay, "method"),
                    amount_paid,
                    last_trans_id: pay.member("last_trans_id").and_then(id_text),
                }
            }
        };

        Ok(Order {
            increment_id,
            entity_id,
            store_id,
            state: str_field(json, "state"),
            status: str_field(json, "status"),
            created_at,
            updated_at,
            customer,
            currency,
            lines,
            shipping,
            discount_amount,
            discount_tax_compensation,
            tax_amount,
            subtotal,
            grand_total,
            base_grand_total: p.money_opt(json, "", "base_grand_total")?,
            payment,
        })
    }
}

fn parse_customer(p: &Parser, json: &impl JsonView) -> Result<Customer, RecordError> {
    let email = match json.member("customer_email") {
        None => return Err(p.err("customer_email", "missing")),
        Some(v) => match v.kind() {
            Kind::Null => return Err(p.err("customer_email", "missing")),
            Kind::String(s) => s.trim().to_owned(),
            _ => return Err(p.err("customer_email", format!("not a string ({v})"))),
        },
    };
    if email.is_empty() {
        return Err(p.err("customer_email", "missing (empty)"));
    }
    if !is_plausible_email(&email) {
        return Err(p.err(
            "customer_email",
            format!("not an email address ({email:?})"),
        ));
    }
    let guest = truthy(json.member("customer_is_guest"));
    let id = match json.member("customer_id").and_then(id_text) {
        Some(s) if !guest => Some(
            s.parse::<u64>()
                .map_err(|_| p.err("customer_id", format!("not a customer id ({s:?})")))?,
        ),
        _ => None,
    };
    let billing = json.member("billing_address").filter(|b| b.object());
    let first_name = str_field(json, "customer_firstname")
        .or_else(|| billing.and_then(|b| str_field(b, "firstname")))
        .unwrap_or_default();
    let last_name = str_field(json, "customer_lastname")
        .or_else(|| billing.and_then(|b| str_field(b, "lastname")))
        .unwrap_or_default();
    let billing_address = billing.map(|b| Address {
        street: b
            .member("street")
            .and_then(JsonView::elements)
            .map(|s| {
                s.iter()
                    .filter_map(JsonView::text)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default(),
        city: str_field(b, "city"),
        region: str_field(b, "region"),
        postcode: str_field(b, "postcode"),
        country_id: str_field(b, "country_id"),
        telephone: str_field(b, "telephone"),
        company: str_field(b, "company"),
    });
    Ok(Customer {
        id,
        email_key: email.to_lowercase(),
        email,
        first_name,
        last_name,
        billing_address,
    })
}

fn parse_currency(p: &Parser, json: &impl JsonView) -> Result<Currency, RecordError> {
    let code = |key: &str| -> Result<Option<String>, RecordError> {
        match str_field(json, key) {
            None => Ok(None),
            Some(c) if c.len() == 3 && c.chars().all(|ch| ch.is_ascii_alphabetic()) => {
                Ok(Some(c.to_uppercase()))
            }
            Some(c) => Err(p.err(key, format!("not a currency code ({c:?})"))),
        }
    };
    let order =
        code("order_currency_code")?.ok_or_else(|| p.err("order_currency_code", "missing"))?;
    let base = code("base_currency_code")?.unwrap_or_else(|| order.clone());
    let rate = |key: &str| -> Result<Option<Decimal>, RecordError> {
        match json.member(key) {
            None => Ok(None),
            Some(v) if v.null() => Ok(None),
            Some(v) => {
                let r = parse_rate(v).map_err(|e| p.err(key, money_message(&e)))?;
                if r <= Decimal::ZERO {
                    return Err(p.err(key, format!("not a positive rate ({r})")));
                }
                Ok(Some(r))
            }
        }
    };
    let base_to_order_rate = match rate("base_to_order_rate")? {
        Some(r) => r,
        None if base == order => Decimal::ONE,
        None => {
            return Err(p.err(
                "base_to_order_rate",
                format!("missing for a {order} order in a {base} store"),
            ));
        }
    };
    Ok(Currency {
        order,
        base,
        base_to_order_rate,
        global: code("global_currency_code")?,
        base_to_global_rate: rate("base_to_global_rate")?,
    })
}

fn parent_id_of(item: &impl JsonView) -> Option<String> {
    item.member("parent_item_id")
        .and_then(id_text)
        .or_else(|| item.at("/parent_item/item_id").and_then(id_text))
}

fn product_type(item: &impl JsonView) -> &str {
    item.member("product_type")
        .and_then(JsonView::text)
        .unwrap_or("simple")
}

/// Which side of a bundle Magento priced: an explicit `product_calculations` flag when the
/// payload has it (0 = children, 1 = parent), else whichever side carries amounts.
fn bundle_children_priced<J: JsonView>(parent: &J, children: &[&J]) -> bool {
    let flag = parent
        .at("/product_options/product_calculations")
        .or_else(|| parent.at("/product_option/extension_attributes/product_calculations"))
        .and_then(id_text);
    if let Some(f) = flag {
        return f == "0";
    }
    let priced = |v: &J| {
        ["row_total", "price"].iter().any(|k| {
            v.member(k)
                .and_then(|x| parse_money(x).ok())
                .is_some_and(|d| !d.is_zero())
        })
    };
    children.iter().any(|c| priced(c))
}

fn parse_lines<J: JsonView>(
    p: &Parser,
    json: &J,
    catalogue: &Catalogue,
) -> Result<Vec<OrderLine>, RecordError> {
    let items = json
        .member("items")
        .and_then(JsonView::elements)
        .ok_or_else(|| p.err("items", "missing"))?;
    if items.is_empty() {
        return Err(p.err("items", "the order has no items"));
    }
    let mut by_id: HashMap<String, usize> = HashMap::new();
    let mut children: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, item) in items.iter().enumerate() {
        if let Some(id) = item.member("item_id").and_then(id_text) {
            by_id.insert(id, i);
        }
        if let Some(pid) = parent_id_of(item) {
            children.entry(pid).or_default().push(i);
        }
    }
    let kids = |i: usize| -> Vec<usize> {
        items[i]
            .member("item_id")
            .and_then(id_text)
            .and_then(|id| children.get(&id).cloned())
            .unwrap_or_default()
    };

    let mut lines = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let parent_idx = parent_id_of(item).and_then(|pid| by_id.get(&pid).copied());
        match parent_idx {
            Some(pi) => match product_type(&items[pi]) {
                // The configurable parent carries the amounts; this child only lends its SKU.
                "configurable" => continue,
                "bundle" => {
                    let sibs: Vec<&J> = kids(pi).into_iter().map(|k| &items[k]).collect();
                    if bundle_children_priced(&items[pi], &sibs) {
                        let parent_qty =
                            p.money_opt(&items[pi], &format!("items[{pi}]"), "qty_ordered")?;
                        lines.push(build_line(p, catalogue, items, i, i, parent_qty)?);
                    }
                }
                _ => lines.push(build_line(p, catalogue, items, i, i, None)?),
            },
            None => match product_type(item) {
                "configurable" => {
                    let identity = kids(i).into_iter().next().unwrap_or(i);
                    lines.push(build_line(p, catalogue, items, i, identity, None)?);
                }
                "bundle" => {
                    let sibs: Vec<&J> = kids(i).into_iter().map(|k| &items[k]).collect();
                    if !bundle_children_priced(item, &sibs) {
                        lines.push(build_line(p, catalogue, items, i, i, None)?);
                    }
                }
                _ => lines.push(build_line(p, catalogue, items, i, i, None)?),
            },
        }
    }
    Ok(lines)
}

/// Builds one line from the item carrying the amounts (`a`) and the item naming the product
/// (`b`: the configurable child, or `a` itself).
fn build_line(
    p: &Parser,
    catalogue: &Catalogue,
    items: &[impl JsonView],
    a: usize,
    b: usize,
    bundle_parent_qty: Option<Decimal>,
) -> Result<OrderLine, RecordError> {
    let path = format!("items[{a}]");
    let id_path = format!("items[{b}]");
    let amounts = &items[a];
    let identity = &items[b];
    let sku = str_field(identity, "sku")
        .or_else(|| str_field(amounts, "sku"))
        .ok_or_else(|| p.err(format!("{id_path}.sku"), "missing"))?;
    let name = str_field(identity, "name")
        .or_else(|| str_field(amounts, "name"))
        .unwrap_or_else(|| sku.clone());

    let mut qty = p.money(amounts, &path, "qty_ordered")?;
    if qty.is_sign_negative() && !qty.is_zero() {
        return Err(p.err(
            format!("{path}.qty_ordered"),
            format!("negative quantity ({qty})"),
        ));
    }
    let price = p.money(amounts, &path, "price")?;
    if price.is_sign_negative() && !price.is_zero() {
        return Err(p.err(format!("{path}.price"), format!("negative price ({price})")));
    }
    let row_total = p.non_negative(amounts, &path, "row_total", "row total")?;
    let tax_amount = p.non_negative(amounts, &path, "tax_amount", "tax")?;
    let tax_percent = match amounts.member("tax_percent") {
        None => Decimal::ZERO,
        Some(v) if v.null() => Decimal::ZERO,
        Some(v) => {
            parse_rate(v).map_err(|e| p.err(format!("{path}.tax_percent"), money_message(&e)))?
        }
    };
    let discount_amount = p.non_negative(amounts, &path, "discount_amount", "discount")?;
    let discount_tax_compensation =
        p.money_or_zero(amounts, &path, "discount_tax_compensation_amount")?;
    if qty.is_zero() && !row_total.is_zero() {
        return Err(p.err(
            format!("{path}.qty_ordered"),
            format!("zero quantity on a line of {row_total}"),
        ));
    }
    // Bundle children may report qty per bundle; the row total says which reading is right.
    if let Some(pq) = bundle_parent_qty.filter(|q| *q > Decimal::ONE) {
        let off = |q: Decimal| (round2(q * price) - row_total).abs();
        if off(qty) > Decimal::new(1, 2) && off(qty * pq) <= Decimal::new(1, 2) {
            qty *= pq;
        }
    }
    let unit_price_incl = match p.money_opt(amounts, &path, "price_incl_tax")? {
        Some(v) => v,
        None if tax_amount.is_zero() && tax_percent.is_zero() => price,
        None => match p.money_opt(amounts, &path, "row_total_incl_tax")? {
            Some(rt) if !qty.is_zero() => round_dp(rt / qty, 4),
            _ => return Err(p.err(format!("{path}.price_incl_tax"), "missing on a taxed line")),
        },
    };
    if unit_price_incl.is_sign_negative() && !unit_price_incl.is_zero() {
        return Err(p.err(
            format!("{path}.price_incl_tax"),
            format!("negative price ({unit_price_incl})"),
        ));
    }
    let row_total_incl = p
        .money_opt(amounts, &path, "row_total_incl_tax")?
        .unwrap_or_else(|| round2(qty * unit_price_incl));
    if discount_amount > row_total_incl.max(row_total) {
        return Err(p.err(
            format!("{path}.discount_amount"),
            format!(
                "discount {discount_amount} exceeds the row total {}",
                row_total_incl.max(row_total)
            ),
        ));
    }

    let facts = catalogue.product(&sku).ok_or_else(|| {
        p.err(
            format!("{id_path}.sku"),
            format!("unknown SKU {sku:?}: not in the Magento catalogue"),
        )
    })?;
    let tax_class = match (&facts.tax_class, &facts.tax_class_id) {
        (Some(c), _) => c.clone(),
        (None, Some(id)) => {
            return Err(p.err(
                format!("{id_path}.tax_class"),
                format!("SKU {sku:?} has tax_class_id {id}, which is not a Magento tax class"),
            ));
        }
        (None, None) => {
            return Err(p.err(
                format!("{id_path}.tax_class"),
                format!("SKU {sku:?} has no tax_class_id in the catalogue"),
            ));
        }
    };

    Ok(OrderLine {
        path,
        sku,
        name,
        qty,
        unit_price_excl: price,
        unit_price_incl,
        row_total,
        row_total_incl,
        tax_amount,
        tax_percent,
        discount_amount,
        discount_tax_compensation,
        tax_class,
        categories: facts.categories.clone(),
    })
}
