//! The participant's signing key: an EC P-256 key pair kept as a private JWK.

use josekit::jwk::Jwk;
use josekit::jwk::alg::ec::EcCurve;

/// Why a key could not be made or read.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The key material is not a private P-256 JWK.
    #[error("not a private EC P-256 JWK: {0}")]
    Invalid(String),
    /// The crypto library failed.
    #[error("key operation failed: {0}")]
    Crypto(String),
}

/// A participant's private signing key. `Debug` shows only the key id.
#[derive(Clone)]
pub struct ParticipantKey {
    jwk: Jwk,
}

impl std::fmt::Debug for ParticipantKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParticipantKey")
            .field("kid", &self.key_id())
            .finish_non_exhaustive()
    }
}

impl ParticipantKey {
    /// A new random P-256 key with the given key id.
    pub fn generate(key_id: &str) -> Result<Self, KeyError> {
        let mut jwk =
            Jwk::generate_ec_key(EcCurve::P256).map_err(|e| KeyError::Crypto(e.to_string()))?;
        jwk.set_key_id(key_id);
        jwk.set_algorithm("ES256");
        Ok(ParticipantKey { jwk })
    }

    /// Reads a private JWK (the content of a key file).
    pub fn from_jwk_json(json: &str) -> Result<Self, KeyError> {
        let jwk = Jwk::from_bytes(json.as_bytes()).map_err(|e| KeyError::Invalid(e.to_string()))?;
        if jwk.key_type() != "EC" || jwk.curve() != Some("P-256") || jwk.parameter("d").is_none() {
            return Err(KeyError::Invalid(
                "expected kty EC, crv P-256 and the private part d".into(),
            ));
        }
        Ok(ParticipantKey { jwk })
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

    /// The underlying JWK, for signing with josekit.
    pub fn jwk(&self) -> &Jwk {
        &self.jwk
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
