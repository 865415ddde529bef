//! Contract negotiation end to end: every CN (caap as provider) and CN_C (caap as consumer) scenario of the
//! DSP TCK against a scripted counterparty, with every message validated against the official schemas.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::peer::{CONTEXT, PEER_ID, Peer, validate};
use crate::support::{Node, Server, TOKEN};

/// Polls `f` until it returns `Some`, for at most `secs` seconds.
pub fn eventually<T>(secs: u64, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            start.elapsed() < Duration::from_secs(secs),
            "timed out after {secs} s waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A step of a scenario: who acts, which message, and the state both sides must then be in.
#[derive(Debug, Clone, Copy)]
enum S {
    /// The peer sends this message; caap accepts it.
    Peer(&'static str, &'static str),
    /// caap takes this step (through the management API) and sends the message.
    Caap(&'static str, &'static str),
    /// The peer sends this message; caap must refuse it with a 4xx and stay where it is.
    Refused(&'static str),
}
use S::{Caap as U, Peer as P, Refused as X};

const REQ: &str = "REQUESTED";
const OFF: &str = "OFFERED";
const ACC: &str = "ACCEPTED";
const AGR: &str = "AGREED";
const VER: &str = "VERIFIED";
const FIN: &str = "FINALIZED";
const TER: &str = "TERMINATED";

const OFFER_ID: &str = "urn:tck:offer";

/// caap as provider (the TCK's CN tests).
const CN: &[(&str, &[S])] = &[
    (
        "CN:01-01",
        &[P("request", REQ), U("offer", OFF), P("terminate", TER)],
    ),
    (
        "CN:01-02",
        &[
            P("request", REQ),
            U("offer", OFF),
            P("counter-request", REQ),
            U("terminate", TER),
        ],
    ),
    (
        "CN:01-03",
        &[
            P("request", REQ),
            U("offer", OFF),
            P("accept", ACC),
            U("agree", AGR),
            P("verify", VER),
            U("finalize", FIN),
        ],
    ),
    (
        "CN:01-04",
        &[
            P("request", REQ),
            U("agree", AGR),
            P("verify", VER),
            U("finalize", FIN),
        ],
    ),
    ("CN:02-01", &[P("request", REQ), U("terminate", TER)]),
    ("CN:02-02", &[P("request", REQ), P("terminate", TER)]),
    (
        "CN:02-03",
        &[P("request", REQ), U("agree", AGR), P("terminate", TER)],
    ),
    (
        "CN:02-04",
        &[P("request", REQ), U("offer", OFF), P("terminate", TER)],
    ),
    (
        "CN:02-05",
        &[P("request", REQ), U("offer", OFF), U("terminate", TER)],
    ),
    (
        "CN:02-06",
        &[
            P("request", REQ),
            U("offer", OFF),
            P("accept", ACC),
            U("terminate", TER),
        ],
    ),
    (
        "CN:02-07",
        &[
            P("request", REQ),
            U("agree", AGR),
            P("verify", VER),
            U("terminate", TER),
        ],
    ),
    (
        "CN:03-01",
        &[
            P("request", REQ),
            U("agree", AGR),
            P("verify", VER),
            U("finalize", FIN),
            X("terminate"),
        ],
    ),
    (
        "CN:03-02",
        &[P("request", REQ), U("offer", OFF), X("verify")],
    ),
    (
        "CN:03-03",
        &[
            P("request", REQ),
            U("offer", OFF),
            P("accept", ACC),
            X("verify"),
        ],
    ),
    (
        "CN:03-04",
        &[
            P("request", REQ),
            U("offer", OFF),
            P("counter-request", REQ),
            X("counter-request"),
        ],
    ),
];

/// caap as consumer (the TCK's CN_C tests); each starts with caap's request.
const CN_C: &[(&str, &[S])] = &[
    (
        "CN_C:01-01",
        &[
            U("request", REQ),
            P("offer", OFF),
            U("accept", ACC),
            P("agree", AGR),
            U("verify", VER),
            P("finalize", FIN),
        ],
    ),
    (
        "CN_C:01-02",
        &[
            U("request", REQ),
            P("offer", OFF),
            U("counter-offer", REQ),
            P("terminate", TER),
        ],
    ),
    (
        "CN_C:01-03",
        &[U("request", REQ), P("offer", OFF), U("terminate", TER)],
    ),
    (
        "CN_C:01-04",
        &[
            U("request", REQ),
            P("agree", AGR),
            U("verify", VER),
            P("finalize", FIN),
        ],
    ),
    ("CN_C:02-01", &[U("request", REQ), P("terminate", TER)]),
    ("CN_C:02-02", &[U("request", REQ), U("terminate", TER)]),
    (
        "CN_C:02-03",
        &[U("request", REQ), P("agree", AGR), U("terminate", TER)],
    ),
    (
        "CN_C:02-04",
        &[U("request", REQ), P("offer", OFF), P("terminate", TER)],
    ),
    (
        "CN_C:02-05",
        &[
            U("request", REQ),
            P("offer", OFF),
            U("accept", ACC),
            P("terminate", TER),
        ],
    ),
    (
        "CN_C:02-06",
        &[
            U("request", REQ),
            P("agree", AGR),
            U("verify", VER),
            P("terminate", TER),
        ],
    ),
    ("CN_C:03-01", &[U("request", REQ), X("finalize")]),
    (
        "CN_C:03-02",
        &[U("request", REQ), P("offer", OFF), X("agree")],
    ),
    (
        "CN_C:03-03",
        &[U("request", REQ), P("offer", OFF), X("finalize")],
    ),
    (
        "CN_C:03-04",
        &[
            U("request", REQ),
            P("offer", OFF),
            U("accept", ACC),
            X("finalize"),
        ],
    ),
    (
        "CN_C:03-05",
        &[
            U("request", REQ),
            P("offer", OFF),
            U("accept", ACC),
            X("offer"),
        ],
    ),
    (
        "CN_C:03-06",
        &[
            U("request", REQ),
            P("offer", OFF),
            U("accept", ACC),
            P("agree", AGR),
            X("finalize"),
        ],
    ),
];

/// The settings a test connector gets: the peer's token, its own outbound token, fast retries, and `extra`.
pub fn peer_settings(extra: &[(&str, &str)]) -> Vec<(&'static str, String)> {
    let mut out = vec![
        (
            "dsp.auth.tokens",
            format!("[{{token = \"{TOKEN}\", participant = \"{PEER_ID}\"}}]"),
        ),
        (
            "dsp.auth.outbound_token",
            "\"caap-outbound-token-0001\"".into(),
        ),
        ("negotiation.retry_base_ms", "20".into()),
    ];
    for (k, v) in extra {
        let key: &'static str = Box::leak(format!("negotiation.{k}").into_boxed_str());
        out.push((key, (*v).to_owned()));
    }
    out
}

/// Publishes one asset with an offer under a use-anything policy; returns the asset id.
pub fn publish_offer(server: &Server, offer_id: &str, approval: &str) -> String {
    let city = &caap_catalog::samples::CITIES[0];
    let asset = caap_catalog::samples::assets(city, "http://127.0.0.1:9")
        .into_iter()
        .next()
        .unwrap();
    let r = server.api(
        "POST",
        "/api/v1/policies",
        Some(&json!({"id": "use-anything", "policy": {"@type": "Set", "permission": [{"action": "use"}]}})),
    );
    assert!(r.status == 201 || r.status == 409, "{}", r.body);
    let r = server.api(
        "POST",
        "/api/v1/assets",
        Some(&serde_json::to_value(&asset).unwrap()),
    );
    assert!(r.status == 201 || r.status == 409, "{}", r.body);
    let r = server.api(
        "POST",
        "/api/v1/offers",
        Some(
            &json!({"id": offer_id, "assets": [asset.id], "accessPolicy": "use-anything",
            "contractPolicy": "use-anything", "approval": approval}),
        ),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    asset.id
}

fn offer(target: &str) -> Value {
    json!({"@id": OFFER_ID, "@type": "Offer", "target": target, "permission": [{"action": "use"}]})
}

/// The pids of one scenario run.
struct Run<'a> {
    case: &'a str,
    caap: &'a Server,
    caap_id: String,
    peer: &'a Peer,
    /// caap's role: "provider" or "consumer".
    role: &'static str,
    provider_pid: String,
    consumer_pid: String,
    target: String,
}

impl Run<'_> {
    fn ours(&self) -> &str {
        if self.role == "provider" {
            &self.provider_pid
        } else {
            &self.consumer_pid
        }
    }

    /// The message the peer sends for `step`, and the path (under caap's DSP base) it goes to.
    fn peer_message(&self, step: &str) -> (String, Value) {
        let (p, c) = (&self.provider_pid, &self.consumer_pid);
        let ours = self.ours();
        let base = |t: &str| json!({"@context": [CONTEXT], "@type": t, "providerPid": p, "consumerPid": c});
        let with = |mut v: Value, k: &str, x: Value| {
            v[k] = x;
            v
        };
        match step {
            "request" => (
                "negotiations/request".into(),
                json!({"@context": [CONTEXT], "@type": "ContractRequestMessage", "consumerPid": c,
                    "offer": offer(&self.target), "callbackAddress": self.peer.base}),
            ),
            "counter-request" => (
                format!("negotiations/{ours}/request"),
                with(base("ContractRequestMessage"), "offer", offer(&self.target)),
            ),
            "accept" => (
                format!("negotiations/{ours}/events"),
                with(
                    base("ContractNegotiationEventMessage"),
                    "eventType",
                    json!("ACCEPTED"),
                ),
            ),
            "verify" => (
                format!("negotiations/{ours}/agreement/verification"),
                base("ContractAgreementVerificationMessage"),
            ),
            "offer" => (
                format!("negotiations/{ours}/offers"),
                with(base("ContractOfferMessage"), "offer", offer(&self.target)),
            ),
            "agree" => (
                format!("negotiations/{ours}/agreement"),
                with(
                    base("ContractAgreementMessage"),
                    "agreement",
                    json!({"@id": format!("urn:uuid:agreement-{}", c.trim_start_matches("urn:uuid:")),
                        "@type": "Agreement", "target": self.target, "assigner": PEER_ID,
                        "assignee": self.caap_id, "timestamp": "2026-11-22T10:00:00Z",
                        "permission": [{"action": "use"}]}),
                ),
            ),
            "finalize" => (
                format!("negotiations/{ours}/events"),
                with(
                    base("ContractNegotiationEventMessage"),
                    "eventType",
                    json!("FINALIZED"),
                ),
            ),
            "terminate" => (
                format!("negotiations/{ours}/termination"),
                with(
                    with(
                        base("ContractNegotiationTerminationMessage"),
                        "code",
                        json!("tck"),
                    ),
                    "reason",
                    json!(["the scripted counterparty ends it"]),
                ),
            ),
            other => panic!("no peer step {other}"),
        }
    }

    /// The message type caap sends for its `step`.
    fn sent_type(step: &str) -> &'static str {
        match step {
            "request" | "counter-offer" => "ContractRequestMessage",
            "offer" => "ContractOfferMessage",
            "accept" | "finalize" => "ContractNegotiationEventMessage",
            "agree" => "ContractAgreementMessage",
            "verify" => "ContractAgreementVerificationMessage",
            "terminate" => "ContractNegotiationTerminationMessage",
            other => panic!("no caap step {other}"),
        }
    }

    fn caap_state(&self) -> String {
        self.peer.state(self.caap, self.ours())
    }

    fn wait_state(&self, want: &str) {
        eventually(10, &format!("{}: caap in {want}", self.case), || {
            (self.caap_state() == want).then_some(())
        });
    }

    fn step(&mut self, s: S) {
        match s {
            S::Peer(step, want) => {
                let (path, body) = self.peer_message(step);
                let r = self.peer.post(self.caap, &path, &body);
                assert!(
                    r.status == 200 || r.status == 201,
                    "{}: caap refused the peer's {step}: {} {}",
                    self.case,
                    r.status,
                    r.body
                );
                if step == "request" {
                    assert_eq!(
                        r.status, 201,
                        "{}: an initial request answers 201",
                        self.case
                    );
                    self.provider_pid = r.body["providerPid"].as_str().unwrap().to_owned();
                    assert_eq!(r.body["state"], REQ);
                }
                assert_eq!(
                    self.caap_state(),
                    want,
                    "{}: after the peer's {step}",
                    self.case
                );
            }
            S::Caap(step, want) => {
                if step == "request" {
                    let r = self.caap.api(
                        "POST",
                        "/api/v1/negotiations",
                        Some(&json!({"counterPartyAddress": self.peer.base, "counterPartyId": PEER_ID,
                            "offer": offer(&self.target), "manual": true})),
                    );
                    assert_eq!(r.status, 201, "{}: {}", self.case, r.body);
                    self.consumer_pid = r.body["id"].as_str().unwrap().to_owned();
                    let got = self.peer.expect("ContractRequestMessage");
                    assert!(got.path.ends_with("/negotiations/request"), "{}", got.path);
                    assert_eq!(got.body["consumerPid"], self.consumer_pid.as_str());
                    assert_eq!(
                        got.authorization.as_deref(),
                        Some("Bearer caap-outbound-token-0001")
                    );
                    self.provider_pid = format!(
                        "urn:uuid:peer-{}",
                        self.consumer_pid.trim_start_matches("urn:uuid:")
                    );
                    self.wait_state(want);
                    return;
                }
                let body = match step {
                    "offer" | "counter-offer" => Some(json!({"offer": offer(&self.target)})),
                    "terminate" => Some(json!({"code": "by-hand", "reason": "the test ends it"})),
                    _ => None,
                };
                let r = self.caap.api(
                    "POST",
                    &format!("/api/v1/negotiations/{}/{step}", self.ours()),
                    body.as_ref(),
                );
                assert_eq!(r.status, 200, "{}: caap's {step}: {}", self.case, r.body);
                let got = self.peer.expect(Self::sent_type(step));
                assert_eq!(
                    got.body["providerPid"],
                    self.provider_pid.as_str(),
                    "{}",
                    self.case
                );
                if step != "request" {
                    assert_eq!(
                        got.body["consumerPid"],
                        self.consumer_pid.as_str(),
                        "{}",
                        self.case
                    );
                }
                if step == "agree" {
                    assert!(
                        got.body["https://w3id.org/caap/v1#agreementSignature"]["jws"].is_string(),
                        "{}: caap's agreement is signed",
                        self.case
                    );
                    assert_eq!(got.body["agreement"]["assignee"], PEER_ID);
                    // caap names its dataset by its IRI (`caap_catalog::iri`).
                    let dsp = format!("{}/dsp", self.caap.dsp);
                    assert_eq!(
                        got.body["agreement"]["target"],
                        caap_catalog::iri::Namespace::new(&dsp).absolute_dataset(&self.target)
                    );
                }
                if step == "terminate" {
                    assert_eq!(got.body["reason"], json!(["the test ends it"]));
                }
                self.wait_state(want);
            }
            S::Refused(step) => {
                let before = self.caap_state();
                let (path, body) = self.peer_message(step);
                let r = self.peer.post(self.caap, &path, &body);
                assert!(
                    (400..500).contains(&r.status) && r.status != 404,
                    "{}: the peer's {step} in {before} must get a 4xx (not 404), got {} {}",
                    self.case,
                    r.status,
                    r.body
                );
                assert_eq!(r.body["@type"], "ContractNegotiationError", "{}", self.case);
                assert!(
                    r.body["reason"][0].as_str().unwrap().contains(&before),
                    "{}: the reason names the state: {}",
                    self.case,
                    r.body
                );
                assert_eq!(
                    self.caap_state(),
                    before,
                    "{}: a refused message changes nothing",
                    self.case
                );
            }
        }
    }
}

fn caap_for_scenarios() -> (Node, Server, String) {
    let node = Node::init_with(
        "Scenario city",
        &peer_settings(&[("require_signed_agreements", "false")]),
    );
    let server = node.start(&[]);
    let me = server.api("GET", "/api/v1/participant", None).body["participantId"]
        .as_str()
        .unwrap()
        .to_owned();
    (node, server, me)
}

#[test]
fn every_cn_scenario_with_caap_as_provider() {
    let (_node, caap, me) = caap_for_scenarios();
    let peer = Peer::start();
    let target = publish_offer(&caap, OFFER_ID, "stepwise");
    for (case, steps) in CN {
        println!("{case}");
        let mut run = Run {
            case,
            caap: &caap,
            caap_id: me.clone(),
            peer: &peer,
            role: "provider",
            provider_pid: String::new(),
            consumer_pid: format!("urn:uuid:{}", uuid::Uuid::new_v4()),
            target: target.clone(),
        };
        for s in *steps {
            run.step(*s);
        }
        peer.quiet_for(Duration::from_millis(50));
    }
}

#[test]
fn every_cn_c_scenario_with_caap_as_consumer() {
    let (_node, caap, me) = caap_for_scenarios();
    let peer = Peer::start();
    for (case, steps) in CN_C {
        println!("{case}");
        let mut run = Run {
            case,
            caap: &caap,
            caap_id: me.clone(),
            peer: &peer,
            role: "consumer",
            provider_pid: String::new(),
            consumer_pid: String::new(),
            target: "urn:tck:dataset".into(),
        };
        for s in *steps {
            run.step(*s);
        }
        peer.quiet_for(Duration::from_millis(50));
    }
}

#[test]
fn protocol_errors_are_dsp_errors_and_unknown_callers_get_404() {
    let (_node, caap, _) = caap_for_scenarios();
    let peer = Peer::start();
    let target = publish_offer(&caap, OFFER_ID, "automatic");
    let post = |path: &str, auth: &str, body: &str| {
        crate::support::request(
            "POST",
            &format!("{}/dsp/{path}", caap.dsp),
            Some(auth),
            Some(body),
            "application/json",
        )
    };
    let bearer = format!("Bearer {TOKEN}");
    let request = json!({"@context": [CONTEXT], "@type": "ContractRequestMessage",
        "consumerPid": "urn:uuid:c-1", "offer": offer(&target), "callbackAddress": peer.base});
    // Malformed JSON, a wrong type, a missing field, an unknown offer, a bad callback: 400 with an error body.
    for (body, needle) in [
        ("{", "JSON"),
        (&json!({"@context": [CONTEXT], "@type": "ContractOfferMessage"}).to_string()[..], "ContractRequestMessage"),
        (&json!({"@context": [CONTEXT], "@type": "ContractRequestMessage", "offer": offer(&target), "callbackAddress": peer.base}).to_string()[..], "consumerPid"),
        (&json!({"@context": [CONTEXT], "@type": "ContractRequestMessage", "consumerPid": "urn:uuid:c-2",
            "offer": {"@id": "no-such-offer", "@type": "Offer", "target": target, "permission": [{"action": "use"}]},
            "callbackAddress": peer.base}).to_string()[..], "no-such-offer"),
        (&json!({"@context": [CONTEXT], "@type": "ContractRequestMessage", "consumerPid": "urn:uuid:c-3",
            "offer": offer(&target), "callbackAddress": "ftp://x"}).to_string()[..], "callbackAddress"),
        (&json!({"@context": ["https://w3id.org/dspace/2024/1/context.json"], "@type": "ContractRequestMessage", "consumerPid": "urn:uuid:c-4",
            "offer": offer(&target), "callbackAddress": peer.base}).to_string()[..], "@context"),
        // Inbound is held to what caap sends: the schema's right operand, the model's whole-number count.
        (&json!({"@context": [CONTEXT], "@type": "ContractRequestMessage", "consumerPid": "urn:uuid:c-5",
            "offer": {"@id": OFFER_ID, "@type": "Offer", "target": target, "permission": [{"action": "use",
                "constraint": [{"leftOperand": "count", "operator": "lteq", "rightOperand": 1000}]}]},
            "callbackAddress": peer.base}).to_string()[..], "/offer/permission/0/constraint/0/rightOperand: a bare number"),
        (&json!({"@context": [CONTEXT], "@type": "ContractRequestMessage", "consumerPid": "urn:uuid:c-6",
            "offer": {"@id": OFFER_ID, "@type": "Offer", "target": target, "permission": [{"action": "use",
                "constraint": [{"leftOperand": "count", "operator": "lteq",
                    "rightOperand": {"@value": "1000.5", "@type": "xsd:decimal"}}]}]},
            "callbackAddress": peer.base}).to_string()[..], "whole number"),
    ] {
        let r = post("negotiations/request", &bearer, body);
        assert_eq!(r.status, 400, "{body}: {}", r.body);
        validate(peer.schemas.as_deref(), &r.body);
        assert!(r.body["reason"][0].as_str().unwrap().contains(needle), "{needle}: {}", r.body);
    }
    // An unknown caller learns nothing: 404, also for the initial endpoint.
    let r = post(
        "negotiations/request",
        "Bearer not-a-known-token-at-all",
        &request.to_string(),
    );
    assert_eq!(r.status, 404, "{}", r.body);
    validate(peer.schemas.as_deref(), &r.body);
    // A real negotiation: the request is agreed automatically (automatic offer, permissive policy).
    let r = peer.post(&caap, "negotiations/request", &request);
    assert_eq!(r.status, 201, "{}", r.body);
    let pid = r.body["providerPid"].as_str().unwrap().to_owned();
    let agreement = peer.expect("ContractAgreementMessage");
    assert!(
        agreement
            .path
            .ends_with("/negotiations/urn:uuid:c-1/agreement"),
        "{}",
        agreement.path
    );
    // The same initial request again is answered as the first time, and creates nothing new.
    let again = peer.post(&caap, "negotiations/request", &request);
    assert_eq!(again.status, 201);
    assert_eq!(again.body["providerPid"], pid.as_str());
    // Unknown process: 404. The right process with wrong pids in the body: 400.
    let verification = json!({"@context": [CONTEXT], "@type": "ContractAgreementVerificationMessage",
        "providerPid": pid, "consumerPid": "urn:uuid:c-1"});
    let r = peer.post(
        &caap,
        "negotiations/urn:uuid:nope/agreement/verification",
        &verification,
    );
    assert_eq!(r.status, 404, "{}", r.body);
    let mut wrong = verification.clone();
    wrong["consumerPid"] = json!("urn:uuid:someone-else");
    let r = peer.post(
        &caap,
        &format!("negotiations/{pid}/agreement/verification"),
        &wrong,
    );
    assert_eq!(r.status, 400, "{}", r.body);
    // The verification finalizes; repeating it is idempotent.
    let r = peer.post(
        &caap,
        &format!("negotiations/{pid}/agreement/verification"),
        &verification,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    peer.expect("ContractNegotiationEventMessage");
    eventually(10, "FINALIZED", || {
        (peer.state(&caap, &pid) == FIN).then_some(())
    });
    let r = peer.post(
        &caap,
        &format!("negotiations/{pid}/agreement/verification"),
        &verification,
    );
    assert!(r.status == 400 || r.status == 200, "{}", r.body);
    // A stranger's GET on the process: 404.
    let r = crate::support::request(
        "GET",
        &format!("{}/dsp/negotiations/{pid}", caap.dsp),
        Some("Bearer not-a-known-token-at-all"),
        None,
        "application/json",
    );
    assert_eq!(r.status, 404);
    // The agreement is listed on the provider.
    let list = caap.api("GET", "/api/v1/agreements", None);
    assert_eq!(
        list.body["items"].as_array().unwrap().len(),
        1,
        "{}",
        list.body
    );
}
