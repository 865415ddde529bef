//! Signing keys: the participant's key pair (P-256 or Ed25519, kept as a private JWK), the small
//! [`SigningKey`] trait every signing function takes, and a [`KeySet`] for rotation (the current key
//! plus retired keys whose verification methods stay published until what they signed has expired).

use chrono::{DateTime, Utc};
use josekit::jwk::Jwk;
use josekit::jwk::alg::ec::EcCurve;
use josekit::jwk::alg::ed::EdCurve;
use josekit::jws::JwsSigner;
use serde::{Deserialize, Serialize};

/// Why a key could not be made, read or used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The key material is not a private P-256 or Ed25519 JWK.
    #[error("not a private EC P-256 or OKP Ed25519 JWK: {0}")]
    Invalid(String),
    /// The crypto library failed.
    #[error("key operation failed: {0}")]
    Crypto(String),
    /// A rotation or key-set operation was refused.
    #[error("key set: {0}")]
    KeySet(String),
}

/// The signature algorithms caap signs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum KeyAlgorithm {
    /// ECDSA on P-256 with SHA-256 (`ES256`), the default (what the DCP TCK and EDC use).
    #[serde(rename = "ES256")]
    Es256,
    /// Ed25519 (`EdDSA`).
    #[serde(rename = "EdDSA")]
    EdDsa,
}

impl KeyAlgorithm {
    /// The JWS `alg` name.
    pub fn jws_name(self) -> &'static str {
        match self {
            KeyAlgorithm::Es256 => "ES256",
            KeyAlgorithm::EdDsa => "EdDSA",
        }
    }
}

/// Something that signs JWS signing input: the participant's file key today, an HSM or KMS later.
pub trait SigningKey: Send + Sync + std::fmt::Debug {
    /// The key id: the full DID URL of the verification method (`did:web:…#key-1`), put in `kid`.
    fn key_id(&self) -> Option<&str>;
    /// The JWS `alg`.
    fn algorithm(&self) -> KeyAlgorithm;
    /// The public JWK (no private members), for DID documents.
    fn public_jwk(&self) -> Result<serde_json::Value, KeyError>;
    /// Signs `message` (the JWS signing input), returning the JWS signature bytes.
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, KeyError>;
}

/// A participant's private signing key. `Debug` shows only the key id and algorithm.
#[derive(Clone)]
pub struct ParticipantKey {
    jwk: Jwk,
    algorithm: KeyAlgorithm,
    /// The openssl signer, built once (converting the JWK costs more than a signature); clones share it.
    signer: std::sync::Arc<std::sync::OnceLock<Box<dyn JwsSigner>>>,
}

impl std::fmt::Debug for ParticipantKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParticipantKey")
            .field("kid", &self.key_id())
            .field("alg", &self.algorithm.jws_name())
            .finish_non_exhaustive()
    }
}

impl ParticipantKey {
    /// A new random P-256 key with the given key id.
    pub fn generate(key_id: &str) -> Result<Self, KeyError> {
        Self::generate_with(KeyAlgorithm::Es256, key_id)
    }

    /// A new random key of `algorithm` with the given key id.
    pub fn generate_with(algorithm: KeyAlgorithm, key_id: &str) -> Result<Self, KeyError> {
        let mut jwk = match algorithm {
            KeyAlgorithm::Es256 => Jwk::generate_ec_key(EcCurve::P256),
            KeyAlgorithm::EdDsa => Jwk::generate_ed_key(EdCurve::Ed25519),
        }
        .map_err(|e| KeyError::Crypto(e.to_string()))?;
        jwk.set_key_id(key_id);
        jwk.set_algorithm(algorithm.jws_name());
        Ok(ParticipantKey {
            jwk,
            algorithm,
            signer: Default::default(),
        })
    }

    /// Reads a private JWK (the content of a key file): EC P-256 or OKP Ed25519 with `d`.
    pub fn from_jwk_json(json: &str) -> Result<Self, KeyError> {
        let jwk = Jwk::from_bytes(json.as_bytes()).map_err(|e| KeyError::Invalid(e.to_string()))?;
        Self::from_jwk(jwk)
    }

    fn from_jwk(jwk: Jwk) -> Result<Self, KeyError> {
        if jwk.parameter("d").is_none() {
            return Err(KeyError::Invalid("the private part `d` is missing".into()));
        }
        let algorithm = match (jwk.key_type(), jwk.curve()) {
            ("EC", Some("P-256")) => KeyAlgorithm::Es256,
            ("OKP", Some("Ed25519")) => KeyAlgorithm::EdDsa,
            (kty, crv) => {
                return Err(KeyError::Invalid(format!(
                    "expected kty EC with crv P-256, or kty OKP with crv Ed25519; got {kty} {crv:?}"
                )));
            }
        };
        // Fail now, not at the first signature, if the material is broken.
        let key = ParticipantKey {
            jwk,
            algorithm,
            signer: Default::default(),
        };
        key.signer()?;
        Ok(key)
    }

    /// The private JWK as JSON, for the key file (keep it private: mode 0600).
    pub fn to_private_jwk_json(&self) -> String {
        self.jwk.to_string()
    }

    /// The public JWK, for DID documents.
    pub fn public_jwk(&self) -> Result<serde_json::Value, KeyError> {
        let public = self
            .jwk
            .to_public_key()
            .map_err(|e| KeyError::Crypto(e.to_string()))?;
        serde_json::to_value(public.as_ref()).map_err(|e| KeyError::Crypto(e.to_string()))
    }

    /// The key id.
    pub fn key_id(&self) -> Option<&str> {
        self.jwk.key_id()
    }

    /// The same key under another key id (e.g. `did:web:…#key-1` once the DID is known).
    pub fn with_key_id(&self, key_id: &str) -> Self {
        let mut jwk = self.jwk.clone();
        jwk.set_key_id(key_id);
        ParticipantKey {
            jwk,
            algorithm: self.algorithm,
            // The key id is not part of the key material: the signer stays valid.
            signer: self.signer.clone(),
        }
    }

    /// The signature algorithm.
    pub fn algorithm(&self) -> KeyAlgorithm {
        self.algorithm
    }

    /// The underlying JWK, for signing with josekit.
    pub fn jwk(&self) -> &Jwk {
        &self.jwk
    }

    fn signer(&self) -> Result<&dyn JwsSigner, KeyError> {
        if let Some(signer) = self.signer.get() {
            return Ok(signer.as_ref());
        }
        let signer: Box<dyn JwsSigner> = match self.algorithm {
            KeyAlgorithm::Es256 => Box::new(
                josekit::jws::ES256
                    .signer_from_jwk(&self.jwk)
                    .map_err(|e| KeyError::Invalid(e.to_string()))?,
            ),
            KeyAlgorithm::EdDsa => Box::new(
                josekit::jws::EdDSA
                    .signer_from_jwk(&self.jwk)
                    .map_err(|e| KeyError::Invalid(e.to_string()))?,
            ),
        };
        Ok(self.signer.get_or_init(|| signer).as_ref())
    }
}

impl SigningKey for ParticipantKey {
    fn key_id(&self) -> Option<&str> {
        ParticipantKey::key_id(self)
    }
    fn algorithm(&self) -> KeyAlgorithm {
        self.algorithm
    }
    fn public_jwk(&self) -> Result<serde_json::Value, KeyError> {
        ParticipantKey::public_jwk(self)
    }
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        self.signer()?
            .sign(message)
            .map_err(|e| KeyError::Crypto(e.to_string()))
    }
}

/// A key that no longer signs but whose verification method stays in the DID document until
/// `keep_until` (the expiry of the last thing it signed), so what it signed still verifies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RetiredKey {
    /// The key id (the verification method's DID URL).
    pub kid: String,
    /// The public JWK.
    pub public_jwk: serde_json::Value,
    /// When it stopped signing.
    pub retired_at: DateTime<Utc>,
    /// When its verification method may be dropped.
    pub keep_until: DateTime<Utc>,
}

/// One key to publish in the DID document.
#[derive(Debug, Clone, PartialEq)]
pub struct PublishedKey {
    /// The key id (the verification method's DID URL).
    pub kid: String,
    /// The public JWK.
    pub public_jwk: serde_json::Value,
    /// True for the signing key; false for a retired one (verification only).
    pub current: bool,
}

/// The participant's keys: the one that signs now and the retired ones still published.
#[derive(Debug, Clone)]
pub struct KeySet {
    current: ParticipantKey,
    retired: Vec<RetiredKey>,
}

impl KeySet {
    /// A key set with one key and nothing retired.
    pub fn new(current: ParticipantKey) -> Self {
        KeySet {
            current,
            retired: Vec::new(),
        }
    }

    /// A key set as stored: the current key and the retired keys (e.g. from a JSON file of
    /// [`RetiredKey`]s next to the key file).
    pub fn with_retired(current: ParticipantKey, retired: Vec<RetiredKey>) -> Self {
        KeySet { current, retired }
    }

    /// The key that signs.
    pub fn current(&self) -> &ParticipantKey {
        &self.current
    }

    /// The retired keys still published.
    pub fn retired(&self) -> &[RetiredKey] {
        &self.retired
    }

    /// Makes `next` the signing key. The previous key stays published until `keep_until` (pass
    /// the latest expiry of anything it signed: credentials issued, tokens, presentations).
    pub fn rotate(
        &mut self,
        next: ParticipantKey,
        now: DateTime<Utc>,
        keep_until: DateTime<Utc>,
    ) -> Result<(), KeyError> {
        let old_kid = self
            .current
            .key_id()
            .ok_or_else(|| KeyError::KeySet("the current key has no key id".into()))?
            .to_owned();
        let new_kid = next
            .key_id()
            .ok_or_else(|| KeyError::KeySet("the new key has no key id".into()))?;
        if new_kid == old_kid || self.retired.iter().any(|r| r.kid == new_kid) {
            return Err(KeyError::KeySet(format!(
                "the key id {new_kid} is already in use; pick a new one (e.g. key-2)"
            )));
        }
        let public_jwk = self.current.public_jwk()?;
        self.retired.push(RetiredKey {
            kid: old_kid,
            public_jwk,
            retired_at: now,
            keep_until: keep_until.max(now),
        });
        self.current = next;
        Ok(())
    }

    /// Drops retired keys whose `keep_until` has passed; returns them.
    pub fn prune(&mut self, now: DateTime<Utc>) -> Vec<RetiredKey> {
        let (gone, kept) = std::mem::take(&mut self.retired)
            .into_iter()
            .partition(|r| r.keep_until <= now);
        self.retired = kept;
        gone
    }

    /// The keys to publish: the current one first, then the retired ones.
    pub fn published(&self) -> Result<Vec<PublishedKey>, KeyError> {
        let kid = self
            .current
            .key_id()
            .ok_or_else(|| KeyError::KeySet("the current key has no key id".into()))?;
        let mut out = vec![PublishedKey {
            kid: kid.to_owned(),
            public_jwk: self.current.public_jwk()?,
            current: true,
        }];
        out.extend(self.retired.iter().map(|r| PublishedKey {
            kid: r.kid.clone(),
            public_jwk: r.public_jwk.clone(),
            current: false,
        }));
        Ok(out)
    }

    /// A suggested key id for the next key: `…#key-N` with N one past the highest in use.
    pub fn next_key_id(&self, did: &str) -> String {
        let highest = std::iter::once(self.current.key_id().unwrap_or_default())
            .chain(self.retired.iter().map(|r| r.kid.as_str()))
            .filter_map(|k| {
                k.rsplit_once("#key-")
                    .and_then(|(_, n)| n.parse::<u32>().ok())
            })
            .max()
            .unwrap_or(0);
        format!("{did}#key-{}", highest + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn keys_round_trip_and_public_part_has_no_secret() {
        let k = ParticipantKey::generate("did:web:x#key-1").unwrap();
        let again = ParticipantKey::from_jwk_json(&k.to_private_jwk_json()).unwrap();
        assert_eq!(again.key_id(), Some("did:web:x#key-1"));
        let public = k.public_jwk().unwrap();
        assert!(public.get("d").is_none());
        assert_eq!(public["crv"], "P-256");
        assert!(!format!("{k:?}").contains(&k.to_private_jwk_json()));
        assert!(ParticipantKey::from_jwk_json(&public.to_string()).is_err());
        assert!(ParticipantKey::from_jwk_json("{").is_err());
    }

    #[test]
    fn ed25519_keys_sign_and_round_trip() {
        let k = ParticipantKey::generate_with(KeyAlgorithm::EdDsa, "did:web:x#key-1").unwrap();
        assert_eq!(k.algorithm(), KeyAlgorithm::EdDsa);
        let again = ParticipantKey::from_jwk_json(&k.to_private_jwk_json()).unwrap();
        assert_eq!(again.algorithm(), KeyAlgorithm::EdDsa);
        let public = k.public_jwk().unwrap();
        assert_eq!(
            (public["kty"].as_str(), public["crv"].as_str()),
            (Some("OKP"), Some("Ed25519"))
        );
        assert!(public.get("d").is_none());
        let sig = SigningKey::sign(&k, b"hello").unwrap();
        assert_eq!(sig.len(), 64);
        let pub_jwk = Jwk::from_bytes(public.to_string()).unwrap();
        let verifier = josekit::jws::EdDSA.verifier_from_jwk(&pub_jwk).unwrap();
        josekit::jws::JwsVerifier::verify(&verifier, b"hello", &sig).unwrap();
    }

    #[test]
    fn rsa_and_other_curves_are_refused() {
        let rsa = Jwk::generate_rsa_key(2048).unwrap();
        assert!(ParticipantKey::from_jwk_json(&rsa.to_string()).is_err());
        let p384 = Jwk::generate_ec_key(EcCurve::P384).unwrap();
        assert!(ParticipantKey::from_jwk_json(&p384.to_string()).is_err());
    }

    #[test]
    fn rotation_keeps_the_old_key_until_what_it_signed_expires() {
        let t0 = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let did = "did:web:malmo.example";
        let mut set = KeySet::new(ParticipantKey::generate(&format!("{did}#key-1")).unwrap());
        assert_eq!(set.next_key_id(did), format!("{did}#key-2"));
        let dup = ParticipantKey::generate(&format!("{did}#key-1")).unwrap();
        assert!(set.rotate(dup, t0, t0).is_err());
        let next =
            ParticipantKey::generate_with(KeyAlgorithm::EdDsa, &set.next_key_id(did)).unwrap();
        set.rotate(next, t0, t0 + chrono::Duration::days(30))
            .unwrap();
        assert_eq!(set.current().key_id(), Some("did:web:malmo.example#key-2"));
        let published = set.published().unwrap();
        assert_eq!(published.len(), 2);
        assert!(published[0].current && !published[1].current);
        assert_eq!(published[1].kid, format!("{did}#key-1"));
        assert!(set.prune(t0 + chrono::Duration::days(29)).is_empty());
        assert_eq!(set.prune(t0 + chrono::Duration::days(30)).len(), 1);
        assert_eq!(set.published().unwrap().len(), 1);
        // Retired keys round-trip through JSON (the connector stores them).
        let r = RetiredKey {
            kid: "k".into(),
            public_jwk: serde_json::json!({}),
            retired_at: t0,
            keep_until: t0,
        };
        let back: RetiredKey = serde_json::from_value(serde_json::to_value(&r).unwrap()).unwrap();
        assert_eq!(back, r);
    }
}
