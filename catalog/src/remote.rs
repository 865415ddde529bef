//! Reading another connector's catalog.
//!
//! Other connectors (EDC, Rainbow, older caap versions) write the same DCAT in different JSON-LD
//! styles: bare terms, `dcat:`/`dct:` prefixes, full IRIs, single values or arrays, `@value`
//! objects. This module reads all of them into [`RemoteDataset`]s and flattens nested catalogs.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What caap keeps of one dataset from another connector's catalog.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RemoteDataset {
    /// The dataset's `@id` at the provider.
    pub id: String,
    /// Title, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Description, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Keywords.
    #[serde(default)]
    pub keywords: Vec<String>,
    /// Themes.
    #[serde(default)]
    pub themes: Vec<String>,
    /// Spatial coverage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spatial: Option<String>,
    /// Smart Data Model type, from `dct:type` or derived from a `dct:conformsTo` schema URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_model: Option<String>,
    /// Ids of the offers the provider showed us.
    #[serde(default)]
    pub offer_ids: Vec<String>,
    /// Transfer formats offered.
    #[serde(default)]
    pub formats: Vec<String>,
    /// The dataset as received, for negotiation later.
    pub raw: Value,
}

/// A parsed remote catalog.
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteCatalog {
    /// The provider's participant id.
    pub participant_id: String,
    /// The provider's display name (`dct:publisher`, else the catalog title, else the id).
    pub publisher: Option<String>,
    /// The DSP endpoint announced in the catalog's data service, if any.
    pub endpoint_url: Option<String>,
    /// Every dataset, nested catalogs flattened.
    pub datasets: Vec<RemoteDataset>,
}

/// Why a remote catalog could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RemoteCatalogError {
    /// The document is not a DSP catalog.
    #[error("not a DSP catalog: {0}")]
    NotACatalog(String),
}

const DCT: &str = "http://purl.org/dc/terms/";
const DCAT: &str = "http://www.w3.org/ns/dcat#";
const DSPACE: &str = "https://w3id.org/dspace/2025/1/";
const ODRL: &str = "http://www.w3.org/ns/odrl/2/";

/// Looks a term up under its bare, prefixed and full-IRI spellings.
fn get<'a>(obj: &'a Value, bare: &str, prefix: &str, ns: &str) -> Option<&'a Value> {
    let map = obj.as_object()?;
    map.get(bare)
        .or_else(|| map.get(&format!("{prefix}:{bare}")))
        .or_else(|| map.get(&format!("{ns}{bare}")))
}

/// All values of a term as a list (a single value becomes one item).
fn many(v: Option<&Value>) -> Vec<&Value> {
    match v {
        None | Some(Value::Null) => vec![],
        Some(Value::Array(items)) => items.iter().collect(),
        Some(other) => vec![other],
    }
}

/// A literal or reference as text: `"x"`, `{"@value": "x"}` or `{"@id": "x"}`.
fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Object(m) => m
            .get("@value")
            .or_else(|| m.get("@id"))
            .and_then(Value::as_str)
            .map(str::to_owned),
        _ => None,
    }
}

fn first_text(v: Option<&Value>) -> Option<String> {
    many(v).into_iter().find_map(text)
}

fn texts(v: Option<&Value>) -> Vec<String> {
    many(v).into_iter().filter_map(text).collect()
}

fn id_of(v: &Value) -> Option<String> {
    v.get("@id").and_then(Value::as_str).map(str::to_owned)
}

/// Derives a Smart Data Model type from a schema URL such as
/// `https://smart-data-models.github.io/dataModel.Environment/AirQualityObserved/schema.json`.
pub fn data_model_from_schema(url: &str) -> Option<String> {
    let mut parts = url.trim_end_matches('/').rsplit('/');
    let last = parts.next()?;
    let candidate = if last.ends_with(".json") {
        parts.next()?
    } else {
        last
    };
    (!candidate.is_empty() && !candidate.contains(':')).then(|| candidate.to_owned())
}

fn dataset(v: &Value) -> Option<RemoteDataset> {
    let id = id_of(v)?;
    let data_model = first_text(get(v, "type", "dct", DCT)).or_else(|| {
        first_text(get(v, "conformsTo", "dct", DCT)).and_then(|u| data_model_from_schema(&u))
    });
    Some(RemoteDataset {
        id,
        title: first_text(get(v, "title", "dct", DCT)),
        description: first_text(get(v, "description", "dct", DCT)),
        keywords: texts(get(v, "keyword", "dcat", DCAT)),
        themes: texts(get(v, "theme", "dcat", DCAT)),
        spatial: first_text(get(v, "spatial", "dct", DCT)),
        data_model,
        offer_ids: many(get(v, "hasPolicy", "odrl", ODRL))
            .into_iter()
            .filter_map(id_of)
            .collect(),
        formats: many(get(v, "distribution", "dcat", DCAT))
            .into_iter()
            .filter_map(|d| first_text(get(d, "format", "dct", DCT)))
            .collect(),
        raw: v.clone(),
    })
}

fn collect(cat: &Value, out: &mut Vec<RemoteDataset>, depth: usize) {
    for d in many(get(cat, "dataset", "dcat", DCAT)) {
        if let Some(ds) = dataset(d) {
            out.push(ds);
        }
    }
    if depth < 8 {
        for nested in many(get(cat, "catalog", "dcat", DCAT)) {
            collect(nested, out, depth + 1);
        }
    }
}

/// Reads a catalog document from any DSP connector.
pub fn parse_catalog(doc: &Value) -> Result<RemoteCatalog, RemoteCatalogError> {
    // Some connectors wrap the catalog in a JSON-LD @graph or answer with a one-element array.
    let doc = match doc {
        Value::Array(items) if items.len() == 1 => &items[0],
        other => other,
    };
    let Some(obj) = doc.as_object() else {
        return Err(RemoteCatalogError::NotACatalog(
            "the body is not a JSON object".into(),
        ));
    };
    let kinds = texts(obj.get("@type"));
    if !kinds
        .iter()
        .any(|k| k == "Catalog" || k == "dcat:Catalog" || k == &format!("{DCAT}Catalog"))
    {
        return Err(RemoteCatalogError::NotACatalog(format!(
            "@type is {kinds:?}, expected Catalog"
        )));
    }
    let participant_id = first_text(get(doc, "participantId", "dspace", DSPACE))
        .or_else(|| id_of(doc))
        .ok_or_else(|| RemoteCatalogError::NotACatalog("no participantId and no @id".into()))?;
    let publisher = first_text(get(doc, "publisher", "dct", DCT))
        .or_else(|| first_text(get(doc, "title", "dct", DCT)));
    let endpoint_url = many(get(doc, "service", "dcat", DCAT))
        .into_iter()
        .find_map(|s| first_text(get(s, "endpointURL", "dcat", DCAT)));
    let mut datasets = Vec::new();
    collect(doc, &mut datasets, 0);
    Ok(RemoteCatalog {
        participant_id,
        publisher,
        endpoint_url,
        datasets,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_prefixed_and_bare_styles_and_nested_catalogs() {
        let doc = json!({
            "@type": "dcat:Catalog", "@id": "c1",
            "dspace:participantId": "did:web:lund.example",
            "dct:publisher": "Lund",
            "dcat:service": {"dcat:endpointURL": "https://lund.example/dsp"},
            "dcat:dataset": {"@id": "d1", "dct:title": {"@value": "Parking"},
                "dcat:keyword": ["parking", "mobility"],
                "dct:conformsTo": "https://smart-data-models.github.io/dataModel.Parking/ParkingSpot/schema.json",
                "odrl:hasPolicy": {"@id": "o1"},
                "dcat:distribution": [{"dct:format": {"@id": "HttpData-PULL"}}]},
            "catalog": [{"@type": "Catalog", "@id": "c2", "dataset": [{"@id": "d2", "title": "Air"}]}]
        });
        let c = parse_catalog(&doc).unwrap();
        assert_eq!(c.participant_id, "did:web:lund.example");
        assert_eq!(c.publisher.as_deref(), Some("Lund"));
        assert_eq!(c.endpoint_url.as_deref(), Some("https://lund.example/dsp"));
        assert_eq!(c.datasets.len(), 2);
        let d1 = &c.datasets[0];
        assert_eq!(d1.title.as_deref(), Some("Parking"));
        assert_eq!(d1.data_model.as_deref(), Some("ParkingSpot"));
        assert_eq!(d1.offer_ids, ["o1"]);
        assert_eq!(d1.formats, ["HttpData-PULL"]);
        assert_eq!(c.datasets[1].title.as_deref(), Some("Air"));
    }

    #[test]
    fn refuses_what_is_not_a_catalog() {
        assert!(parse_catalog(&json!({"@type": "Dataset"})).is_err());
        assert!(parse_catalog(&json!("x")).is_err());
        assert!(parse_catalog(&json!({"@type": "Catalog"})).is_err());
    }
}
