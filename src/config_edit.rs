//! Writing one mapping rule into the operator's config file without disturbing the rest.
//!
//! The file is the operator's: its comments, order, spacing and the form each table was written
//! in (`tax = { ... }` inline or a `[mapping.tax]` section) are kept, and only the one key the
//! rule is about changes. The edited text is re-parsed by the caller before it is written, so a
//! rule never leaves a file tally itself cannot read.

use std::path::Path;

use tally_tui::FixRule;
use toml_edit::{Array, DocumentMut, InlineTable, Item, Table, Value};

#[derive(Debug, thiserror::Error)]
pub enum ConfigEditError {
    #[error("{path} is not valid TOML: {reason}")]
    Parse { path: String, reason: String },
    #[error("{path}: [mapping] {key} is not a table or an array of rules, so it cannot be edited")]
    Shape { path: String, key: &'static str },
    #[error("cannot write {path}: {reason}")]
    Io { path: String, reason: String },
}

/// `text` with `rule` applied to its `[mapping]` table.
pub fn apply_rule(path: &Path, text: &str, rule: &FixRule) -> Result<String, ConfigEditError> {
    let shown = path.display().to_string();
    let mut doc: DocumentMut =
        text.parse()
            .map_err(|e: toml_edit::TomlError| ConfigEditError::Parse {
                path: shown.clone(),
                reason: e.message().to_owned(),
            })?;
    let mapping = doc
        .entry("mapping")
        .or_insert_with(|| Item::Table(Table::new()));
    let shape = |key| ConfigEditError::Shape {
        path: shown.clone(),
        key,
    };
    match rule {
        FixRule::TaxClass { class, tax_type } => {
            set_in_map(mapping, "tax", class, tax_type).ok_or_else(|| shape("tax"))?
        }
        FixRule::PaymentAccount { method, account } => {
            set_in_map(mapping, "payments", method, account).ok_or_else(|| shape("payments"))?
        }
        FixRule::ShippingAccount { account } => {
            let t = mapping
                .as_table_like_mut()
                .ok_or_else(|| shape("shipping_account"))?;
            set_string(t, "shipping_account", account);
        }
        FixRule::CategoryAccount { category, account } => {
            set_account_rule(mapping, category, account).ok_or_else(|| shape("account_rules"))?
        }
    }
    Ok(doc.to_string())
}

/// Replaces the file's contents with `text` through a sibling temporary file, so a crash
/// mid-write never leaves half a config; the file's permissions are kept (it may hold secrets).
pub fn write_atomically(path: &Path, text: &str) -> Result<(), ConfigEditError> {
    let io = |e: std::io::Error| ConfigEditError::Io {
        path: path.display().to_string(),
        reason: e.to_string(),
    };
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    let dir = dir.unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(io)?;
    std::io::Write::write_all(&mut tmp, text.as_bytes()).map_err(io)?;
    tmp.as_file().sync_all().map_err(io)?;
    if let Ok(meta) = std::fs::metadata(path) {
        std::fs::set_permissions(tmp.path(), meta.permissions()).map_err(io)?;
    }
    tmp.persist(path).map_err(|e| io(e.error))?;
    Ok(())
}

/// Keeps the decoration (comments, spacing) of an existing value when replacing it.
fn set_string(t: &mut dyn toml_edit::TableLike, key: &str, value: &str) {
    match t.get_mut(key) {
        Some(Item::Value(v)) => {
            let decor = v.decor().clone();
            *v = Value::from(value);
            *v.decor_mut() = decor;
        }
        _ => {
            t.insert(key, toml_edit::value(value));
        }
    }
}

/// `[mapping] <table>.<key> = value`, whether the table is inline or a section; `None` when
/// `<table>` exists but is neither.
fn set_in_map(mapping: &mut Item, table: &str, key: &str, value: &str) -> Option<()> {
    let mapping = mapping.as_table_like_mut()?;
    if !mapping.contains_key(table) {
        mapping.insert(table, Item::Value(Value::InlineTable(InlineTable::new())));
    }
    let t = mapping.get_mut(table)?.as_table_like_mut()?;
    set_string(t, key, value);
    Some(())
}

/// Updates the account of `category`'s rule, or adds a rule for it just before the `*`
/// fallback (rules match in order, so after it the new rule would never be reached).
fn set_account_rule(mapping: &mut Item, category: &str, account: &str) -> Option<()> {
    let mapping = mapping.as_table_like_mut()?;
    if !mapping.contains_key("account_rules") {
        mapping.insert("account_rules", Item::Value(Value::Array(Array::new())));
    }
    let same = |c: Option<&str>| c.is_some_and(|c| c.trim().eq_ignore_ascii_case(category.trim()));
    let fallback = |c: Option<&str>| c.is_some_and(|c| c.trim() == "*");
    match mapping.get_mut("account_rules")? {
        Item::Value(Value::Array(rules)) => {
            let cat = |v: &Value| {
                v.as_inline_table()
                    .and_then(|t| t.get("category"))
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            };
            if let Some(rule) = rules
                .iter_mut()
                .find(|v| same(cat(v).as_deref()))
                .and_then(Value::as_inline_table_mut)
            {
                set_string(rule, "account", account);
                return Some(());
            }
            let mut rule = InlineTable::new();
            rule.insert("category", Value::from(category));
            rule.insert("account", Value::from(account));
            let at = rules
                .iter()
                .position(|v| fallback(cat(v).as_deref()))
                .unwrap_or(rules.len());
            rules.insert(at, rule);
            // A multi-line array keeps one rule per line.
            if let Some(prev) = rules
                .get(at + 1)
                .or_else(|| at.checked_sub(1).and_then(|i| rules.get(i)))
            {
                let decor = prev.decor().clone();
                if let Some(new) = rules.get_mut(at) {
                    *new.decor_mut() = decor;
                }
            }
            Some(())
        }
        Item::ArrayOfTables(rules) => {
            let cat = |t: &Table| {
                t.get("category")
                    .and_then(|c| c.as_str())
                    .map(str::to_owned)
            };
            if let Some(rule) = rules.iter_mut().find(|t| same(cat(t).as_deref())) {
                set_string(rule, "account", account);
                return Some(());
            }
            let at = rules
                .iter()
                .position(|t| fallback(cat(t).as_deref()))
                .unwrap_or(rules.len());
            let mut all: Vec<Table> = rules.iter().cloned().collect();
            let mut rule = Table::new();
            rule.insert("category", toml_edit::value(category));
            rule.insert("account", toml_edit::value(account));
            all.insert(at, rule);
            rules.clear();
            for t in all {
                rules.push(t);
            }
            Some(())
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = r#"# tally config for the shop
[ledger]
path = "tally.redb" # next to this file

[mapping]
shipping_account = "202"   # freight income
rounding_account = "860"
# revenue by category, first match wins
account_rules = [
    { category = "Services", account = "200" },
    { category = "*", account = "201" },
]
tax = { "Taxable Goods" = "OUTPUT", "Shipping" = "OUTPUT" } # Magento class -> TaxType

# bank accounts by payment method
[mapping.payments]
checkmo = "090" # cheques
"#;

    fn edit(rule: FixRule) -> String {
        apply_rule(Path::new("tally.toml"), CONFIG, &rule).unwrap()
    }

    fn parsed(text: &str) -> toml::Table {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn a_tax_class_joins_the_inline_table_and_every_comment_stays() {
        let out = edit(FixRule::TaxClass {
            class: "Luxury".into(),
            tax_type: "OUTPUT2".into(),
        });
        for comment in [
            "# tally config for the shop",
            "# next to this file",
            "# freight income",
            "# revenue by category, first match wins",
            "# Magento class -> TaxType",
            "# bank accounts by payment method",
            "# cheques",
        ] {
            assert!(out.contains(comment), "{comment:?} lost:\n{out}");
        }
        let t = parsed(&out);
        assert_eq!(t["mapping"]["tax"]["Luxury"].as_str(), Some("OUTPUT2"));
        assert_eq!(
            t["mapping"]["tax"]["Taxable Goods"].as_str(),
            Some("OUTPUT")
        );
        // Only the tax line changed.
        let changed: Vec<_> = CONFIG
            .lines()
            .zip(out.lines())
            .filter(|(a, b)| a != b)
            .collect();
        assert_eq!(changed.len(), 1, "{changed:?}");
        assert!(changed[0].1.starts_with("tax = {"));
    }

    #[test]
    fn a_payment_method_goes_into_its_section_and_an_existing_one_is_replaced() {
        let out = edit(FixRule::PaymentAccount {
            method: "stripe".into(),
            account: "091".into(),
        });
        let t = parsed(&out);
        assert_eq!(t["mapping"]["payments"]["stripe"].as_str(), Some("091"));
        let out = edit(FixRule::PaymentAccount {
            method: "checkmo".into(),
            account: "092".into(),
        });
        assert!(out.contains("checkmo = \"092\" # cheques"), "{out}");
    }

    #[test]
    fn a_category_rule_lands_before_the_fallback_and_an_existing_one_is_updated() {
        let out = edit(FixRule::CategoryAccount {
            category: "Gift Cards".into(),
            account: "210".into(),
        });
        let t = parsed(&out);
        let rules = t["mapping"]["account_rules"].as_array().unwrap();
        let cats: Vec<&str> = rules
            .iter()
            .map(|r| r["category"].as_str().unwrap())
            .collect();
        assert_eq!(cats, ["Services", "Gift Cards", "*"]);
        assert_eq!(rules[1]["account"].as_str(), Some("210"));
        assert!(
            out.contains("\n    { category = \"Gift Cards\", account = \"210\" },\n"),
            "{out}"
        );
        let out = edit(FixRule::CategoryAccount {
            category: "services".into(),
            account: "205".into(),
        });
        let t = parsed(&out);
        let rules = t["mapping"]["account_rules"].as_array().unwrap();
        assert_eq!(rules.len(), 2);
        assert_eq!(rules[0]["account"].as_str(), Some("205"));
    }

    #[test]
    fn the_shipping_account_keeps_its_comment_and_bad_input_is_refused() {
        let out = edit(FixRule::ShippingAccount {
            account: "203".into(),
        });
        assert!(
            out.contains("shipping_account = \"203\"   # freight income"),
            "{out}"
        );
        let err = apply_rule(
            Path::new("x.toml"),
            "[mapping]\ntax = 3\n",
            &FixRule::TaxClass {
                class: "A".into(),
                tax_type: "B".into(),
            },
        )
        .unwrap_err();
        assert!(
            matches!(err, ConfigEditError::Shape { key: "tax", .. }),
            "{err}"
        );
        assert!(
            apply_rule(
                Path::new("x.toml"),
                "[mapping",
                &FixRule::ShippingAccount {
                    account: "1".into()
                }
            )
            .is_err()
        );
    }

    #[test]
    fn writing_replaces_the_file_and_keeps_its_permissions() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tally.toml");
        std::fs::write(&path, CONFIG).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        write_atomically(&path, "[mapping]\n").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "[mapping]\n");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
