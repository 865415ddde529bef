//! DCP presentation messages (`PresentationQueryMessage`, `PresentationResponseMessage`) and
//! scopes (`org.eclipse.dspace.dcp.vc.type:<Type>[:read]`).

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The DCP JSON-LD context.
pub const DCP_CONTEXT: &str = "https://w3id.org/dspace-dcp/v1.0/dcp.jsonld";
/// The scope alias selecting credentials by type.
pub const SCOPE_ALIAS_TYPE: &str = "org.eclipse.dspace.dcp.vc.type";
/// The scope alias selecting credentials by id.
pub const SCOPE_ALIAS_ID: &str = "org.eclipse.dspace.dcp.vc.id";

fn dcp_context() -> Value {
    Value::Array(vec![Value::from(DCP_CONTEXT)])
}

/// `PresentationQueryMessage`: `scope` or `presentationDefinition`, never both.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PresentationQueryMessage {
    /// `@context`.
    #[serde(rename = "@context", default = "dcp_context")]
    pub context: Value,
    /// `PresentationQueryMessage`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Scopes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<Vec<String>>,
    /// A DIF Presentation Exchange definition (not supported: 501).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub presentation_definition: Option<Value>,
}

/// Why a query is refused, with the status DCP asks for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    /// Not a `PresentationQueryMessage`.
    #[error("not a PresentationQueryMessage: {0}")]
    Malformed(String),
    /// Both `scope` and `presentationDefinition`.
    #[error("a query carries either scope or presentationDefinition, not both")]
    ScopeAndDefinition,
    /// Neither.
    #[error("a query needs scope or presentationDefinition")]
    NeitherScopeNorDefinition,
    /// An empty scope list or an empty definition.
    #[error("the query is empty")]
    Empty,
    /// Presentation definitions are not supported.
    #[error("presentationDefinition is not supported; use scopes")]
    DefinitionNotSupported,
}

impl QueryError {
    /// The HTTP status DCP asks for (400, or 501 for an unsupported definition).
    pub fn http_status(&self) -> u16 {
        match self {
            QueryError::DefinitionNotSupported => 501,
            _ => 400,
        }
    }
}

impl PresentationQueryMessage {
    /// A query for `scopes`.
    pub fn for_scopes(scopes: Vec<String>) -> Self {
        PresentationQueryMessage {
            context: dcp_context(),
            kind: "PresentationQueryMessage".into(),
            scope: Some(scopes),
            presentation_definition: None,
        }
    }

    /// Parses a request body and checks its shape; returns the message and its parsed scopes.
    pub fn parse(body: &[u8]) -> Result<(Self, Vec<Scope>), QueryError> {
        let msg: PresentationQueryMessage =
            serde_json::from_slice(body).map_err(|e| QueryError::Malformed(e.to_string()))?;
        let scopes = msg.validate()?;
        Ok((msg, scopes))
    }

    /// Checks the message's shape and parses its scopes.
    pub fn validate(&self) -> Result<Vec<Scope>, QueryError> {
        if !is_type(&self.kind, "PresentationQueryMessage") {
            return Err(QueryError::Malformed(format!("type is {}", self.kind)));
        }
        match (&self.scope, &self.presentation_definition) {
            (Some(_), Some(_)) => Err(QueryError::ScopeAndDefinition),
            (None, None) => Err(QueryError::NeitherScopeNorDefinition),
            (None, Some(def)) => {
                if def.is_null() || def.as_object().is_some_and(|o| o.is_empty()) {
                    Err(QueryError::Empty)
                } else {
                    Err(QueryError::DefinitionNotSupported)
                }
            }
            (Some(scopes), None) if scopes.is_empty() => Err(QueryError::Empty),
            (Some(scopes), None) => Ok(scopes.iter().map(|s| Scope::parse(s)).collect()),
        }
    }
}

/// True when `kind` names `want` (plain, `dcp:`-prefixed or as a full IRI).
pub(crate) fn is_type(kind: &str, want: &str) -> bool {
    kind == want || kind.strip_prefix("dcp:") == Some(want) || kind.ends_with(&format!("/{want}"))
}

/// `PresentationResponseMessage`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PresentationResponseMessage {
    /// `@context`.
    #[serde(rename = "@context", default = "dcp_context")]
    pub context: Value,
    /// `PresentationResponseMessage`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The presentations: JWT strings (or objects, which caap does not verify).
    #[serde(default)]
    pub presentation: Vec<Value>,
    /// Required when the query carried a presentation definition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub presentation_submission: Option<Value>,
}

impl PresentationResponseMessage {
    /// A response carrying presentation JWTs.
    pub fn new(presentations: Vec<String>) -> Self {
        PresentationResponseMessage {
            context: dcp_context(),
            kind: "PresentationResponseMessage".into(),
            presentation: presentations.into_iter().map(Value::from).collect(),
            presentation_submission: None,
        }
    }

    /// True if the type is right.
    pub fn has_valid_type(&self) -> bool {
        is_type(&self.kind, "PresentationResponseMessage")
    }
}

/// A parsed scope `alias:discriminator[:access]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    /// E.g. [`SCOPE_ALIAS_TYPE`].
    pub alias: String,
    /// The credential type or id.
    pub discriminator: String,
    /// `read`, `write` or `all`, when given.
    pub access: Option<String>,
    /// The scope as sent.
    pub raw: String,
}

impl Scope {
    /// Parses leniently: the alias is up to the first `:`; a trailing `:read`, `:write` or `:all`
    /// is the access; the rest is the discriminator (ids may contain `:`).
    pub fn parse(raw: &str) -> Self {
        let (alias, rest) = raw.split_once(':').unwrap_or((raw, ""));
        let (discriminator, access) = match rest.rsplit_once(':') {
            Some((d, a)) if matches!(a, "read" | "write" | "all") => (d, Some(a.to_owned())),
            _ => (rest, None),
        };
        Scope {
            alias: alias.to_owned(),
            discriminator: discriminator.to_owned(),
            access,
            raw: raw.to_owned(),
        }
    }

    /// The scope asking for credentials of `credential_type` (read access, as EDC and the TCK
    /// write it).
    pub fn for_type(credential_type: &str) -> String {
        format!("{SCOPE_ALIAS_TYPE}:{credential_type}:read")
    }

    /// The credential type this scope selects, if it selects by type.
    pub fn credential_type(&self) -> Option<&str> {
        (self.alias == SCOPE_ALIAS_TYPE && !self.discriminator.is_empty())
            .then_some(self.discriminator.as_str())
    }

    /// The credential id this scope selects, if it selects by id.
    pub fn credential_id(&self) -> Option<&str> {
        (self.alias == SCOPE_ALIAS_ID && !self.discriminator.is_empty())
            .then_some(self.discriminator.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::shared_file;

    #[test]
    fn scopes_parse_leniently() {
        let s = Scope::parse("org.eclipse.dspace.dcp.vc.type:MembershipCredential:read");
        assert_eq!(s.credential_type(), Some("MembershipCredential"));
        assert_eq!(s.access.as_deref(), Some("read"));
        let s = Scope::parse("org.eclipse.dspace.dcp.vc.type:MembershipCredential");
        assert_eq!(s.credential_type(), Some("MembershipCredential"));
        assert_eq!(s.access, None);
        let s = Scope::parse("org.eclipse.dspace.dcp.vc.id:urn:uuid:1234:read");
        assert_eq!(s.credential_id(), Some("urn:uuid:1234"));
        let s = Scope::parse("presentation1");
        assert_eq!((s.credential_type(), s.credential_id()), (None, None));
        assert_eq!(
            Scope::for_type("MembershipCredential"),
            "org.eclipse.dspace.dcp.vc.type:MembershipCredential:read"
        );
    }

    #[test]
    fn query_shapes_are_checked_with_dcp_statuses() {
        let q = |v: serde_json::Value| PresentationQueryMessage::parse(v.to_string().as_bytes());
        let ctx = serde_json::json!([DCP_CONTEXT]);
        assert!(q(serde_json::json!({"@context": ctx, "type": "PresentationQueryMessage", "scope": ["a:b"]})).is_ok());
        let both = q(
            serde_json::json!({"@context": ctx, "type": "PresentationQueryMessage", "scope": ["a"], "presentationDefinition": {"id": "x"}}),
        );
        assert_eq!(both.unwrap_err(), QueryError::ScopeAndDefinition);
        let neither = q(serde_json::json!({"@context": ctx, "type": "PresentationQueryMessage"}));
        assert_eq!(neither.unwrap_err().http_status(), 400);
        let empty = q(
            serde_json::json!({"@context": ctx, "type": "PresentationQueryMessage", "scope": []}),
        );
        assert_eq!(empty.unwrap_err(), QueryError::Empty);
        let empty_pd = q(
            serde_json::json!({"@context": ctx, "type": "PresentationQueryMessage", "presentationDefinition": {}}),
        );
        assert_eq!(empty_pd.unwrap_err(), QueryError::Empty);
        let pd = q(
            serde_json::json!({"@context": ctx, "type": "PresentationQueryMessage", "presentationDefinition": {"id": "x"}}),
        );
        assert_eq!(pd.unwrap_err().http_status(), 501);
        let wrong = q(
            serde_json::json!({"@context": ctx, "type": "CatalogRequestMessage", "scope": ["a"]}),
        );
        assert!(matches!(wrong, Err(QueryError::Malformed(_))));
        assert!(matches!(
            PresentationQueryMessage::parse(b"[]"),
            Err(QueryError::Malformed(_))
        ));
    }

    #[test]
    fn the_dcp_examples_round_trip() {
        for name in [
            "presentation-query-message.json",
            "presentation-query-message-w-presentation-definition.json",
            "presentation-response-message.json",
            "presentation-response-message-w-presentation-submission.json",
        ] {
            let Some(text) =
                shared_file(&format!("vectors/identity/dcp/presentation/example/{name}"))
            else {
                return;
            };
            let original: serde_json::Value = serde_json::from_str(&text).unwrap();
            let back = if name.starts_with("presentation-query") {
                let m: PresentationQueryMessage = serde_json::from_value(original.clone()).unwrap();
                serde_json::to_value(&m).unwrap()
            } else {
                let m: PresentationResponseMessage =
                    serde_json::from_value(original.clone()).unwrap();
                assert!(m.has_valid_type());
                serde_json::to_value(&m).unwrap()
            };
            assert_eq!(back, original, "{name}");
        }
    }

    #[test]
    fn our_messages_validate_against_the_dcp_schemas() {
        let Some(query_schema) =
            shared_file("vectors/identity/dcp/presentation/presentation-query-message-schema.json")
        else {
            return;
        };
        let Some(response_schema) = shared_file(
            "vectors/identity/dcp/presentation/presentation-response-message-schema.json",
        ) else {
            return;
        };
        for (schema, instance) in [
            (
                query_schema,
                serde_json::to_value(PresentationQueryMessage::for_scopes(vec![Scope::for_type(
                    "MembershipCredential",
                )]))
                .unwrap(),
            ),
            (
                response_schema,
                serde_json::to_value(PresentationResponseMessage::new(vec!["a.b.c".into()]))
                    .unwrap(),
            ),
        ] {
            let mut schema: serde_json::Value = serde_json::from_str(&schema).unwrap();
            // The schemas $ref the shared context schema by relative path; inline the check of
            // the message's own members only.
            strip_refs(&mut schema);
            let validator = jsonschema::validator_for(&schema).unwrap();
            let errors: Vec<String> = validator
                .iter_errors(&instance)
                .map(|e| e.to_string())
                .collect();
            assert!(errors.is_empty(), "{instance}: {errors:?}");
        }
    }

    fn strip_refs(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Object(o) => {
                if o.get("$ref")
                    .and_then(|r| r.as_str())
                    .is_some_and(|r| !r.starts_with('#'))
                {
                    o.remove("$ref");
                }
                o.values_mut().for_each(strip_refs);
            }
            serde_json::Value::Array(a) => a.iter_mut().for_each(strip_refs),
            _ => {}
        }
    }
}
