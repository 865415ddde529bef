//! Provider-signed contract agreements: a compact JWS (ES256 with a P-256 participant key, EdDSA with an
//! Ed25519 one) whose payload is the [canonical JSON](crate::canonical::canonical_json) of the agreement.
//!
//! The agreement itself travels and is stored as plain JSON (in the `ContractAgreementMessage` and the
//! ledger); the JWS is carried beside it. [`verify_agreement`] therefore checks two things: that the JWS
//! verifies with the signer's public key, and that what was signed is exactly the agreement at hand, so an
//! agreement changed after signing fails even though its JWS is still valid.
//!
//! Header: `{"alg":"ES256"|"EdDSA","kid":<key id>,"typ":"caap-agreement+jws"}`. The `typ` keeps a signature made for
//! something else (a token, a credential) from passing as an agreement signature.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use caap_identity::ParticipantKey;
use caap_identity::keys::KeyAlgorithm;
use josekit::JoseError;
use josekit::jwk::Jwk;
use josekit::jws::{ES256, EdDSA, JwsHeader, JwsSigner, JwsVerifier};
use serde_json::Value;

use crate::canonical::canonical_json;

/// The JWS `typ` of an agreement signature.
pub const AGREEMENT_JWS_TYPE: &str = "caap-agreement+jws";

/// The JWS algorithms caap signs and accepts agreements with (the participant key's: P-256 or Ed25519).
pub const AGREEMENT_JWS_ALGS: [&str; 2] = ["ES256", "EdDSA"];

/// Why an agreement could not be signed or its signature does not hold.
///
/// For a DSP peer every variant but [`Signing`](Self::Signing) is the peer's fault (a bad request: the
/// agreement is refused); `Signing` is this connector's own failure (internal).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AgreementSignatureError {
    /// The signature is not a compact JWS of the expected form (three base64url parts, a JSON header with
    /// `alg` ES256 and `typ` caap-agreement+jws).
    #[error("the agreement signature is not a well-formed caap agreement JWS: {0}")]
    Malformed(String),
    /// The JWS does not verify with the signer's key (another key signed it, or it was altered).
    #[error("the agreement signature does not verify with the signer's key: {0}")]
    BadSignature(String),
    /// The JWS is valid but was made over another agreement: the agreement was changed after signing.
    #[error(
        "the agreement signature is valid but covers a different agreement: the agreement was changed after it was signed"
    )]
    PayloadMismatch,
    /// The signer's key does not fit the algorithm (an EC P-256 JWK for ES256, an OKP Ed25519 JWK for EdDSA).
    #[error(
        "unsupported agreement signing key (expected an EC P-256 JWK for ES256 or an OKP Ed25519 JWK for EdDSA): {0}"
    )]
    UnsupportedKey(String),
    /// Signing failed in the crypto library.
    #[error("signing the agreement failed: {0}")]
    Signing(String),
}

/// Signs `agreement` with the participant's key: a compact JWS (ES256) over `canonical_json(agreement)`,
/// with `kid` the key's id and `typ` [`AGREEMENT_JWS_TYPE`].
pub fn sign_agreement(
    agreement: &Value,
    key: &ParticipantKey,
) -> Result<String, AgreementSignatureError> {
    let unsupported = |e: JoseError| AgreementSignatureError::UnsupportedKey(e.to_string());
    let signer: Box<dyn JwsSigner> = match key.algorithm() {
        KeyAlgorithm::Es256 => Box::new(ES256.signer_from_jwk(key.jwk()).map_err(unsupported)?),
        KeyAlgorithm::EdDsa => Box::new(EdDSA.signer_from_jwk(key.jwk()).map_err(unsupported)?),
    };
    let mut header = JwsHeader::new();
    header.set_token_type(AGREEMENT_JWS_TYPE);
    if let Some(kid) = key.key_id() {
        header.set_key_id(kid);
    }
    let payload = canonical_json(agreement);
    josekit::jws::serialize_compact(payload.as_bytes(), &header, signer.as_ref())
        .map_err(|e| AgreementSignatureError::Signing(e.to_string()))
}

/// The signer's public JWK as it travels beside an agreement signature (the `signerJwk` of an
/// `AgreementSignature` or an [`AgreementRecord`](crate::ledger::AgreementRecord)): the public part of `key`
/// with its `kid` (the signer's DID verification method) and `alg` (ES256 or EdDSA).
pub fn signer_public_jwk(key: &ParticipantKey) -> Result<Value, AgreementSignatureError> {
    let mut jwk = key
        .public_jwk()
        .map_err(|e| AgreementSignatureError::Signing(e.to_string()))?;
    if let Value::Object(members) = &mut jwk {
        if let Some(kid) = key.key_id() {
            members.insert("kid".into(), Value::String(kid.to_owned()));
        }
        members.insert(
            "alg".into(),
            Value::String(key.algorithm().jws_name().into()),
        );
    }
    Ok(jwk)
}

/// Checks that `jws` is a valid caap agreement signature by the holder of `signer_public_jwk` over exactly
/// `agreement` (compared in canonical form, so member order and whitespace do not matter).
pub fn verify_agreement(
    jws: &str,
    agreement: &Value,
    signer_public_jwk: &Value,
) -> Result<(), AgreementSignatureError> {
    let header = read_header(jws)?;

    let Value::Object(jwk) = signer_public_jwk else {
        return Err(AgreementSignatureError::UnsupportedKey(
            "the key is not a JSON object".into(),
        ));
    };
    if let (Some(signed_with), Some(given)) = (
        header.kid.as_deref(),
        jwk.get("kid").and_then(Value::as_str),
    ) && signed_with != given
    {
        return Err(AgreementSignatureError::BadSignature(format!(
            "it was made with key `{signed_with}`, the signer's key is `{given}`"
        )));
    }
    if let Some(alg) = jwk.get("alg").and_then(Value::as_str)
        && alg != header.alg
    {
        return Err(AgreementSignatureError::UnsupportedKey(format!(
            "the signature uses {}, the signer's key is for {alg}",
            header.alg
        )));
    }
    // The key ids were compared above; without `kid` josekit does not insist on one in the header.
    let mut material = jwk.clone();
    material.remove("kid");
    let jwk = Jwk::from_map(material)
        .map_err(|e| AgreementSignatureError::UnsupportedKey(e.to_string()))?;
    let unsupported = |e: JoseError| AgreementSignatureError::UnsupportedKey(e.to_string());
    let verifier: Box<dyn JwsVerifier> = if header.alg == "EdDSA" {
        Box::new(EdDSA.verifier_from_jwk(&jwk).map_err(unsupported)?)
    } else {
        Box::new(ES256.verifier_from_jwk(&jwk).map_err(unsupported)?)
    };

    let (payload, _) =
        josekit::jws::deserialize_compact(jws, verifier.as_ref()).map_err(|error| match error {
            JoseError::InvalidSignature(e) => AgreementSignatureError::BadSignature(e.to_string()),
            other => AgreementSignatureError::Malformed(other.to_string()),
        })?;
    if payload == canonical_json(agreement).as_bytes() {
        Ok(())
    } else {
        Err(AgreementSignatureError::PayloadMismatch)
    }
}

/// What the protected header of an agreement JWS says, after the form checks.
struct Header {
    alg: String,
    kid: Option<String>,
}

/// Checks the form of a compact JWS and its header (`alg`, `typ`, no `crit`), without the key.
fn read_header(jws: &str) -> Result<Header, AgreementSignatureError> {
    let malformed = |reason: &str| AgreementSignatureError::Malformed(reason.to_owned());
    let parts: Vec<&str> = jws.split('.').collect();
    let [header, payload, signature] = parts.as_slice() else {
        return Err(malformed("expected three dot-separated parts"));
    };
    if header.is_empty() || payload.is_empty() || signature.is_empty() {
        return Err(malformed("a part is empty"));
    }
    for part in [payload, signature] {
        URL_SAFE_NO_PAD
            .decode(part)
            .map_err(|_| malformed("a part is not base64url"))?;
    }
    let header = URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|_| malformed("the header is not base64url"))?;
    let Ok(Value::Object(header)) = serde_json::from_slice::<Value>(&header) else {
        return Err(malformed("the header is not a JSON object"));
    };
    let alg = match header.get("alg").and_then(Value::as_str) {
        Some(alg) if AGREEMENT_JWS_ALGS.contains(&alg) => alg.to_owned(),
        Some(other) => {
            return Err(AgreementSignatureError::Malformed(format!(
                "alg is `{other}`, expected one of {AGREEMENT_JWS_ALGS:?}"
            )));
        }
        None => return Err(malformed("the header has no alg")),
    };
    match header.get("typ").and_then(Value::as_str) {
        Some(AGREEMENT_JWS_TYPE) => {}
        other => {
            return Err(AgreementSignatureError::Malformed(format!(
                "typ is {}, expected `{AGREEMENT_JWS_TYPE}`",
                other.map_or_else(|| "missing".to_owned(), |t| format!("`{t}`"))
            )));
        }
    }
    if header.contains_key("crit") {
        return Err(malformed("critical header parameters are not supported"));
    }
    Ok(Header {
        alg,
        kid: header.get("kid").and_then(Value::as_str).map(str::to_owned),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn agreement() -> Value {
        json!({
            "@id": "urn:uuid:agreement-1",
            "@type": "Agreement",
            "target": "urn:uuid:dataset-1",
            "assigner": "did:web:provider.example",
            "assignee": "did:web:consumer.example",
            "timestamp": "2025-06-01T12:00:00Z",
            "permission": [{"action": "use", "constraint": [
                {"leftOperand": "purpose", "operator": "eq", "rightOperand": "mobility-planning"}
            ]}]
        })
    }

    fn key(kid: &str) -> ParticipantKey {
        ParticipantKey::generate(kid).unwrap()
    }

    fn header_of(jws: &str) -> Value {
        let header = jws.split('.').next().unwrap();
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap()
    }

    #[test]
    fn a_signature_round_trips() {
        let key = key("did:web:provider.example#key-1");
        let jws = sign_agreement(&agreement(), &key).unwrap();
        assert_eq!(
            header_of(&jws),
            json!({"alg": "ES256", "kid": "did:web:provider.example#key-1", "typ": "caap-agreement+jws"})
        );
        let public = signer_public_jwk(&key).unwrap();
        verify_agreement(&jws, &agreement(), &public).unwrap();

        // The payload is the canonical JSON of the agreement.
        let payload = URL_SAFE_NO_PAD
            .decode(jws.split('.').nth(1).unwrap())
            .unwrap();
        assert_eq!(payload, canonical_json(&agreement()).into_bytes());
    }

    #[test]
    fn an_ed25519_participant_signs_with_eddsa() {
        let ed =
            ParticipantKey::generate_with(KeyAlgorithm::EdDsa, "did:web:p.example#key-1").unwrap();
        let jws = sign_agreement(&agreement(), &ed).unwrap();
        assert_eq!(header_of(&jws)["alg"], "EdDSA");
        let public = signer_public_jwk(&ed).unwrap();
        assert_eq!(public["alg"], "EdDSA");
        verify_agreement(&jws, &agreement(), &public).unwrap();
        // Neither algorithm passes for the other's key.
        let p256 = key("did:web:p.example#key-1");
        let es = sign_agreement(&agreement(), &p256).unwrap();
        assert!(verify_agreement(&es, &agreement(), &public).is_err());
        assert!(verify_agreement(&jws, &agreement(), &signer_public_jwk(&p256).unwrap()).is_err());
        let mut unlabelled = public.clone();
        unlabelled.as_object_mut().unwrap().remove("alg");
        verify_agreement(&jws, &agreement(), &unlabelled).unwrap();
    }

    #[test]
    fn member_order_and_whitespace_do_not_matter() {
        let key = key("k");
        let jws = sign_agreement(&agreement(), &key).unwrap();
        let reordered: Value =
            serde_json::from_str(&serde_json::to_string_pretty(&agreement()).unwrap()).unwrap();
        verify_agreement(&jws, &reordered, &signer_public_jwk(&key).unwrap()).unwrap();
    }

    #[test]
    fn a_changed_agreement_fails_even_with_a_valid_signature() {
        let key = key("k");
        let jws = sign_agreement(&agreement(), &key).unwrap();
        let mut changed = agreement();
        changed["permission"][0]["constraint"][0]["rightOperand"] = json!("advertising");
        assert_eq!(
            verify_agreement(&jws, &changed, &signer_public_jwk(&key).unwrap()),
            Err(AgreementSignatureError::PayloadMismatch)
        );
        let mut extra = agreement();
        extra["note"] = json!("added later");
        assert_eq!(
            verify_agreement(&jws, &extra, &signer_public_jwk(&key).unwrap()),
            Err(AgreementSignatureError::PayloadMismatch)
        );
    }

    #[test]
    fn another_key_does_not_verify() {
        let signer = key("did:web:a#key-1");
        let jws = sign_agreement(&agreement(), &signer).unwrap();
        // Same kid, other key material.
        let impostor = key("did:web:a#key-1");
        assert!(matches!(
            verify_agreement(&jws, &agreement(), &signer_public_jwk(&impostor).unwrap()),
            Err(AgreementSignatureError::BadSignature(_))
        ));
        // Other kid.
        let other = key("did:web:b#key-1");
        let error =
            verify_agreement(&jws, &agreement(), &signer_public_jwk(&other).unwrap()).unwrap_err();
        assert!(
            matches!(error, AgreementSignatureError::BadSignature(_)),
            "{error}"
        );
        assert!(error.to_string().contains("did:web:a#key-1"), "{error}");
        // No kid on the given key: the signature decides.
        let mut anonymous = signer_public_jwk(&impostor).unwrap();
        anonymous.as_object_mut().unwrap().remove("kid");
        assert!(matches!(
            verify_agreement(&jws, &agreement(), &anonymous),
            Err(AgreementSignatureError::BadSignature(_))
        ));
        let mut signer_anonymous = signer.public_jwk().unwrap();
        assert!(
            signer_anonymous.get("kid").is_none(),
            "josekit drops the kid"
        );
        signer_anonymous.as_object_mut().unwrap().remove("kid");
        verify_agreement(&jws, &agreement(), &signer_anonymous).unwrap();
    }

    #[test]
    fn a_tampered_signature_or_payload_does_not_verify() {
        let key = key("k");
        let public = signer_public_jwk(&key).unwrap();
        let jws = sign_agreement(&agreement(), &key).unwrap();
        let parts: Vec<&str> = jws.split('.').collect();

        // Another agreement's payload under this signature.
        let mut other = agreement();
        other["target"] = json!("urn:uuid:dataset-2");
        let other_payload = URL_SAFE_NO_PAD.encode(canonical_json(&other));
        let swapped = format!("{}.{}.{}", parts[0], other_payload, parts[2]);
        assert!(matches!(
            verify_agreement(&swapped, &other, &public),
            Err(AgreementSignatureError::BadSignature(_))
        ));

        // A flipped signature byte.
        let mut signature = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
        signature[5] ^= 0x01;
        let flipped = format!(
            "{}.{}.{}",
            parts[0],
            parts[1],
            URL_SAFE_NO_PAD.encode(signature)
        );
        assert!(matches!(
            verify_agreement(&flipped, &agreement(), &public),
            Err(AgreementSignatureError::BadSignature(_))
        ));
    }

    #[test]
    fn garbage_is_malformed() {
        let key = key("k");
        let public = signer_public_jwk(&key).unwrap();
        let jws = sign_agreement(&agreement(), &key).unwrap();
        let parts: Vec<&str> = jws.split('.').collect();
        let encode = |header: Value| URL_SAFE_NO_PAD.encode(header.to_string());
        for garbage in [
            String::new(),
            "garbage".into(),
            "a.b".into(),
            "a.b.c.d".into(),
            format!("{}..{}", parts[0], parts[2]),
            format!("!!.{}.{}", parts[1], parts[2]),
            format!("{}.{}.%%%", parts[0], parts[1]),
            format!(
                "{}.{}.{}",
                URL_SAFE_NO_PAD.encode("[1]"),
                parts[1],
                parts[2]
            ),
            format!(
                "{}.{}.{}",
                encode(json!({"alg": "none", "typ": AGREEMENT_JWS_TYPE})),
                parts[1],
                parts[2]
            ),
            format!(
                "{}.{}.{}",
                encode(json!({"alg": "HS256", "typ": AGREEMENT_JWS_TYPE})),
                parts[1],
                parts[2]
            ),
            format!(
                "{}.{}.{}",
                encode(json!({"alg": "ES256"})),
                parts[1],
                parts[2]
            ),
            format!(
                "{}.{}.{}",
                encode(json!({"alg": "ES256", "typ": "JWT"})),
                parts[1],
                parts[2]
            ),
            format!(
                "{}.{}.{}",
                encode(
                    json!({"alg": "ES256", "typ": AGREEMENT_JWS_TYPE, "crit": ["b64"], "b64": false})
                ),
                parts[1],
                parts[2]
            ),
        ] {
            let result = verify_agreement(&garbage, &agreement(), &public);
            assert!(
                matches!(result, Err(AgreementSignatureError::Malformed(_))),
                "{garbage}: {result:?}"
            );
        }
        // A well-formed header over a signature of the wrong length.
        let short = format!(
            "{}.{}.{}",
            parts[0],
            parts[1],
            URL_SAFE_NO_PAD.encode([1u8; 10])
        );
        assert!(verify_agreement(&short, &agreement(), &public).is_err());
    }

    #[test]
    fn unsupported_keys_are_named() {
        let key = key("k");
        let jws = sign_agreement(&agreement(), &key).unwrap();
        let mut p384 = signer_public_jwk(&key).unwrap();
        p384["crv"] = json!("P-384");
        let mut rsa = signer_public_jwk(&key).unwrap();
        rsa["kty"] = json!("RSA");
        let mut no_x = signer_public_jwk(&key).unwrap();
        no_x.as_object_mut().unwrap().remove("x");
        let mut wrong_alg = signer_public_jwk(&key).unwrap();
        wrong_alg["alg"] = json!("ES384");
        for jwk in [json!("a key"), json!({}), p384, rsa, no_x, wrong_alg] {
            let result = verify_agreement(&jws, &agreement(), &jwk);
            assert!(
                matches!(result, Err(AgreementSignatureError::UnsupportedKey(_))),
                "{jwk}: {result:?}"
            );
        }
    }
}
