//! DSP 2025-1 catalog protocol wire types, in the compact JSON-LD form that validates against the
//! official JSON Schemas (bare DSP terms, `dct:`/`dcat:` prefixes for DCAT metadata).

use serde::{Deserialize, Serialize};

use crate::{DSP_CONTEXT, dsp_context};

/// The root `Catalog` a provider answers a `CatalogRequestMessage` with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Catalog {
    /// `["https://w3id.org/dspace/2025/1/context.jsonld"]`.
    #[serde(rename = "@context")]
    pub context: Vec<String>,
    /// The catalog's id.
    #[serde(rename = "@id")]
    pub id: String,
    /// Always `Catalog`.
    #[serde(rename = "@type")]
    pub kind: String,
    /// The provider's participant id (its DID).
    #[serde(rename = "participantId")]
    pub participant_id: String,
    /// Title of the catalog, e.g. "Malmö open city data".
    #[serde(rename = "dct:title", skip_serializing_if = "Option::is_none", default)]
    pub title: Option<String>,
    /// Who publishes it (the city or supplier name).
    #[serde(
        rename = "dct:publisher",
        skip_serializing_if = "Option::is_none",
        default
    )]
    pub publisher: Option<String>,
    /// The DSP endpoint(s) to negotiate and transfer through.
    pub service: Vec<DataService>,
    /// Datasets on this page (left out when empty: the schema wants at least one item).
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub dataset: Vec<Dataset>,
}

/// A DCAT `DataService`: the connector's DSP endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataService {
    /// Service id, referenced by each distribution's `accessService`.
    #[serde(rename = "@id")]
    pub id: String,
    /// Always `DataService`.
    #[serde(rename = "@type")]
    pub kind: String,
    /// The DSP base URL (`<root>` + the version path).
    #[serde(rename = "endpointURL")]
    pub endpoint_url: String,
    /// Where the endpoint is described (the version document).
    #[serde(
        rename = "endpointDescription",
        skip_serializing_if = "Option::is_none",
        default
    )]
    pub endpoint_description: Option<String>,
}

/// A DCAT `Dataset` with its offers and distributions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dataset {
    /// Present only when the dataset is a response root (`GET /catalog/datasets/:id`).
    #[serde(rename = "@context", skip_serializing_if = "Option::is_none", default)]
    pub context: Option<Vec<String>>,
    /// The asset id.
    #[serde(rename = "@id")]
    pub id: String,
    /// Always `Dataset`.
    #[serde(rename = "@type")]
    pub kind: String,
    /// `dct:title`.
    #[serde(rename = "dct:title", skip_serializing_if = "Option::is_none", default)]
    pub title: Option<String>,
    /// `dct:description`.
    #[serde(
        rename = "dct:description",
        skip_serializing_if = "Option::is_none",
        default
    )]
    pub description: Option<String>,
    /// `dcat:keyword`.
    #[serde(
        rename = "dcat:keyword",
        skip_serializing_if = "Vec::is_empty",
        default
    )]
    pub keyword: Vec<String>,
    /// `dcat:theme`.
    #[serde(rename = "dcat:theme", skip_serializing_if = "Vec::is_empty", default)]
    pub theme: Vec<String>,
    /// `dct:spatial`.
    #[serde(
        rename = "dct:spatial",
        skip_serializing_if = "Option::is_none",
        default
    )]
    pub spatial: Option<String>,
    /// `dct:conformsTo`: the Smart Data Model schema the records follow.
    #[serde(
        rename = "dct:conformsTo",
        skip_serializing_if = "Option::is_none",
        default
    )]
    pub conforms_to: Option<String>,
    /// `dct:type`: the Smart Data Model entity type, e.g. `AirQualityObserved`.
    #[serde(rename = "dct:type", skip_serializing_if = "Option::is_none", default)]
    pub data_model: Option<String>,
    /// `dct:license`.
    #[serde(
        rename = "dct:license",
        skip_serializing_if = "Option::is_none",
        default
    )]
    pub license: Option<String>,
    /// `dcat:mediaType`.
    #[serde(
        rename = "dcat:mediaType",
        skip_serializing_if = "Option::is_none",
        default
    )]
    pub media_type: Option<String>,
    /// The ODRL offers (at least one) the requester may negotiate.
    #[serde(rename = "hasPolicy")]
    pub has_policy: Vec<serde_json::Value>,
    /// How the data can be transferred (at least one).
    pub distribution: Vec<Distribution>,
}

/// A DCAT `Distribution`: one transfer format through one data service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Distribution {
    /// Always `Distribution`.
    #[serde(rename = "@type")]
    pub kind: String,
    /// The DSP transfer format, e.g. `HttpData-PULL`.
    pub format: String,
    /// The `@id` of the data service to use.
    #[serde(rename = "accessService")]
    pub access_service: String,
    /// Open data only (a public offer): where anyone downloads the data without credentials
    /// (`dcat:accessURL` and `dcat:downloadURL`, the same URL).
    #[serde(flatten, skip_serializing_if = "Option::is_none", default)]
    pub open: Option<OpenAccess>,
}

/// The plain HTTP(S) address of a public dataset's data, in a DSP catalog's distribution.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenAccess {
    /// `dcat:accessURL`.
    #[serde(rename = "dcat:accessURL")]
    pub access_url: IdRef,
    /// `dcat:downloadURL`.
    #[serde(rename = "dcat:downloadURL")]
    pub download_url: IdRef,
}

/// A JSON-LD node reference, `{"@id": "…"}` (an IRI, not a string literal).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdRef {
    /// The IRI.
    #[serde(rename = "@id")]
    pub id: String,
}

/// A `CatalogRequestMessage` as received. Fields are checked by [`CatalogRequestMessage::check`].
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogRequestMessage {
    /// Must contain the DSP 2025-1 context.
    #[serde(rename = "@context")]
    pub context: ContextValue,
    /// Must be `CatalogRequestMessage`.
    #[serde(rename = "@type")]
    pub kind: String,
    /// Optional filters; see [`crate::filter`].
    #[serde(default)]
    pub filter: Option<Vec<serde_json::Value>>,
}

/// A JSON-LD `@context` as received: a string or an array of strings.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum ContextValue {
    /// A single context IRI.
    One(String),
    /// Several context IRIs.
    Many(Vec<String>),
}

impl ContextValue {
    /// True when the DSP 2025-1 context is among the contexts.
    pub fn has_dsp(&self) -> bool {
        match self {
            ContextValue::One(c) => c == DSP_CONTEXT,
            ContextValue::Many(cs) => cs.iter().any(|c| c == DSP_CONTEXT),
        }
    }
}

/// The `CatalogRequestMessage` caap sends: the context, the type and an explicit `filter` array (empty
/// for "everything"; the schema allows it, and some DSP 2025-1 connectors refuse a request without it).
pub fn catalog_request(filter: Vec<serde_json::Value>) -> serde_json::Value {
    serde_json::json!({
        "@context": dsp_context(),
        "@type": "CatalogRequestMessage",
        "filter": filter,
    })
}

impl CatalogRequestMessage {
    /// Checks context and type; the error says what to send instead.
    pub fn check(&self) -> Result<(), String> {
        if !self.context.has_dsp() {
            return Err(format!(
                "@context must be an array containing \"{DSP_CONTEXT}\" (DSP 2025-1)"
            ));
        }
        if self.kind != "CatalogRequestMessage" {
            return Err(format!(
                "@type is \"{}\"; this endpoint takes a CatalogRequestMessage",
                self.kind
            ));
        }
        Ok(())
    }
}

/// The DSP `CatalogError` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogError {
    /// The DSP context.
    #[serde(rename = "@context")]
    pub context: Vec<String>,
    /// Always `CatalogError`.
    #[serde(rename = "@type")]
    pub kind: String,
    /// A short machine-readable code, e.g. `404`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub code: Option<String>,
    /// Human-readable reasons.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub reason: Vec<String>,
}

impl CatalogError {
    /// A `CatalogError` with a code and one reason.
    pub fn new(code: impl Into<String>, reason: impl Into<String>) -> Self {
        CatalogError {
            context: dsp_context(),
            kind: "CatalogError".into(),
            code: Some(code.into()),
            reason: vec![reason.into()],
        }
    }
}

/// The `/.well-known/dspace-version` response (no `@context`, by the schema).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VersionResponse {
    /// The versions this connector speaks.
    pub protocol_versions: Vec<ProtocolVersion>,
}

/// One protocol version entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProtocolVersion {
    /// `2025-1`.
    pub version: String,
    /// Path of the DSP base relative to the root, e.g. `/dsp/2025-1`.
    pub path: String,
    /// Always `HTTPS` (the only binding).
    pub binding: String,
    /// The data service id.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub service_id: Option<String>,
    /// Kind of participant identifier, e.g. `did:web`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub identifier_type: Option<String>,
    /// How DSP requests are authenticated.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub auth: Option<AuthProfile>,
}

/// The authentication overlay advertised in the version entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthProfile {
    /// E.g. `DCP`.
    pub protocol: String,
    /// E.g. `1.0`.
    pub version: String,
    /// Profiles, e.g. `vc11-sl2021/jwt`.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub profile: Vec<String>,
}
