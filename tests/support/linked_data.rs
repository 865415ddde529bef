//! What independent linked-data tools see in caap's messages, for tests: expansion with a real JSON-LD 1.1
//! processor (the `json-ld` crate) over offline copies of the contexts, and validation of DCP messages against
//! the official DCP schemas.
//!
//! Contexts are never fetched: the DSP 2025-1 context and its ODRL profile, and the DCP 1.0 context, are read
//! from `${CAAP_SHARED_DIR:-<workspace>/../shared}` at test time (never copied into the repository) and served
//! to the processor under their published URLs; caap's own context is `caap_catalog::CAAP_CONTEXT_DOCUMENT`;
//! the DID core and JWS 2020 contexts of DID documents come from the `ssi-contexts` crate (not in ../shared).
//! When the folder is missing, [`load`] prints `SKIPPED: <reason>` and returns `None`, unless
//! `CAAP_REQUIRE_SHARED=1`, in which case it panics.
//!
//! [`LinkedData::problems`] expands a document strictly (a key that no context defines is an error, not
//! silently dropped) and reports every relative IRI left in the expanded form (`@id`, `@type`, property IRIs,
//! `@vocab` values such as `odrl:action`).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use json_ld::syntax::{IntoJsonWithContext, Parse};
use json_ld::{IriBuf, JsonLdProcessor, RemoteDocument};
use serde_json::Value;

/// The DCP schemas' `$id` prefix and their files under `vectors/identity/dcp/`.
const DCP_SCHEMAS: &[(&str, &str)] = &[
    (
        "PresentationQueryMessage",
        "presentation/presentation-query-message-schema.json",
    ),
    (
        "PresentationResponseMessage",
        "presentation/presentation-response-message-schema.json",
    ),
    (
        "CredentialRequestMessage",
        "issuance/credential-request-message-schema.json",
    ),
    (
        "CredentialMessage",
        "issuance/credential-message-schema.json",
    ),
    ("CredentialStatus", "issuance/credential-status-schema.json"),
    ("IssuerMetadata", "issuance/issuer-metadata-schema.json"),
    (
        "CredentialOfferMessage",
        "issuance/credential-offer-message-schema.json",
    ),
];

/// The offline contexts and the compiled DCP schemas.
pub struct LinkedData {
    loader: HashMap<IriBuf, RemoteDocument>,
    dcp: BTreeMap<&'static str, jsonschema::Validator>,
}

impl std::fmt::Debug for LinkedData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinkedData")
            .field("contexts", &self.loader.keys().collect::<Vec<_>>())
            .field("dcp_schemas", &self.dcp.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// `$CAAP_SHARED_DIR`, or `<workspace>/../shared`.
pub fn shared_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CAAP_SHARED_DIR").filter(|dir| !dir.is_empty()) {
        return PathBuf::from(dir);
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared")
}

fn remote(url: &str, text: &str) -> (IriBuf, RemoteDocument) {
    let iri = IriBuf::new(url.to_owned()).unwrap();
    let (doc, _) = json_ld::syntax::Value::parse_str(text)
        .unwrap_or_else(|e| panic!("the context for {url} is not JSON: {e}"));
    (iri.clone(), RemoteDocument::new(Some(iri), None, doc))
}

/// Loads (once per process) the contexts and the DCP schemas.
pub fn load() -> Option<&'static LinkedData> {
    static CACHE: OnceLock<Option<LinkedData>> = OnceLock::new();
    CACHE.get_or_init(compile).as_ref()
}

fn compile() -> Option<LinkedData> {
    let shared = shared_dir();
    let files = [
        (
            "https://w3id.org/dspace/2025/1/context.jsonld",
            "dsp/2025-1/context/dspace.jsonld",
        ),
        (
            "https://w3id.org/dspace/2025/1/odrl-profile.jsonld",
            "dsp/2025-1/context/odrl.jsonld",
        ),
        (
            "https://w3id.org/dspace-dcp/v1.0/dcp.jsonld",
            "vectors/identity/dcp/context/dcp.jsonld",
        ),
    ];
    let mut loader = HashMap::new();
    for (url, rel) in files {
        let path = shared.join(rel);
        let Ok(text) = std::fs::read_to_string(&path) else {
            let reason = format!("the JSON-LD context {url} is not at {}", path.display());
            assert!(
                !std::env::var("CAAP_REQUIRE_SHARED").is_ok_and(|v| v == "1"),
                "CAAP_REQUIRE_SHARED=1 but {reason}"
            );
            println!("SKIPPED: linked-data checks ({reason})");
            return None;
        };
        let (iri, doc) = remote(url, &text);
        loader.insert(iri, doc);
    }
    // caap's own context, and the contexts of DID documents (not in ../shared; the copies that ssi bundles).
    for (url, text) in [
        (
            caap_catalog::CAAP_CONTEXT,
            caap_catalog::CAAP_CONTEXT_DOCUMENT,
        ),
        ("https://www.w3.org/ns/did/v1", ssi_contexts::DID_V1),
        (
            "https://w3id.org/security/suites/jws-2020/v1",
            ssi_contexts::W3ID_JWS2020_V1,
        ),
    ] {
        let (iri, doc) = remote(url, text);
        loader.insert(iri, doc);
    }

    // The DCP schemas reference each other by `$id`; the presentation-definition and -submission schemas of
    // DIF Presentation Exchange are not in ../shared and caap never sends either, so they are registered as
    // the empty schema (they only constrain `presentationDefinition`/`presentationSubmission`, which caap's
    // messages leave out).
    let dcp_root = shared.join("vectors/identity/dcp");
    let mut documents: Vec<(String, Value)> = Vec::new();
    for rel in DCP_SCHEMAS.iter().map(|(_, rel)| *rel).chain([
        "issuance/credential-object-schema.json",
        "common/context-schema.json",
    ]) {
        let path = dcp_root.join(rel);
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        let schema: Value = serde_json::from_str(&text).unwrap();
        let id = schema["$id"].as_str().unwrap().to_owned();
        documents.push((id, schema.clone()));
        // The schemas $ref the context schema as `…/v1.0/common/…`; its own $id says `v08`.
        if rel == "common/context-schema.json" {
            documents.push((
                "https://w3id.org/dspace-dcp/v1.0/common/context-schema.json".into(),
                schema,
            ));
        }
    }
    for (external, schema) in [
        ("presentation-definition", serde_json::json!({})),
        (
            "presentation-submission",
            serde_json::json!({"properties": {"presentation_submission": {}}}),
        ),
    ] {
        documents.push((
            format!("https://identity.foundation/presentation-exchange/schemas/{external}.json"),
            schema,
        ));
    }
    let registry = jsonschema::Registry::new()
        .extend(documents.iter().cloned())
        .and_then(|b| b.prepare())
        .unwrap();
    let mut dcp = BTreeMap::new();
    for (kind, rel) in DCP_SCHEMAS {
        let path = dcp_root.join(rel);
        let schema: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let validator = jsonschema::options()
            .with_registry(&registry)
            .offline()
            .build(&schema)
            .unwrap_or_else(|e| panic!("cannot compile {rel}: {e}"));
        dcp.insert(*kind, validator);
    }
    Some(LinkedData { loader, dcp })
}

impl LinkedData {
    /// Validates a DCP message against its official schema (by `type`); `None` when it is not a DCP message.
    pub fn dcp_errors(&self, body: &Value) -> Option<Vec<String>> {
        let kind = body.get("type").and_then(Value::as_str)?;
        let validator = self.dcp.get(kind)?;
        Some(
            validator
                .iter_errors(body)
                .map(|e| format!("{}: {e}", e.instance_path()))
                .collect(),
        )
    }

    /// The expanded form of `doc` (an array of node objects), or the processor's error. Undefined keys are
    /// errors (a JSON-LD processor would otherwise drop them silently).
    pub fn expand(&self, doc: &Value) -> Result<Value, String> {
        let (json, _) =
            json_ld::syntax::Value::parse_str(&doc.to_string()).map_err(|e| e.to_string())?;
        let input = RemoteDocument::new(None, None, json);
        let options = json_ld::Options {
            // Undefined keys are errors; relative IRIs are kept and reported by `relative_iris`.
            expansion_policy: json_ld::expansion::Policy {
                invalid: json_ld::expansion::Action::Keep,
                vocab: json_ld::expansion::Action::Keep,
                allow_undefined: false,
            },
            ..Default::default()
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let expanded = runtime
            .block_on(input.expand_full(&mut (), &self.loader, options, ()))
            .map_err(|e| format!("JSON-LD expansion failed: {e}"))?;
        let objects = expanded
            .into_iter()
            .map(|o| serde_json::from_str(&o.into_json_with(&()).to_string()).unwrap())
            .collect();
        Ok(Value::Array(objects))
    }

    /// Everything an independent JSON-LD processor loses or leaves relative in `doc`: the expansion error,
    /// or each relative IRI in the expanded form, with its JSON path.
    pub fn problems(&self, doc: &Value) -> Vec<String> {
        match self.expand(doc) {
            Err(e) => vec![e],
            Ok(expanded) => {
                let mut found = Vec::new();
                relative_iris(&expanded, "", &mut found);
                if expanded.as_array().is_some_and(Vec::is_empty) {
                    found.push("the expanded document is empty".into());
                }
                found
            }
        }
    }
}

fn absolute(s: &str) -> bool {
    s.starts_with("_:") || caap_catalog::iri::is_absolute(s)
}

/// Collects relative IRIs in an expanded document: property names, `@id`, node `@type`s and value `@type`s.
fn relative_iris(v: &Value, path: &str, found: &mut Vec<String>) {
    match v {
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                relative_iris(item, &format!("{path}/{i}"), found);
            }
        }
        Value::Object(m) => {
            let is_value = m.contains_key("@value");
            for (k, member) in m {
                let here = format!("{path}/{k}");
                match k.as_str() {
                    "@id" => {
                        if let Some(id) = member.as_str().filter(|id| !absolute(id)) {
                            found.push(format!("{here}: relative IRI `{id}`"));
                        }
                    }
                    "@type" => {
                        let types: Vec<&str> = match member {
                            Value::String(t) => vec![t],
                            Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
                            _ => vec![],
                        };
                        for t in types {
                            if t != "@json" && !absolute(t) {
                                found.push(format!("{here}: relative type `{t}`"));
                            }
                        }
                    }
                    "@value" if m.get("@type").and_then(Value::as_str) == Some("@json") => {}
                    "@value" | "@language" | "@direction" | "@index" => {}
                    key if key.starts_with('@') => relative_iris(member, &here, found),
                    key => {
                        if !absolute(key) {
                            found.push(format!("{here}: relative property `{key}`"));
                        }
                        if !is_value {
                            relative_iris(member, &here, found);
                        }
                    }
                }
            }
        }
        _ => {}
    }
}

/// The values of a property (by full IRI) anywhere in an expanded document.
pub fn values_of<'a>(expanded: &'a Value, property: &str) -> Vec<&'a Value> {
    let mut out = Vec::new();
    collect(expanded, property, &mut out);
    out
}

fn collect<'a>(v: &'a Value, property: &str, out: &mut Vec<&'a Value>) {
    match v {
        Value::Array(items) => items.iter().for_each(|i| collect(i, property, out)),
        Value::Object(m) => {
            for (k, member) in m {
                if k == property {
                    match member {
                        Value::Array(items) => out.extend(items.iter()),
                        one => out.push(one),
                    }
                } else {
                    collect(member, property, out);
                }
            }
        }
        _ => {}
    }
}
