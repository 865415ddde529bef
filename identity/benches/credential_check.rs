//! The cost of the verifier's identity check of an incoming DSP request, against the raw
//! signature verifications it cannot avoid.
//!
//! (a) `credential_check`: `verify_self_issued_token` (a fresh token each time, because a `jti`
//!     is accepted once) and `verify_presentation_response` on one presentation holding a
//!     MembershipCredential and a MunicipalityCredential (VC 1.1 JWT, ES256, each with a
//!     BitstringStatusList entry), with a warm in-memory resolver and in-memory status lists.
//! (b) `signatures_with_prepared_keys`, the baseline: the four signature verifications that check
//!     needs (SI token, VP, two VCs) with josekit verifiers built once per key, i.e. the
//!     cryptography alone.
//! (c) For information, `raw_signatures`: the same four through `verify_with_jwk`, which turns
//!     the JWK into an openssl key on every call; the difference to (b) is what that costs.
//!
//! `cargo bench -p caap-identity --bench credential_check` runs criterion's measurements, then a
//! plain timing loop of its own and prints the medians and the ratio (a) / (b) (target ≤ 1.5×).

#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

use std::future::Future;
use std::hint::black_box;
use std::task::{Context, Poll, Waker};
use std::time::{Duration as StdDuration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use caap_identity::Secret;
use caap_identity::dcp::{
    InMemoryReplayCache, PresentationResponseMessage, TokenRules, VerificationContext,
    VerifierPolicy, create_self_issued_token, verify_presentation_response,
    verify_self_issued_token,
};
use caap_identity::did_doc::{DidDocument, KeyUsePolicy, Relationship, Service};
use caap_identity::jose::{DecodedJws, decode_compact, verify_with_jwk};
use caap_identity::keys::{KeyAlgorithm, KeySet, ParticipantKey};
use caap_identity::resolve::StaticDids;
use caap_identity::status::{Bitstring, StaticStatusLists, StatusList};
use caap_identity::trust::TrustedIssuers;
use caap_identity::vc::{
    CredentialFormat, NewCredential, NewPresentation, StatusEntry, issue_credential,
    issue_presentation,
};
use chrono::{DateTime, Duration, TimeZone, Utc};
use criterion::{BatchSize, Criterion};
use josekit::jwk::Jwk;
use josekit::jws::JwsVerifier;
use serde_json::{Map, Value, json};

const AUTHORITY: &str = "did:web:authority.example";
const CONSUMER: &str = "did:web:malmo.example";
const PROVIDER: &str = "did:web:lund.example";
const LIST: &str = "https://authority.example/status/1";

/// Runs a future that never waits (everything here is in memory).
fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
    }
}

struct Setup {
    now: DateTime<Utc>,
    consumer_key: ParticipantKey,
    dids: StaticDids,
    docs: Vec<DidDocument>,
    lists: StaticStatusLists,
    policy: VerifierPolicy,
    rules: TokenRules,
    response: PresentationResponseMessage,
    vp: String,
    vcs: Vec<String>,
    required: Vec<String>,
}

impl Setup {
    fn new() -> Self {
        let now = Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap();
        let mut dids = StaticDids::new();
        let mut docs = Vec::new();
        let mut keys = Vec::new();
        for did in [AUTHORITY, CONSUMER, PROVIDER] {
            let key = ParticipantKey::generate_with(KeyAlgorithm::Es256, &format!("{did}#key-1"))
                .unwrap();
            let doc = DidDocument::for_participant(
                did,
                &KeySet::new(key.clone()).published().unwrap(),
                vec![Service::credential_service(
                    did,
                    &format!("https://{}/cs", &did[8..]),
                )],
            );
            dids.insert(doc.clone());
            docs.push(doc);
            keys.push(key);
        }
        let [authority_key, consumer_key, _] = <[ParticipantKey; 3]>::try_from(keys).ok().unwrap();

        let mut bits = Bitstring::new(0);
        bits.set(13, true).unwrap();
        let mut lists = StaticStatusLists::new();
        lists.insert(
            LIST,
            StatusList {
                issuer: AUTHORITY.into(),
                purpose: "revocation".into(),
                bits,
                valid_until: None,
            },
        );

        let credential = |kind: &str, index: u64, claims: Value| {
            let mut c = NewCredential::new(
                AUTHORITY,
                kind,
                CONSUMER,
                claims.as_object().cloned().unwrap_or_else(Map::new),
                now - Duration::days(1),
            );
            c.id = Some(format!("urn:uuid:{kind}"));
            c.valid_until = Some(now + Duration::days(365));
            c.status = vec![StatusEntry::bitstring(LIST, index, "revocation")];
            issue_credential(&c, CredentialFormat::Vc11Jwt, &authority_key).unwrap()
        };
        let vcs = vec![
            credential(
                "MembershipCredential",
                12,
                json!({"memberOf": "Nordic Cities", "role": "Municipality"}),
            ),
            credential(
                "MunicipalityCredential",
                14,
                json!({"municipalityCode": "1280", "country": "SE"}),
            ),
        ];
        let vp = issue_presentation(
            &NewPresentation {
                holder: CONSUMER.into(),
                credentials: vcs.clone(),
                audience: Some(PROVIDER.into()),
                nonce: None,
                issued_at: now,
                expires_at: now + Duration::minutes(5),
            },
            CredentialFormat::Vc11Jwt,
            &consumer_key,
        )
        .unwrap();
        let trust = TrustedIssuers::new()
            .trust("MembershipCredential", AUTHORITY)
            .trust("MunicipalityCredential", AUTHORITY);
        Setup {
            now,
            consumer_key,
            dids,
            docs,
            lists,
            policy: VerifierPolicy::new(trust),
            rules: TokenRules::new(PROVIDER),
            response: PresentationResponseMessage::new(vec![vp.clone()]),
            vp,
            vcs,
            required: vec![
                "MembershipCredential".into(),
                "MunicipalityCredential".into(),
            ],
        }
    }

    /// A fresh SI token from the consumer to the provider, as an `Authorization` value.
    fn token(&self) -> String {
        let t = create_self_issued_token(
            CONSUMER,
            &self.consumer_key,
            PROVIDER,
            Some(&Secret::new("access-token")),
            self.now,
            Duration::minutes(5),
        )
        .unwrap();
        format!("Bearer {}", t.expose())
    }

    /// (a) The verifier's whole check.
    fn check(&self, authorization: &str, replay: &InMemoryReplayCache) {
        block_on(async {
            let token = verify_self_issued_token(
                Some(authorization),
                &self.rules,
                self.now,
                &self.dids,
                replay,
            )
            .await
            .unwrap();
            let ctx = VerificationContext {
                resolver: &self.dids,
                status_lists: &self.lists,
                now: self.now,
            };
            let claims = verify_presentation_response(
                &self.response,
                &token.issuer,
                PROVIDER,
                &self.required,
                &self.policy,
                &ctx,
            )
            .await
            .unwrap();
            black_box(claims);
        });
    }

    /// (c) The signatures through `verify_with_jwk`: pre-decoded JWS with their JWKs.
    fn raw_inputs(&self) -> Vec<(DecodedJws, Value)> {
        let jwk = |did: &str, relationship: Relationship| {
            let doc = self.docs.iter().find(|d| d.id == did).unwrap();
            doc.verification_key(
                Some(&format!("{did}#key-1")),
                relationship,
                KeyUsePolicy::Strict,
            )
            .unwrap()
            .jwk
            .clone()
        };
        let token = self.token();
        let mut inputs = vec![
            (
                decode_compact(token.trim_start_matches("Bearer ")).unwrap(),
                jwk(CONSUMER, Relationship::CapabilityInvocation),
            ),
            (
                decode_compact(&self.vp).unwrap(),
                jwk(CONSUMER, Relationship::Authentication),
            ),
        ];
        for vc in &self.vcs {
            inputs.push((
                decode_compact(vc).unwrap(),
                jwk(AUTHORITY, Relationship::AssertionMethod),
            ));
        }
        inputs
    }

    /// (b) The baseline: signing inputs, signatures and ES256 verifiers built once from the same JWKs.
    fn prepared_inputs(&self) -> Vec<Prepared> {
        let token = self.token();
        let compact = [
            token.trim_start_matches("Bearer ").to_owned(),
            self.vp.clone(),
            self.vcs[0].clone(),
            self.vcs[1].clone(),
        ];
        compact
            .iter()
            .zip(self.raw_inputs())
            .map(|(jws, (_, jwk))| {
                let (input, signature) = jws.rsplit_once('.').unwrap();
                let jwk = Jwk::from_map(jwk.as_object().unwrap().clone()).unwrap();
                Prepared {
                    input: input.to_owned(),
                    signature: URL_SAFE_NO_PAD.decode(signature).unwrap(),
                    verifier: Box::new(josekit::jws::ES256.verifier_from_jwk(&jwk).unwrap()),
                }
            })
            .collect()
    }
}

struct Prepared {
    input: String,
    signature: Vec<u8>,
    verifier: Box<dyn JwsVerifier>,
}

fn prepared(inputs: &[Prepared]) {
    for p in inputs {
        p.verifier
            .verify(black_box(p.input.as_bytes()), black_box(&p.signature))
            .unwrap();
    }
}

fn raw(inputs: &[(DecodedJws, Value)]) {
    for (jws, jwk) in inputs {
        verify_with_jwk(black_box(jws), black_box(jwk)).unwrap();
    }
}

fn benches(c: &mut Criterion, setup: &Setup) {
    let replay = InMemoryReplayCache::default();
    c.bench_function("credential_check", |b| {
        b.iter_batched(
            || setup.token(),
            |token| setup.check(&token, &replay),
            BatchSize::SmallInput,
        )
    });
    let inputs = setup.raw_inputs();
    c.bench_function("raw_signatures", |b| b.iter(|| raw(&inputs)));
    let prepared_inputs = setup.prepared_inputs();
    c.bench_function("signatures_with_prepared_keys", |b| {
        b.iter(|| prepared(&prepared_inputs))
    });
}

fn median(mut samples: Vec<StdDuration>) -> StdDuration {
    samples.sort();
    samples[samples.len() / 2]
}

/// Plain medians over the same work, interleaved so both see the same machine state.
fn report(setup: &Setup) {
    const ROUNDS: usize = 2_000;
    let tokens: Vec<String> = (0..ROUNDS).map(|_| setup.token()).collect();
    let replay = InMemoryReplayCache::default();
    let inputs = setup.raw_inputs();
    let prepared_inputs = setup.prepared_inputs();
    // Warm up every path.
    for token in tokens.iter().take(50) {
        setup.check(token, &InMemoryReplayCache::default());
        raw(&inputs);
        prepared(&prepared_inputs);
    }
    let mut check = Vec::with_capacity(ROUNDS);
    let mut signatures = Vec::with_capacity(ROUNDS);
    let mut prepared_keys = Vec::with_capacity(ROUNDS);
    for token in &tokens {
        let t = Instant::now();
        setup.check(token, &replay);
        check.push(t.elapsed());
        let t = Instant::now();
        raw(&inputs);
        signatures.push(t.elapsed());
        let t = Instant::now();
        prepared(&prepared_inputs);
        prepared_keys.push(t.elapsed());
    }
    let check = median(check);
    let signatures = median(signatures);
    let prepared_keys = median(prepared_keys);
    let micros = |d: StdDuration| d.as_secs_f64() * 1e6;
    println!(
        "credential check: p50 {:.1} µs, raw signature verifications (keys parsed): {:.1} µs, ratio {:.2}× (target ≤ 1.5×)",
        micros(check),
        micros(prepared_keys),
        micros(check) / micros(prepared_keys)
    );
    println!(
        "for information: the same signatures converting each JWK on every call (verify_with_jwk): {:.1} µs ({:.2}× the keys-parsed figure)",
        micros(signatures),
        micros(signatures) / micros(prepared_keys)
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let listing = args.iter().any(|a| a == "--list");
    let measuring = args.iter().any(|a| a == "--bench") && !listing;
    let setup = Setup::new();
    // Sanity: the check passes before it is timed.
    setup.check(&setup.token(), &InMemoryReplayCache::default());
    let mut c = Criterion::default().configure_from_args();
    benches(&mut c, &setup);
    c.final_summary();
    if measuring {
        report(&setup);
    }
}
