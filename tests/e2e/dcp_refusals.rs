//! The DCP TCK's verifier rejection cases (IDENTITY-NOTES §1.5), one by one, against a real
//! `caap serve`. The test process plays the caller, "the fake participant": an HTTP server on
//! loopback serving its did:web document, its credential service (which answers each
//! presentation query with whatever the current case scripted, and records the query) and a test
//! issuer's status lists; the test signs the self-issued tokens it sends with DSP requests. Every
//! refusal must answer 401 on the catalog endpoint (503 when a dependency is down), 404 with a
//! `ContractNegotiationError` on a process endpoint, and be logged with its refusal code.

use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use caap_identity::ParticipantKey;
use caap_identity::dcp::PresentationResponseMessage;
use caap_identity::did_doc::{DidDocument, Service};
use caap_identity::did_key::did_key_from_jwk;
use caap_identity::jose::{decode_compact, sign_compact};
use caap_identity::keys::KeySet;
use caap_identity::status::{Bitstring, status_list_credential};
use caap_identity::vc::{
    CredentialFormat, CredentialSchemaRef, NewCredential, NewPresentation, StatusEntry,
    issue_credential, issue_presentation,
};
use chrono::{DateTime, Duration, Utc};
use serde_json::{Map, Value, json};

use crate::identity::did_of;
use crate::support::{Node, Response, Server, request};

/// The built-in schema of caap's MembershipCredential (connector/src/authority.rs).
const MEMBERSHIP_SCHEMA: &str = "https://w3id.org/caap/schemas/v1/MembershipCredential.json";
/// The scope caap must ask the credential service for (the TCK expects exactly this one).
const MEMBERSHIP_SCOPE: &str = "org.eclipse.dspace.dcp.vc.type:MembershipCredential:read";
/// The status list index of every valid credential (its bit is clear).
const GOOD_INDEX: u64 = 3;
/// The status list index whose bit is set, in both the revocation and the suspension list.
const BAD_INDEX: u64 = 7;

/// The caap process under test reads the wall clock: tokens and credentials must be valid by it.
#[allow(
    clippy::disallowed_methods,
    reason = "the caap process under test uses the real clock"
)]
fn now() -> DateTime<Utc> {
    Utc::now()
}

fn uuid() -> String {
    format!("urn:uuid:{}", uuid::Uuid::new_v4())
}

/// A credential issuer with a `did:key` (P-256).
struct Issuer {
    did: String,
    key: ParticipantKey,
}

impl Issuer {
    fn generate() -> Issuer {
        let key = ParticipantKey::generate("pending").unwrap();
        let did = did_key_from_jwk(&key.public_jwk().unwrap()).unwrap();
        let fragment = did.trim_start_matches("did:key:").to_owned();
        Issuer {
            key: key.with_key_id(&format!("{did}#{fragment}")),
            did,
        }
    }

    fn sign(&self, credential: &NewCredential) -> String {
        issue_credential(credential, CredentialFormat::Vc11Jwt, &self.key).unwrap()
    }
}

/// What the credential service answers to the next presentation queries.
enum Answer {
    /// 200 with this PresentationResponseMessage.
    Presentations(Value),
    /// This status, no body.
    Status(u16),
}

/// A presentation query caap sent to the fake participant's credential service.
#[derive(Debug, Clone)]
struct Query {
    authorization: Option<String>,
    body: Value,
}

struct Script {
    answer: Answer,
    queries: Vec<Query>,
}

/// What the fake participant serves besides the credential service.
struct Documents {
    /// `/.well-known/did.json`.
    did: Value,
    /// `/other/did.json`: the document of `did:web:…:other`, carrying the main DID's `id`.
    other: Value,
    /// `/status/1` (revocation) and `/status/2` (suspension), signed by the trusted issuer.
    status: Vec<(String, String)>,
}

/// The caller: its DID, key and HTTP server.
struct Participant {
    did: String,
    key: ParticipantKey,
    base: String,
    script: Arc<Mutex<Script>>,
}

impl Participant {
    fn start(issuer: &Issuer) -> Participant {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let base = format!("http://127.0.0.1:{port}");
        let did = format!("did:web:127.0.0.1%3A{port}");
        let key = ParticipantKey::generate(&format!("{did}#key-1")).unwrap();
        let published = KeySet::new(key.clone()).published().unwrap();
        let document = DidDocument::for_participant(
            &did,
            &published,
            vec![Service::credential_service(&did, &format!("{base}/cs"))],
        );
        let status = [("1", "revocation"), ("2", "suspension")]
            .into_iter()
            .map(|(n, purpose)| {
                let url = format!("{base}/status/{n}");
                let mut bits = Bitstring::new(0);
                bits.set(BAD_INDEX, true).unwrap();
                let list = status_list_credential(
                    &issuer.did,
                    &url,
                    purpose,
                    &bits,
                    now() - Duration::hours(1),
                    Some(now() + Duration::days(1)),
                )
                .unwrap();
                (format!("/status/{n}"), issuer.sign(&list))
            })
            .collect();
        let documents = Arc::new(Documents {
            did: serde_json::to_value(&document).unwrap(),
            other: serde_json::to_value(&document).unwrap(),
            status,
        });
        let script = Arc::new(Mutex::new(Script {
            answer: Answer::Status(500),
            queries: Vec::new(),
        }));
        let s = script.clone();
        std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                HttpServer::new(move || {
                    let documents = documents.clone();
                    let script = s.clone();
                    App::new().default_service(web::to(
                        move |req: HttpRequest, body: web::Bytes| {
                            let documents = documents.clone();
                            let script = script.clone();
                            async move { serve(&req, &body, &documents, &script) }
                        },
                    ))
                })
                .workers(2)
                .listen(listener)
                .unwrap()
                .run()
                .await
                .unwrap();
            });
        });
        Participant {
            did,
            key,
            base,
            script,
        }
    }

    fn answer(&self, answer: Answer) {
        self.script.lock().unwrap().answer = answer;
    }

    fn answer_with(&self, presentations: Vec<Value>) {
        let mut message = PresentationResponseMessage::new(Vec::new());
        message.presentation = presentations;
        self.answer(Answer::Presentations(
            serde_json::to_value(&message).unwrap(),
        ));
    }

    fn queries(&self) -> Vec<Query> {
        self.script.lock().unwrap().queries.clone()
    }

    /// The claims of a valid self-issued token for `audience`, carrying `access` as `token`.
    fn claims(&self, audience: &str, access: &str) -> Value {
        let t = now();
        json!({
            "iss": self.did, "sub": self.did, "aud": audience, "jti": uuid(),
            "iat": t.timestamp(), "nbf": t.timestamp(),
            "exp": (t + Duration::minutes(5)).timestamp(), "token": access,
        })
    }

    /// `Bearer <claims signed with our key>`.
    fn bearer(&self, claims: &Value) -> String {
        bearer(&self.key, claims)
    }

    /// A VC 1.1 presentation of `credentials`, held and signed by us, for `audience`.
    fn presentation(&self, audience: &str, credentials: Vec<String>) -> Value {
        let t = now();
        let p = NewPresentation {
            holder: self.did.clone(),
            credentials,
            audience: Some(audience.to_owned()),
            nonce: None,
            issued_at: t,
            expires_at: t + Duration::minutes(5),
        };
        Value::from(issue_presentation(&p, CredentialFormat::Vc11Jwt, &self.key).unwrap())
    }

    /// A valid MembershipCredential about us from `issuer`, naming the built-in schema and a
    /// clear status list entry.
    fn membership(&self, issuer: &Issuer) -> NewCredential {
        let claims = json!({"memberOf": "Test Federation", "role": "Municipality"});
        let mut c = NewCredential::new(
            &issuer.did,
            "MembershipCredential",
            &self.did,
            claims.as_object().cloned().unwrap(),
            now() - Duration::days(1),
        );
        c.id = Some(uuid());
        c.valid_until = Some(now() + Duration::days(30));
        c.status = vec![StatusEntry::bitstring(
            &format!("{}/status/1", self.base),
            GOOD_INDEX,
            "revocation",
        )];
        c.schemas = vec![CredentialSchemaRef {
            id: MEMBERSHIP_SCHEMA.into(),
            kind: "JsonSchema".into(),
        }];
        c
    }

    /// A valid credential of another type about us from `issuer`.
    fn other(&self, issuer: &Issuer, kind: &str, claims: Value) -> NewCredential {
        let mut c = NewCredential::new(
            &issuer.did,
            kind,
            &self.did,
            claims.as_object().cloned().unwrap(),
            now() - Duration::days(1),
        );
        c.id = Some(uuid());
        c.valid_until = Some(now() + Duration::days(30));
        c
    }
}

fn bearer(key: &ParticipantKey, claims: &Value) -> String {
    format!("Bearer {}", sign_compact(key, Some("JWT"), claims).unwrap())
}

fn serve(
    req: &HttpRequest,
    body: &[u8],
    documents: &Documents,
    script: &Mutex<Script>,
) -> HttpResponse {
    let json = |v: &Value| {
        HttpResponse::Ok()
            .content_type("application/json")
            .body(v.to_string())
    };
    match (req.method().as_str(), req.path()) {
        ("GET", "/.well-known/did.json") => json(&documents.did),
        ("GET", "/other/did.json") => json(&documents.other),
        ("POST", "/cs/presentations/query") => {
            let mut script = script.lock().unwrap();
            script.queries.push(Query {
                authorization: req
                    .headers()
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned),
                body: serde_json::from_slice(body).unwrap_or(Value::Null),
            });
            match &script.answer {
                Answer::Presentations(message) => json(message),
                Answer::Status(status) => {
                    HttpResponse::build(actix_web::http::StatusCode::from_u16(*status).unwrap())
                        .finish()
                }
            }
        }
        ("GET", path) => match documents.status.iter().find(|(p, _)| p == path) {
            Some((_, jwt)) => HttpResponse::Ok()
                .content_type("application/vc+jwt")
                .body(jwt.clone()),
            None => HttpResponse::NotFound().finish(),
        },
        _ => HttpResponse::NotFound().finish(),
    }
}

/// caap with DCP, trusting `issuer` for every type; logs as JSON lines so the refusal codes can
/// be read exactly.
struct Verifier {
    _node: Node,
    server: Server,
    did: String,
    /// The DSP 2025-1 schemas, when `../shared` is at hand.
    schemas: Option<Arc<crate::dsp_schema::DspSchemas>>,
}

impl Verifier {
    fn start(issuer: &Issuer) -> Verifier {
        let node = Node::init_with(
            "Verifierstad",
            &[
                ("dsp.auth.mode", "\"dcp\"".to_owned()),
                ("identity.insecure_did_web_over_http", "true".to_owned()),
                ("identity.status_list_cache_secs", "1".to_owned()),
                (
                    "identity.trusted_issuers",
                    format!("[{{issuer = \"{}\", types = [\"*\"]}}]", issuer.did),
                ),
                ("log.format", "\"json\"".to_owned()),
            ],
        );
        let server = node.start(&[]);
        let did = did_of(&server);
        Verifier {
            _node: node,
            server,
            did,
            schemas: crate::peer::schemas(),
        }
    }

    fn catalog(&self, authorization: &str) -> Response {
        self.catalog_with(Some(authorization))
    }

    fn catalog_with(&self, authorization: Option<&str>) -> Response {
        request(
            "POST",
            &format!("{}/dsp/catalog/request", self.server.dsp),
            authorization,
            Some(
                &json!({"@context": ["https://w3id.org/dspace/2025/1/context.jsonld"],
                    "@type": "CatalogRequestMessage"})
                .to_string(),
            ),
            "application/json",
        )
    }

    fn negotiation(&self, authorization: &str) -> Response {
        request(
            "GET",
            &format!(
                "{}/dsp/negotiations/urn:uuid:no-such-process",
                self.server.dsp
            ),
            Some(authorization),
            None,
            "application/json",
        )
    }

    /// A ContractRequestMessage for an offer caap does not have (the caller is refused first).
    fn negotiation_request(&self, authorization: &str) -> Response {
        let message = json!({
            "@context": ["https://w3id.org/dspace/2025/1/context.jsonld"],
            "@type": "ContractRequestMessage",
            "consumerPid": "urn:uuid:consumer-1",
            "callbackAddress": "http://127.0.0.1:9/callback",
            "offer": {"@id": "urn:uuid:offer-1", "@type": "Offer", "target": "urn:uuid:asset-1"},
        });
        request(
            "POST",
            &format!("{}/dsp/negotiations/request", self.server.dsp),
            Some(authorization),
            Some(&message.to_string()),
            "application/json",
        )
    }

    /// How many output lines the process has written so far.
    fn mark(&self) -> usize {
        self.server.output.lock().unwrap().len()
    }

    /// Waits until the process has logged a DCP refusal with `code` after `mark`.
    fn assert_logged(&self, mark: usize, code: &str, case: &str) {
        let found = || {
            let lines = self.server.output.lock().unwrap();
            lines.iter().skip(mark).any(|line| {
                serde_json::from_str::<Value>(line).is_ok_and(|l| {
                    l["fields"]["message"] == "DCP: caller refused" && l["fields"]["code"] == code
                })
            })
        };
        let mut waited = 0;
        while !found() {
            assert!(
                waited < 250,
                "{case}: caap did not log the refusal code={code}; its output since the case:\n{}",
                self.server.output.lock().unwrap()[mark..].join("\n")
            );
            std::thread::sleep(StdDuration::from_millis(20));
            waited += 1;
        }
    }

    /// The catalog endpoint answers `status` to `authorization`, and the refusal is logged with
    /// `code`.
    fn assert_catalog_refused(&self, case: &str, authorization: &str, status: u16, code: &str) {
        let mark = self.mark();
        let r = self.catalog(authorization);
        assert_eq!(
            r.status, status,
            "{case}: the catalog endpoint must answer {status} ({code}); it answered {}",
            r.body
        );
        if let Some(s) = &self.schemas {
            s.assert_valid("catalog/catalog-error-schema.json", &r.body);
        }
        self.assert_logged(mark, code, case);
    }

    /// A process endpoint answers 404 with a `ContractNegotiationError` to `authorization`, and
    /// the refusal is logged with `code`.
    fn assert_process_refused(&self, case: &str, authorization: &str, code: &str) {
        let mark = self.mark();
        let r = self.negotiation(authorization);
        assert_eq!(
            r.status, 404,
            "{case}: a process endpoint must answer 404 ({code}); it answered {}",
            r.body
        );
        assert_eq!(
            r.body["@type"], "ContractNegotiationError",
            "{case}: the 404 must carry a DSP ContractNegotiationError: {}",
            r.body
        );
        crate::peer::validate(self.schemas.as_deref(), &r.body);
        self.assert_logged(mark, code, case);
    }
}

struct World {
    issuer: Issuer,
    stranger: Issuer,
    caller: Participant,
    caap: Verifier,
}

fn world() -> World {
    let issuer = Issuer::generate();
    let stranger = Issuer::generate();
    let caller = Participant::start(&issuer);
    let caap = Verifier::start(&issuer);
    World {
        issuer,
        stranger,
        caller,
        caap,
    }
}

impl World {
    /// Scripts the credential service to present a valid MembershipCredential.
    fn answer_valid(&self) {
        let c = self.issuer.sign(&self.caller.membership(&self.issuer));
        self.caller
            .answer_with(vec![self.caller.presentation(&self.caap.did, vec![c])]);
    }

    /// A fresh, valid self-issued token for caap.
    fn valid_bearer(&self) -> String {
        self.caller.bearer(
            &self
                .caller
                .claims(&self.caap.did, "access-token-of-the-caller"),
        )
    }

    /// A valid token whose claims `edit` changes, signed with the caller's key.
    fn bearer_with(&self, edit: impl FnOnce(&mut Map<String, Value>)) -> String {
        let mut claims = self
            .caller
            .claims(&self.caap.did, "access-token-of-the-caller");
        edit(claims.as_object_mut().unwrap());
        self.caller.bearer(&claims)
    }

    /// A presentation case: the credential service answers `presentations`; the catalog endpoint
    /// answers `status` and, for a refusal, a process endpoint 404, both logged with `code`.
    fn presentation_case(&self, case: &str, presentations: Vec<Value>, code: &str) {
        self.caller.answer_with(presentations);
        self.caap
            .assert_catalog_refused(case, &self.valid_bearer(), 401, code);
        self.caap
            .assert_process_refused(case, &self.valid_bearer(), code);
    }

    /// A presentation case with one credential, `edit`ed from a valid MembershipCredential, and
    /// signed by `issuer`.
    fn credential_case(
        &self,
        case: &str,
        issuer: &Issuer,
        edit: impl FnOnce(&mut NewCredential),
        code: &str,
    ) {
        let mut c = self.caller.membership(issuer);
        edit(&mut c);
        let vp = self
            .caller
            .presentation(&self.caap.did, vec![issuer.sign(&c)]);
        self.presentation_case(case, vec![vp], code);
    }
}

impl World {
    /// A credential case whose verification cannot be completed: 503 on the catalog endpoint.
    fn credential_case_unavailable(
        &self,
        case: &str,
        edit: impl FnOnce(&mut NewCredential),
        code: &str,
    ) {
        let mut c = self.caller.membership(&self.issuer);
        edit(&mut c);
        let vp = self
            .caller
            .presentation(&self.caap.did, vec![self.issuer.sign(&c)]);
        self.caller.answer_with(vec![vp]);
        self.caap
            .assert_catalog_refused(case, &self.valid_bearer(), 503, code);
    }
}

#[test]
fn dcp_self_issued_token_refusals_answer_401_and_404_with_their_codes() {
    let w = world();
    w.answer_valid();
    let caap_did = w.caap.did.clone();

    // The control: a valid token passes, so each refusal below is about the one change.
    let r = w.caap.catalog(&w.valid_bearer());
    assert_eq!(r.status, 200, "a valid token must pass: {}", r.body);

    // (case, Authorization header, refusal code)
    let mut cases: Vec<(&str, String, &str)> = Vec::new();
    let raw = w.valid_bearer().trim_start_matches("Bearer ").to_owned();
    cases.push((
        "presentationResponse_rejectMissingBearerPrefix",
        raw,
        "not_bearer",
    ));
    cases.push((
        "idTokenInvalidIssuerSub (iss ≠ sub)",
        w.bearer_with(|c| {
            c.insert("iss".into(), Value::from(w.stranger.did.as_str()));
        }),
        "iss_not_sub",
    ));
    cases.push((
        "idTokenIncorrectAud",
        w.bearer_with(|c| {
            c.insert("aud".into(), Value::from("did:web:someone-else.example"));
        }),
        "wrong_audience",
    ));
    // sub names a path DID whose document carries the main DID as its id.
    let other = format!("{}:other", w.caller.did);
    let other_key = w.caller.key.with_key_id(&format!("{other}#key-1"));
    cases.push((
        "idTokenIncorrectSub (sub ≠ the DID document's id)",
        bearer(
            &other_key,
            &json!({
                "iss": other, "sub": other, "aud": caap_did, "jti": uuid(),
                "iat": now().timestamp(), "exp": (now() + Duration::minutes(5)).timestamp(),
                "token": "access-token-of-the-caller",
            }),
        ),
        "sub_not_did_document",
    ));
    // A token for the caller signed with another participant's key (kid names the stranger).
    cases.push((
        "idTokenInvalidSub (signed by another DID's key)",
        bearer(
            &w.stranger.key,
            &w.caller.claims(&caap_did, "access-token-of-the-caller"),
        ),
        "signed_by_another_did",
    ));
    cases.push((
        "idTokenNbfInFuture",
        w.bearer_with(|c| {
            c.insert(
                "nbf".into(),
                Value::from((now() + Duration::minutes(5)).timestamp()),
            );
            c.insert(
                "exp".into(),
                Value::from((now() + Duration::minutes(8)).timestamp()),
            );
        }),
        "nbf_in_future",
    ));
    cases.push((
        "idTokenExpired",
        w.bearer_with(|c| {
            let iat = (now() - Duration::minutes(10)).timestamp();
            c.insert("iat".into(), Value::from(iat));
            c.insert("nbf".into(), Value::from(iat));
            c.insert(
                "exp".into(),
                Value::from((now() - Duration::minutes(5)).timestamp()),
            );
        }),
        "expired",
    ));
    cases.push((
        "idTokenNoTokenClaim",
        w.bearer_with(|c| {
            c.remove("token");
        }),
        "missing_token_claim",
    ));
    // A key that is not in the DID document, under the caller's key id.
    let forged = ParticipantKey::generate(&format!("{}#key-1", w.caller.did)).unwrap();
    cases.push((
        "token signed with a key not in the DID document",
        bearer(
            &forged,
            &w.caller.claims(&caap_did, "access-token-of-the-caller"),
        ),
        "bad_signature",
    ));

    for (case, header, code) in &cases {
        w.caap.assert_catalog_refused(case, header, 401, code);
        w.caap.assert_process_refused(case, header, code);
    }

    // No Authorization header at all.
    let mark = w.caap.mark();
    let r = w.caap.catalog_with(None);
    assert_eq!(r.status, 401, "no Authorization header: {}", r.body);
    w.caap
        .assert_logged(mark, "missing_authorization", "no Authorization header");

    // The request endpoint of the negotiation protocol refuses the same way (404).
    let (case, header, code) = cases.iter().find(|c| c.2 == "expired").unwrap();
    let mark = w.caap.mark();
    let r = w.caap.negotiation_request(header);
    assert_eq!(
        r.status, 404,
        "{case}: POST /dsp/negotiations/request must answer 404: {}",
        r.body
    );
    assert_eq!(r.body["@type"], "ContractNegotiationError", "{}", r.body);
    crate::peer::validate(w.caap.schemas.as_deref(), &r.body);
    w.caap.assert_logged(mark, code, case);

    // idTokenJtiUsedTwice: the first use passes, every later one is refused.
    let once = w.valid_bearer();
    let r = w.caap.catalog(&once);
    assert_eq!(r.status, 200, "jti used once must pass: {}", r.body);
    w.caap
        .assert_catalog_refused("idTokenJtiUsedTwice", &once, 401, "jti_replayed");
    w.caap
        .assert_process_refused("idTokenJtiUsedTwice", &once, "jti_replayed");
}

#[test]
fn dcp_presentation_refusals_answer_401_and_404_with_their_codes() {
    let w = world();
    let caap_did = w.caap.did.clone();
    let access = "access-token-of-the-caller-for-the-success-case";

    // verifier_05_01_presentationResponse_success, and presentationResponse_endpointDiscovery:
    // caap finds the credential service in our DID document and asks for the membership with
    // its own token carrying our access token.
    w.answer_valid();
    let before = w.caller.queries().len();
    let r = w
        .caap
        .catalog(&w.caller.bearer(&w.caller.claims(&caap_did, access)));
    assert_eq!(r.status, 200, "success: {}", r.body);
    let queries = w.caller.queries();
    assert_eq!(queries.len(), before + 1, "success: one presentation query");
    let query = &queries[before];
    assert_eq!(
        query.body["type"], "PresentationQueryMessage",
        "{:?}",
        query
    );
    assert!(
        query.body["scope"]
            .as_array()
            .is_some_and(|s| s.iter().any(|s| s == MEMBERSHIP_SCOPE)),
        "success: caap must ask for {MEMBERSHIP_SCOPE}: {}",
        query.body
    );
    let token = query
        .authorization
        .as_deref()
        .and_then(|a| a.strip_prefix("Bearer "))
        .expect("caap's query carries a Bearer token");
    let token = decode_compact(token).unwrap().payload;
    assert_eq!(token["iss"], caap_did.as_str(), "caap's token: {token}");
    assert_eq!(token["sub"], caap_did.as_str(), "caap's token: {token}");
    assert_eq!(token["aud"], w.caller.did.as_str(), "caap's token: {token}");
    assert_eq!(
        token["token"], access,
        "caap's token must carry our access token: {token}"
    );

    // verifier_05_04_02_02_tooManyCredentials: extra credentials are accepted.
    let extra = vec![
        w.issuer.sign(&w.caller.membership(&w.issuer)),
        w.issuer.sign(&w.caller.other(
            &w.issuer,
            "MunicipalityCredential",
            json!({"role": "Municipality", "municipalityCode": "1281", "country": "SE"}),
        )),
        w.issuer.sign(&w.caller.other(
            &w.issuer,
            "FoodInspectionCredential",
            json!({"licence": "FI-123"}),
        )),
    ];
    w.caller
        .answer_with(vec![w.caller.presentation(&caap_did, extra)]);
    let r = w.caap.catalog(&w.valid_bearer());
    assert_eq!(r.status, 200, "tooManyCredentials must pass: {}", r.body);

    // The vc20-bssl/jwt profile: a VC 2.0 presentation of a VC 2.0 credential.
    let c = issue_credential(
        &w.caller.membership(&w.issuer),
        CredentialFormat::Vc20Jose,
        &w.issuer.key,
    )
    .unwrap();
    let t = now();
    let vp = NewPresentation {
        holder: w.caller.did.clone(),
        credentials: vec![c],
        audience: Some(caap_did.clone()),
        nonce: None,
        issued_at: t,
        expires_at: t + Duration::minutes(5),
    };
    let vp = issue_presentation(&vp, CredentialFormat::Vc20Jose, &w.caller.key).unwrap();
    w.caller.answer_with(vec![Value::from(vp)]);
    let r = w.caap.catalog(&w.valid_bearer());
    assert_eq!(r.status, 200, "a VC 2.0 presentation must pass: {}", r.body);

    // The presentation is signed by another DID than its holder (the stranger's key).
    let t = now();
    let forged = json!({
        "iss": w.caller.did, "sub": w.caller.did, "aud": caap_did, "jti": uuid(),
        "iat": t.timestamp(), "nbf": t.timestamp(), "exp": (t + Duration::minutes(5)).timestamp(),
        "vp": {"@context": ["https://www.w3.org/2018/credentials/v1"],
            "type": ["VerifiablePresentation"], "holder": w.caller.did,
            "verifiableCredential": [w.issuer.sign(&w.caller.membership(&w.issuer))]},
    });
    w.presentation_case(
        "VP signer is not the holder",
        vec![Value::from(
            sign_compact(&w.stranger.key, Some("JWT"), &forged).unwrap(),
        )],
        "vp_signer_not_holder",
    );

    // verifier_05_04_02_01_tooFewCredentials: another type than asked for.
    let municipality = w.issuer.sign(&w.caller.other(
        &w.issuer,
        "MunicipalityCredential",
        json!({"role": "Municipality", "municipalityCode": "1281", "country": "SE"}),
    ));
    w.presentation_case(
        "tooFewCredentials (a different type)",
        vec![w.caller.presentation(&caap_did, vec![municipality])],
        "missing_credential",
    );

    // verifier_05_04_02_03_emptyPresentations
    w.presentation_case("emptyPresentations", vec![], "empty_presentations");

    // verifier_05_04_02_04_emptyCredentials
    w.presentation_case(
        "emptyCredentials",
        vec![w.caller.presentation(&caap_did, vec![])],
        "missing_credential",
    );

    // verifier_05_04_03_holderNotEqualSubjectId
    let someone = w.stranger.did.clone();
    w.credential_case(
        "holderNotEqualSubjectId",
        &w.issuer,
        |c| {
            c.subject.insert("id".into(), Value::from(someone));
        },
        "holder_not_subject",
    );

    // verifier_05_04_03_07_expiredCredential
    w.credential_case(
        "expiredCredential",
        &w.issuer,
        |c| {
            c.valid_from = now() - Duration::days(30);
            c.valid_until = Some(now() - Duration::hours(1));
        },
        "credential_expired",
    );

    // verifier_05_04_03_06_notYetValidCredential
    w.credential_case(
        "notYetValidCredential",
        &w.issuer,
        |c| c.valid_from = now() + Duration::hours(1),
        "credential_not_yet_valid",
    );

    // verifier_05_04_03_06_credentialRevoked: the revocation list has the credential's bit set.
    let revocation = format!("{}/status/1", w.caller.base);
    w.credential_case(
        "credentialRevoked",
        &w.issuer,
        |c| c.status = vec![StatusEntry::bitstring(&revocation, BAD_INDEX, "revocation")],
        "credential_revoked",
    );

    // The same for a suspension list.
    let suspension = format!("{}/status/2", w.caller.base);
    w.credential_case(
        "credentialSuspended",
        &w.issuer,
        |c| c.status = vec![StatusEntry::bitstring(&suspension, BAD_INDEX, "suspension")],
        "credential_suspended",
    );

    // An issuer caap does not trust (its status list would be its own: none here).
    w.credential_case(
        "untrusted issuer",
        &w.stranger,
        |c| c.status.clear(),
        "untrusted_issuer",
    );

    // verifier_x_x_invalidCredentialSchema: the built-in MembershipCredential schema requires
    // `memberOf`.
    w.credential_case(
        "invalidCredentialSchema",
        &w.issuer,
        |c| {
            c.subject.remove("memberOf");
        },
        "schema_violation",
    );

    // A credential whose signature is not its issuer's (signed by the stranger under the
    // trusted issuer's key id).
    let mut c = w.caller.membership(&w.issuer);
    c.status.clear();
    let impostor = Issuer {
        did: w.issuer.did.clone(),
        key: w.stranger.key.with_key_id(w.issuer.key.key_id().unwrap()),
    };
    w.presentation_case(
        "credential with a forged issuer signature",
        vec![w.caller.presentation(&caap_did, vec![impostor.sign(&c)])],
        "credential_invalid",
    );

    // A presentation addressed to another verifier.
    let valid = w.issuer.sign(&w.caller.membership(&w.issuer));
    w.presentation_case(
        "presentation for another audience",
        vec![
            w.caller
                .presentation("did:web:another-verifier.example", vec![valid]),
        ],
        "vp_wrong_audience",
    );

    // The credential service answers something that is not a PresentationResponseMessage.
    w.caller
        .answer(Answer::Presentations(json!({"hello": "world"})));
    w.caap.assert_catalog_refused(
        "not a PresentationResponseMessage",
        &w.valid_bearer(),
        401,
        "presentation_invalid",
    );

    // A status list that cannot be fetched: unknown status, not the caller's fault (503).
    let missing = format!("{}/status/9", w.caller.base);
    w.credential_case_unavailable(
        "status list unreachable",
        |c| c.status = vec![StatusEntry::bitstring(&missing, GOOD_INDEX, "revocation")],
        "status_unknown",
    );

    // The credential service fails: caap cannot verify right now (503, not 401).
    w.caller.answer(Answer::Status(500));
    w.caap.assert_catalog_refused(
        "the credential service answers 500",
        &w.valid_bearer(),
        503,
        "credential_service_unavailable",
    );
    let mark = w.caap.mark();
    let r = w.caap.negotiation(&w.valid_bearer());
    assert_eq!(
        r.status, 503,
        "the credential service answers 500: a process endpoint must answer 503: {}",
        r.body
    );
    assert_eq!(r.body["@type"], "ContractNegotiationError", "{}", r.body);
    w.caap.assert_logged(
        mark,
        "credential_service_unavailable",
        "the credential service answers 500 (process endpoint)",
    );

    // And after all this, a valid presentation still passes.
    w.answer_valid();
    let r = w.caap.catalog(&w.valid_bearer());
    assert_eq!(
        r.status, 200,
        "a valid presentation after the refusals: {}",
        r.body
    );
}
