//! DID documents: the serde model, parsing with validation (the `id` must be the DID resolved,
//! references must point at methods that exist, no private keys), key lookup by verification
//! relationship, and building the connector's own document.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::did::split_did_url;
use crate::jose::{DecodedJws, JwsError, VerifierCache};
use crate::keys::PublishedKey;

/// The DID Core context.
pub const DID_CONTEXT_V1: &str = "https://www.w3.org/ns/did/v1";
/// The JsonWebKey2020 context (EDC, the DCP TCK).
pub const JWS_2020_CONTEXT: &str = "https://w3id.org/security/suites/jws-2020/v1";
/// The service type of a DCP credential service.
pub const CREDENTIAL_SERVICE: &str = "CredentialService";
/// The service type of a DCP issuer service.
pub const ISSUER_SERVICE: &str = "IssuerService";

/// Why a DID document is refused, or has no key for a purpose.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DidDocError {
    /// Not a DID document at all.
    #[error("not a DID document: {0}")]
    Invalid(String),
    /// The document's `id` is not the DID that was resolved.
    #[error("the DID document's id is `{found}`, not `{expected}`")]
    IdMismatch {
        /// The DID resolved.
        expected: String,
        /// The document's `id`.
        found: String,
    },
    /// The key id names another DID's method.
    #[error("the key `{kid}` does not belong to `{did}`")]
    ForeignKey {
        /// The key id.
        kid: String,
        /// This document's DID.
        did: String,
    },
    /// No verification method with that id.
    #[error("no verification method `{0}`")]
    UnknownKey(String),
    /// The method exists but is not listed for the relationship.
    #[error("the verification method `{kid}` is not authorised for {relationship}")]
    NotAuthorised {
        /// The key id.
        kid: String,
        /// The relationship needed.
        relationship: Relationship,
    },
    /// No `kid` and not exactly one candidate method.
    #[error("no key id given and {count} methods are authorised for {relationship}")]
    AmbiguousKey {
        /// How many candidates.
        count: usize,
        /// The relationship needed.
        relationship: Relationship,
    },
    /// The method carries no key caap can use.
    #[error("the verification method `{kid}` has no usable public key: {reason}")]
    UnusableKey {
        /// The key id.
        kid: String,
        /// Why.
        reason: String,
    },
}

/// A verification relationship (DID Core §5.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Relationship {
    /// `authentication`: verifiable presentations.
    Authentication,
    /// `assertionMethod`: verifiable credentials.
    AssertionMethod,
    /// `capabilityInvocation`: DCP self-issued ID tokens.
    CapabilityInvocation,
    /// `capabilityDelegation`.
    CapabilityDelegation,
    /// `keyAgreement` (encryption; never signatures).
    KeyAgreement,
}

impl std::fmt::Display for Relationship {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Relationship::Authentication => "authentication",
            Relationship::AssertionMethod => "assertionMethod",
            Relationship::CapabilityInvocation => "capabilityInvocation",
            Relationship::CapabilityDelegation => "capabilityDelegation",
            Relationship::KeyAgreement => "keyAgreement",
        })
    }
}

/// How strictly keys must be listed under a relationship.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum KeyUsePolicy {
    /// The key must be listed under the relationship (DCP and DID Core).
    #[default]
    Strict,
    /// As strict, except that a document listing no relationships at all (some EDC identity hubs
    /// publish only `verificationMethod`) lets any of its methods sign. For interop testing.
    AllowWhenNoRelationshipsListed,
}

/// A verification method.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VerificationMethod {
    /// The method's DID URL (`did#fragment`; relative `#fragment` is expanded on parse).
    pub id: String,
    /// E.g. `JsonWebKey2020`, `JsonWebKey`, `Multikey`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The controller DID.
    #[serde(default)]
    pub controller: String,
    /// The public key as a JWK.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key_jwk: Option<Value>,
    /// The public key as multibase multicodec (`Multikey`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key_multibase: Option<String>,
    /// The raw public key in base58 (the older 2018/2019 suites).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key_base58: Option<String>,
    /// The key turned into verifiers on first use, so that a document kept by a resolver parses
    /// each key once. Not serialized, ignored by equality, shared by clones.
    #[serde(skip)]
    pub(crate) verifiers: VerifierCache,
}

impl VerificationMethod {
    /// The public key as a JWK, whatever form the document used.
    pub fn public_jwk(&self) -> Result<Value, DidDocError> {
        let unusable = |reason: String| DidDocError::UnusableKey {
            kid: self.id.clone(),
            reason,
        };
        if let Some(jwk) = &self.public_key_jwk {
            let obj = jwk
                .as_object()
                .ok_or_else(|| unusable("publicKeyJwk is not an object".into()))?;
            if obj.contains_key("d") {
                return Err(unusable("publicKeyJwk carries a private key".into()));
            }
            return Ok(jwk.clone());
        }
        if let Some(mb) = &self.public_key_multibase {
            return crate::did_key::multikey_to_jwk(mb).map_err(|e| unusable(e.to_string()));
        }
        if let Some(b58) = &self.public_key_base58 {
            let raw = crate::multibase::base58_decode(b58)
                .ok_or_else(|| unusable("publicKeyBase58 is not base58".into()))?;
            let codec = match self.kind.as_str() {
                "Ed25519VerificationKey2018" | "Ed25519VerificationKey2020" => {
                    crate::did_key::Codec::Ed25519
                }
                "X25519KeyAgreementKey2019" | "X25519KeyAgreementKey2020" => {
                    crate::did_key::Codec::X25519
                }
                "EcdsaSecp256k1VerificationKey2019" => crate::did_key::Codec::Secp256k1,
                "P256Key2021" => crate::did_key::Codec::P256,
                other => return Err(unusable(format!("publicKeyBase58 with type {other}"))),
            };
            return crate::did_key::raw_key_to_jwk(codec, &raw)
                .map_err(|e| unusable(e.to_string()));
        }
        Err(unusable(
            "no publicKeyJwk, publicKeyMultibase or publicKeyBase58".into(),
        ))
    }
}

/// A reference to a verification method from a relationship: its id, or the method embedded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum MethodRef {
    /// A DID URL of a method in `verificationMethod`.
    Id(String),
    /// A method defined in place.
    Embedded(VerificationMethod),
}

impl MethodRef {
    /// The referenced method's id.
    pub fn id(&self) -> &str {
        match self {
            MethodRef::Id(id) => id,
            MethodRef::Embedded(vm) => &vm.id,
        }
    }
}

/// A service entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Service {
    /// The service id (`did#fragment`).
    pub id: String,
    /// The type: a string or an array of strings.
    #[serde(rename = "type")]
    pub kind: Value,
    /// A URL string, a map or an array.
    pub service_endpoint: Value,
}

impl Service {
    /// True if the service has type `t`.
    pub fn has_type(&self, t: &str) -> bool {
        match &self.kind {
            Value::String(s) => s == t,
            Value::Array(a) => a.iter().any(|v| v.as_str() == Some(t)),
            _ => false,
        }
    }

    /// The endpoint URL, if it is a plain string (or a one-element array of strings).
    pub fn endpoint_url(&self) -> Option<&str> {
        match &self.service_endpoint {
            Value::String(s) => Some(s),
            Value::Array(a) if a.len() == 1 => a[0].as_str(),
            _ => None,
        }
    }
}

/// A DID document (DID Core 1.0), with the members caap uses typed and the rest kept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DidDocument {
    /// The JSON-LD context (absent in plain-JSON documents).
    #[serde(rename = "@context", default, skip_serializing_if = "Option::is_none")]
    pub context: Option<Value>,
    /// The DID.
    pub id: String,
    /// The verification methods.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub verification_method: Vec<VerificationMethod>,
    /// `authentication`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub authentication: Vec<MethodRef>,
    /// `assertionMethod`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub assertion_method: Vec<MethodRef>,
    /// `capabilityInvocation`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub capability_invocation: Vec<MethodRef>,
    /// `capabilityDelegation`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub capability_delegation: Vec<MethodRef>,
    /// `keyAgreement`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub key_agreement: Vec<MethodRef>,
    /// Services (`CredentialService`, `IssuerService`, …).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub service: Vec<Service>,
    /// Every other member (`controller`, `alsoKnownAs`, …), kept as is.
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

/// A verification method chosen for a signature check.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedKey {
    /// The method's DID URL.
    pub id: String,
    /// Its public key.
    pub jwk: Value,
    /// The method's verifiers (shared with the document the key came from).
    verifiers: VerifierCache,
}

impl ResolvedKey {
    /// Verifies `jws` with this key, as [`crate::jose::verify_with_jwk`] does, reusing the key
    /// parsed by earlier verifications against the same document.
    pub fn verify(&self, jws: &DecodedJws) -> Result<(), JwsError> {
        self.verifiers.verify(jws, &self.jwk)
    }
}

impl DidDocument {
    /// Parses and validates the document fetched for `expected_did`.
    pub fn parse(bytes: &[u8], expected_did: &str) -> Result<Self, DidDocError> {
        let doc: DidDocument =
            serde_json::from_slice(bytes).map_err(|e| DidDocError::Invalid(e.to_string()))?;
        doc.validated(expected_did)
    }

    /// Validates a document for `expected_did`: matching `id`, absolute method ids, references
    /// that resolve, and no private key material.
    pub fn validated(mut self, expected_did: &str) -> Result<Self, DidDocError> {
        if self.id != expected_did {
            return Err(DidDocError::IdMismatch {
                expected: expected_did.to_owned(),
                found: self.id,
            });
        }
        let id = self.id.clone();
        let absolute = |s: &mut String| {
            if s.starts_with('#') {
                *s = format!("{id}{s}");
            }
        };
        for vm in &mut self.verification_method {
            absolute(&mut vm.id);
            if vm.controller.is_empty() {
                vm.controller = id.clone();
            }
        }
        for s in &mut self.service {
            absolute(&mut s.id);
        }
        let known: Vec<String> = self
            .verification_method
            .iter()
            .map(|v| v.id.clone())
            .collect();
        for list in [
            &mut self.authentication,
            &mut self.assertion_method,
            &mut self.capability_invocation,
            &mut self.capability_delegation,
            &mut self.key_agreement,
        ] {
            for r in list.iter_mut() {
                match r {
                    MethodRef::Id(s) => {
                        absolute(s);
                        if !known.contains(s) {
                            return Err(DidDocError::UnknownKey(s.clone()));
                        }
                    }
                    MethodRef::Embedded(vm) => {
                        absolute(&mut vm.id);
                        if vm.controller.is_empty() {
                            vm.controller = id.clone();
                        }
                    }
                }
            }
        }
        for vm in self.all_methods() {
            if split_did_url(&vm.id).0 != id {
                return Err(DidDocError::ForeignKey {
                    kid: vm.id.clone(),
                    did: id.clone(),
                });
            }
            if vm
                .public_key_jwk
                .as_ref()
                .and_then(Value::as_object)
                .is_some_and(|o| o.contains_key("d"))
            {
                return Err(DidDocError::Invalid(format!(
                    "the verification method `{}` publishes a private key",
                    vm.id
                )));
            }
        }
        Ok(self)
    }

    fn all_methods(&self) -> impl Iterator<Item = &VerificationMethod> {
        let embedded = [
            &self.authentication,
            &self.assertion_method,
            &self.capability_invocation,
            &self.capability_delegation,
            &self.key_agreement,
        ]
        .into_iter()
        .flatten()
        .filter_map(|r| match r {
            MethodRef::Embedded(vm) => Some(vm),
            MethodRef::Id(_) => None,
        });
        self.verification_method.iter().chain(embedded)
    }

    /// The references listed under `relationship`.
    pub fn relationship(&self, relationship: Relationship) -> &[MethodRef] {
        match relationship {
            Relationship::Authentication => &self.authentication,
            Relationship::AssertionMethod => &self.assertion_method,
            Relationship::CapabilityInvocation => &self.capability_invocation,
            Relationship::CapabilityDelegation => &self.capability_delegation,
            Relationship::KeyAgreement => &self.key_agreement,
        }
    }

    fn lists_no_relationships(&self) -> bool {
        self.authentication.is_empty()
            && self.assertion_method.is_empty()
            && self.capability_invocation.is_empty()
            && self.capability_delegation.is_empty()
            && self.key_agreement.is_empty()
    }

    /// The verification method with id `id` (absolute, `#fragment` or bare fragment).
    pub fn method(&self, id: &str) -> Option<&VerificationMethod> {
        let id = self.absolute_id(id);
        self.all_methods().find(|vm| vm.id == id)
    }

    fn absolute_id(&self, kid: &str) -> String {
        if kid.starts_with("did:") {
            kid.to_owned()
        } else if let Some(fragment) = kid.strip_prefix('#') {
            format!("{}#{fragment}", self.id)
        } else {
            format!("{}#{kid}", self.id)
        }
    }

    /// The key that may verify a signature for `relationship`: the method `kid` names (a DID URL
    /// of this DID, `#fragment` or bare fragment), which must be listed under the relationship;
    /// without `kid`, the only method listed (several: refused).
    pub fn verification_key(
        &self,
        kid: Option<&str>,
        relationship: Relationship,
        policy: KeyUsePolicy,
    ) -> Result<ResolvedKey, DidDocError> {
        let lenient =
            policy == KeyUsePolicy::AllowWhenNoRelationshipsListed && self.lists_no_relationships();
        let listed: Vec<&str> = if lenient {
            self.all_methods().map(|vm| vm.id.as_str()).collect()
        } else {
            self.relationship(relationship)
                .iter()
                .map(MethodRef::id)
                .collect()
        };
        let id = match kid {
            Some(kid) => {
                let id = self.absolute_id(kid);
                if split_did_url(&id).0 != self.id {
                    return Err(DidDocError::ForeignKey {
                        kid: kid.to_owned(),
                        did: self.id.clone(),
                    });
                }
                if self.method(&id).is_none() {
                    return Err(DidDocError::UnknownKey(id));
                }
                if !listed.contains(&id.as_str()) {
                    return Err(DidDocError::NotAuthorised {
                        kid: id,
                        relationship,
                    });
                }
                id
            }
            None => match listed.as_slice() {
                [only] => (*only).to_owned(),
                other => {
                    return Err(DidDocError::AmbiguousKey {
                        count: other.len(),
                        relationship,
                    });
                }
            },
        };
        let vm = self
            .method(&id)
            .ok_or_else(|| DidDocError::UnknownKey(id.clone()))?;
        Ok(ResolvedKey {
            jwk: vm.public_jwk()?,
            id,
            verifiers: vm.verifiers.clone(),
        })
    }

    /// The first service of type `kind`.
    pub fn service_of_type(&self, kind: &str) -> Option<&Service> {
        self.service.iter().find(|s| s.has_type(kind))
    }

    /// The DCP credential service's base URL, if the document has a `CredentialService` entry.
    pub fn credential_service_url(&self) -> Option<&str> {
        self.service_of_type(CREDENTIAL_SERVICE)
            .and_then(Service::endpoint_url)
    }

    /// The connector's own DID document: every published key as a `JsonWebKey2020` method; the
    /// current key under `authentication`, `assertionMethod` and `capabilityInvocation`; retired
    /// keys under `assertionMethod` only (so credentials they signed still verify, while nothing
    /// new is accepted from them); and the given services (e.g. [`Service::credential_service`]).
    pub fn for_participant(did: &str, keys: &[PublishedKey], services: Vec<Service>) -> Self {
        let mut doc = DidDocument {
            context: Some(json!([DID_CONTEXT_V1, JWS_2020_CONTEXT])),
            id: did.to_owned(),
            verification_method: Vec::new(),
            authentication: Vec::new(),
            assertion_method: Vec::new(),
            capability_invocation: Vec::new(),
            capability_delegation: Vec::new(),
            key_agreement: Vec::new(),
            service: services,
            other: BTreeMap::new(),
        };
        for key in keys {
            let id = doc.absolute_id(&key.kid);
            doc.verification_method.push(VerificationMethod {
                id: id.clone(),
                kind: "JsonWebKey2020".into(),
                controller: did.to_owned(),
                public_key_jwk: Some(key.public_jwk.clone()),
                public_key_multibase: None,
                public_key_base58: None,
                verifiers: VerifierCache::new(),
            });
            doc.assertion_method.push(MethodRef::Id(id.clone()));
            if key.current {
                doc.authentication.push(MethodRef::Id(id.clone()));
                doc.capability_invocation.push(MethodRef::Id(id));
            }
        }
        doc
    }
}

impl Service {
    /// The DCP `CredentialService` entry pointing at `base_url` (the credential service's base;
    /// the verifier appends `/presentations/query`).
    pub fn credential_service(did: &str, base_url: &str) -> Self {
        Service {
            id: format!("{did}#credential-service"),
            kind: Value::from(CREDENTIAL_SERVICE),
            service_endpoint: Value::from(base_url),
        }
    }

    /// The DCP `IssuerService` entry (for the trust anchor).
    pub fn issuer_service(did: &str, base_url: &str) -> Self {
        Service {
            id: format!("{did}#issuer-service"),
            kind: Value::from(ISSUER_SERVICE),
            service_endpoint: Value::from(base_url),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{KeyAlgorithm, KeySet, ParticipantKey};

    const DID: &str = "did:web:malmo.example";

    fn doc() -> DidDocument {
        let key = ParticipantKey::generate(&format!("{DID}#key-1")).unwrap();
        let mut set = KeySet::new(key);
        let t = chrono::DateTime::UNIX_EPOCH;
        let next =
            ParticipantKey::generate_with(KeyAlgorithm::EdDsa, &format!("{DID}#key-2")).unwrap();
        set.rotate(next, t, t).unwrap();
        DidDocument::for_participant(
            DID,
            &set.published().unwrap(),
            vec![Service::credential_service(DID, "https://malmo.example/cs")],
        )
    }

    #[test]
    fn the_connector_document_round_trips_and_validates() {
        let doc = doc();
        let json = serde_json::to_vec(&doc).unwrap();
        let text = String::from_utf8(json.clone()).unwrap();
        assert!(text.contains("\"verificationMethod\"") && text.contains("\"serviceEndpoint\""));
        let back = DidDocument::parse(&json, DID).unwrap();
        assert_eq!(back, doc);
        assert_eq!(
            back.credential_service_url(),
            Some("https://malmo.example/cs")
        );
        assert!(matches!(
            DidDocument::parse(&json, "did:web:lund.example"),
            Err(DidDocError::IdMismatch { .. })
        ));
    }

    #[test]
    fn keys_are_found_by_relationship() {
        let doc = doc();
        let strict = KeyUsePolicy::Strict;
        let k2 = doc
            .verification_key(
                Some(&format!("{DID}#key-2")),
                Relationship::Authentication,
                strict,
            )
            .unwrap();
        assert_eq!(k2.jwk["crv"], "Ed25519");
        // Relative and bare fragments work too.
        assert!(
            doc.verification_key(Some("#key-2"), Relationship::CapabilityInvocation, strict)
                .is_ok()
        );
        assert!(
            doc.verification_key(Some("key-1"), Relationship::AssertionMethod, strict)
                .is_ok()
        );
        // The retired key verifies credentials only.
        assert!(matches!(
            doc.verification_key(Some("key-1"), Relationship::Authentication, strict),
            Err(DidDocError::NotAuthorised { .. })
        ));
        assert!(matches!(
            doc.verification_key(
                Some("did:web:lund.example#key-1"),
                Relationship::AssertionMethod,
                strict
            ),
            Err(DidDocError::ForeignKey { .. })
        ));
        assert!(matches!(
            doc.verification_key(Some("key-9"), Relationship::AssertionMethod, strict),
            Err(DidDocError::UnknownKey(_))
        ));
        // Without kid: one candidate is fine, two are ambiguous.
        assert_eq!(
            doc.verification_key(None, Relationship::Authentication, strict)
                .unwrap()
                .id,
            format!("{DID}#key-2")
        );
        assert!(matches!(
            doc.verification_key(None, Relationship::AssertionMethod, strict),
            Err(DidDocError::AmbiguousKey { count: 2, .. })
        ));
    }

    #[test]
    fn edc_style_documents_without_relationships_need_the_lenient_policy() {
        let json = serde_json::json!({
            "id": DID,
            "verificationMethod": [{
                "id": "#key-1", "type": "JsonWebKey2020", "controller": DID,
                "publicKeyJwk": ParticipantKey::generate("x").unwrap().public_jwk().unwrap()
            }],
            "service": [{"id": "#cs", "type": "CredentialService", "serviceEndpoint": "https://m/cs"}]
        });
        let doc = DidDocument::parse(json.to_string().as_bytes(), DID).unwrap();
        assert_eq!(doc.verification_method[0].id, format!("{DID}#key-1"));
        assert!(
            doc.verification_key(
                Some("#key-1"),
                Relationship::CapabilityInvocation,
                KeyUsePolicy::Strict
            )
            .is_err()
        );
        assert!(
            doc.verification_key(
                Some("#key-1"),
                Relationship::CapabilityInvocation,
                KeyUsePolicy::AllowWhenNoRelationshipsListed
            )
            .is_ok()
        );
    }

    #[test]
    fn broken_documents_are_refused() {
        let private: Value =
            serde_json::from_str(&ParticipantKey::generate("x").unwrap().to_private_jwk_json())
                .unwrap();
        let cases = [
            serde_json::json!({"id": DID, "verificationMethod": [{"id": "#k", "type": "JsonWebKey2020", "publicKeyJwk": private}]}),
            serde_json::json!({"id": DID, "authentication": ["#missing"]}),
            serde_json::json!({"id": DID, "verificationMethod": [{"id": "did:web:other#k", "type": "JsonWebKey2020", "publicKeyJwk": {}}]}),
            serde_json::json!({"verificationMethod": []}),
        ];
        for case in cases {
            assert!(
                DidDocument::parse(case.to_string().as_bytes(), DID).is_err(),
                "{case}"
            );
        }
    }
}
