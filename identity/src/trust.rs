//! Trust decisions on verified credentials: which issuers are trusted for which credential types
//! (from the configuration; EDC's `TrustedIssuerRegistry`, FIWARE's trusted-issuers list), and
//! the JSON Schemas a credential's `credentialSchema` points at.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::vc::Credential;

/// The key standing for "any credential type" in [`TrustedIssuers`].
pub const ANY_TYPE: &str = "*";

/// Trusted issuers per credential type. In configuration: a map from type to issuer DIDs, e.g.
/// `{"MembershipCredential": ["did:web:authority.example"], "*": ["did:web:root.example"]}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TrustedIssuers {
    by_type: BTreeMap<String, BTreeSet<String>>,
}

impl TrustedIssuers {
    /// Trusts nobody.
    pub fn new() -> Self {
        Self::default()
    }

    /// Also trusts `issuer` for credentials of `credential_type` ([`ANY_TYPE`]: all types).
    pub fn trust(mut self, credential_type: &str, issuer: &str) -> Self {
        self.by_type
            .entry(credential_type.to_owned())
            .or_default()
            .insert(issuer.to_owned());
        self
    }

    /// True if `issuer` is trusted for `credential_type`.
    pub fn trusts(&self, credential_type: &str, issuer: &str) -> bool {
        [credential_type, ANY_TYPE]
            .iter()
            .any(|t| self.by_type.get(*t).is_some_and(|s| s.contains(issuer)))
    }

    /// The first type of `credential` (besides `VerifiableCredential`) its issuer is not trusted
    /// for; `None` when it is trusted for all of them. A credential with no specific type is
    /// trusted only through [`ANY_TYPE`].
    pub fn untrusted_type<'c>(&self, credential: &'c Credential) -> Option<&'c str> {
        let mut types = credential.specific_types().peekable();
        if types.peek().is_none() {
            return (!self.trusts(ANY_TYPE, &credential.issuer)).then_some("VerifiableCredential");
        }
        types
            .into_iter()
            .find(|t| !self.trusts(t, &credential.issuer))
    }
}

/// Why a credential's subject fails its schema.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchemaError {
    /// The schema itself does not compile.
    #[error("the schema {id} is not a valid JSON Schema: {reason}")]
    BadSchema {
        /// The schema id.
        id: String,
        /// Why.
        reason: String,
    },
    /// The credential names a schema caap does not know (only with `refuse_unknown`).
    #[error("the credential's schema {0} is unknown")]
    Unknown(String),
    /// The subject violates the schema.
    #[error("the credential violates its schema {id}: {errors:?}")]
    Violation {
        /// The schema id.
        id: String,
        /// The first few errors (instance path and message).
        errors: Vec<String>,
    },
}

/// Known credential schemas by id, validating `credentialSubject` (as the DCP TCK's schemas
/// do). Schemas come from configuration; caap fetches none.
#[derive(Clone, Default)]
pub struct CredentialSchemas {
    schemas: HashMap<String, Arc<jsonschema::Validator>>,
    refuse_unknown: bool,
}

impl std::fmt::Debug for CredentialSchemas {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CredentialSchemas")
            .field("ids", &self.schemas.keys().collect::<Vec<_>>())
            .field("refuse_unknown", &self.refuse_unknown)
            .finish()
    }
}

impl CredentialSchemas {
    /// No schemas; credentials naming unknown schemas pass.
    pub fn new() -> Self {
        Self::default()
    }

    /// Refuses credentials that name a schema not registered here.
    pub fn refusing_unknown(mut self) -> Self {
        self.refuse_unknown = true;
        self
    }

    /// Registers the schema `schema` under `id`.
    pub fn with(mut self, id: &str, schema: &Value) -> Result<Self, SchemaError> {
        let validator = jsonschema::validator_for(schema).map_err(|e| SchemaError::BadSchema {
            id: id.to_owned(),
            reason: e.to_string(),
        })?;
        self.schemas.insert(id.to_owned(), Arc::new(validator));
        Ok(self)
    }

    /// Checks the credential's subject against every schema it names.
    pub fn check(&self, credential: &Credential) -> Result<(), SchemaError> {
        let subject = Value::Object(credential.subject.clone());
        for schema in &credential.schemas {
            let Some(validator) = self.schemas.get(&schema.id) else {
                if self.refuse_unknown {
                    return Err(SchemaError::Unknown(schema.id.clone()));
                }
                continue;
            };
            let errors: Vec<String> = validator
                .iter_errors(&subject)
                .take(5)
                .map(|e| format!("{}: {e}", e.instance_path()))
                .collect();
            if !errors.is_empty() {
                return Err(SchemaError::Violation {
                    id: schema.id.clone(),
                    errors,
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::shared_file;
    use crate::vc::{CredentialFormat, CredentialSchemaRef};
    use serde_json::{Map, json};

    fn credential(types: &[&str], issuer: &str, subject: Value) -> Credential {
        let mut all = vec!["VerifiableCredential".to_owned()];
        all.extend(types.iter().map(|t| (*t).to_owned()));
        Credential {
            format: CredentialFormat::Vc11Jwt,
            id: None,
            issuer: issuer.into(),
            types: all,
            subject_id: None,
            subject: subject.as_object().cloned().unwrap_or_default(),
            valid_from: None,
            valid_until: None,
            status: vec![],
            schemas: vec![CredentialSchemaRef {
                id: "https://tck/membership".into(),
                kind: "JsonSchema".into(),
            }],
            document: Value::Object(Map::new()),
        }
    }

    #[test]
    fn issuers_are_trusted_per_type() {
        let trust: TrustedIssuers = serde_json::from_value(json!({
            "MembershipCredential": ["did:web:authority"],
            "*": ["did:web:root"]
        }))
        .unwrap();
        let m = credential(&["MembershipCredential"], "did:web:authority", json!({}));
        assert_eq!(trust.untrusted_type(&m), None);
        let r = credential(
            &["MembershipCredential", "RoleCredential"],
            "did:web:authority",
            json!({}),
        );
        assert_eq!(trust.untrusted_type(&r), Some("RoleCredential"));
        let root = credential(&["RoleCredential"], "did:web:root", json!({}));
        assert_eq!(trust.untrusted_type(&root), None);
        let evil = credential(&["MembershipCredential"], "did:web:evil", json!({}));
        assert_eq!(trust.untrusted_type(&evil), Some("MembershipCredential"));
        let bare = credential(&[], "did:web:authority", json!({}));
        assert_eq!(trust.untrusted_type(&bare), Some("VerifiableCredential"));
        assert!(TrustedIssuers::new().trust("A", "x").trusts("A", "x"));
    }

    #[test]
    fn the_tck_membership_schema_is_enforced() {
        let Some(text) = shared_file("vectors/identity/dcp-tck/membership-credential-schema.json")
        else {
            return;
        };
        let schema: Value = serde_json::from_str(&text).unwrap();
        let schemas = CredentialSchemas::new()
            .with("https://tck/membership", &schema)
            .unwrap();
        let good = credential(
            &["MembershipCredential"],
            "i",
            json!({"id": "did:web:h", "foo": "bar"}),
        );
        schemas.check(&good).unwrap();
        let bad = credential(
            &["MembershipCredential"],
            "i",
            json!({"id": "did:web:h", "foo": 1}),
        );
        assert!(matches!(
            schemas.check(&bad),
            Err(SchemaError::Violation { .. })
        ));
        let missing = credential(&["MembershipCredential"], "i", json!({"id": "did:web:h"}));
        assert!(matches!(
            schemas.check(&missing),
            Err(SchemaError::Violation { .. })
        ));
        // Unknown schemas pass unless refused.
        assert!(CredentialSchemas::new().check(&bad).is_ok());
        assert!(matches!(
            CredentialSchemas::new().refusing_unknown().check(&bad),
            Err(SchemaError::Unknown(_))
        ));
    }
}
