//! Interop with SpruceID's `ssi` (a pinned dev-dependency; see docs/adr/0002-credentials-with-josekit-ssi-as-dev-dependency.md): credentials caap
//! issues verify with ssi, credentials ssi issues verify in caap, and both derive the same
//! did:key from a key. The issuers are did:key DIDs, which both sides resolve without network.

use serde_json::{Value, json};
use ssi::claims::jwt::ToDecodedJwt;
use ssi::claims::vc_jose_cose::JoseVc;
use ssi::claims::{JwsPayload, JwsSlice, VerificationParameters};
use ssi::dids::{DIDKey, DIDResolver};
use ssi::verification_methods::AnyJwkMethod;

use crate::did_key::did_key_from_jwk;
use crate::keys::{KeyAlgorithm, ParticipantKey};
use crate::resolve::StaticDids;
use crate::testutil::{block_on, t0};
use crate::vc::{
    CredentialFormat, NewCredential, NewPresentation, VerifyOptions, issue_credential,
    issue_presentation, parse_credential_jwt, verify_credential, verify_presentation,
};

/// A caap key whose kid is its own did:key verification method.
fn caap_did_key(alg: KeyAlgorithm) -> (ParticipantKey, String) {
    let key = ParticipantKey::generate_with(alg, "tmp").unwrap();
    let did = did_key_from_jwk(&key.public_jwk().unwrap()).unwrap();
    let mut private: Value = serde_json::from_str(&key.to_private_jwk_json()).unwrap();
    private["kid"] = json!(format!("{did}#{}", &did["did:key:".len()..]));
    (
        ParticipantKey::from_jwk_json(&private.to_string()).unwrap(),
        did,
    )
}

/// An ssi key whose kid is its did:key verification method.
fn ssi_did_key(alg: KeyAlgorithm) -> (ssi::JWK, String) {
    let mut jwk = match alg {
        KeyAlgorithm::Es256 => ssi::JWK::generate_p256(),
        KeyAlgorithm::EdDsa => ssi::JWK::generate_ed25519().unwrap(),
    };
    let did = DIDKey::generate(&jwk.to_public()).unwrap().to_string();
    jwk.key_id = Some(DIDKey::generate_url(&jwk.to_public()).unwrap().to_string());
    (jwk, did)
}

fn ssi_params()
-> VerificationParameters<ssi::dids::VerificationMethodDIDResolver<DIDKey, AnyJwkMethod>> {
    VerificationParameters::from_resolver(DIDKey.into_vm_resolver::<AnyJwkMethod>())
}

fn caap_credential(issuer: &str) -> NewCredential {
    let mut claims = serde_json::Map::new();
    claims.insert("memberOf".into(), json!("Nordic Cities"));
    // ssi checks dates against its own clock: a window that contains any plausible test run.
    let from = chrono::DateTime::parse_from_rfc3339("2020-01-01T00:00:00Z")
        .unwrap()
        .with_timezone(&chrono::Utc);
    let mut c = NewCredential::new(
        issuer,
        "MembershipCredential",
        "did:web:malmo.example",
        claims,
        from,
    );
    c.id = Some("urn:uuid:4c2a1d3e-0000-4000-8000-000000000001".into());
    c.valid_until = Some(from + chrono::Duration::days(365 * 80));
    c
}

#[test]
fn both_derive_the_same_did_key() {
    for alg in [KeyAlgorithm::Es256, KeyAlgorithm::EdDsa] {
        let (jwk, did) = ssi_did_key(alg);
        let public = serde_json::to_value(jwk.to_public()).unwrap();
        assert_eq!(did_key_from_jwk(&public).unwrap(), did, "{alg:?}");
        let (key, caap_did) = caap_did_key(alg);
        let theirs: ssi::JWK = serde_json::from_value(key.public_jwk().unwrap()).unwrap();
        assert_eq!(DIDKey::generate(&theirs).unwrap().to_string(), caap_did);
    }
}

#[test]
fn caap_vc_jose_credentials_verify_with_ssi() {
    for alg in [KeyAlgorithm::Es256, KeyAlgorithm::EdDsa] {
        let (key, did) = caap_did_key(alg);
        let jws =
            issue_credential(&caap_credential(&did), CredentialFormat::Vc20Jose, &key).unwrap();
        let slice = JwsSlice::new(jws.as_bytes()).unwrap();
        let decoded = JoseVc::decode_any(slice).unwrap();
        let verdict = block_on(decoded.verify(ssi_params())).unwrap();
        assert_eq!(verdict, Ok(()), "{alg:?}");
        // A tampered one does not.
        let forged = ParticipantKey::generate_with(alg, key.key_id().unwrap()).unwrap();
        let jws =
            issue_credential(&caap_credential(&did), CredentialFormat::Vc20Jose, &forged).unwrap();
        let decoded = JoseVc::decode_any(JwsSlice::new(jws.as_bytes()).unwrap()).unwrap();
        assert!(!matches!(
            block_on(decoded.verify(ssi_params())),
            Ok(Ok(()))
        ));
    }
}

#[test]
fn caap_vc11_jwt_credentials_verify_with_ssi() {
    for alg in [KeyAlgorithm::Es256, KeyAlgorithm::EdDsa] {
        let (key, did) = caap_did_key(alg);
        let jwt =
            issue_credential(&caap_credential(&did), CredentialFormat::Vc11Jwt, &key).unwrap();
        let slice = JwsSlice::new(jwt.as_bytes()).unwrap();
        let verdict = block_on(slice.verify_jwt(&ssi_params())).unwrap();
        assert_eq!(verdict, Ok(()), "{alg:?}");
        // ssi reads the vc claim back into a credential with our issuer and subject.
        let claims = slice.to_decoded_jwt().unwrap().signing_bytes.payload;
        let vc: Value = ssi::claims::vc::v1::decode_jwt_vc_claims(claims).unwrap();
        assert_eq!(vc["issuer"], did);
        assert_eq!(vc["credentialSubject"]["id"], "did:web:malmo.example");
    }
}

#[test]
fn caap_presentations_verify_with_ssi() {
    let (holder_key, holder) = caap_did_key(KeyAlgorithm::Es256);
    let (issuer_key, issuer) = caap_did_key(KeyAlgorithm::EdDsa);
    let mut c = caap_credential(&issuer);
    c.subject.insert("id".into(), json!(holder));
    let vc = issue_credential(&c, CredentialFormat::Vc11Jwt, &issuer_key).unwrap();
    let p = NewPresentation {
        holder: holder.clone(),
        credentials: vec![vc],
        audience: None,
        nonce: None,
        issued_at: c.valid_from,
        expires_at: c.valid_until.unwrap(),
    };
    let vp = issue_presentation(&p, CredentialFormat::Vc11Jwt, &holder_key).unwrap();
    let slice = JwsSlice::new(vp.as_bytes()).unwrap();
    assert_eq!(block_on(slice.verify_jwt(&ssi_params())).unwrap(), Ok(()));
}

#[test]
fn ssi_vc_jose_credentials_verify_in_caap() {
    for alg in [KeyAlgorithm::Es256, KeyAlgorithm::EdDsa] {
        let (jwk, did) = ssi_did_key(alg);
        let credential: ssi::claims::vc::v2::JsonCredential = serde_json::from_value(json!({
            "@context": ["https://www.w3.org/ns/credentials/v2"],
            "id": "urn:uuid:4c2a1d3e-0000-4000-8000-000000000002",
            "type": ["VerifiableCredential", "MembershipCredential"],
            "issuer": did,
            "validFrom": "2026-01-01T00:00:00Z",
            "validUntil": "2027-01-01T00:00:00Z",
            "credentialSubject": {"id": "did:web:malmo.example", "memberOf": "Nordic Cities"}
        }))
        .unwrap();
        let enveloped = block_on(JoseVc(credential).sign_into_enveloped(&jwk)).unwrap();
        let id = enveloped.id.to_string();
        // ssi still labels it vc-ld+jwt; caap accepts that media type.
        let jws = id
            .strip_prefix("data:application/vc-ld+jwt,")
            .unwrap_or_else(|| panic!("{id}"));
        let got = block_on(verify_credential(
            jws,
            &StaticDids::new(),
            &VerifyOptions::at(t0()),
        ))
        .unwrap_or_else(|e| panic!("{alg:?}: {e}"));
        assert_eq!(got.format, CredentialFormat::Vc20Jose);
        assert_eq!(got.issuer, did);
        assert_eq!(got.subject_id.as_deref(), Some("did:web:malmo.example"));
        assert_eq!(got.subject["memberOf"], "Nordic Cities");
        // Outside its validity window it is refused.
        let late = VerifyOptions::at(t0() + chrono::Duration::days(400));
        assert!(block_on(verify_credential(jws, &StaticDids::new(), &late)).is_err());
    }
}

#[test]
fn ssi_vc11_jwt_credentials_and_presentations_verify_in_caap() {
    for alg in [KeyAlgorithm::Es256, KeyAlgorithm::EdDsa] {
        let (issuer_jwk, issuer) = ssi_did_key(alg);
        let (holder_jwk, holder) = ssi_did_key(alg);
        let nbf = t0().timestamp() - 3600;
        let exp = t0().timestamp() + 3600;
        let vc_claims = json!({
            "iss": issuer, "sub": holder, "nbf": nbf, "exp": exp,
            "jti": "urn:uuid:4c2a1d3e-0000-4000-8000-000000000003",
            "vc": {
                "@context": ["https://www.w3.org/2018/credentials/v1"],
                "type": ["VerifiableCredential", "MembershipCredential"],
                "credentialSubject": {"id": holder, "memberOf": "Nordic Cities"}
            }
        });
        let vc = block_on(vc_claims.sign(&issuer_jwk)).unwrap().to_string();
        let dids = StaticDids::new();
        let got = block_on(verify_credential(&vc, &dids, &VerifyOptions::at(t0())))
            .unwrap_or_else(|e| panic!("{alg:?}: {e}"));
        assert_eq!(got.issuer, issuer);
        assert_eq!(got.subject_id.as_deref(), Some(holder.as_str()));
        assert_eq!(
            got.id.as_deref(),
            Some("urn:uuid:4c2a1d3e-0000-4000-8000-000000000003")
        );
        let vp_claims = json!({
            "iss": holder, "aud": "did:web:lund.example", "nbf": nbf, "exp": exp,
            "vp": {
                "@context": ["https://www.w3.org/2018/credentials/v1"],
                "type": ["VerifiablePresentation"],
                "verifiableCredential": [vc]
            }
        });
        let vp = block_on(vp_claims.sign(&holder_jwk)).unwrap().to_string();
        let p = block_on(verify_presentation(&vp, &dids, &VerifyOptions::at(t0()))).unwrap();
        assert_eq!(p.holder, holder);
        assert_eq!(p.credentials, vec![vc.clone()]);
        assert!(parse_credential_jwt(&p.credentials[0]).is_ok());
    }
}

#[test]
fn ssi_credentials_with_fractional_numeric_dates_verify_in_caap() {
    // ssi's NumericDate is a float and keeps fractions (RFC 7519 §2 allows them); caap must not refuse them.
    let (issuer_jwk, issuer) = ssi_did_key(KeyAlgorithm::Es256);
    let nbf = t0().timestamp() as f64 - 3600.25;
    let exp = t0().timestamp() as f64 + 3600.5;
    let claims: ssi::claims::jwt::JWTClaims = serde_json::from_value(json!({
        "iss": issuer, "sub": "did:web:malmo.example", "nbf": nbf, "exp": exp,
        "jti": "urn:uuid:4c2a1d3e-0000-4000-8000-000000000004",
        "vc": {
            "@context": ["https://www.w3.org/2018/credentials/v1"],
            "type": ["VerifiableCredential", "MembershipCredential"],
            "credentialSubject": {"id": "did:web:malmo.example", "memberOf": "Nordic Cities"}
        }
    }))
    .unwrap();
    let vc = block_on(claims.sign(&issuer_jwk)).unwrap().to_string();
    let payload = crate::jose::decode_compact(&vc).unwrap().payload;
    assert_eq!(
        payload["nbf"],
        json!(nbf),
        "ssi wrote the fraction: {payload}"
    );
    assert_eq!(payload["exp"], json!(exp));
    let got = block_on(verify_credential(
        &vc,
        &StaticDids::new(),
        &VerifyOptions::at(t0()),
    ))
    .unwrap();
    assert_eq!(got.issuer, issuer);
    assert_eq!(
        got.valid_until.map(|t| t.timestamp_millis()),
        Some((exp * 1000.0) as i64)
    );
    // Still refused once expired, fraction and all.
    let after = VerifyOptions::at(t0() + chrono::Duration::hours(2));
    assert!(block_on(verify_credential(&vc, &StaticDids::new(), &after)).is_err());
}
