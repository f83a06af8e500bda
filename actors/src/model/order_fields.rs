//! The part of a Magento order the engine keeps.
//!
//! A Magento order as the REST API returns it carries ~80 top-level fields and ~60 per item,
//! most of which no mapping reads (`protect_code`, `quote_id`, every `base_*_invoiced`, …).
//! The ledger stores the order with every state transition and reads it back in every stage,
//! so keeping the whole record multiplies the bytes encoded, decoded and written by ~4 for
//! nothing. [`project`] keeps exactly what [`crate::model::Order::from_magento`], the ingest
//! merge, the SKU lookup and the operator's search read; `tests/o2c_bad_input.rs` proves that
//! parsing the projection gives the same order, or the same field-naming error, as parsing
//! the full record, for every seeded order and every kind of bad input.

use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use serde_json::{Map, Value};

use super::json::Json;
use super::json_view::JsonView;
use crate::ledger::Record;

/// Top-level order fields read by the mapping, the ingest merge and the console.
const ORDER_FIELDS: &[&str] = &[
    "entity_id",
    "increment_id",
    "store_id",
    "created_at",
    "updated_at",
    "state",
    "status",
    "customer_email",
    "customer_firstname",
    "customer_lastname",
    "customer_id",
    "customer_is_guest",
    "base_currency_code",
    "global_currency_code",
    "order_currency_code",
    "base_to_global_rate",
    "base_to_order_rate",
    "base_grand_total",
    "grand_total",
    // Writeback: an order already invoiced in full needs no read before its comment.
    "total_invoiced",
    "subtotal",
    "tax_amount",
    "discount_amount",
    "discount_tax_compensation_amount",
    "shipping_amount",
    "shipping_tax_amount",
    "shipping_incl_tax",
    "shipping_discount_amount",
    "shipping_discount_tax_compensation_amount",
    "shipping_description",
];

/// Order objects kept whole: small, and read field by field by the mapping.
const WHOLE_OBJECTS: &[&str] = &["billing_address", "payment"];

/// Item fields read by the line mapping (amounts, identity, parent links, bundle options).
const ITEM_FIELDS: &[&str] = &[
    "item_id",
    "parent_item_id",
    "product_type",
    "product_options",
    "product_option",
    "sku",
    "name",
    "qty_ordered",
    "price",
    "price_incl_tax",
    "row_total",
    "row_total_incl_tax",
    "tax_amount",
    "tax_percent",
    "discount_amount",
    "discount_tax_compensation_amount",
];

/// Magento's `fields` parameter for an order search that returns only what [`project`]
/// keeps, so Magento sends (and the engine parses) a fifth of each order. The engine still
/// projects what comes back: a server that ignores `fields` sends whole orders.
pub fn search_fields() -> String {
    let order: Vec<&str> = ORDER_FIELDS.iter().chain(WHOLE_OBJECTS).copied().collect();
    format!(
        "items[{},items[{},parent_item[item_id]]],total_count",
        order.join(","),
        ITEM_FIELDS.join(",")
    )
}

/// The order with only the fields the engine reads. Anything that is not an object is
/// returned unchanged, so the parser still reports it as malformed.
pub fn project(raw: Value) -> Value {
    let Value::Object(mut order) = raw else {
        return raw;
    };
    let mut out = Map::new();
    for &field in ORDER_FIELDS.iter().chain(WHOLE_OBJECTS) {
        if let Some(v) = order.remove(field) {
            out.insert(field.to_owned(), v);
        }
    }
    if let Some(items) = order.remove("items") {
        let items = match items {
            Value::Array(list) => Value::Array(list.into_iter().map(project_item).collect()),
            other => other,
        };
        out.insert("items".to_owned(), items);
    }
    Value::Object(out)
}

fn project_item(item: Value) -> Value {
    let Value::Object(mut fields) = item else {
        return item;
    };
    let mut out = Map::new();
    for &field in ITEM_FIELDS {
        if let Some(v) = fields.remove(field) {
            out.insert(field.to_owned(), v);
        }
    }
    // Magento nests the whole parent item; only its id links the child to it.
    if let Some(parent) = fields.remove("parent_item") {
        let parent = match parent.get("item_id") {
            Some(id) => serde_json::json!({ "item_id": id }),
            None => parent,
        };
        out.insert("parent_item".to_owned(), parent);
    }
    Value::Object(out)
}

/// [`project`] for an order read as a borrowed tree, straight to the stored text: the same
/// bytes as `Record::from_value(&project(value))` for the same order (tested), without
/// building the projected map first.
pub fn project_record(order: &Json) -> Record {
    Record::of(&Projected(order)).expect("a JSON tree always serialises")
}

/// Writes each of `fields` that `object` has, in the order of `fields`.
fn copy_fields<'f, M: SerializeMap>(
    map: &mut M,
    object: &Json,
    fields: impl IntoIterator<Item = &'f &'f str>,
) -> Result<(), M::Error> {
    for &field in fields {
        if let Some(v) = object.member(field) {
            map.serialize_entry(field, v)?;
        }
    }
    Ok(())
}

struct Projected<'t, 'a>(&'t Json<'a>);

impl Serialize for Projected<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let order = self.0;
        if !order.object() {
            return order.serialize(s);
        }
        let mut map = s.serialize_map(None)?;
        copy_fields(&mut map, order, ORDER_FIELDS.iter().chain(WHOLE_OBJECTS))?;
        match order.member("items") {
            Some(Json::Array(items)) => map.serialize_entry("items", &ProjectedItems(items))?,
            Some(other) => map.serialize_entry("items", other)?,
            None => {}
        }
        map.end()
    }
}

struct ProjectedItems<'t, 'a>(&'t [Json<'a>]);

impl Serialize for ProjectedItems<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for item in self.0 {
            seq.serialize_element(&ProjectedItem(item))?;
        }
        seq.end()
    }
}

struct ProjectedItem<'t, 'a>(&'t Json<'a>);

impl Serialize for ProjectedItem<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let item = self.0;
        if !item.object() {
            return item.serialize(s);
        }
        let mut map = s.serialize_map(None)?;
        copy_fields(&mut map, item, ITEM_FIELDS)?;
        if let Some(parent) = item.member("parent_item") {
            match parent.member("item_id") {
                Some(id) => map.serialize_entry("parent_item", &ParentId(id))?,
                None => map.serialize_entry("parent_item", parent)?,
            }
        }
        map.end()
    }
}

/// `{"item_id": id}`: all of a nested parent item the engine keeps.
struct ParentId<'t, 'a>(&'t Json<'a>);

impl Serialize for ParentId<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(1))?;
        map.serialize_entry("item_id", self.0)?;
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unread_fields_are_dropped_and_read_ones_kept() {
        let raw = json!({
            "entity_id": 7, "increment_id": "000000007", "protect_code": "abc",
            "quote_id": 99, "grand_total": "10.00",
            "payment": {"method": "checkmo", "amount_paid": "10.00", "additional_information": ["x"]},
            "items": [
                {"item_id": 1, "sku": "A", "price": "10.00", "weight": 1, "quote_item_id": 5},
                {"item_id": 2, "sku": "A-1", "parent_item": {"item_id": 1, "sku": "A", "price": "10.00"}}
            ]
        });
        let p = project(raw.clone());
        assert_eq!(p["grand_total"], json!("10.00"));
        assert!(p.get("protect_code").is_none() && p.get("quote_id").is_none());
        assert_eq!(p["payment"], raw["payment"]);
        assert!(p["items"][0].get("weight").is_none());
        assert_eq!(p["items"][0]["price"], json!("10.00"));
        assert_eq!(p["items"][1]["parent_item"], json!({"item_id": 1}));
    }

    #[test]
    fn the_search_fields_name_every_kept_field() {
        let spec = search_fields();
        assert!(spec.starts_with("items[entity_id,increment_id,"));
        assert!(spec.ends_with(",parent_item[item_id]]],total_count"));
        for f in ORDER_FIELDS.iter().chain(WHOLE_OBJECTS).chain(ITEM_FIELDS) {
            assert!(spec.contains(f), "{f} missing from {spec}");
        }
    }

    #[test]
    fn the_text_projection_writes_what_the_value_projection_writes() {
        for raw in [
            json!({
                "entity_id": 7, "increment_id": "000000007", "protect_code": "abc",
                "grand_total": serde_json::Number::from_string_unchecked("10.10".into()),
                "payment": {"method": "checkmo", "amount_paid": "10.00", "x": ["y"]},
                "items": [
                    {"item_id": 1, "sku": "A\"é", "price": "10.00", "weight": 1},
                    {"item_id": 2, "parent_item": {"item_id": 1, "sku": "A"}},
                    {"item_id": 3, "parent_item": [1]},
                    {"item_id": 4, "parent_item": {"sku": "no id"}},
                    "not an item", null
                ],
                "billing_address": null
            }),
            json!({"items": "nope", "entity_id": 1}),
            json!({"items": {}}),
            json!({}),
            json!([1, {"entity_id": 2}]),
            json!("text"),
        ] {
            let text = serde_json::to_string(&raw).unwrap();
            let tree = Json::parse(&text).unwrap();
            assert_eq!(
                project_record(&tree).json(),
                Record::from_value(&project(raw.clone())).json(),
                "{raw}"
            );
        }
    }

    #[test]
    fn malformed_shapes_pass_through_for_the_parser_to_name() {
        assert_eq!(project(json!([1])), json!([1]));
        let p = project(json!({"items": "nope", "entity_id": 1}));
        assert_eq!(p["items"], json!("nope"));
        let p = project(json!({"items": [3]}));
        assert_eq!(p["items"], json!([3]));
    }
}
