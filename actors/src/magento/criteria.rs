//! `searchCriteria` for Magento's list endpoints (magento.md §2).
//!
//! Filters inside one group are OR'd, groups are AND'd. Keys are rendered in snake_case
//! (`filter_groups`, `condition_type`, `sort_orders`, `page_size`, `current_page`), which is
//! what Adobe's docs use; the values stay decoded here and are percent-encoded once, by the
//! client, so the URL and the OAuth signature see the same bytes.

/// A `condition_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    Eq,
    Neq,
    Gt,
    Gteq,
    Lt,
    Lteq,
    Moreq,
    /// Comma-separated list.
    In,
    /// Comma-separated list.
    Nin,
    /// `%` wildcards.
    Like,
    Nlike,
    Null,
    NotNull,
    Finset,
    Nfinset,
    From,
    To,
}

impl Condition {
    pub fn as_str(self) -> &'static str {
        match self {
            Condition::Eq => "eq",
            Condition::Neq => "neq",
            Condition::Gt => "gt",
            Condition::Gteq => "gteq",
            Condition::Lt => "lt",
            Condition::Lteq => "lteq",
            Condition::Moreq => "moreq",
            Condition::In => "in",
            Condition::Nin => "nin",
            Condition::Like => "like",
            Condition::Nlike => "nlike",
            Condition::Null => "null",
            Condition::NotNull => "notnull",
            Condition::Finset => "finset",
            Condition::Nfinset => "nfinset",
            Condition::From => "from",
            Condition::To => "to",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Asc,
    Desc,
}

/// One `field condition value` test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    pub field: String,
    pub condition: Condition,
    pub value: String,
}

impl Filter {
    pub fn new(field: impl Into<String>, condition: Condition, value: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            condition,
            value: value.into(),
        }
    }

    /// `field in (values...)`. Magento splits the value on commas, so a value that itself
    /// contains a comma cannot be matched this way.
    pub fn one_of<S: AsRef<str>>(field: impl Into<String>, values: &[S]) -> Self {
        let joined = values
            .iter()
            .map(|v| v.as_ref())
            .collect::<Vec<_>>()
            .join(",");
        Self::new(field, Condition::In, joined)
    }
}

/// A whole search: AND of OR-groups, sort orders and the page window.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SearchCriteria {
    pub filter_groups: Vec<Vec<Filter>>,
    pub sort_orders: Vec<(String, Direction)>,
    pub page_size: Option<u32>,
    pub current_page: Option<u32>,
    /// Magento's response projection (`fields=items[entity_id,updated_at],total_count`):
    /// a sweep that only needs keys transfers a few bytes per order instead of kilobytes.
    pub fields: Option<String>,
}

impl SearchCriteria {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a filter that must hold (its own group, AND'd with the others).
    pub fn filter(
        mut self,
        field: impl Into<String>,
        condition: Condition,
        value: impl Into<String>,
    ) -> Self {
        self.filter_groups
            .push(vec![Filter::new(field, condition, value)]);
        self
    }

    /// Adds a group of which at least one filter must hold (OR inside the group).
    pub fn any_of(mut self, filters: impl IntoIterator<Item = Filter>) -> Self {
        let group: Vec<Filter> = filters.into_iter().collect();
        if !group.is_empty() {
            self.filter_groups.push(group);
        }
        self
    }

    pub fn sort(mut self, field: impl Into<String>, direction: Direction) -> Self {
        self.sort_orders.push((field.into(), direction));
        self
    }

    pub fn page_size(mut self, size: u32) -> Self {
        self.page_size = Some(size);
        self
    }

    pub fn current_page(mut self, page: u32) -> Self {
        self.current_page = Some(page);
        self
    }

    /// Asks for only these response fields (Magento's `fields` parameter).
    pub fn fields(mut self, spec: impl Into<String>) -> Self {
        self.fields = Some(spec.into());
        self
    }

    /// The decoded query pairs, in a stable order.
    pub fn to_query(&self) -> Vec<(String, String)> {
        let mut pairs = Vec::new();
        for (g, group) in self.filter_groups.iter().enumerate() {
            for (f, filter) in group.iter().enumerate() {
                let prefix = format!("searchCriteria[filter_groups][{g}][filters][{f}]");
                let value = match filter.condition {
                    // Magento ignores the value of these but its input processor wants one.
                    Condition::Null | Condition::NotNull if filter.value.is_empty() => "1",
                    _ => filter.value.as_str(),
                };
                pairs.push((format!("{prefix}[field]"), filter.field.clone()));
                pairs.push((format!("{prefix}[value]"), value.to_string()));
                pairs.push((
                    format!("{prefix}[condition_type]"),
                    filter.condition.as_str().to_string(),
                ));
            }
        }
        for (s, (field, direction)) in self.sort_orders.iter().enumerate() {
            let prefix = format!("searchCriteria[sort_orders][{s}]");
            pairs.push((format!("{prefix}[field]"), field.clone()));
            let dir = match direction {
                Direction::Asc => "ASC",
                Direction::Desc => "DESC",
            };
            pairs.push((format!("{prefix}[direction]"), dir.to_string()));
        }
        if let Some(size) = self.page_size {
            pairs.push(("searchCriteria[page_size]".into(), size.to_string()));
        }
        if let Some(page) = self.current_page {
            pairs.push(("searchCriteria[current_page]".into(), page.to_string()));
        }
        if let Some(fields) = &self.fields {
            pairs.push(("fields".into(), fields.clone()));
        }
        pairs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_groups_sorts_and_window() {
        let q = SearchCriteria::new()
            .filter("updated_at", Condition::Gteq, "2024-01-01 00:00:00")
            .any_of([
                Filter::new("status", Condition::Eq, "pending"),
                Filter::one_of("state", &["new", "processing"]),
            ])
            .sort("updated_at", Direction::Asc)
            .sort("entity_id", Direction::Desc)
            .page_size(50)
            .current_page(2)
            .to_query();
        let expect: Vec<(&str, &str)> = vec![
            (
                "searchCriteria[filter_groups][0][filters][0][field]",
                "updated_at",
            ),
            (
                "searchCriteria[filter_groups][0][filters][0][value]",
                "2024-01-01 00:00:00",
            ),
            (
                "searchCriteria[filter_groups][0][filters][0][condition_type]",
                "gteq",
            ),
            (
                "searchCriteria[filter_groups][1][filters][0][field]",
                "status",
            ),
            (
                "searchCriteria[filter_groups][1][filters][0][value]",
                "pending",
            ),
            (
                "searchCriteria[filter_groups][1][filters][0][condition_type]",
                "eq",
            ),
            (
                "searchCriteria[filter_groups][1][filters][1][field]",
                "state",
            ),
            (
                "searchCriteria[filter_groups][1][filters][1][value]",
                "new,processing",
            ),
            (
                "searchCriteria[filter_groups][1][filters][1][condition_type]",
                "in",
            ),
            ("searchCriteria[sort_orders][0][field]", "updated_at"),
            ("searchCriteria[sort_orders][0][direction]", "ASC"),
            ("searchCriteria[sort_orders][1][field]", "entity_id"),
            ("searchCriteria[sort_orders][1][direction]", "DESC"),
            ("searchCriteria[page_size]", "50"),
            ("searchCriteria[current_page]", "2"),
        ];
        let got: Vec<(&str, &str)> = q.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(got, expect);
    }

    #[test]
    fn empty_group_is_dropped_and_notnull_gets_a_value() {
        let q = SearchCriteria::new()
            .any_of(Vec::new())
            .filter("customer_id", Condition::NotNull, "")
            .to_query();
        assert_eq!(q.len(), 3);
        assert_eq!(q[1].1, "1");
        assert_eq!(q[2].1, "notnull");
    }
}
