//! What the mapping needs to know about each SKU that an order line does not carry.
//!
//! Magento order items have no tax class and no category (see the Magento fact sheet §5), so
//! both come from the product catalogue. The Xero item codes are kept alongside so a line can
//! reference a Xero item (and move its tracked stock) only when that item really exists.

use std::collections::{BTreeSet, HashMap, HashSet};

use serde_json::Value;

/// Catalogue facts about one SKU.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProductFacts {
    /// Names of the categories the product is linked to, then their ancestors (roots excluded),
    /// so a rule for "Services" also matches a product filed under "Services > Installation".
    pub categories: Vec<String>,
    /// The product tax class name, `None` when the product's `tax_class_id` is not a known class.
    pub tax_class: Option<String>,
    /// The raw `tax_class_id`, kept to explain an unknown class.
    pub tax_class_id: Option<String>,
}

/// Why Magento catalogue JSON could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CatalogueError {
    #[error("{what}: expected {expected}")]
    Shape {
        what: &'static str,
        expected: &'static str,
    },
}

#[derive(Debug, Clone, Default)]
struct CategoryNode {
    name: String,
    parent: Option<String>,
    level: i64,
}

/// SKU → facts, plus the set of Xero item codes.
#[derive(Debug, Clone, Default)]
pub struct Catalogue {
    products: HashMap<String, ProductFacts>,
    xero_items: HashSet<String>,
    /// Every category in the tree below the roots, products or not (rules may name an empty one).
    tree_categories: BTreeSet<String>,
    /// Which contents these are: every change takes a number no catalogue had before, so a
    /// result computed from a catalogue is known to still hold while the number is the same
    /// (parsed orders are reused on that promise). An empty catalogue is 0.
    revision: u64,
}

/// The source of [`Catalogue::revision`] numbers, process-wide so that a catalogue replaced by
/// a freshly built one can never repeat its predecessor's number.
static NEXT_REVISION: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

fn next_revision() -> u64 {
    NEXT_REVISION.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// Magento list responses are `{items:[...]}`; single-purpose callers may pass a bare array.
fn items_of<'a>(
    v: &'a Value,
    key: &str,
    what: &'static str,
) -> Result<&'a Vec<Value>, CatalogueError> {
    v.get(key)
        .and_then(Value::as_array)
        .or_else(|| v.as_array())
        .ok_or(CatalogueError::Shape {
            what,
            expected: "an array or an object with an array",
        })
}

fn id_text(v: &Value) -> Option<String> {
    match v {
        Value::Number(n) => Some(n.as_str().to_owned()),
        Value::String(s) => Some(s.clone()),
        _ => None,
    }
}

impl Catalogue {
    /// Builds the catalogue from `GET /V1/products` (search result), `GET /V1/categories` (the
    /// tree) and `GET /V1/taxClasses/search` (search result).
    pub fn from_magento(
        products: &Value,
        category_tree: &Value,
        tax_classes: &Value,
    ) -> Result<Self, CatalogueError> {
        let mut nodes = HashMap::new();
        collect_categories(category_tree, None, &mut nodes);
        let mut classes: HashMap<String, String> = HashMap::new();
        for class in items_of(tax_classes, "items", "tax classes")? {
            if let (Some(id), Some(name)) = (
                class.get("class_id").and_then(id_text),
                class.get("class_name").and_then(Value::as_str),
            ) {
                classes.insert(id, name.to_owned());
            }
        }
        // Magento's built-in "no tax class" is id 0 and is not listed by the API.
        classes
            .entry("0".to_owned())
            .or_insert_with(|| "None".to_owned());

        let mut cat = Catalogue {
            tree_categories: nodes
                .values()
                .filter(|n| n.level > 1)
                .map(|n| n.name.clone())
                .collect(),
            ..Default::default()
        };
        for product in items_of(products, "items", "products")? {
            let Some(sku) = product.get("sku").and_then(Value::as_str) else {
                continue;
            };
            let tax_class_id = product
                .get("custom_attributes")
                .and_then(Value::as_array)
                .and_then(|attrs| {
                    attrs.iter().find(|a| {
                        a.get("attribute_code").and_then(Value::as_str) == Some("tax_class_id")
                    })
                })
                .and_then(|a| a.get("value"))
                .and_then(id_text);
            let tax_class = tax_class_id
                .as_ref()
                .and_then(|id| classes.get(id).cloned());
            let mut categories: Vec<String> = Vec::new();
            let links = product
                .pointer("/extension_attributes/category_links")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let linked: Vec<String> = links
                .iter()
                .filter_map(|l| l.get("category_id").and_then(id_text))
                .collect();
            for id in &linked {
                if let Some(node) = nodes.get(id).filter(|n| n.level > 1) {
                    push_unique(&mut categories, &node.name);
                }
            }
            for id in &linked {
                let mut cur = nodes.get(id).and_then(|n| n.parent.clone());
                while let Some(pid) = cur {
                    match nodes.get(&pid) {
                        Some(node) if node.level > 1 => {
                            push_unique(&mut categories, &node.name);
                            cur = node.parent.clone();
                        }
                        _ => break,
                    }
                }
            }
            cat.products.insert(
                sku.to_owned(),
                ProductFacts {
                    categories,
                    tax_class,
                    tax_class_id,
                },
            );
        }
        cat.revision = next_revision();
        Ok(cat)
    }

    /// Records the Xero item codes from `GET /Items` (`{"Items":[{"Code":..}]}` or a bare array).
    pub fn set_xero_items(&mut self, items: &Value) -> Result<(), CatalogueError> {
        let list = items
            .get("Items")
            .and_then(Value::as_array)
            .or_else(|| items.as_array())
            .ok_or(CatalogueError::Shape {
                what: "Xero items",
                expected: "an array or {\"Items\":[...]}",
            })?;
        self.xero_items = list
            .iter()
            .filter_map(|i| i.get("Code").and_then(Value::as_str))
            .map(str::to_owned)
            .collect();
        self.revision = next_revision();
        Ok(())
    }

    /// Adds or replaces one product (tests, and callers that fetch single products on a miss).
    pub fn insert(&mut self, sku: impl Into<String>, facts: ProductFacts) {
        self.products.insert(sku.into(), facts);
        self.revision = next_revision();
    }

    /// Marks a SKU as existing as a Xero item.
    pub fn insert_xero_item(&mut self, code: impl Into<String>) {
        self.xero_items.insert(code.into());
        self.revision = next_revision();
    }

    /// Changes with every change of contents (see the field).
    pub fn revision(&self) -> u64 {
        self.revision
    }

    pub fn product(&self, sku: &str) -> Option<&ProductFacts> {
        self.products.get(sku)
    }

    pub fn is_xero_item(&self, sku: &str) -> bool {
        self.xero_items.contains(sku)
    }

    pub fn xero_items(&self) -> &HashSet<String> {
        &self.xero_items
    }

    pub fn len(&self) -> usize {
        self.products.len()
    }

    pub fn is_empty(&self) -> bool {
        self.products.is_empty()
    }

    /// Every category name in the tree or on a product (for `tally check`).
    pub fn category_names(&self) -> BTreeSet<String> {
        let mut names = self.tree_categories.clone();
        names.extend(
            self.products
                .values()
                .flat_map(|p| p.categories.iter().cloned()),
        );
        names
    }

    /// Every tax class name in use by a product (for `tally check`).
    pub fn tax_class_names(&self) -> BTreeSet<String> {
        self.products
            .values()
            .filter_map(|p| p.tax_class.clone())
            .collect()
    }
}

fn push_unique(v: &mut Vec<String>, s: &str) {
    if !v.iter().any(|x| x == s) {
        v.push(s.to_owned());
    }
}

fn collect_categories(
    node: &Value,
    parent: Option<String>,
    out: &mut HashMap<String, CategoryNode>,
) {
    if let Some(list) = node.as_array() {
        for n in list {
            collect_categories(n, parent.clone(), out);
        }
        return;
    }
    if let Some(items) = node.get("items").and_then(Value::as_array) {
        // `GET /V1/categories/list` shape: flat, with parent_id on each.
        for n in items {
            collect_categories(n, None, out);
        }
        return;
    }
    let Some(id) = node.get("id").and_then(id_text) else {
        return;
    };
    let parent = node.get("parent_id").and_then(id_text).or(parent);
    let name = node
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let level = node.get("level").and_then(Value::as_i64).unwrap_or(2);
    out.insert(
        id.clone(),
        CategoryNode {
            name,
            parent,
            level,
        },
    );
    if let Some(children) = node.get("children_data").and_then(Value::as_array) {
        for c in children {
            collect_categories(c, Some(id.clone()), out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn resolves_tax_class_and_categories_with_ancestors() {
        let tree = json!({"id":1,"parent_id":0,"name":"Root Catalog","level":0,"children_data":[
            {"id":2,"parent_id":1,"name":"Default Category","level":1,"children_data":[
                {"id":3,"parent_id":2,"name":"Services","level":2,"children_data":[
                    {"id":5,"parent_id":3,"name":"Installation","level":3,"children_data":[]}]},
                {"id":4,"parent_id":2,"name":"Apparel","level":2,"children_data":[]}]}]});
        let classes = json!({"items":[{"class_id":2,"class_name":"Taxable Goods","class_type":"PRODUCT"},
                                       {"class_id":3,"class_name":"Retail Customer","class_type":"CUSTOMER"}]});
        let products = json!({"items":[
            {"sku":"INSTALL","custom_attributes":[{"attribute_code":"tax_class_id","value":"2"}],
             "extension_attributes":{"category_links":[{"position":0,"category_id":"5"},{"position":1,"category_id":"2"}]}},
            {"sku":"ODD","custom_attributes":[{"attribute_code":"tax_class_id","value":"9"}]},
            {"sku":"FREE","custom_attributes":[{"attribute_code":"tax_class_id","value":"0"}]}]});
        let mut cat = Catalogue::from_magento(&products, &tree, &classes).unwrap();
        let p = cat.product("INSTALL").unwrap();
        assert_eq!(
            p.categories,
            vec!["Installation".to_string(), "Services".to_string()]
        );
        assert_eq!(p.tax_class.as_deref(), Some("Taxable Goods"));
        let odd = cat.product("ODD").unwrap();
        assert_eq!(odd.tax_class, None);
        assert_eq!(odd.tax_class_id.as_deref(), Some("9"));
        assert_eq!(
            cat.product("FREE").unwrap().tax_class.as_deref(),
            Some("None")
        );
        cat.set_xero_items(&json!({"Items":[{"Code":"INSTALL"}]}))
            .unwrap();
        assert!(cat.is_xero_item("INSTALL"));
        assert!(!cat.is_xero_item("ODD"));
        assert!(cat.category_names().contains("Services"));
    }
}
