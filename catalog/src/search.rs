//! Search across the federated catalog cache: many cities' datasets, one query.

use serde::{Deserialize, Serialize};

use crate::remote::RemoteDataset;

/// A dataset in the federated cache, with where it came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CachedDataset {
    /// The provider's DSP address the catalog was fetched from.
    pub counter_party_address: String,
    /// The provider's participant id.
    pub participant_id: String,
    /// The provider's display name (usually the city).
    pub city: String,
    /// The dataset.
    pub dataset: RemoteDataset,
}

/// A search over the cache. Every given condition must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SearchQuery {
    /// Free text: every word must occur in the title, description, keywords, themes, data model
    /// or city.
    #[serde(default)]
    pub q: Option<String>,
    /// A theme, exactly (case-insensitive).
    #[serde(default)]
    pub theme: Option<String>,
    /// A Smart Data Model type, exactly (case-insensitive), e.g. `AirQualityObserved`.
    #[serde(default)]
    pub data_model: Option<String>,
    /// A city (the provider's name) or participant id, exactly (case-insensitive).
    #[serde(default)]
    pub city: Option<String>,
}

/// One search result with its relevance.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Hit {
    /// Higher is more relevant: title matches weigh most, then keywords and themes.
    pub score: u32,
    /// The dataset and where it came from.
    #[serde(flatten)]
    pub item: CachedDataset,
}

fn norm(s: &Option<String>) -> Option<String> {
    s.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_lowercase)
}

impl SearchQuery {
    /// The relevance of one cached dataset, or `None` when it does not match.
    pub fn score(&self, item: &CachedDataset) -> Option<u32> {
        let d = &item.dataset;
        let eq_any = |list: &[String], want: &str| list.iter().any(|v| v.to_lowercase() == want);
        if let Some(theme) = norm(&self.theme)
            && !eq_any(&d.themes, &theme)
        {
            return None;
        }
        if let Some(model) = norm(&self.data_model)
            && d.data_model.as_deref().map(str::to_lowercase) != Some(model)
        {
            return None;
        }
        if let Some(city) = norm(&self.city)
            && item.city.to_lowercase() != city
            && item.participant_id.to_lowercase() != city
        {
            return None;
        }
        let mut score = 1;
        if let Some(q) = norm(&self.q) {
            let title = d.title.as_deref().unwrap_or_default().to_lowercase();
            let desc = d.description.as_deref().unwrap_or_default().to_lowercase();
            let tags: Vec<String> = d
                .keywords
                .iter()
                .chain(&d.themes)
                .chain(&d.data_model)
                .map(|t| t.to_lowercase())
                .collect();
            let city = item.city.to_lowercase();
            for word in q.split_whitespace() {
                let mut s = 0;
                if title.contains(word) {
                    s += 10;
                }
                if tags.iter().any(|t| t.contains(word)) {
                    s += 5;
                }
                if desc.contains(word) {
                    s += 2;
                }
                if city.contains(word) || d.id.to_lowercase().contains(word) {
                    s += 1;
                }
                if s == 0 {
                    return None;
                }
                score += s;
            }
        }
        Some(score)
    }
}

/// Ranks the matching items, best first (ties by city, then dataset id).
pub fn search(items: Vec<CachedDataset>, query: &SearchQuery) -> Vec<Hit> {
    let mut hits: Vec<Hit> = items
        .into_iter()
        .filter_map(|item| query.score(&item).map(|score| Hit { score, item }))
        .collect();
    hits.sort_by(|a, b| {
        b.score
            .cmp(&a.score)
            .then_with(|| a.item.city.cmp(&b.item.city))
            .then_with(|| a.item.dataset.id.cmp(&b.item.dataset.id))
    });
    hits
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(city: &str, id: &str, title: &str, model: &str) -> CachedDataset {
        CachedDataset {
            counter_party_address: format!("https://{city}/dsp"),
            participant_id: format!("did:web:{city}"),
            city: city.into(),
            dataset: RemoteDataset {
                id: id.into(),
                title: Some(title.into()),
                description: None,
                keywords: vec!["sensor".into()],
                themes: vec!["environment".into()],
                spatial: None,
                data_model: Some(model.into()),
                offer_ids: vec![],
                formats: vec![],
                raw: serde_json::Value::Null,
            },
        }
    }

    #[test]
    fn searches_by_keyword_model_and_city() {
        let items = vec![
            item("Lund", "a", "Air quality", "AirQualityObserved"),
            item("Malmö", "b", "Parking", "ParkingSpot"),
            item("Malmö", "c", "Air sensors", "AirQualityObserved"),
        ];
        let q = |q: SearchQuery| {
            search(items.clone(), &q)
                .into_iter()
                .map(|h| h.item.dataset.id)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            q(SearchQuery {
                q: Some("air".into()),
                ..Default::default()
            }),
            ["a", "c"]
        );
        assert_eq!(
            q(SearchQuery {
                data_model: Some("airqualityobserved".into()),
                city: Some("malmö".into()),
                ..Default::default()
            }),
            ["c"]
        );
        assert!(
            q(SearchQuery {
                q: Some("air bicycles".into()),
                ..Default::default()
            })
            .is_empty()
        );
    }
}
