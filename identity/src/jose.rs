//! Compact JWS: signing with a [`SigningKey`], decoding without trust, and verifying with a public
//! JWK (josekit does the cryptography). Payloads are arbitrary JSON, so the same code secures JWT
//! claim sets, VC 2.0 credentials (`vc+jwt`) and presentations.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use josekit::jwk::Jwk;
use josekit::jws::JwsVerifier;
use serde_json::{Map, Value};

use crate::keys::{KeyError, SigningKey};

/// Why a JWS could not be read or verified.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwsError {
    /// Not three base64url parts with a JSON header and payload.
    #[error("malformed JWS: {0}")]
    Malformed(String),
    /// The `alg` is missing, `none`, or one caap does not verify.
    #[error("unsupported JWS algorithm {0:?}")]
    UnsupportedAlgorithm(String),
    /// The public key does not fit the algorithm, or is not a usable JWK.
    #[error("the key cannot verify this JWS: {0}")]
    UnusableKey(String),
    /// The signature does not verify.
    #[error("the signature does not verify")]
    BadSignature,
}

/// A compact JWS, decoded but not yet verified.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodedJws {
    /// The protected header.
    pub header: Map<String, Value>,
    /// The payload, parsed as JSON.
    pub payload: Value,
    signing_input: String,
    signature: Vec<u8>,
}

impl DecodedJws {
    /// The `alg` header.
    pub fn alg(&self) -> Option<&str> {
        self.header.get("alg").and_then(Value::as_str)
    }
    /// The `kid` header.
    pub fn kid(&self) -> Option<&str> {
        self.header.get("kid").and_then(Value::as_str)
    }
    /// The `typ` header.
    pub fn typ(&self) -> Option<&str> {
        self.header.get("typ").and_then(Value::as_str)
    }
    /// A payload member as a string.
    pub fn claim_str(&self, name: &str) -> Option<&str> {
        self.payload.get(name).and_then(Value::as_str)
    }
}

/// Decodes a compact JWS without checking its signature.
pub fn decode_compact(token: &str) -> Result<DecodedJws, JwsError> {
    let token = token.trim();
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwsError::Malformed(
            "expected three dot-separated parts".into(),
        ));
    };
    let decode = |part: &str, what: &str| {
        URL_SAFE_NO_PAD
            .decode(part)
            .map_err(|_| JwsError::Malformed(format!("the {what} is not base64url")))
    };
    let header: Map<String, Value> = serde_json::from_slice(&decode(h, "header")?)
        .map_err(|_| JwsError::Malformed("the header is not a JSON object".into()))?;
    if header.contains_key("crit") {
        return Err(JwsError::Malformed(
            "critical header extensions are not supported".into(),
        ));
    }
    let payload: Value = serde_json::from_slice(&decode(p, "payload")?)
        .map_err(|_| JwsError::Malformed("the payload is not JSON".into()))?;
    let signature = decode(s, "signature")?;
    Ok(DecodedJws {
        header,
        payload,
        signing_input: format!("{h}.{p}"),
        signature,
    })
}

/// Signs `payload` as a compact JWS with `alg` and `kid` from `key` and the given `typ`.
pub fn sign_compact(
    key: &dyn SigningKey,
    typ: Option<&str>,
    payload: &Value,
) -> Result<String, KeyError> {
    let mut header = Map::new();
    header.insert("alg".into(), Value::from(key.algorithm().jws_name()));
    if let Some(typ) = typ {
        header.insert("typ".into(), Value::from(typ));
    }
    if let Some(kid) = key.key_id() {
        header.insert("kid".into(), Value::from(kid));
    }
    let header = serde_json::to_vec(&header).map_err(|e| KeyError::Crypto(e.to_string()))?;
    let payload = serde_json::to_vec(payload).map_err(|e| KeyError::Crypto(e.to_string()))?;
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(payload)
    );
    let signature = key.sign(input.as_bytes())?;
    Ok(format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature)))
}

/// Verifies `jws` with the public JWK `jwk` (from a DID document), using the header's `alg`.
/// RSA (RS*/PS*), ECDSA (ES256/ES384/ES512/ES256K) and EdDSA are accepted; `none` and HMAC never.
pub fn verify_with_jwk(jws: &DecodedJws, jwk: &Value) -> Result<(), JwsError> {
    let alg = jws.alg().unwrap_or_default();
    let map = jwk
        .as_object()
        .ok_or_else(|| JwsError::UnusableKey("the JWK is not an object".into()))?
        .clone();
    if map.contains_key("d") {
        return Err(JwsError::UnusableKey(
            "a public key must not carry `d`".into(),
        ));
    }
    let jwk = Jwk::from_map(map).map_err(|e| JwsError::UnusableKey(e.to_string()))?;
    // The JWK's own `alg`, if any, must agree; josekit checks that too, but say it clearly.
    if let Some(key_alg) = jwk.algorithm()
        && key_alg != alg
    {
        return Err(JwsError::UnusableKey(format!(
            "the key is for {key_alg}, the JWS says {alg}"
        )));
    }
    // DID documents sometimes mark keys `use: enc` wrongly; verification only needs `sig` or none.
    if jwk.key_use().is_some_and(|u| u != "sig") {
        return Err(JwsError::UnusableKey(
            "the key is not a signature key".into(),
        ));
    }
    let unusable = |e: josekit::JoseError| JwsError::UnusableKey(e.to_string());
    let verifier: Box<dyn JwsVerifier> = match alg {
        "ES256" => Box::new(
            josekit::jws::ES256
                .verifier_from_jwk(&jwk)
                .map_err(unusable)?,
        ),
        "ES384" => Box::new(
            josekit::jws::ES384
                .verifier_from_jwk(&jwk)
                .map_err(unusable)?,
        ),
        "ES512" => Box::new(
            josekit::jws::ES512
                .verifier_from_jwk(&jwk)
                .map_err(unusable)?,
        ),
        "ES256K" => Box::new(
            josekit::jws::ES256K
                .verifier_from_jwk(&jwk)
                .map_err(unusable)?,
        ),
        "EdDSA" | "Ed25519" => Box::new(
            josekit::jws::EdDSA
                .verifier_from_jwk(&jwk)
                .map_err(unusable)?,
        ),
        "RS256" => Box::new(
            josekit::jws::RS256
                .verifier_from_jwk(&jwk)
                .map_err(unusable)?,
        ),
        "RS384" => Box::new(
            josekit::jws::RS384
                .verifier_from_jwk(&jwk)
                .map_err(unusable)?,
        ),
        "RS512" => Box::new(
            josekit::jws::RS512
                .verifier_from_jwk(&jwk)
                .map_err(unusable)?,
        ),
        "PS256" => Box::new(
            josekit::jws::PS256
                .verifier_from_jwk(&jwk)
                .map_err(unusable)?,
        ),
        "PS384" => Box::new(
            josekit::jws::PS384
                .verifier_from_jwk(&jwk)
                .map_err(unusable)?,
        ),
        "PS512" => Box::new(
            josekit::jws::PS512
                .verifier_from_jwk(&jwk)
                .map_err(unusable)?,
        ),
        other => return Err(JwsError::UnsupportedAlgorithm(other.to_owned())),
    };
    verifier
        .verify(jws.signing_input.as_bytes(), &jws.signature)
        .map_err(|_| JwsError::BadSignature)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{KeyAlgorithm, ParticipantKey};
    use serde_json::json;

    #[test]
    fn sign_decode_verify_for_both_algorithms() {
        for alg in [KeyAlgorithm::Es256, KeyAlgorithm::EdDsa] {
            let key = ParticipantKey::generate_with(alg, "did:web:a#key-1").unwrap();
            let token = sign_compact(&key, Some("vc+jwt"), &json!({"a": 1})).unwrap();
            let decoded = decode_compact(&token).unwrap();
            assert_eq!(decoded.alg(), Some(alg.jws_name()));
            assert_eq!(decoded.kid(), Some("did:web:a#key-1"));
            assert_eq!(decoded.typ(), Some("vc+jwt"));
            assert_eq!(decoded.payload, json!({"a": 1}));
            verify_with_jwk(&decoded, &key.public_jwk().unwrap()).unwrap();
            let other = ParticipantKey::generate_with(alg, "x").unwrap();
            assert_eq!(
                verify_with_jwk(&decoded, &other.public_jwk().unwrap()),
                Err(JwsError::BadSignature)
            );
        }
    }

    #[test]
    fn tampering_none_and_private_keys_are_refused() {
        let key = ParticipantKey::generate("k").unwrap();
        let token = sign_compact(&key, None, &json!({"a": 1})).unwrap();
        let mut parts: Vec<&str> = token.split('.').collect();
        let forged = URL_SAFE_NO_PAD.encode(br#"{"a":2}"#);
        parts[1] = &forged;
        let decoded = decode_compact(&parts.join(".")).unwrap();
        assert_eq!(
            verify_with_jwk(&decoded, &key.public_jwk().unwrap()),
            Err(JwsError::BadSignature)
        );
        let none = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#),
            URL_SAFE_NO_PAD.encode(b"{}")
        );
        let decoded = decode_compact(&none).unwrap();
        assert!(matches!(
            verify_with_jwk(&decoded, &key.public_jwk().unwrap()),
            Err(JwsError::UnsupportedAlgorithm(_))
        ));
        let private: Value = serde_json::from_str(&key.to_private_jwk_json()).unwrap();
        let decoded = decode_compact(&token).unwrap();
        assert!(matches!(
            verify_with_jwk(&decoded, &private),
            Err(JwsError::UnusableKey(_))
        ));
        assert!(decode_compact("a.b").is_err());
        assert!(decode_compact("!!.e30.").is_err());
    }
}
