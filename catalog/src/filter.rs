//! The catalog filters caap supports in a `CatalogRequestMessage`.
//!
//! `filter` is an array of objects; every object must match (AND), and inside one object every
//! key must match. Keys:
//!
//! | key | matches when |
//! |---|---|
//! | `q` | every word occurs in the id, title, description, keywords, themes or data model |
//! | `keyword` | a keyword equals it (case-insensitive) |
//! | `theme` | a theme equals it (case-insensitive) |
//! | `dataModel` | the Smart Data Model type equals it (case-insensitive) |
//! | `id` | the dataset id equals it |
//!
//! Values are strings. Anything else is refused with a 400 (DSP requires that for unsupported
//! filters), naming the part that was not understood.

use crate::asset::Asset;
use crate::error::CatalogFault;

/// The filter keys caap understands.
pub const SUPPORTED_KEYS: [&str; 5] = ["q", "keyword", "theme", "dataModel", "id"];

/// One parsed condition.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Criterion {
    /// Free text: all words must occur.
    Text(Vec<String>),
    /// Exact keyword.
    Keyword(String),
    /// Exact theme.
    Theme(String),
    /// Exact data model type.
    DataModel(String),
    /// Exact id.
    Id(String),
}

/// All conditions of one request.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Filter(pub Vec<Criterion>);

impl Filter {
    /// Parses the `filter` array of a `CatalogRequestMessage`.
    pub fn parse(filter: Option<&[serde_json::Value]>) -> Result<Filter, CatalogFault> {
        let mut out = Vec::new();
        for (i, item) in filter.unwrap_or_default().iter().enumerate() {
            let serde_json::Value::Object(map) = item else {
                return Err(CatalogFault::BadRequest(format!(
                    "unsupported filter: filter[{i}] is not an object; caap supports objects with the keys {}",
                    SUPPORTED_KEYS.join(", ")
                )));
            };
            if map.is_empty() {
                return Err(CatalogFault::BadRequest(format!(
                    "unsupported filter: filter[{i}] is empty"
                )));
            }
            for (key, value) in map {
                let Some(text) = value.as_str().map(str::trim).filter(|s| !s.is_empty()) else {
                    return Err(CatalogFault::BadRequest(format!(
                        "unsupported filter: filter[{i}].{key} must be a non-empty string"
                    )));
                };
                let lower = text.to_lowercase();
                out.push(match key.as_str() {
                    "q" => Criterion::Text(lower.split_whitespace().map(str::to_owned).collect()),
                    "keyword" => Criterion::Keyword(lower),
                    "theme" => Criterion::Theme(lower),
                    "dataModel" => Criterion::DataModel(lower),
                    "id" => Criterion::Id(text.to_owned()),
                    other => {
                        return Err(CatalogFault::BadRequest(format!(
                            "unsupported filter key `{other}` in filter[{i}]; caap supports {}",
                            SUPPORTED_KEYS.join(", ")
                        )));
                    }
                });
            }
        }
        Ok(Filter(out))
    }

    /// True when the asset meets every condition.
    pub fn matches(&self, asset: &Asset) -> bool {
        if self.0.is_empty() {
            return true;
        }
        let text = asset.search_text();
        let eq = |list: &[String], want: &str| list.iter().any(|v| v.to_lowercase() == want);
        self.0.iter().all(|c| match c {
            Criterion::Text(words) => words.iter().all(|w| text.contains(w.as_str())),
            Criterion::Keyword(k) => eq(&asset.keywords, k),
            Criterion::Theme(t) => eq(&asset.themes, t),
            Criterion::DataModel(m) => asset
                .data_model
                .as_deref()
                .is_some_and(|d| d.to_lowercase() == *m),
            Criterion::Id(id) => asset.id == *id,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unsupported_filters_are_refused_by_name() {
        for (f, needle) in [
            (json!([{"colour": "red"}]), "colour"),
            (json!(["air"]), "not an object"),
            (json!([{"q": 3}]), "non-empty string"),
            (json!([{}]), "empty"),
        ] {
            let arr = f.as_array().unwrap().clone();
            let err = Filter::parse(Some(&arr)).unwrap_err().to_string();
            assert!(err.contains(needle), "{err}");
        }
        assert_eq!(Filter::parse(Some(&[])).unwrap(), Filter::default());
    }
}
