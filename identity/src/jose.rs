//! Compact JWS: signing with a [`SigningKey`], decoding without trust, and verifying with a public
//! JWK (josekit does the cryptography). Payloads are arbitrary JSON, so the same code secures JWT
//! claim sets, VC 2.0 credentials (`vc+jwt`) and presentations.

use std::sync::{Arc, Mutex};

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

/// A JWT NumericDate (RFC 7519 §2): seconds since the epoch, an integer or a number with a fraction
/// (`1796586981.0`, as some VC libraries issue them). `None` for anything else (a string, an infinite
/// or out-of-range number). Every place caap reads `exp`, `nbf` or `iat` goes through this.
pub fn numeric_date(value: &Value) -> Option<chrono::DateTime<chrono::Utc>> {
    let Value::Number(n) = value else { return None };
    if let Some(secs) = n.as_i64() {
        return chrono::DateTime::from_timestamp(secs, 0);
    }
    let f = n.as_f64().filter(|f| f.is_finite())?;
    let secs = f.floor();
    if secs < i64::MIN as f64 || secs > i64::MAX as f64 {
        return None;
    }
    let nanos = ((f - secs) * 1e9).round().clamp(0.0, 999_999_999.0) as u32;
    chrono::DateTime::from_timestamp(secs as i64, nanos)
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
        signing_input: token[..h.len() + 1 + p.len()].to_owned(),
        signature,
    })
}

/// Signs `payload` as a compact JWS with `alg` and `kid` from `key` and the given `typ`.
pub fn sign_compact(
    key: &dyn SigningKey,
    typ: Option<&str>,
    payload: &Value,
) -> Result<String, KeyError> {
    let payload = serde_json::to_vec(payload).map_err(|e| KeyError::Crypto(e.to_string()))?;
    sign_bytes_compact(key, typ, &payload)
}

/// Signs exactly `payload` (e.g. a canonical JSON text, so that the signature covers those bytes) as a
/// compact JWS with `alg` and `kid` from `key` and the given `typ`.
pub fn sign_bytes_compact(
    key: &dyn SigningKey,
    typ: Option<&str>,
    payload: &[u8],
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
///
/// The JWK is converted into a key on every call; to verify repeatedly with one key, use a
/// [`VerifierCache`] (DID documents keep one per verification method).
pub fn verify_with_jwk(jws: &DecodedJws, jwk: &Value) -> Result<(), JwsError> {
    let alg = jws.alg().unwrap_or_default();
    check_signature(build_verifier(alg, jwk)?.as_ref(), jws)
}

/// The algorithms caap verifies, by their JWS names (`Ed25519` is an alias of `EdDSA`).
const ALGORITHMS: [&str; 12] = [
    "ES256", "ES384", "ES512", "ES256K", "EdDSA", "Ed25519", "RS256", "RS384", "RS512", "PS256",
    "PS384", "PS512",
];

/// `alg` with a `'static` name, if caap verifies it.
fn supported(alg: &str) -> Option<&'static str> {
    ALGORITHMS.iter().find(|a| **a == alg).copied()
}

fn check_signature(verifier: &dyn JwsVerifier, jws: &DecodedJws) -> Result<(), JwsError> {
    verifier
        .verify(jws.signing_input.as_bytes(), &jws.signature)
        .map_err(|_| JwsError::BadSignature)
}

/// Checks the public JWK `jwk` against `alg` and turns it into a verifier: the costly step
/// (openssl parses and checks the key).
fn build_verifier(alg: &str, jwk: &Value) -> Result<Box<dyn JwsVerifier>, JwsError> {
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
    Ok(match alg {
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
    })
}

/// A verifier built from `jwk` for `alg`, or why none could be.
#[derive(Debug)]
struct Prepared {
    alg: &'static str,
    jwk: Value,
    verifier: Result<Arc<dyn JwsVerifier>, JwsError>,
}

/// At most this many (algorithm, JWK) pairs are kept per cache: a verification method has one
/// key, used with one algorithm (RSA keys possibly with a few); more is never legitimate.
const MAX_PREPARED: usize = 4;

/// Verifiers built from public JWKs, kept so that each (algorithm, JWK) pair is converted into a
/// key once: [`verify_with_jwk`] with memory. A DID document keeps one per verification method,
/// so verifications against a cached document reuse the parsed key.
///
/// An entry is reused only for a JWK equal to the one it was built from, so a cache can never
/// verify with a key other than the one asked for. Clones share the cache. Equality ignores it
/// (two caches are always equal): it is a memo, not data.
#[derive(Clone, Default)]
pub struct VerifierCache {
    entries: Arc<Mutex<Vec<Arc<Prepared>>>>,
    /// How many verifiers were built (tests count key conversions).
    #[cfg(test)]
    builds: Arc<std::sync::atomic::AtomicUsize>,
}

impl VerifierCache {
    /// A new, empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// Verifies `jws` with the public JWK `jwk`, exactly as [`verify_with_jwk`] does, converting
    /// the JWK only the first time it is used with the JWS's algorithm.
    pub fn verify(&self, jws: &DecodedJws, jwk: &Value) -> Result<(), JwsError> {
        // Unsupported algorithms are refused as verify_with_jwk refuses them, and never kept.
        let Some(alg) = supported(jws.alg().unwrap_or_default()) else {
            return verify_with_jwk(jws, jwk);
        };
        match &self.prepared(alg, jwk).verifier {
            Ok(verifier) => check_signature(verifier.as_ref(), jws),
            Err(e) => Err(e.clone()),
        }
    }

    fn prepared(&self, alg: &'static str, jwk: &Value) -> Arc<Prepared> {
        if let Some(hit) = self.lock().iter().find(|p| p.alg == alg && p.jwk == *jwk) {
            return hit.clone();
        }
        #[cfg(test)]
        self.builds
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        // Built outside the lock: a concurrent first use may build twice; the first stored wins.
        let prepared = Arc::new(Prepared {
            alg,
            jwk: jwk.clone(),
            verifier: build_verifier(alg, jwk).map(Arc::from),
        });
        let mut entries = self.lock();
        if let Some(hit) = entries.iter().find(|p| p.alg == alg && p.jwk == *jwk) {
            return hit.clone();
        }
        if entries.len() < MAX_PREPARED {
            entries.push(prepared.clone());
        }
        prepared
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Arc<Prepared>>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The verifier kept for (`alg`, `jwk`), if one was built (tests compare pointers).
    #[cfg(test)]
    pub(crate) fn cached(&self, alg: &str, jwk: &Value) -> Option<Arc<dyn JwsVerifier>> {
        self.lock()
            .iter()
            .find(|p| p.alg == alg && p.jwk == *jwk)
            .and_then(|p| p.verifier.as_ref().ok().cloned())
    }

    /// How many (algorithm, JWK) pairs are kept.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }

    /// How many times a JWK was turned into a verifier.
    #[cfg(test)]
    pub(crate) fn builds(&self) -> usize {
        self.builds.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl std::fmt::Debug for VerifierCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifierCache")
            .field("entries", &self.lock().len())
            .finish()
    }
}

impl PartialEq for VerifierCache {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{KeyAlgorithm, ParticipantKey};
    use serde_json::json;

    #[test]
    fn numeric_dates_may_have_fractions() {
        let at = |v: Value| numeric_date(&v).map(|t| t.timestamp_millis());
        assert_eq!(at(serde_json::json!(1796586981)), Some(1_796_586_981_000));
        assert_eq!(
            at(serde_json::from_str("1796586981.0").unwrap()),
            Some(1_796_586_981_000)
        );
        assert_eq!(
            at(serde_json::json!(1796586981.25)),
            Some(1_796_586_981_250)
        );
        assert_eq!(at(serde_json::json!(-1.5)), Some(-1_500));
        assert_eq!(at(serde_json::json!("1796586981")), None);
        assert_eq!(at(serde_json::json!(1e300)), None);
        assert_eq!(at(Value::Null), None);
    }

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

    #[test]
    fn a_verifier_cache_converts_each_key_once_and_only_for_that_key() {
        let key = ParticipantKey::generate("k").unwrap();
        let jwk = key.public_jwk().unwrap();
        let cache = VerifierCache::new();
        for n in 0..3 {
            let token = sign_compact(&key, None, &json!({"n": n})).unwrap();
            cache
                .verify(&decode_compact(&token).unwrap(), &jwk)
                .unwrap();
        }
        assert_eq!((cache.builds(), cache.len()), (1, 1));
        let first = cache.cached("ES256", &jwk).unwrap();
        let token = sign_compact(&key, None, &json!({"n": 4})).unwrap();
        cache
            .verify(&decode_compact(&token).unwrap(), &jwk)
            .unwrap();
        assert!(Arc::ptr_eq(&first, &cache.cached("ES256", &jwk).unwrap()));
        // Clones share the cache; equality and Debug ignore what it holds.
        let clone = cache.clone();
        clone
            .verify(&decode_compact(&token).unwrap(), &jwk)
            .unwrap();
        assert_eq!(cache.builds(), 1);
        assert_eq!(VerifierCache::new(), cache);
        // Another key is never answered from the cache: it is converted and refuses the JWS.
        let other = ParticipantKey::generate("x").unwrap().public_jwk().unwrap();
        assert_eq!(
            cache.verify(&decode_compact(&token).unwrap(), &other),
            Err(JwsError::BadSignature)
        );
        assert_eq!((cache.builds(), cache.len()), (2, 2));
    }

    #[test]
    fn a_verifier_cache_refuses_what_verify_with_jwk_refuses() {
        let key = ParticipantKey::generate("k").unwrap();
        let public = key.public_jwk().unwrap();
        let private: Value = serde_json::from_str(&key.to_private_jwk_json()).unwrap();
        let token = sign_compact(&key, None, &json!({"a": 1})).unwrap();
        let mut parts: Vec<&str> = token.split('.').collect();
        let forged = URL_SAFE_NO_PAD.encode(br#"{"a":2}"#);
        parts[1] = &forged;
        let none = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#),
            URL_SAFE_NO_PAD.encode(b"{}")
        );
        let hs256 = format!(
            "{}.{}.{}",
            URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256"}"#),
            URL_SAFE_NO_PAD.encode(b"{}"),
            URL_SAFE_NO_PAD.encode(b"sig")
        );
        let cache = VerifierCache::new();
        for (jws, jwk) in [
            (token.clone(), &public),
            (parts.join("."), &public),
            (none.clone(), &public),
            (none, &private),
            (token, &private),
            (hs256, &public),
        ] {
            let decoded = decode_compact(&jws).unwrap();
            // Twice: the second answer comes from the cache where one is kept.
            for _ in 0..2 {
                assert_eq!(cache.verify(&decoded, jwk), verify_with_jwk(&decoded, jwk));
            }
        }
        // Unsupported algorithms are never kept.
        assert_eq!(cache.len(), 2, "{cache:?}");
    }
}
