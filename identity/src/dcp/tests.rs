//! One test per DCP TCK case (IDENTITY-NOTES §1.5), plus the whole flow consumer → provider →
//! credential service → provider, in both credential formats.

use std::sync::Arc;

use chrono::Duration;
use serde_json::{Map, Value, json};

use super::*;
use crate::did_doc::DidDocument;
use crate::jose::sign_compact;
use crate::keys::{KeyAlgorithm, ParticipantKey};
use crate::resolve::tests::FakeWeb;
use crate::resolve::{DidResolver, ResolverOptions};
use crate::secret::Secret;
use crate::status::{Bitstring, StaticStatusLists, StatusList};
use crate::testutil::{block_on, t0};
use crate::trust::{CredentialSchemas, TrustedIssuers};
use crate::vc::tests::{AUTHORITY, LUND, MALMO, World};
use crate::vc::{
    CredentialFormat, CredentialSchemaRef, NewCredential, NewPresentation, StatusEntry,
    issue_credential, issue_presentation,
};

/// Malmö (the consumer, the caller) talks to Lund (the provider, the verifier).
const CALLER: &str = MALMO;
const VERIFIER: &str = LUND;
const LIST: &str = "https://authority.example/status/1";
const SCHEMA: &str = "https://authority.example/schemas/membership.json";

fn world() -> World {
    World::new(KeyAlgorithm::Es256)
}

// ---------------------------------------------------------------------------------------------
// Self-issued ID tokens (verifier 4.3, CS 4.3.3)

fn token_claims() -> Value {
    json!({
        "iss": CALLER, "sub": CALLER, "aud": VERIFIER, "jti": "jti-1",
        "iat": t0().timestamp(), "nbf": t0().timestamp(),
        "exp": (t0() + Duration::minutes(5)).timestamp(), "token": "access"
    })
}

fn signed(w: &World, claims: &Value) -> String {
    format!(
        "Bearer {}",
        sign_compact(w.key(CALLER), Some("JWT"), claims).unwrap()
    )
}

fn verify(w: &World, header: Option<&str>) -> Result<VerifiedToken, Refusal> {
    let replay = InMemoryReplayCache::default();
    block_on(verify_self_issued_token(
        header,
        &TokenRules::new(VERIFIER),
        t0(),
        &w.dids,
        &replay,
    ))
}

fn with(mut claims: Value, name: &str, value: Value) -> Value {
    if value.is_null() {
        claims.as_object_mut().unwrap().remove(name);
    } else {
        claims[name] = value;
    }
    claims
}

#[test]
fn si_token_valid_is_accepted() {
    let w = world();
    let token = create_self_issued_token(
        CALLER,
        w.key(CALLER),
        VERIFIER,
        Some(&Secret::new("access")),
        t0(),
        Duration::minutes(5),
    )
    .unwrap();
    let v = verify(&w, Some(&format!("Bearer {}", token.expose()))).unwrap();
    assert_eq!(v.issuer, CALLER);
    assert_eq!(v.access_token.unwrap().expose(), "access");
    assert_eq!(
        v.did_document.credential_service_url(),
        Some("https://malmo.example/cs")
    );
    assert!(!format!("{token:?}").contains(token.expose()));
}

#[test]
fn si_token_without_header_is_refused() {
    assert_eq!(
        verify(&world(), None).unwrap_err(),
        Refusal::MissingAuthorization
    );
}

/// presentationResponse_rejectMissingBearerPrefix, cs_05_03_01_accessTokenInvalidHeader
#[test]
fn si_token_without_bearer_prefix_is_refused() {
    let w = world();
    let header = signed(&w, &token_claims());
    let raw = header.trim_start_matches("Bearer ");
    assert_eq!(verify(&w, Some(raw)).unwrap_err(), Refusal::NotBearer);
    assert_eq!(
        verify(&w, Some(&format!("Basic {raw}"))).unwrap_err(),
        Refusal::NotBearer
    );
    assert_eq!(verify(&w, Some("Bearer ")).unwrap_err(), Refusal::NotBearer);
}

/// verifier_04_03_03_idTokenInvalidIssuerSub
#[test]
fn si_token_with_iss_not_sub_is_refused() {
    let w = world();
    let claims = with(token_claims(), "iss", json!(LUND));
    assert!(matches!(
        verify(&w, Some(&signed(&w, &claims))).unwrap_err(),
        Refusal::IssuerNotSubject { .. }
    ));
}

/// verifier_04_03_03_idTokenInvalidSub: a token for Malmö signed with another participant's key.
#[test]
fn si_token_signed_by_another_did_is_refused() {
    let w = world();
    let claims = with(token_claims(), "aud", json!(AUTHORITY));
    let claims = with(with(claims, "iss", json!(LUND)), "sub", json!(LUND));
    let header = format!(
        "Bearer {}",
        sign_compact(w.key(CALLER), None, &claims).unwrap()
    );
    let replay = InMemoryReplayCache::default();
    let err = block_on(verify_self_issued_token(
        Some(&header),
        &TokenRules::new(AUTHORITY),
        t0(),
        &w.dids,
        &replay,
    ))
    .unwrap_err();
    assert!(matches!(err, Refusal::SignedByAnotherDid { .. }), "{err}");
    // A forged key with Malmö's kid: the signature fails.
    let forged = ParticipantKey::generate(&format!("{CALLER}#key-1")).unwrap();
    let header = format!(
        "Bearer {}",
        sign_compact(&forged, None, &token_claims()).unwrap()
    );
    assert!(matches!(
        verify(&w, Some(&header)).unwrap_err(),
        Refusal::Signature(_)
    ));
}

/// verifier_04_03_03_idTokenIncorrectAud
#[test]
fn si_token_for_another_audience_is_refused() {
    let w = world();
    let claims = with(token_claims(), "aud", json!(AUTHORITY));
    assert!(matches!(
        verify(&w, Some(&signed(&w, &claims))).unwrap_err(),
        Refusal::WrongAudience { .. }
    ));
}

/// verifier_04_03_03_idTokenIncorrectSub: the DID document fetched for `sub` has another id.
#[test]
fn si_token_whose_sub_is_not_the_did_document_id_is_refused() {
    let w = world();
    let web = Arc::new(FakeWeb::default());
    let other_doc = block_on(crate::resolve::DidResolve::resolve(&w.dids, LUND, t0())).unwrap();
    web.put(
        "https://malmo.example/.well-known/did.json",
        serde_json::to_vec(&*other_doc).unwrap(),
    );
    let resolver = DidResolver::new(web, ResolverOptions::default());
    let replay = InMemoryReplayCache::default();
    let header = signed(&w, &with(token_claims(), "aud", json!(AUTHORITY)));
    let err = block_on(verify_self_issued_token(
        Some(&header),
        &TokenRules::new(AUTHORITY),
        t0(),
        &resolver,
        &replay,
    ))
    .unwrap_err();
    assert_eq!(err, Refusal::SubjectNotDidDocument(CALLER.into()));
}

/// verifier_04_03_03_idTokenNbfInFuture
#[test]
fn si_token_with_nbf_in_the_future_is_refused() {
    let w = world();
    let claims = with(
        token_claims(),
        "nbf",
        json!((t0() + Duration::minutes(2)).timestamp()),
    );
    assert!(matches!(
        verify(&w, Some(&signed(&w, &claims))).unwrap_err(),
        Refusal::NotYetValid(_)
    ));
}

/// cs_06_05_01_credentialMessage_iatInFuture
#[test]
fn si_token_with_iat_in_the_future_is_refused() {
    let w = world();
    let claims = with(
        token_claims(),
        "iat",
        json!((t0() + Duration::minutes(2)).timestamp()),
    );
    assert!(matches!(
        verify(&w, Some(&signed(&w, &claims))).unwrap_err(),
        Refusal::IssuedInFuture(_)
    ));
}

/// verifier_04_03_03_idTokenExpired
#[test]
fn si_token_expired_is_refused() {
    let w = world();
    let claims = with(
        token_claims(),
        "exp",
        json!((t0() - Duration::minutes(1)).timestamp()),
    );
    assert!(matches!(
        verify(&w, Some(&signed(&w, &claims))).unwrap_err(),
        Refusal::Expired(_)
    ));
    // No exp at all, or a lifetime of a day, is refused too.
    let claims = with(token_claims(), "exp", Value::Null);
    assert!(matches!(
        verify(&w, Some(&signed(&w, &claims))).unwrap_err(),
        Refusal::LifetimeTooLong { .. }
    ));
    let claims = with(
        token_claims(),
        "exp",
        json!((t0() + Duration::days(1)).timestamp()),
    );
    assert!(matches!(
        verify(&w, Some(&signed(&w, &claims))).unwrap_err(),
        Refusal::LifetimeTooLong { .. }
    ));
}

/// verifier_04_03_03_idTokenJtiUsedTwice
#[test]
fn si_token_replayed_is_refused() {
    let w = world();
    let header = signed(&w, &token_claims());
    let replay = InMemoryReplayCache::default();
    let rules = TokenRules::new(VERIFIER);
    block_on(verify_self_issued_token(
        Some(&header),
        &rules,
        t0(),
        &w.dids,
        &replay,
    ))
    .unwrap();
    let again = block_on(verify_self_issued_token(
        Some(&header),
        &rules,
        t0(),
        &w.dids,
        &replay,
    ));
    assert_eq!(again.unwrap_err(), Refusal::ReplayedJti("jti-1".into()));
    // A forged token with the same jti does not burn it (the signature is checked first).
    let replay = InMemoryReplayCache::default();
    let forged = ParticipantKey::generate(&format!("{CALLER}#key-1")).unwrap();
    let bad = format!(
        "Bearer {}",
        sign_compact(&forged, None, &token_claims()).unwrap()
    );
    assert!(
        block_on(verify_self_issued_token(
            Some(&bad),
            &rules,
            t0(),
            &w.dids,
            &replay
        ))
        .is_err()
    );
    assert!(
        block_on(verify_self_issued_token(
            Some(&header),
            &rules,
            t0(),
            &w.dids,
            &replay
        ))
        .is_ok()
    );
}

/// Expired jtis are forgotten as tokens keep coming: the cache stays about twice the live tokens, while a
/// live jti is still refused a second time.
#[test]
fn replay_cache_forgets_expired_jtis() {
    let cache = InMemoryReplayCache::default();
    let mut now = t0();
    for i in 0..100_000 {
        now += Duration::milliseconds(10);
        let key = format!("jti-{i}");
        assert!(block_on(cache.first_use(&key, now + Duration::seconds(5), now)).unwrap());
    }
    // 5 s of tokens, one every 10 ms, are live: 500.
    assert!(cache.len() <= 2 * 1024, "{}", cache.len());
    assert!(!block_on(cache.first_use("jti-99999", now + Duration::seconds(5), now)).unwrap());
}

#[test]
fn si_token_without_jti_is_refused() {
    let w = world();
    let claims = with(token_claims(), "jti", Value::Null);
    assert_eq!(
        verify(&w, Some(&signed(&w, &claims))).unwrap_err(),
        Refusal::MissingJti
    );
}

/// verifier_04_03_01_presentationResponse_idTokenNoTokenClaim
#[test]
fn si_token_without_token_claim_is_refused() {
    let w = world();
    let claims = with(token_claims(), "token", Value::Null);
    assert_eq!(
        verify(&w, Some(&signed(&w, &claims))).unwrap_err(),
        Refusal::MissingTokenClaim
    );
    // Where the token claim is optional (e.g. the issuance endpoints), it passes.
    let mut rules = TokenRules::new(VERIFIER);
    rules.require_token_claim = false;
    let replay = InMemoryReplayCache::default();
    let v = block_on(verify_self_issued_token(
        Some(&signed(&w, &claims)),
        &rules,
        t0(),
        &w.dids,
        &replay,
    ))
    .unwrap();
    assert!(v.access_token.is_none());
}

#[test]
fn si_token_malformed_is_refused() {
    let w = world();
    assert!(matches!(
        verify(&w, Some("Bearer abc")).unwrap_err(),
        Refusal::MalformedToken(_)
    ));
    let claims = with(token_claims(), "exp", json!("tomorrow"));
    assert!(matches!(
        verify(&w, Some(&signed(&w, &claims))).unwrap_err(),
        Refusal::MalformedToken(_)
    ));
}

#[test]
fn refusals_map_to_auth_failures_with_codes() {
    use crate::auth::AuthFailure;
    assert_eq!(
        AuthFailure::from(Refusal::MissingAuthorization),
        AuthFailure::Missing
    );
    let AuthFailure::Refused(why) = AuthFailure::from(Refusal::MissingTokenClaim) else {
        panic!()
    };
    assert!(why.starts_with("missing_token_claim"));
    let unavailable = Refusal::StatusUnknown {
        id: "x".into(),
        reason: "down".into(),
        unavailable: true,
    };
    assert!(matches!(
        AuthFailure::from(unavailable),
        AuthFailure::Unavailable(_)
    ));
}

// ---------------------------------------------------------------------------------------------
// Presentations (verifier 5.x)

struct Case {
    w: World,
    lists: StaticStatusLists,
    policy: VerifierPolicy,
}

fn case() -> Case {
    let w = world();
    let mut bits = Bitstring::new(0);
    bits.set(13, true).unwrap();
    let mut lists = StaticStatusLists::new();
    lists.insert(
        LIST,
        StatusList {
            issuer: AUTHORITY.into(),
            purpose: "revocation".into(),
            bits: bits.clone(),
            valid_until: None,
        },
    );
    lists.insert(
        &format!("{LIST}/suspension"),
        StatusList {
            issuer: AUTHORITY.into(),
            purpose: "suspension".into(),
            bits,
            valid_until: None,
        },
    );
    let trust = TrustedIssuers::new()
        .trust("MembershipCredential", AUTHORITY)
        .trust("MunicipalityCredential", AUTHORITY);
    let schema = json!({
        "$schema": "http://json-schema.org/draft-04/schema#", "type": "object",
        "properties": {"id": {"type": "string"}, "memberOf": {"type": "string"}},
        "required": ["id", "memberOf"]
    });
    let mut policy = VerifierPolicy::new(trust);
    policy.schemas = CredentialSchemas::new().with(SCHEMA, &schema).unwrap();
    Case { w, lists, policy }
}

struct Cred {
    format: CredentialFormat,
    kind: &'static str,
    issuer: &'static str,
    subject: &'static str,
    claims: Value,
    from: chrono::DateTime<chrono::Utc>,
    until: chrono::DateTime<chrono::Utc>,
    status: Option<StatusEntry>,
}

impl Cred {
    fn membership(format: CredentialFormat) -> Self {
        Cred {
            format,
            kind: "MembershipCredential",
            issuer: AUTHORITY,
            subject: CALLER,
            claims: json!({"memberOf": "Nordic Cities", "role": "Municipality"}),
            from: t0() - Duration::days(1),
            until: t0() + Duration::days(30),
            status: Some(StatusEntry::bitstring(LIST, 12, "revocation")),
        }
    }

    fn municipality(format: CredentialFormat) -> Self {
        Cred {
            kind: "MunicipalityCredential",
            claims: json!({"municipalityCode": "1280", "country": "SE"}),
            status: None,
            ..Cred::membership(format)
        }
    }

    fn issue(&self, w: &World) -> String {
        let mut c = NewCredential::new(
            self.issuer,
            self.kind,
            self.subject,
            self.claims.as_object().cloned().unwrap_or_else(Map::new),
            self.from,
        );
        c.valid_until = Some(self.until);
        c.id = Some(format!("urn:uuid:{}-{}", self.kind, self.subject));
        c.status = self.status.iter().cloned().collect();
        if self.kind == "MembershipCredential" {
            c.schemas = vec![CredentialSchemaRef {
                id: SCHEMA.into(),
                kind: "JsonSchema".into(),
            }];
        }
        issue_credential(&c, self.format, w.key(self.issuer)).unwrap()
    }
}

fn vp(
    w: &World,
    format: CredentialFormat,
    holder: &str,
    signer: &str,
    creds: Vec<String>,
) -> Value {
    let p = NewPresentation {
        holder: holder.into(),
        credentials: creds,
        audience: Some(VERIFIER.into()),
        nonce: None,
        issued_at: t0(),
        expires_at: t0() + Duration::minutes(5),
    };
    let key = w.key(signer);
    if holder == signer {
        return Value::from(issue_presentation(&p, format, key).unwrap());
    }
    // Forge: a presentation claiming `holder`, signed with `signer`'s key.
    let payload = json!({
        "iss": holder, "aud": VERIFIER, "exp": p.expires_at.timestamp(),
        "vp": {"type": ["VerifiablePresentation"], "holder": holder, "verifiableCredential": p.credentials}
    });
    Value::from(sign_compact(key, Some("JWT"), &payload).unwrap())
}

fn run(c: &Case, presentations: Vec<Value>, required: &[&str]) -> Result<VerifiedClaims, Refusal> {
    let response = PresentationResponseMessage {
        presentation: presentations,
        ..PresentationResponseMessage::new(vec![])
    };
    let required: Vec<String> = required.iter().map(|s| (*s).to_owned()).collect();
    let ctx = VerificationContext {
        resolver: &c.w.dids,
        status_lists: &c.lists,
        now: t0(),
    };
    block_on(verify_presentation_response(
        &response, CALLER, VERIFIER, &required, &c.policy, &ctx,
    ))
}

const FORMATS: [CredentialFormat; 2] = [CredentialFormat::Vc11Jwt, CredentialFormat::Vc20Jose];

/// verifier_05_01_presentationResponse_success
#[test]
fn presentation_valid_is_accepted_with_claims() {
    for f in FORMATS {
        let c = case();
        let creds = vec![
            Cred::membership(f).issue(&c.w),
            Cred::municipality(f).issue(&c.w),
        ];
        let v = run(
            &c,
            vec![vp(&c.w, f, CALLER, CALLER, creds)],
            &["MembershipCredential"],
        )
        .unwrap();
        assert_eq!(v.participant_id, CALLER);
        assert_eq!(v.claims["membership"], true);
        assert_eq!(v.claims["role"], "Municipality");
        assert_eq!(v.claims["municipalityCode"], "1280");
        assert_eq!(v.claims["country"], "SE");
        assert_eq!(
            v.claims["credentialTypes"],
            json!(["MembershipCredential", "MunicipalityCredential"])
        );
        assert_eq!(
            v.claims["credentials"]["MembershipCredential"]["memberOf"],
            "Nordic Cities"
        );
        let caller = v.into_verified_caller();
        assert_eq!(
            (caller.participant_id.as_str(), caller.method),
            (CALLER, "dcp")
        );
    }
}

/// verifier_05_04_02_01_tooFewCredentials: a different credential type than requested.
#[test]
fn presentation_with_another_type_than_requested_is_refused() {
    for f in FORMATS {
        let c = case();
        let creds = vec![Cred::municipality(f).issue(&c.w)];
        assert_eq!(
            run(
                &c,
                vec![vp(&c.w, f, CALLER, CALLER, creds)],
                &["MembershipCredential"]
            )
            .unwrap_err(),
            Refusal::MissingCredential("MembershipCredential".into())
        );
    }
}

/// verifier_05_04_02_02_tooManyCredentials: extra credentials are accepted.
#[test]
fn presentation_with_extra_credentials_is_accepted() {
    for f in FORMATS {
        let c = case();
        let creds = vec![
            Cred::membership(f).issue(&c.w),
            Cred::municipality(f).issue(&c.w),
        ];
        assert!(
            run(
                &c,
                vec![vp(&c.w, f, CALLER, CALLER, creds)],
                &["MembershipCredential"]
            )
            .is_ok()
        );
    }
}

/// verifier_05_04_02_03_emptyPresentations
#[test]
fn response_without_presentations_is_refused() {
    let c = case();
    assert_eq!(
        run(&c, vec![], &["MembershipCredential"]).unwrap_err(),
        Refusal::EmptyPresentations
    );
}

/// verifier_05_04_02_04_emptyCredentials
#[test]
fn presentation_without_the_requested_credential_is_refused() {
    for f in FORMATS {
        let c = case();
        assert_eq!(
            run(
                &c,
                vec![vp(&c.w, f, CALLER, CALLER, vec![])],
                &["MembershipCredential"]
            )
            .unwrap_err(),
            Refusal::MissingCredential("MembershipCredential".into())
        );
    }
}

/// verifier_05_04_03_holderNotEqualSubjectId
#[test]
fn credential_about_someone_else_is_refused() {
    for f in FORMATS {
        let c = case();
        let cred = Cred {
            subject: LUND,
            ..Cred::membership(f)
        }
        .issue(&c.w);
        assert!(matches!(
            run(&c, vec![vp(&c.w, f, CALLER, CALLER, vec![cred])], &[]).unwrap_err(),
            Refusal::HolderNotSubject { .. }
        ));
    }
}

/// The presentation's signer is not its holder.
#[test]
fn presentation_signed_by_another_did_is_refused() {
    let c = case();
    let f = CredentialFormat::Vc11Jwt;
    let creds = vec![Cred::membership(f).issue(&c.w)];
    assert!(matches!(
        run(&c, vec![vp(&c.w, f, CALLER, LUND, creds)], &[]).unwrap_err(),
        Refusal::PresentationSignerNotHolder { .. }
    ));
}

/// The presentation's holder is not the caller of the DSP request.
#[test]
fn presentation_of_another_holder_than_the_caller_is_refused() {
    let c = case();
    let f = CredentialFormat::Vc20Jose;
    let cred = Cred {
        subject: LUND,
        ..Cred::membership(f)
    }
    .issue(&c.w);
    assert!(matches!(
        run(&c, vec![vp(&c.w, f, LUND, LUND, vec![cred])], &[]).unwrap_err(),
        Refusal::HolderNotCaller { .. }
    ));
}

/// verifier_05_04_03_07_expiredCredential
#[test]
fn expired_credential_is_refused() {
    for f in FORMATS {
        let c = case();
        let cred = Cred {
            until: t0() - Duration::hours(1),
            ..Cred::membership(f)
        }
        .issue(&c.w);
        assert!(matches!(
            run(&c, vec![vp(&c.w, f, CALLER, CALLER, vec![cred])], &[]).unwrap_err(),
            Refusal::CredentialExpired { .. }
        ));
    }
}

/// verifier_05_04_03_06_notYetValidCredential
#[test]
fn not_yet_valid_credential_is_refused() {
    for f in FORMATS {
        let c = case();
        let cred = Cred {
            from: t0() + Duration::hours(1),
            ..Cred::membership(f)
        }
        .issue(&c.w);
        assert!(matches!(
            run(&c, vec![vp(&c.w, f, CALLER, CALLER, vec![cred])], &[]).unwrap_err(),
            Refusal::CredentialNotYetValid { .. }
        ));
    }
}

/// verifier_05_04_03_06_credentialRevoked
#[test]
fn revoked_credential_is_refused() {
    for f in FORMATS {
        let c = case();
        let cred = Cred {
            status: Some(StatusEntry::bitstring(LIST, 13, "revocation")),
            ..Cred::membership(f)
        }
        .issue(&c.w);
        assert!(matches!(
            run(&c, vec![vp(&c.w, f, CALLER, CALLER, vec![cred])], &[]).unwrap_err(),
            Refusal::CredentialRevoked(_)
        ));
    }
}

/// verifier_05_04_03_06_credentialRevoked (suspended variant)
#[test]
fn suspended_credential_is_refused() {
    let c = case();
    let f = CredentialFormat::Vc11Jwt;
    let cred = Cred {
        status: Some(StatusEntry::bitstring(
            &format!("{LIST}/suspension"),
            13,
            "suspension",
        )),
        ..Cred::membership(f)
    }
    .issue(&c.w);
    assert!(matches!(
        run(&c, vec![vp(&c.w, f, CALLER, CALLER, vec![cred])], &[]).unwrap_err(),
        Refusal::CredentialSuspended(_)
    ));
}

#[test]
fn credential_whose_status_list_is_unreachable_is_refused_as_unavailable() {
    let c = case();
    let f = CredentialFormat::Vc11Jwt;
    let cred = Cred {
        status: Some(StatusEntry::bitstring(
            "https://authority.example/status/9",
            1,
            "revocation",
        )),
        ..Cred::membership(f)
    }
    .issue(&c.w);
    let err = run(&c, vec![vp(&c.w, f, CALLER, CALLER, vec![cred])], &[]).unwrap_err();
    assert!(
        matches!(err, Refusal::StatusUnknown { .. }) && err.is_unavailable(),
        "{err}"
    );
}

/// An issuer outside the trusted-issuer list for the type.
#[test]
fn credential_from_an_untrusted_issuer_is_refused() {
    for f in FORMATS {
        let c = case();
        let cred = Cred {
            issuer: LUND,
            status: None,
            ..Cred::membership(f)
        }
        .issue(&c.w);
        assert_eq!(
            run(&c, vec![vp(&c.w, f, CALLER, CALLER, vec![cred])], &[]).unwrap_err(),
            Refusal::UntrustedIssuer {
                credential_type: "MembershipCredential".into(),
                issuer: LUND.into()
            }
        );
    }
}

/// verifier_x_x_invalidCredentialSchema
#[test]
fn credential_violating_its_schema_is_refused() {
    for f in FORMATS {
        let c = case();
        let cred = Cred {
            claims: json!({"memberOf": 42}),
            ..Cred::membership(f)
        }
        .issue(&c.w);
        assert!(matches!(
            run(&c, vec![vp(&c.w, f, CALLER, CALLER, vec![cred])], &[]).unwrap_err(),
            Refusal::SchemaViolation { .. }
        ));
    }
}

/// A credential whose issuer signature does not verify.
#[test]
fn credential_with_a_forged_signature_is_refused() {
    let c = case();
    let f = CredentialFormat::Vc20Jose;
    let mut w2 = world();
    // Same DIDs, other keys: the authority of w2 is an impostor.
    w2.dids = c.w.dids.clone();
    let cred = Cred::membership(f).issue(&w2);
    let err = run(&c, vec![vp(&c.w, f, CALLER, CALLER, vec![cred])], &[]).unwrap_err();
    assert!(matches!(err, Refusal::CredentialInvalid { .. }), "{err}");
}

/// DCP homogeneity: a VC 2.0 credential inside a VC 1.1 presentation is refused.
#[test]
fn mixed_data_models_are_refused() {
    let c = case();
    let cred = Cred::membership(CredentialFormat::Vc20Jose).issue(&c.w);
    let err = run(
        &c,
        vec![vp(
            &c.w,
            CredentialFormat::Vc11Jwt,
            CALLER,
            CALLER,
            vec![cred],
        )],
        &[],
    )
    .unwrap_err();
    assert!(matches!(err, Refusal::CredentialInvalid { .. }), "{err}");
}

#[test]
fn expired_presentation_is_refused() {
    let c = case();
    let f = CredentialFormat::Vc11Jwt;
    let p = NewPresentation {
        holder: CALLER.into(),
        credentials: vec![Cred::membership(f).issue(&c.w)],
        audience: Some(VERIFIER.into()),
        nonce: None,
        issued_at: t0() - Duration::hours(1),
        expires_at: t0() - Duration::minutes(30),
    };
    let vp = Value::from(issue_presentation(&p, f, c.w.key(CALLER)).unwrap());
    assert!(matches!(
        run(&c, vec![vp], &[]).unwrap_err(),
        Refusal::PresentationInvalid(_)
    ));
}

// ---------------------------------------------------------------------------------------------
// The whole flow, and the credential service's side (CS 5.x)

#[test]
fn the_whole_dcp_flow_works_in_both_formats() {
    for f in FORMATS {
        let c = case();
        let replay = InMemoryReplayCache::default();
        // 1. Malmö (consumer) gets an access token for its own CS, for Lund, and sends an SI token.
        let scopes = vec![Scope::for_type("MembershipCredential")];
        let access = issue_access_token(
            CALLER,
            c.w.key(CALLER),
            VERIFIER,
            &scopes,
            t0(),
            Duration::minutes(5),
        )
        .unwrap();
        let si = create_self_issued_token(
            CALLER,
            c.w.key(CALLER),
            VERIFIER,
            Some(&access),
            t0(),
            Duration::minutes(5),
        )
        .unwrap();
        // 2. Lund verifies it and finds Malmö's credential service.
        let header = format!("Bearer {}", si.expose());
        let token = block_on(verify_self_issued_token(
            Some(&header),
            &TokenRules::new(VERIFIER),
            t0(),
            &c.w.dids,
            &replay,
        ))
        .unwrap();
        let cs = token.did_document.credential_service_url().unwrap();
        assert_eq!(
            presentation_query_url(cs),
            "https://malmo.example/cs/presentations/query"
        );
        // 3. Lund signs its own SI token carrying Malmö's access token, and queries.
        let lund_si = create_self_issued_token(
            VERIFIER,
            c.w.key(VERIFIER),
            CALLER,
            token.access_token.as_ref(),
            t0(),
            Duration::minutes(5),
        )
        .unwrap();
        let query = PresentationQueryMessage::for_scopes(scopes.clone());
        let body = serde_json::to_vec(&query).unwrap();
        // 4. Malmö's CS authorises the query and answers.
        let own: DidDocument =
            (*block_on(crate::resolve::DidResolve::resolve(&c.w.dids, CALLER, t0())).unwrap())
                .clone();
        let grant = block_on(authorize_presentation_query(
            Some(&format!("Bearer {}", lund_si.expose())),
            &own,
            t0(),
            &c.w.dids,
            &replay,
        ))
        .unwrap();
        assert_eq!(grant.bearer, VERIFIER);
        let (_, requested) = PresentationQueryMessage::parse(&body).unwrap();
        let stored = vec![
            StoredCredential::from_jwt(&Cred::membership(f).issue(&c.w)).unwrap(),
            StoredCredential::from_jwt(&Cred::municipality(f).issue(&c.w)).unwrap(),
        ];
        let chosen = select_credentials(&requested, &grant, &stored, t0());
        assert_eq!(chosen.len(), 1, "only what was asked and granted");
        let response = present_credentials(
            CALLER,
            c.w.key(CALLER),
            VERIFIER,
            &chosen,
            t0(),
            Duration::minutes(5),
        )
        .unwrap();
        let response: PresentationResponseMessage =
            serde_json::from_slice(&serde_json::to_vec(&response).unwrap()).unwrap();
        // 5. Lund verifies the response.
        let ctx = VerificationContext {
            resolver: &c.w.dids,
            status_lists: &c.lists,
            now: t0(),
        };
        let claims = block_on(verify_presentation_response(
            &response,
            &token.issuer,
            VERIFIER,
            &required_types(&scopes),
            &c.policy,
            &ctx,
        ))
        .unwrap();
        assert_eq!(claims.claims["membership"], true);
    }
}

/// cs_05_04_01_02_invalidScopeEscalationRequest: scopes beyond the access token are left out.
#[test]
fn the_credential_service_does_not_escalate_scopes() {
    let c = case();
    let f = CredentialFormat::Vc11Jwt;
    let stored = vec![
        StoredCredential::from_jwt(&Cred::membership(f).issue(&c.w)).unwrap(),
        StoredCredential::from_jwt(&Cred::municipality(f).issue(&c.w)).unwrap(),
    ];
    let grant = AccessGrant {
        bearer: VERIFIER.into(),
        scopes: vec![Scope::for_type("MembershipCredential")],
        expires_at: t0() + Duration::minutes(5),
    };
    let asked: Vec<Scope> = ["MembershipCredential", "MunicipalityCredential"]
        .iter()
        .map(|t| Scope::parse(&Scope::for_type(t)))
        .collect();
    let chosen = select_credentials(&asked, &grant, &stored, t0());
    assert_eq!(chosen.len(), 1);
    assert!(chosen[0].credential.has_type("MembershipCredential"));
    // By id works too.
    let by_id = vec![Scope::parse(
        "org.eclipse.dspace.dcp.vc.id:urn:uuid:MembershipCredential-did:web:malmo.example",
    )];
    let grant_id = AccessGrant {
        scopes: vec![
            "org.eclipse.dspace.dcp.vc.id:urn:uuid:MembershipCredential-did:web:malmo.example:read"
                .into(),
        ],
        ..grant
    };
    assert_eq!(
        select_credentials(&by_id, &grant_id, &stored, t0()).len(),
        1
    );
}

/// cs_05_04_invalidTokenNotAuthorized: an access token given to someone else, or forged.
#[test]
fn the_credential_service_refuses_stolen_or_forged_access_tokens() {
    let c = case();
    let replay = InMemoryReplayCache::default();
    let own: DidDocument =
        (*block_on(crate::resolve::DidResolve::resolve(&c.w.dids, CALLER, t0())).unwrap()).clone();
    let scopes = vec![Scope::for_type("MembershipCredential")];
    // Given to Lund, used by the authority.
    let access = issue_access_token(
        CALLER,
        c.w.key(CALLER),
        VERIFIER,
        &scopes,
        t0(),
        Duration::minutes(5),
    )
    .unwrap();
    let si = create_self_issued_token(
        AUTHORITY,
        c.w.key(AUTHORITY),
        CALLER,
        Some(&access),
        t0(),
        Duration::minutes(5),
    )
    .unwrap();
    let err = block_on(authorize_presentation_query(
        Some(&format!("Bearer {}", si.expose())),
        &own,
        t0(),
        &c.w.dids,
        &replay,
    ))
    .unwrap_err();
    assert!(matches!(err, Refusal::AccessTokenRefused(_)), "{err}");
    // Minted by Lund itself.
    let forged = issue_access_token(
        CALLER,
        c.w.key(VERIFIER),
        VERIFIER,
        &scopes,
        t0(),
        Duration::minutes(5),
    );
    assert!(forged.is_ok());
    let forged = sign_compact(
        c.w.key(VERIFIER),
        Some("at+jwt"),
        &json!({"iss": CALLER, "aud": CALLER, "sub": VERIFIER, "scope": "x", "exp": t0().timestamp() + 60}),
    )
    .unwrap();
    assert!(verify_access_token(&Secret::new(forged), &own, t0(), Duration::zero()).is_err());
    // Expired.
    let old = issue_access_token(
        CALLER,
        c.w.key(CALLER),
        VERIFIER,
        &scopes,
        t0() - Duration::hours(1),
        Duration::minutes(5),
    )
    .unwrap();
    assert!(verify_access_token(&old, &own, t0(), Duration::zero()).is_err());
    // Not an access token at all (an SI token).
    assert!(verify_access_token(&si, &own, t0(), Duration::zero()).is_err());
}
