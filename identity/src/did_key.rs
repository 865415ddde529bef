//! `did:key` (W3C CCG did-key spec): `did:key:z` + base58btc(varint multicodec ‖ raw public key),
//! to and from JWKs, and the DID document a did:key resolves to (one method, listed under every
//! relationship; Ed25519 keys also get the derived X25519 `keyAgreement` key).

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use openssl::bn::{BigNum, BigNumContext};
use openssl::ec::{EcGroup, EcPoint};
use openssl::nid::Nid;
use serde_json::{Value, json};

use crate::did_doc::{
    DID_CONTEXT_V1, DidDocument, JWS_2020_CONTEXT, MethodRef, VerificationMethod,
};
use crate::multibase::{base58_decode, base58_encode, varint_decode, varint_encode};

/// Why a did:key (or multikey) is refused; the names follow the did:key spec's errors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DidKeyError {
    /// `invalidDid`: not `did:key:z…` with base58btc.
    #[error("invalid did:key: {0}")]
    InvalidDid(String),
    /// `invalidPublicKeyLength`.
    #[error("invalid public key length {found} for {codec:?} (expected {expected})")]
    InvalidPublicKeyLength {
        /// The key type.
        codec: Codec,
        /// Expected bytes.
        expected: usize,
        /// Bytes found.
        found: usize,
    },
    /// `invalidPublicKey`: not a point on the curve, or a bad JWK.
    #[error("invalid public key: {0}")]
    InvalidPublicKey(String),
    /// `unsupportedPublicKeyType`.
    #[error("unsupported public key type: {0}")]
    UnsupportedPublicKeyType(String),
}

/// The multicodec key types caap reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    /// ed25519-pub (0xed): 32 bytes.
    Ed25519,
    /// x25519-pub (0xec): 32 bytes (key agreement only).
    X25519,
    /// p256-pub (0x1200): 33-byte compressed point.
    P256,
    /// p384-pub (0x1201): 49-byte compressed point.
    P384,
    /// p521-pub (0x1202): 67-byte compressed point.
    P521,
    /// secp256k1-pub (0xe7): 33-byte compressed point.
    Secp256k1,
}

impl Codec {
    const ALL: [Codec; 6] = [
        Codec::Ed25519,
        Codec::X25519,
        Codec::P256,
        Codec::P384,
        Codec::P521,
        Codec::Secp256k1,
    ];

    /// The multicodec code.
    pub fn code(self) -> u64 {
        match self {
            Codec::Ed25519 => 0xed,
            Codec::X25519 => 0xec,
            Codec::P256 => 0x1200,
            Codec::P384 => 0x1201,
            Codec::P521 => 0x1202,
            Codec::Secp256k1 => 0xe7,
        }
    }

    fn key_len(self) -> usize {
        match self {
            Codec::Ed25519 | Codec::X25519 => 32,
            Codec::P256 | Codec::Secp256k1 => 33,
            Codec::P384 => 49,
            Codec::P521 => 67,
        }
    }

    fn ec(self) -> Option<(Nid, &'static str, usize)> {
        match self {
            Codec::P256 => Some((Nid::X9_62_PRIME256V1, "P-256", 32)),
            Codec::P384 => Some((Nid::SECP384R1, "P-384", 48)),
            Codec::P521 => Some((Nid::SECP521R1, "P-521", 66)),
            Codec::Secp256k1 => Some((Nid::SECP256K1, "secp256k1", 32)),
            Codec::Ed25519 | Codec::X25519 => None,
        }
    }

    fn okp_curve(self) -> Option<&'static str> {
        match self {
            Codec::Ed25519 => Some("Ed25519"),
            Codec::X25519 => Some("X25519"),
            _ => None,
        }
    }
}

/// A public key read from a did:key or a multikey.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodedKey {
    /// Its type.
    pub codec: Codec,
    /// The raw key bytes as multicodec carries them (compressed points for EC).
    pub raw: Vec<u8>,
    /// The same key as a public JWK.
    pub jwk: Value,
}

/// Reads a multibase multikey (`z…`) into its codec, raw bytes and JWK.
pub fn decode_multikey(multibase: &str) -> Result<DecodedKey, DidKeyError> {
    let b58 = multibase
        .strip_prefix('z')
        .ok_or_else(|| DidKeyError::InvalidDid("expected multibase base58btc (`z…`)".into()))?;
    let bytes =
        base58_decode(b58).ok_or_else(|| DidKeyError::InvalidDid("not base58btc".into()))?;
    let (code, raw) = varint_decode(&bytes)
        .ok_or_else(|| DidKeyError::InvalidDid("no multicodec prefix".into()))?;
    let codec = Codec::ALL
        .into_iter()
        .find(|c| c.code() == code)
        .ok_or_else(|| DidKeyError::UnsupportedPublicKeyType(format!("multicodec 0x{code:x}")))?;
    let jwk = raw_key_to_jwk(codec, raw)?;
    Ok(DecodedKey {
        codec,
        raw: raw.to_vec(),
        jwk,
    })
}

/// A multibase multikey to a public JWK.
pub fn multikey_to_jwk(multibase: &str) -> Result<Value, DidKeyError> {
    decode_multikey(multibase).map(|k| k.jwk)
}

/// Raw multicodec key bytes (compressed point for EC curves) to a public JWK.
pub fn raw_key_to_jwk(codec: Codec, raw: &[u8]) -> Result<Value, DidKeyError> {
    if raw.len() != codec.key_len() {
        return Err(DidKeyError::InvalidPublicKeyLength {
            codec,
            expected: codec.key_len(),
            found: raw.len(),
        });
    }
    if let Some(crv) = codec.okp_curve() {
        return Ok(json!({"kty": "OKP", "crv": crv, "x": URL_SAFE_NO_PAD.encode(raw)}));
    }
    let Some((nid, crv, size)) = codec.ec() else {
        return Err(DidKeyError::UnsupportedPublicKeyType(format!("{codec:?}")));
    };
    let bad = |e: openssl::error::ErrorStack| DidKeyError::InvalidPublicKey(e.to_string());
    let group = EcGroup::from_curve_name(nid).map_err(bad)?;
    let mut ctx = BigNumContext::new().map_err(bad)?;
    let point = EcPoint::from_bytes(&group, raw, &mut ctx).map_err(bad)?;
    let (mut x, mut y) = (BigNum::new().map_err(bad)?, BigNum::new().map_err(bad)?);
    point
        .affine_coordinates(&group, &mut x, &mut y, &mut ctx)
        .map_err(bad)?;
    let size = i32::try_from(size).map_err(|_| DidKeyError::InvalidPublicKey("size".into()))?;
    Ok(json!({
        "kty": "EC",
        "crv": crv,
        "x": URL_SAFE_NO_PAD.encode(x.to_vec_padded(size).map_err(bad)?),
        "y": URL_SAFE_NO_PAD.encode(y.to_vec_padded(size).map_err(bad)?),
    }))
}

/// A public JWK (EC P-256/P-384/P-521/secp256k1, OKP Ed25519/X25519) to its codec and raw bytes.
pub fn jwk_to_raw_key(jwk: &Value) -> Result<(Codec, Vec<u8>), DidKeyError> {
    let field = |name: &str| -> Result<Vec<u8>, DidKeyError> {
        let s = jwk
            .get(name)
            .and_then(Value::as_str)
            .ok_or_else(|| DidKeyError::InvalidPublicKey(format!("the JWK has no `{name}`")))?;
        URL_SAFE_NO_PAD
            .decode(s)
            .map_err(|_| DidKeyError::InvalidPublicKey(format!("`{name}` is not base64url")))
    };
    let kty = jwk.get("kty").and_then(Value::as_str).unwrap_or_default();
    let crv = jwk.get("crv").and_then(Value::as_str).unwrap_or_default();
    let codec = Codec::ALL
        .into_iter()
        .find(|c| c.okp_curve() == Some(crv) || c.ec().is_some_and(|(_, n, _)| n == crv))
        .ok_or_else(|| DidKeyError::UnsupportedPublicKeyType(format!("{kty} {crv}")))?;
    let raw = match codec.ec() {
        None if kty == "OKP" => field("x")?,
        Some((_, _, size)) if kty == "EC" => {
            let (x, y) = (field("x")?, field("y")?);
            if x.len() != size || y.len() != size {
                return Err(DidKeyError::InvalidPublicKey(
                    "wrong coordinate length".into(),
                ));
            }
            let mut raw = vec![0x02 | (y[size - 1] & 1)];
            raw.extend_from_slice(&x);
            // Make sure the point is on the curve (and that y was the right one).
            if raw_key_to_jwk(codec, &raw)?.get("y") != jwk.get("y") {
                return Err(DidKeyError::InvalidPublicKey(
                    "the point is not on the curve".into(),
                ));
            }
            raw
        }
        _ => {
            return Err(DidKeyError::UnsupportedPublicKeyType(format!(
                "{kty} {crv}"
            )));
        }
    };
    if raw.len() != codec.key_len() {
        return Err(DidKeyError::InvalidPublicKeyLength {
            codec,
            expected: codec.key_len(),
            found: raw.len(),
        });
    }
    Ok((codec, raw))
}

/// The multibase multikey (`z…`) of raw key bytes.
pub fn encode_multikey(codec: Codec, raw: &[u8]) -> String {
    let mut bytes = Vec::with_capacity(raw.len() + 3);
    varint_encode(codec.code(), &mut bytes);
    bytes.extend_from_slice(raw);
    format!("z{}", base58_encode(&bytes))
}

/// The `did:key` of a public JWK (P-256 → `did:key:zDn…`, Ed25519 → `did:key:z6Mk…`).
pub fn did_key_from_jwk(jwk: &Value) -> Result<String, DidKeyError> {
    let (codec, raw) = jwk_to_raw_key(jwk)?;
    Ok(format!("did:key:{}", encode_multikey(codec, &raw)))
}

/// Reads a `did:key` (a fragment, if any, is ignored) into its public key.
pub fn decode_did_key(did: &str) -> Result<DecodedKey, DidKeyError> {
    let did = crate::did::split_did_url(did).0;
    let msid = did
        .strip_prefix("did:key:")
        .ok_or_else(|| DidKeyError::InvalidDid(format!("`{did}` is not a did:key")))?;
    decode_multikey(msid)
}

/// The DID document `did` resolves to: one `JsonWebKey2020` method `did#<multikey>` listed under
/// `authentication`, `assertionMethod`, `capabilityInvocation` and `capabilityDelegation`
/// (X25519: `keyAgreement` only). EC keys are also listed under `keyAgreement`; Ed25519 keys get
/// the derived X25519 key there.
pub fn did_key_document(did: &str) -> Result<DidDocument, DidKeyError> {
    let did = crate::did::split_did_url(did).0;
    let key = decode_did_key(did)?;
    let msid = &did["did:key:".len()..];
    let method = |fragment: &str, jwk: Value| VerificationMethod {
        id: format!("{did}#{fragment}"),
        kind: "JsonWebKey2020".into(),
        controller: did.to_owned(),
        public_key_jwk: Some(jwk),
        public_key_multibase: None,
        public_key_base58: None,
        verifiers: Default::default(),
    };
    let main_id = format!("{did}#{msid}");
    let mut doc = DidDocument {
        context: Some(json!([DID_CONTEXT_V1, JWS_2020_CONTEXT])),
        id: did.to_owned(),
        verification_method: vec![method(msid, key.jwk.clone())],
        authentication: Vec::new(),
        assertion_method: Vec::new(),
        capability_invocation: Vec::new(),
        capability_delegation: Vec::new(),
        key_agreement: Vec::new(),
        service: Vec::new(),
        other: BTreeMap::new(),
    };
    if key.codec == Codec::X25519 {
        doc.key_agreement.push(MethodRef::Id(main_id));
        return Ok(doc);
    }
    for list in [
        &mut doc.authentication,
        &mut doc.assertion_method,
        &mut doc.capability_invocation,
        &mut doc.capability_delegation,
    ] {
        list.push(MethodRef::Id(main_id.clone()));
    }
    if key.codec == Codec::Ed25519 {
        let x25519 = ed25519_to_x25519(&key.raw)?;
        let fragment = encode_multikey(Codec::X25519, &x25519);
        let jwk = raw_key_to_jwk(Codec::X25519, &x25519)?;
        doc.verification_method.push(method(&fragment, jwk));
        doc.key_agreement
            .push(MethodRef::Id(format!("{did}#{fragment}")));
    } else {
        doc.key_agreement.push(MethodRef::Id(main_id));
    }
    Ok(doc)
}

/// The X25519 public key birationally equivalent to an Ed25519 public key: u = (1 + y) / (1 - y)
/// mod 2^255 - 19 (RFC 7748 §4.1).
fn ed25519_to_x25519(ed: &[u8]) -> Result<Vec<u8>, DidKeyError> {
    let bad = |e: openssl::error::ErrorStack| DidKeyError::InvalidPublicKey(e.to_string());
    let mut y_be: Vec<u8> = ed.iter().rev().copied().collect();
    if let Some(top) = y_be.first_mut() {
        *top &= 0x7f;
    }
    let mut ctx = BigNumContext::new().map_err(bad)?;
    let y = BigNum::from_slice(&y_be).map_err(bad)?;
    let mut p = BigNum::new().map_err(bad)?;
    let one = BigNum::from_u32(1).map_err(bad)?;
    p.lshift(&one, 255).map_err(bad)?;
    p.sub_word(19).map_err(bad)?;
    let mut num = BigNum::new().map_err(bad)?;
    num.mod_add(&one, &y, &p, &mut ctx).map_err(bad)?;
    let mut den = BigNum::new().map_err(bad)?;
    den.mod_sub(&one, &y, &p, &mut ctx).map_err(bad)?;
    let mut inv = BigNum::new().map_err(bad)?;
    inv.mod_inverse(&den, &p, &mut ctx).map_err(bad)?;
    let mut u = BigNum::new().map_err(bad)?;
    u.mod_mul(&num, &inv, &p, &mut ctx).map_err(bad)?;
    let mut le = u.to_vec_padded(32).map_err(bad)?;
    le.reverse();
    Ok(le)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::did_doc::Relationship;
    use crate::keys::{KeyAlgorithm, ParticipantKey};
    use crate::testutil::shared_file;

    #[test]
    fn our_keys_round_trip_through_did_key() {
        for (alg, prefix) in [
            (KeyAlgorithm::Es256, "did:key:zDn"),
            (KeyAlgorithm::EdDsa, "did:key:z6Mk"),
        ] {
            let key = ParticipantKey::generate_with(alg, "k").unwrap();
            let jwk = key.public_jwk().unwrap();
            let did = did_key_from_jwk(&jwk).unwrap();
            assert!(did.starts_with(prefix), "{did}");
            let back = decode_did_key(&did).unwrap().jwk;
            assert_eq!(back["x"], jwk["x"]);
            assert_eq!(back.get("y"), jwk.get("y"));
            let doc = did_key_document(&did).unwrap();
            assert!(
                doc.verification_key(None, Relationship::AssertionMethod, Default::default())
                    .is_ok()
            );
        }
    }

    #[test]
    fn did_key_errors_follow_the_spec_names() {
        assert!(matches!(
            decode_did_key("did:web:x"),
            Err(DidKeyError::InvalidDid(_))
        ));
        assert!(matches!(
            decode_did_key("did:key:abc"),
            Err(DidKeyError::InvalidDid(_))
        ));
        assert!(matches!(
            decode_did_key("did:key:z0OIl"),
            Err(DidKeyError::InvalidDid(_))
        ));
        // RSA (0x1205) is not supported.
        let mut bytes = Vec::new();
        varint_encode(0x1205, &mut bytes);
        bytes.extend_from_slice(&[0; 10]);
        let did = format!("did:key:z{}", base58_encode(&bytes));
        assert!(matches!(
            decode_did_key(&did),
            Err(DidKeyError::UnsupportedPublicKeyType(_))
        ));
        let short = format!("did:key:{}", encode_multikey(Codec::Ed25519, &[1; 31]));
        assert!(matches!(
            decode_did_key(&short),
            Err(DidKeyError::InvalidPublicKeyLength { .. })
        ));
        let mut not_a_point = vec![0xff; 33];
        not_a_point[0] = 2;
        let off_curve = format!("did:key:{}", encode_multikey(Codec::P256, &not_a_point));
        assert!(matches!(
            decode_did_key(&off_curve),
            Err(DidKeyError::InvalidPublicKey(_))
        ));
    }

    /// The W3C CCG did-key-spec vectors: DID → key → document, comparing keys and relationships
    /// (not the `type` strings, which the vectors' older suites name differently).
    #[test]
    fn the_did_key_vectors_pass() {
        let files = [
            "ed25519-x25519.json",
            "nist-curves.json",
            "secp256k1.json",
            "x25519.json",
        ];
        let mut checked = 0;
        for file in files {
            let Some(text) = shared_file(&format!("vectors/identity/did-key/{file}")) else {
                return;
            };
            let all: BTreeMap<String, Value> = serde_json::from_str(&text).unwrap();
            let docs: Vec<(String, Value)> = if file == "x25519.json" {
                serde_json::from_value::<BTreeMap<String, Value>>(all["didDocument"].clone())
                    .unwrap()
                    .into_iter()
                    .collect()
            } else {
                all.into_iter()
                    .map(|(did, v)| (did, v["didDocument"].clone()))
                    .collect()
            };
            for (did, expected) in docs {
                let expected = DidDocument::parse(expected.to_string().as_bytes(), &did)
                    .unwrap_or_else(|e| panic!("{did}: {e}"));
                let ours = did_key_document(&did).unwrap_or_else(|e| panic!("{did}: {e}"));
                let ids = |d: &DidDocument, r: Relationship| -> Vec<String> {
                    d.relationship(r)
                        .iter()
                        .map(|m| m.id().to_owned())
                        .collect()
                };
                for r in [
                    Relationship::Authentication,
                    Relationship::AssertionMethod,
                    Relationship::CapabilityInvocation,
                    Relationship::CapabilityDelegation,
                    Relationship::KeyAgreement,
                ] {
                    assert_eq!(ids(&ours, r), ids(&expected, r), "{did} {r}");
                }
                assert_eq!(
                    ours.verification_method.len(),
                    expected.verification_method.len(),
                    "{did}"
                );
                for vm in &expected.verification_method {
                    let mine = ours
                        .method(&vm.id)
                        .unwrap_or_else(|| panic!("{did}: {}", vm.id));
                    let (want, got) = (vm.public_jwk().unwrap(), mine.public_jwk().unwrap());
                    for member in ["kty", "crv", "x", "y"] {
                        assert_eq!(got.get(member), want.get(member), "{} {member}", vm.id);
                    }
                    // And back: the key encodes to the same DID (or fragment).
                    let fragment = vm.id.split_once('#').unwrap().1;
                    assert_eq!(
                        did_key_from_jwk(&want).unwrap(),
                        format!("did:key:{fragment}")
                    );
                }
                checked += 1;
            }
        }
        assert!(checked >= 20, "only {checked} vectors");
    }
}
