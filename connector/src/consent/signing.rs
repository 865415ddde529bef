//! Consent revisions, receipts and notices signed with the participant key (a compact JWS over the exact
//! canonical bytes), and checked against it.

use caap_identity::ParticipantKey;
use caap_identity::jose::{decode_compact, sign_bytes_compact, verify_with_jwk};
use caap_policy::consent::{RevisionSigner, RevisionVerifier, SignatureError};

use crate::store::StoreError;
use crate::trust::Identity;

/// The JWS `typ` of consent revisions and receipts.
pub const CONSENT_JWS_TYPE: &str = "caap-consent+jws";

/// Signs with the participant key.
#[derive(Debug)]
pub struct ParticipantSigner<'a> {
    key: &'a ParticipantKey,
}

impl<'a> ParticipantSigner<'a> {
    /// A signer over `key`.
    pub fn new(key: &'a ParticipantKey) -> Self {
        Self { key }
    }
}

impl RevisionSigner for ParticipantSigner<'_> {
    fn sign(&self, payload: &[u8]) -> Result<String, SignatureError> {
        sign_bytes_compact(self.key, Some(CONSENT_JWS_TYPE), payload)
            .map_err(|e| SignatureError(e.to_string()))
    }
}

/// Checks signatures made by this connector's participant key.
#[derive(Debug)]
pub struct ParticipantVerifier {
    jwk: serde_json::Value,
}

impl ParticipantVerifier {
    /// A verifier for the identity's current key.
    pub fn new(identity: &Identity) -> Result<Self, StoreError> {
        let jwk = identity
            .key
            .public_jwk()
            .map_err(|e| StoreError::Corrupt("participant key".into(), e.to_string()))?;
        Ok(Self { jwk })
    }
}

impl RevisionVerifier for ParticipantVerifier {
    fn verify(&self, jws: &str, payload: &[u8]) -> Result<(), SignatureError> {
        verify_jws(jws, payload, &self.jwk)
    }
}

/// `Ok` if `jws` is a valid signature with `jwk` over exactly the canonical form of `payload`.
pub fn verify_jws(
    jws: &str,
    payload: &[u8],
    jwk: &serde_json::Value,
) -> Result<(), SignatureError> {
    let decoded = decode_compact(jws).map_err(|e| SignatureError(e.to_string()))?;
    verify_with_jwk(&decoded, jwk).map_err(|e| SignatureError(e.to_string()))?;
    if caap_canonical::canonical_json(&decoded.payload).as_bytes() == payload {
        Ok(())
    } else {
        Err(SignatureError(
            "the signature covers another payload".into(),
        ))
    }
}
