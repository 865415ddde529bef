//! Transfer processes end to end: every TP (caap as provider) and TP_C (caap as consumer) scenario of the DSP
//! TCK against the scripted counterparty, then data flowing between two real connectors (pull and push), a
//! suspension that stops the flow at once, token refresh, and a transfer without an agreement refused.

use std::time::Duration;

use serde_json::{Value, json};

use crate::negotiation::{eventually, peer_settings, publish_offer};
use crate::peer::{CONTEXT, PEER_ID, Peer};
use crate::support::{Node, Server, TOKEN, request, serve_routes};

#[derive(Debug, Clone, Copy)]
enum S {
    Peer(&'static str, &'static str),
    Caap(&'static str, &'static str),
    Refused(&'static str),
}
use S::{Caap as U, Peer as P, Refused as X};

const REQ: &str = "REQUESTED";
const STA: &str = "STARTED";
const SUS: &str = "SUSPENDED";
const COM: &str = "COMPLETED";
const TER: &str = "TERMINATED";

const TP: &[(&str, &[S])] = &[
    (
        "TP:01-01",
        &[P("request", REQ), U("start", STA), U("terminate", TER)],
    ),
    (
        "TP:01-02",
        &[P("request", REQ), U("start", STA), U("complete", COM)],
    ),
    (
        "TP:01-03",
        &[
            P("request", REQ),
            U("start", STA),
            U("suspend", SUS),
            U("terminate", TER),
        ],
    ),
    (
        "TP:01-04",
        &[
            P("request", REQ),
            U("start", STA),
            U("suspend", SUS),
            U("start", STA),
            U("complete", COM),
        ],
    ),
    ("TP:01-05", &[P("request", REQ), U("terminate", TER)]),
    (
        "TP:02-01",
        &[P("request", REQ), U("start", STA), P("terminate", TER)],
    ),
    (
        "TP:02-02",
        &[P("request", REQ), U("start", STA), P("complete", COM)],
    ),
    (
        "TP:02-03",
        &[
            P("request", REQ),
            U("start", STA),
            P("suspend", SUS),
            P("terminate", TER),
        ],
    ),
    (
        "TP:02-04",
        &[
            P("request", REQ),
            U("start", STA),
            P("suspend", SUS),
            P("start", STA),
            P("complete", COM),
        ],
    ),
    ("TP:02-05", &[P("request", REQ), P("terminate", TER)]),
    ("TP:03-01", &[P("request", REQ), X("complete")]),
    ("TP:03-02", &[P("request", REQ), X("suspend")]),
    (
        "TP:03-03",
        &[
            P("request", REQ),
            U("start", STA),
            P("suspend", SUS),
            X("complete"),
        ],
    ),
    (
        "TP:03-04",
        &[
            P("request", REQ),
            U("start", STA),
            P("terminate", TER),
            X("start"),
        ],
    ),
    (
        "TP:03-05",
        &[
            P("request", REQ),
            U("start", STA),
            P("terminate", TER),
            X("suspend"),
        ],
    ),
    (
        "TP:03-06",
        &[
            P("request", REQ),
            U("start", STA),
            P("terminate", TER),
            X("complete"),
        ],
    ),
];

const TP_C: &[(&str, &[S])] = &[
    (
        "TP_C:01-01",
        &[U("request", REQ), P("start", STA), P("terminate", TER)],
    ),
    (
        "TP_C:01-02",
        &[U("request", REQ), P("start", STA), P("complete", COM)],
    ),
    (
        "TP_C:01-03",
        &[
            U("request", REQ),
            P("start", STA),
            P("suspend", SUS),
            P("terminate", TER),
        ],
    ),
    (
        "TP_C:01-04",
        &[
            U("request", REQ),
            P("start", STA),
            P("suspend", SUS),
            P("start", STA),
            P("complete", COM),
        ],
    ),
    ("TP_C:01-05", &[U("request", REQ), P("terminate", TER)]),
    (
        "TP_C:02-01",
        &[U("request", REQ), P("start", STA), U("terminate", TER)],
    ),
    (
        "TP_C:02-02",
        &[U("request", REQ), P("start", STA), U("complete", COM)],
    ),
    (
        "TP_C:02-03",
        &[
            U("request", REQ),
            P("start", STA),
            U("suspend", SUS),
            U("terminate", TER),
        ],
    ),
    (
        "TP_C:02-04",
        &[
            U("request", REQ),
            P("start", STA),
            U("suspend", SUS),
            U("start", STA),
            U("complete", COM),
        ],
    ),
    ("TP_C:02-05", &[U("request", REQ), U("terminate", TER)]),
    ("TP_C:03-01", &[U("request", REQ), X("complete")]),
    ("TP_C:03-02", &[U("request", REQ), X("suspend")]),
    (
        "TP_C:03-03",
        &[
            U("request", REQ),
            P("start", STA),
            P("suspend", SUS),
            X("complete"),
        ],
    ),
    (
        "TP_C:03-04",
        &[
            U("request", REQ),
            P("start", STA),
            P("terminate", TER),
            X("start"),
        ],
    ),
    (
        "TP_C:03-05",
        &[
            U("request", REQ),
            P("start", STA),
            P("terminate", TER),
            X("suspend"),
        ],
    ),
    (
        "TP_C:03-06",
        &[
            U("request", REQ),
            P("start", STA),
            P("terminate", TER),
            X("complete"),
        ],
    ),
];

/// A finalized agreement between caap (provider) and the peer, through the negotiation protocol. With a
/// `stepwise` offer, the transfers under it are stepwise too.
fn agreement_with_peer(
    caap: &Server,
    peer: &Peer,
    offer_id: &str,
    approval: &str,
) -> (String, String) {
    let target = publish_offer(caap, offer_id, approval);
    let consumer_pid = format!("urn:uuid:{}", uuid::Uuid::new_v4());
    let r = peer.post(
        caap,
        "negotiations/request",
        &json!({"@context": [CONTEXT], "@type": "ContractRequestMessage", "consumerPid": consumer_pid,
            "offer": {"@id": offer_id, "@type": "Offer", "target": target, "permission": [{"action": "use"}]},
            "callbackAddress": peer.base}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let pid = r.body["providerPid"].as_str().unwrap().to_owned();
    if approval == "stepwise" {
        let r = caap.api("POST", &format!("/api/v1/negotiations/{pid}/agree"), None);
        assert_eq!(r.status, 200, "{}", r.body);
    }
    let agreement = peer.expect("ContractAgreementMessage");
    let id = agreement.body["agreement"]["@id"]
        .as_str()
        .unwrap()
        .to_owned();
    eventually(10, "AGREED", || {
        (peer.state(caap, &pid) == "AGREED").then_some(())
    });
    let r = peer.post(
        caap,
        &format!("negotiations/{pid}/agreement/verification"),
        &json!({"@context": [CONTEXT], "@type": "ContractAgreementVerificationMessage",
            "providerPid": pid, "consumerPid": consumer_pid}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    if approval == "stepwise" {
        let r = caap.api(
            "POST",
            &format!("/api/v1/negotiations/{pid}/finalize"),
            None,
        );
        assert_eq!(r.status, 200, "{}", r.body);
    }
    peer.expect("ContractNegotiationEventMessage");
    eventually(10, "FINALIZED", || {
        (peer.state(caap, &pid) == "FINALIZED").then_some(())
    });
    (id, target)
}

struct Run<'a> {
    case: &'a str,
    caap: &'a Server,
    peer: &'a Peer,
    role: &'static str,
    provider_pid: String,
    consumer_pid: String,
    agreement: String,
}

impl Run<'_> {
    fn ours(&self) -> &str {
        if self.role == "provider" {
            &self.provider_pid
        } else {
            &self.consumer_pid
        }
    }

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
                "transfers/request".into(),
                json!({"@context": [CONTEXT], "@type": "TransferRequestMessage", "consumerPid": c,
                    "agreementId": self.agreement, "format": "HttpData-PULL", "callbackAddress": self.peer.base}),
            ),
            "start" => {
                let mut m = base("TransferStartMessage");
                if self.role == "consumer" {
                    m["dataAddress"] = json!({"@type": "DataAddress", "endpointType": "https://w3id.org/idsa/v4.1/HTTP",
                        "endpoint": "http://127.0.0.1:9/data", "endpointProperties": [
                            {"@type": "EndpointProperty", "name": "authorization", "value": "Bearer peer-token"},
                            {"@type": "EndpointProperty", "name": "authType", "value": "bearer"}]});
                }
                (format!("transfers/{ours}/start"), m)
            }
            "suspend" => (
                format!("transfers/{ours}/suspension"),
                with(
                    with(base("TransferSuspensionMessage"), "code", json!("pause")),
                    "reason",
                    json!(["the peer pauses"]),
                ),
            ),
            "complete" => (
                format!("transfers/{ours}/completion"),
                base("TransferCompletionMessage"),
            ),
            "terminate" => (
                format!("transfers/{ours}/termination"),
                with(
                    with(base("TransferTerminationMessage"), "code", json!("stop")),
                    "reason",
                    json!(["the peer stops"]),
                ),
            ),
            other => panic!("no peer step {other}"),
        }
    }

    fn sent_type(step: &str) -> &'static str {
        match step {
            "request" => "TransferRequestMessage",
            "start" => "TransferStartMessage",
            "suspend" => "TransferSuspensionMessage",
            "complete" => "TransferCompletionMessage",
            "terminate" => "TransferTerminationMessage",
            other => panic!("no caap step {other}"),
        }
    }

    fn caap_state(&self) -> String {
        self.peer.process_state(self.caap, "transfers", self.ours())
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
                    assert_eq!(r.status, 201, "{}", self.case);
                    self.provider_pid = r.body["providerPid"].as_str().unwrap().to_owned();
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
                        "/api/v1/transfers",
                        Some(&json!({"agreementId": self.agreement, "format": "HttpData-PULL",
                            "counterPartyAddress": self.peer.base, "counterPartyId": PEER_ID, "manual": true})),
                    );
                    assert_eq!(r.status, 201, "{}: {}", self.case, r.body);
                    self.consumer_pid = r.body["id"].as_str().unwrap().to_owned();
                    let got = self.peer.expect("TransferRequestMessage");
                    assert_eq!(got.body["agreementId"], self.agreement.as_str());
                    self.provider_pid = format!(
                        "urn:uuid:peer-{}",
                        self.consumer_pid.trim_start_matches("urn:uuid:")
                    );
                } else {
                    let body = match step {
                        "suspend" | "terminate" => {
                            Some(json!({"code": "by-hand", "reason": "the test says so"}))
                        }
                        _ => None,
                    };
                    let r = self.caap.api(
                        "POST",
                        &format!("/api/v1/transfers/{}/{step}", self.ours()),
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
                    assert_eq!(
                        got.body["consumerPid"],
                        self.consumer_pid.as_str(),
                        "{}",
                        self.case
                    );
                    if step == "start" && self.role == "provider" {
                        let address = &got.body["dataAddress"];
                        assert!(
                            address["endpoint"].as_str().unwrap().contains("/data/"),
                            "{}: {address}",
                            self.case
                        );
                        assert!(
                            address["endpointProperties"]
                                .to_string()
                                .contains("Bearer "),
                            "{}",
                            self.case
                        );
                    }
                    if matches!(step, "suspend" | "terminate") {
                        assert_eq!(
                            got.body["reason"],
                            json!(["the test says so"]),
                            "{}",
                            self.case
                        );
                    }
                }
                eventually(10, &format!("{}: caap in {want}", self.case), || {
                    (self.caap_state() == want).then_some(())
                });
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
                assert_eq!(r.body["@type"], "TransferError", "{}", self.case);
                assert_eq!(self.caap_state(), before, "{}", self.case);
            }
        }
    }
}

fn scenario_caap() -> (Node, Server) {
    let node = Node::init_with(
        "Transfer city",
        &peer_settings(&[("require_signed_agreements", "false")]),
    );
    let server = node.start(&[]);
    (node, server)
}

#[test]
fn every_tp_scenario_with_caap_as_provider() {
    let (_node, caap) = scenario_caap();
    let peer = Peer::start();
    for (case, steps) in TP {
        println!("{case}");
        let (agreement, _) = agreement_with_peer(
            &caap,
            &peer,
            &format!("offer-{}", case.replace([':', '-'], "")),
            "stepwise",
        );
        let mut run = Run {
            case,
            caap: &caap,
            peer: &peer,
            role: "provider",
            provider_pid: String::new(),
            consumer_pid: format!("urn:uuid:{}", uuid::Uuid::new_v4()),
            agreement,
        };
        for s in *steps {
            run.step(*s);
        }
        peer.quiet_for(Duration::from_millis(50));
    }
}

#[test]
fn every_tp_c_scenario_with_caap_as_consumer() {
    let (_node, caap) = scenario_caap();
    let peer = Peer::start();
    for (case, steps) in TP_C {
        println!("{case}");
        let mut run = Run {
            case,
            caap: &caap,
            peer: &peer,
            role: "consumer",
            provider_pid: String::new(),
            consumer_pid: String::new(),
            agreement: format!("ATPC{}", case.replace(['T', 'P', '_', 'C', ':', '-'], "")),
        };
        for s in *steps {
            run.step(*s);
        }
        peer.quiet_for(Duration::from_millis(50));
    }
}

#[test]
fn a_transfer_needs_a_finalized_agreement_with_the_caller() {
    let (_node, caap) = scenario_caap();
    let peer = Peer::start();
    let r = peer.post(
        &caap,
        "transfers/request",
        &json!({"@context": [CONTEXT], "@type": "TransferRequestMessage", "consumerPid": "urn:uuid:t-1",
            "agreementId": "urn:uuid:no-such-agreement", "format": "HttpData-PULL", "callbackAddress": peer.base}),
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.body["@type"], "TransferError");
    assert!(
        r.body["reason"][0]
            .as_str()
            .unwrap()
            .contains("not a finalized agreement"),
        "{}",
        r.body
    );
    // An unknown caller gets 404 with a TransferError.
    let r = request(
        "POST",
        &format!("{}/dsp/transfers/request", caap.dsp),
        Some("Bearer not-a-known-token-at-all"),
        Some("{}"),
        "application/json",
    );
    assert_eq!(r.status, 404);
    assert_eq!(r.body["@type"], "TransferError");
    // An imported agreement (e.g. the TCK's pre-existing ones) is signed, in the ledger, and usable.
    let target = publish_offer(&caap, "import-offer", "automatic");
    let r = caap.api(
        "POST",
        "/api/v1/agreements",
        Some(
            &json!({"id": "ATP-imported", "consumerId": PEER_ID, "datasetId": target,
            "policy": {"@type": "Set", "permission": [{"action": "use"}]}}),
        ),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    assert!(r.body["body"]["jws"].is_string());
    let again = caap.api(
        "POST",
        "/api/v1/agreements",
        Some(
            &json!({"id": "ATP-imported", "consumerId": PEER_ID, "datasetId": target,
            "policy": {"@type": "Set", "permission": [{"action": "use"}]}}),
        ),
    );
    assert_eq!(again.status, 409);
    let r = peer.post(
        &caap,
        "transfers/request",
        &json!({"@context": [CONTEXT], "@type": "TransferRequestMessage", "consumerPid": "urn:uuid:t-2",
            "agreementId": "ATP-imported", "format": "HttpData-PULL", "callbackAddress": peer.base}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let start = peer.expect("TransferStartMessage");
    let address = &start.body["dataAddress"];
    let endpoint = address["endpoint"].as_str().unwrap();
    let token = address["endpointProperties"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "authorization")
        .unwrap()["value"]
        .as_str()
        .unwrap()
        .to_owned();
    // The sample dataset's source is unreachable: the data plane says so (502), it does not hang.
    let r = request("GET", endpoint, Some(&token), None, "application/json");
    assert_eq!(r.status, 502, "{}", r.body);
    // A forged or missing token is refused.
    let r = request(
        "GET",
        endpoint,
        Some("Bearer forged"),
        None,
        "application/json",
    );
    assert_eq!(r.status, 401, "{}", r.body);
    let r = request("GET", endpoint, None, None, "application/json");
    assert_eq!(r.status, 401, "{}", r.body);
    let _ = TOKEN;
}

/// Two cities: an agreement, then a pull transfer streamed through the consumer's API, a suspension that
/// stops the token at once, a resume with a fresh token, and a push transfer into the consumer's receiver.
#[test]
fn two_cities_pull_and_push_with_suspension_stopping_the_flow() {
    let settings = city_settings;
    let provider_node = Node::init_with(
        "Malmö",
        &settings(
            "token-lund-presents-to-malmo-01",
            "did:web:lund.example",
            "token-malmo-presents-to-lund-01",
        ),
    );
    let consumer_node = Node::init_with(
        "Lund",
        &settings(
            "token-malmo-presents-to-lund-01",
            "did:web:malmo.example",
            "token-lund-presents-to-malmo-01",
        ),
    );
    // The provider's dataset is a file of 3 MiB in its files directory.
    let payload: Vec<u8> = (0..3 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(
        provider_node.dir.path().join("files/readings.bin"),
        &payload,
    )
    .unwrap();
    let provider = provider_node.start(&[("CAAP_PARTICIPANT_ID", "did:web:malmo.example")]);
    let consumer = consumer_node.start(&[("CAAP_PARTICIPANT_ID", "did:web:lund.example")]);
    let mut asset = sample_asset();
    asset["id"] = json!("readings-file");
    asset["dataAddress"] =
        json!({"type": "File", "path": "readings.bin", "mediaType": "application/octet-stream"});
    let r = provider.api("POST", "/api/v1/assets", Some(&asset));
    assert_eq!(r.status, 201, "{}", r.body);
    provider.api(
        "POST",
        "/api/v1/policies",
        Some(&json!({"id": "use", "policy": {"@type": "Set", "permission": [{"action": "use"}]}})),
    );
    let r = provider.api("POST", "/api/v1/offers", Some(&json!({"id": "readings", "assets": ["readings-file"], "accessPolicy": "use", "contractPolicy": "use"})));
    assert_eq!(r.status, 201, "{}", r.body);
    let agreement = finalized_agreement(&consumer, &provider.dsp, "readings");

    // Pull.
    let t = started_transfer(&consumer, &agreement);
    let tid = t["id"].as_str().unwrap().to_owned();
    assert!(
        t["dataAddress"].to_string().contains("(redacted)"),
        "tokens never shown: {t}"
    );
    let data = fetch(&consumer, &tid);
    assert_eq!(data.len(), payload.len());
    assert!(data == payload, "the bytes arrive unchanged");
    // The provider suspends: the token stops working at once.
    let provider_pid = t["providerPid"].as_str().unwrap().to_owned();
    let r = provider.api(
        "POST",
        &format!("/api/v1/transfers/{provider_pid}/suspend"),
        Some(&json!({"reason": "maintenance"})),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    eventually(10, "SUSPENDED on the consumer", || {
        let t = consumer
            .api("GET", &format!("/api/v1/transfers/{tid}"), None)
            .body;
        (t["state"] == "SUSPENDED").then_some(())
    });
    let r = consumer.api("GET", &format!("/api/v1/transfers/{tid}/data"), None);
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(
        r.body["detail"].as_str().unwrap().contains("SUSPENDED"),
        "{}",
        r.body
    );
    // Resumed by the provider: a fresh token arrives with the start message.
    let r = provider.api(
        "POST",
        &format!("/api/v1/transfers/{provider_pid}/resume"),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    eventually(10, "STARTED again", || {
        let t = consumer
            .api("GET", &format!("/api/v1/transfers/{tid}"), None)
            .body;
        (t["state"] == "STARTED").then_some(())
    });
    assert_eq!(fetch(&consumer, &tid).len(), payload.len());
    let r = consumer.api("POST", &format!("/api/v1/transfers/{tid}/refresh"), None);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(fetch(&consumer, &tid).len(), payload.len());
    let r = consumer.api("POST", &format!("/api/v1/transfers/{tid}/complete"), None);
    assert_eq!(r.status, 200, "{}", r.body);
    eventually(10, "COMPLETED on the provider", || {
        let t = provider
            .api("GET", &format!("/api/v1/transfers/{provider_pid}"), None)
            .body;
        (t["state"] == "COMPLETED").then_some(())
    });

    // Push into the consumer's own receiver; the provider completes when the data is delivered.
    let r = consumer.api(
        "POST",
        "/api/v1/transfers",
        Some(&json!({"agreementId": agreement, "format": "HttpData-PUSH"})),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let push = r.body["id"].as_str().unwrap().to_owned();
    let t = eventually(20, "push COMPLETED", || {
        let t = consumer
            .api("GET", &format!("/api/v1/transfers/{push}"), None)
            .body;
        (t["state"] == "COMPLETED").then_some(t)
    });
    assert_eq!(t["bytes"], payload.len() as u64, "{t}");
    let data = fetch(&consumer, &push);
    assert!(data == payload);

    // The CLI: start a pull transfer and write the data to a file, with progress.
    let out_file = consumer_node.dir.path().join("out.bin");
    let out = crate::support::caap()
        .args(["transfer", "start", "--agreement", &agreement, "--out"])
        .arg(&out_file)
        .arg("--config")
        .arg(&consumer_node.config)
        .args(["--api-url", &consumer.api])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("caap: {} bytes in", payload.len())),
        "{stderr}"
    );
    assert!(std::fs::read(&out_file).unwrap() == payload);
    let out = crate::support::caap()
        .args(["transfer", "list", "--config"])
        .arg(&consumer_node.config)
        .args(["--api-url", &consumer.api])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("3 transfer(s)"));
}

/// The TOML settings of a test city: whom it accepts (token, participant), what it presents, fast retries.
pub(crate) fn city_settings(
    token: &str,
    from: &str,
    outbound: &str,
) -> Vec<(&'static str, String)> {
    vec![
        (
            "dsp.auth.tokens",
            format!("[{{token = \"{token}\", participant = \"{from}\"}}]"),
        ),
        ("dsp.auth.outbound_token", format!("\"{outbound}\"")),
        ("negotiation.retry_base_ms", "20".into()),
    ]
}

/// Publishes one dataset (`asset_id` with `data_address`) under offer `offer`, usable by anyone (policy `use`).
fn publish_one(provider: &Server, asset_id: &str, data_address: Value, offer: &str) {
    let mut asset = sample_asset();
    asset["id"] = json!(asset_id);
    asset["dataAddress"] = data_address;
    let r = provider.api("POST", "/api/v1/assets", Some(&asset));
    assert_eq!(r.status, 201, "{}", r.body);
    provider.api(
        "POST",
        "/api/v1/policies",
        Some(&json!({"id": "use", "policy": {"@type": "Set", "permission": [{"action": "use"}]}})),
    );
    let r = provider.api("POST", "/api/v1/offers", Some(&json!({"id": offer, "assets": [asset_id], "accessPolicy": "use", "contractPolicy": "use"})));
    assert_eq!(r.status, 201, "{}", r.body);
}

/// A sample dataset to give another id and data address.
pub(crate) fn sample_asset() -> Value {
    serde_json::to_value(
        caap_catalog::samples::assets(&caap_catalog::samples::CITIES[0], "http://127.0.0.1:9")
            .into_iter()
            .next()
            .unwrap(),
    )
    .unwrap()
}

/// Negotiates `offer` at `provider` from `consumer` until FINALIZED; the agreement id.
pub(crate) fn finalized_agreement(consumer: &Server, provider: &str, offer: &str) -> String {
    let r = consumer.api(
        "POST",
        "/api/v1/negotiations",
        Some(&json!({"counterPartyAddress": provider, "offerId": offer})),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let nid = r.body["id"].as_str().unwrap().to_owned();
    eventually(10, "FINALIZED", || {
        let n = consumer
            .api("GET", &format!("/api/v1/negotiations/{nid}"), None)
            .body;
        (n["state"] == "FINALIZED").then(|| n["agreementId"].as_str().unwrap().to_owned())
    })
}

/// Starts a pull transfer under `agreement` and waits until it is STARTED; the transfer as the API shows it.
pub(crate) fn started_transfer(consumer: &Server, agreement: &str) -> Value {
    let r = consumer.api(
        "POST",
        "/api/v1/transfers",
        Some(&json!({"agreementId": agreement})),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let tid = r.body["id"].as_str().unwrap().to_owned();
    eventually(10, "STARTED", || {
        let t = consumer
            .api("GET", &format!("/api/v1/transfers/{tid}"), None)
            .body;
        (t["state"] == "STARTED").then_some(t)
    })
}

pub(crate) fn fetch(server: &Server, tid: &str) -> Vec<u8> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let res = reqwest::Client::new()
            .get(format!("{}/api/v1/transfers/{tid}/data", server.api))
            .bearer_auth(&server.admin)
            .send()
            .await
            .unwrap();
        assert_eq!(
            res.status(),
            200,
            "{}",
            res.text().await.unwrap_or_default()
        );
        res.bytes().await.unwrap().to_vec()
    })
}

/// Reads server-sent events from a consumer's transfer until `n` ids arrived or the stream ends; returns the
/// ids and whether the stream ended by itself.
async fn read_events(
    client: &reqwest::Client,
    (api, admin): (&str, &str),
    tid: &str,
    last_event_id: Option<u64>,
    n: usize,
) -> (Vec<u64>, bool) {
    use futures_util::StreamExt;
    let mut req = client
        .get(format!("{api}/api/v1/transfers/{tid}/data"))
        .bearer_auth(admin);
    if let Some(id) = last_event_id {
        req = req.header("Last-Event-ID", id.to_string());
    }
    let res = req.send().await.unwrap();
    assert_eq!(
        res.status(),
        200,
        "{}",
        res.text().await.unwrap_or_default()
    );
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let mut stream = res.bytes_stream();
    let mut buf = String::new();
    let mut ids = Vec::new();
    loop {
        match tokio::time::timeout(Duration::from_secs(10), stream.next()).await {
            Ok(Some(Ok(chunk))) => {
                buf.push_str(&String::from_utf8_lossy(&chunk));
                while let Some(end) = buf.find("\n\n") {
                    let event: String = buf.drain(..end + 2).collect();
                    if let Some(id) = event.lines().find_map(|l| l.strip_prefix("id:")) {
                        ids.push(id.trim().parse().unwrap());
                    }
                }
                if ids.len() >= n {
                    return (ids, false);
                }
            }
            Ok(Some(Err(_)) | None) => return (ids, true),
            Err(_) => panic!("no event within 10 s; got {ids:?}"),
        }
    }
}

/// A live stream (server-sent events from the provider's sensor simulator) relayed to another city over HTTPS:
/// suspended
/// (the flow stops at once), resumed from the last event id (nothing lost, nothing twice), terminated.
#[test]
fn a_live_stream_is_suspended_resumed_and_terminated_without_loss_or_duplicates() {
    let settings = city_settings;
    let mut provider_settings = settings(
        "token-lund-presents-to-malmo-01",
        "did:web:lund.example",
        "token-malmo-presents-to-lund-01",
    );
    provider_settings.push(("simulator.enabled", "true".into()));
    provider_settings.push(("simulator.interval_ms", "40".into()));
    // Over HTTPS: each connector trusts the other's self-signed certificate, and the provider its own (its data
    // plane reads its simulator through its public https address).
    let provider_node = Node::init_tls_with("Malmö", &provider_settings);
    let consumer_node = Node::init_tls_with(
        "Lund",
        &settings(
            "token-malmo-presents-to-lund-01",
            "did:web:malmo.example",
            "token-lund-presents-to-malmo-01",
        ),
    );
    let (pc, cc) = (provider_node.tls_cert(), consumer_node.tls_cert());
    provider_node.set_all(&[(
        "tls.ca_files",
        format!("[\"{}\", \"{}\"]", cc.display(), pc.display()),
    )]);
    consumer_node.set_all(&[("tls.ca_files", format!("[\"{}\"]", pc.display()))]);
    let provider = provider_node.start(&[("CAAP_PARTICIPANT_ID", "did:web:malmo.example")]);
    let consumer = consumer_node.start(&[("CAAP_PARTICIPANT_ID", "did:web:lund.example")]);
    let provider_https = provider.dsp.replacen("http://", "https://", 1);
    publish_one(
        &provider,
        "live-air",
        json!({"type": "LiveStream", "source": "Sse",
            "url": format!("{provider_https}/sim/malmo/air-quality/radhuset/stream")}),
        "live",
    );
    let agreement = finalized_agreement(&consumer, &provider_https, "live");
    let t = started_transfer(&consumer, &agreement);
    let tid = t["id"].as_str().unwrap().to_owned();
    let provider_pid = t["providerPid"].as_str().unwrap().to_owned();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let client = reqwest::Client::new();
    let api = (consumer.api.clone(), consumer.admin.clone());
    // Read a few events, keep the stream open while the provider suspends: it ends at once.
    let (first, ended) = rt.block_on(read_events(&client, (&api.0, &api.1), &tid, None, 5));
    assert!(!ended && first.len() >= 5, "{first:?}");
    let open_stream = {
        let (client, api, tid) = (client.clone(), api.clone(), tid.clone());
        let last = *first.last().unwrap();
        rt.spawn(async move {
            read_events(&client, (&api.0, &api.1), &tid, Some(last), usize::MAX).await
        })
    };
    std::thread::sleep(Duration::from_millis(300));
    let r = provider.api(
        "POST",
        &format!("/api/v1/transfers/{provider_pid}/suspend"),
        Some(&json!({"reason": "maintenance"})),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let (during, ended) = rt
        .block_on(async { tokio::time::timeout(Duration::from_secs(5), open_stream).await })
        .expect("the flow did not stop")
        .unwrap();
    assert!(ended, "the stream ends when the transfer is suspended");
    let mut seen: Vec<u64> = first.clone();
    seen.extend(&during);
    eventually(10, "SUSPENDED on the consumer", || {
        let t = consumer
            .api("GET", &format!("/api/v1/transfers/{tid}"), None)
            .body;
        (t["state"] == "SUSPENDED").then_some(())
    });
    let r = consumer.api("GET", &format!("/api/v1/transfers/{tid}/data"), None);
    assert_eq!(r.status, 409, "{}", r.body);
    // Resumed: the consumer continues from the last id it saw.
    let r = provider.api(
        "POST",
        &format!("/api/v1/transfers/{provider_pid}/resume"),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    eventually(10, "STARTED again", || {
        let t = consumer
            .api("GET", &format!("/api/v1/transfers/{tid}"), None)
            .body;
        (t["state"] == "STARTED").then_some(())
    });
    let (after, _) = rt.block_on(read_events(
        &client,
        (&api.0, &api.1),
        &tid,
        seen.last().copied(),
        20,
    ));
    seen.extend(&after);
    let expected: Vec<u64> = (seen[0]..seen[0] + seen.len() as u64).collect();
    assert_eq!(
        seen, expected,
        "no event lost or repeated across suspension and resumption"
    );
    // Terminated by the consumer: no more data.
    let r = consumer.api("POST", &format!("/api/v1/transfers/{tid}/terminate"), None);
    assert_eq!(r.status, 200, "{}", r.body);
    eventually(10, "TERMINATED on the provider", || {
        let t = provider
            .api("GET", &format!("/api/v1/transfers/{provider_pid}"), None)
            .body;
        (t["state"] == "TERMINATED").then_some(())
    });
    let r = consumer.api("GET", &format!("/api/v1/transfers/{tid}/data"), None);
    assert_eq!(r.status, 409, "{}", r.body);
}

/// A source behind OAuth2: the provider gets a token with client credentials (once, then cached) and the
/// data reaches the consumer; an asset naming credentials the configuration lacks is refused when saved.
#[test]
fn a_protected_source_is_read_with_oauth2_client_credentials() {
    use actix_web::{HttpRequest, HttpResponse, web};
    use std::sync::atomic::{AtomicUsize, Ordering};
    let token_calls = std::sync::Arc::new(AtomicUsize::new(0));
    let calls = token_calls.clone();
    let source = serve_routes(move |app| {
        let calls = calls.clone();
        app.route(
                        "/token",
                        web::post().to(move |req: HttpRequest, body: String| {
                            let calls = calls.clone();
                            async move {
                                calls.fetch_add(1, Ordering::SeqCst);
                                // client_secret_basic: base64("caap-provider:s3cret-s3cret-s3cret")
                                let auth = req.headers().get("authorization").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
                                if auth != "Basic Y2FhcC1wcm92aWRlcjpzM2NyZXQtczNjcmV0LXMzY3JldA==" || !body.contains("grant_type=client_credentials") {
                                    return HttpResponse::Unauthorized().json(serde_json::json!({"error": "invalid_client"}));
                                }
                                HttpResponse::Ok().json(serde_json::json!({"access_token": "tok-1", "token_type": "bearer", "expires_in": 3600}))
                            }
                        }),
                    )
                    .route(
                        "/traffic",
                        web::get().to(|req: HttpRequest| async move {
                            if req.headers().get("authorization").and_then(|v| v.to_str().ok()) != Some("Bearer tok-1") {
                                return HttpResponse::Unauthorized().finish();
                            }
                            HttpResponse::Ok().json(serde_json::json!({"vehicles": 42}))
                        }),
                    );
    });
    let settings = city_settings;
    let mut ps = settings(
        "token-lund-presents-to-malmo-01",
        "did:web:lund.example",
        "token-malmo-presents-to-lund-01",
    );
    ps.push((
        "source_credentials",
        format!("[{{name = \"traffic\", token_url = \"{source}/token\", client_id = \"caap-provider\", client_secret = \"s3cret-s3cret-s3cret\"}}]"),
    ));
    let provider_node = Node::init_with("Malmö", &ps);
    let consumer_node = Node::init_with(
        "Lund",
        &settings(
            "token-malmo-presents-to-lund-01",
            "did:web:malmo.example",
            "token-lund-presents-to-malmo-01",
        ),
    );
    let provider = provider_node.start(&[("CAAP_PARTICIPANT_ID", "did:web:malmo.example")]);
    let consumer = consumer_node.start(&[("CAAP_PARTICIPANT_ID", "did:web:lund.example")]);
    let mut asset = sample_asset();
    asset["id"] = json!("traffic");
    asset["dataAddress"] =
        json!({"type": "HttpApi", "url": format!("{source}/traffic"), "credentials": "nope"});
    let r = provider.api("POST", "/api/v1/assets", Some(&asset));
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(
        r.body["detail"]
            .as_str()
            .unwrap()
            .contains("source_credentials"),
        "{}",
        r.body
    );
    asset["dataAddress"]["credentials"] = json!("traffic");
    assert_eq!(
        provider.api("POST", "/api/v1/assets", Some(&asset)).status,
        201
    );
    provider.api(
        "POST",
        "/api/v1/policies",
        Some(&json!({"id": "use", "policy": {"@type": "Set", "permission": [{"action": "use"}]}})),
    );
    provider.api("POST", "/api/v1/offers", Some(&json!({"id": "traffic", "assets": ["traffic"], "accessPolicy": "use", "contractPolicy": "use"})));
    let agreement = finalized_agreement(&consumer, &provider.dsp, "traffic");
    let tid = started_transfer(&consumer, &agreement)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for _ in 0..2 {
        assert_eq!(fetch(&consumer, &tid), br#"{"vehicles":42}"#);
    }
    assert_eq!(token_calls.load(Ordering::SeqCst), 1, "the token is cached");
}

/// A stream fed by NGSI-LD subscription notifications (the provider's simulated broker): each notification
/// reaches the consumer as one NDJSON line; when the transfer ends, the subscription is deleted at the broker.
#[test]
fn an_ngsi_ld_subscription_feeds_a_stream_until_the_transfer_ends() {
    use futures_util::StreamExt;
    let settings = city_settings;
    let mut ps = settings(
        "token-lund-presents-to-malmo-01",
        "did:web:lund.example",
        "token-malmo-presents-to-lund-01",
    );
    ps.push(("simulator.enabled", "true".into()));
    ps.push(("simulator.interval_ms", "50".into()));
    let provider_node = Node::init_with("Malmö", &ps);
    let consumer_node = Node::init_with(
        "Lund",
        &settings(
            "token-malmo-presents-to-lund-01",
            "did:web:malmo.example",
            "token-lund-presents-to-malmo-01",
        ),
    );
    let provider = provider_node.start(&[("CAAP_PARTICIPANT_ID", "did:web:malmo.example")]);
    let consumer = consumer_node.start(&[("CAAP_PARTICIPANT_ID", "did:web:lund.example")]);
    let mut asset = sample_asset();
    asset["id"] = json!("air-subscription");
    asset["dataModel"] = json!("AirQualityObserved");
    asset["dataAddress"] = json!({"type": "LiveStream", "source": "NgsiLdSubscription", "url": format!("{}/sim", provider.dsp)});
    let r = provider.api("POST", "/api/v1/assets", Some(&asset));
    assert_eq!(r.status, 201, "{}", r.body);
    provider.api(
        "POST",
        "/api/v1/policies",
        Some(&json!({"id": "use", "policy": {"@type": "Set", "permission": [{"action": "use"}]}})),
    );
    provider.api("POST", "/api/v1/offers", Some(&json!({"id": "air-sub", "assets": ["air-subscription"], "accessPolicy": "use", "contractPolicy": "use"})));
    let agreement = finalized_agreement(&consumer, &provider.dsp, "air-sub");
    let tid = started_transfer(&consumer, &agreement)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let lines = rt.block_on(async {
        let res = reqwest::Client::new()
            .get(format!("{}/api/v1/transfers/{tid}/data", consumer.api))
            .bearer_auth(&consumer.admin)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let mut stream = res.bytes_stream();
        let mut buf = String::new();
        let mut lines = Vec::new();
        while lines.len() < 3 {
            let chunk = tokio::time::timeout(Duration::from_secs(10), stream.next())
                .await
                .unwrap()
                .unwrap()
                .unwrap();
            buf.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = buf.find('\n') {
                let line: String = buf.drain(..=end).collect();
                lines.push(serde_json::from_str::<Value>(line.trim()).unwrap());
            }
        }
        lines
    });
    for l in &lines {
        assert_eq!(l["type"], "Notification", "{l}");
        assert_eq!(l["data"][0]["type"], "AirQualityObserved", "{l}");
    }
    // One subscription at the broker while the stream ran; none once the transfer is over.
    let r = consumer.api("POST", &format!("/api/v1/transfers/{tid}/terminate"), None);
    assert_eq!(r.status, 200, "{}", r.body);
    eventually(10, "the subscription deleted at the broker", || {
        let r = request(
            "GET",
            &format!("{}/sim/ngsi-ld/v1/subscriptions", provider.dsp),
            None,
            None,
            "application/json",
        );
        (r.body.as_array().map(Vec::len) == Some(0)).then_some(())
    });
}

/// Pulled bytes are counted on both sides; a range is served from a file (206) and relayed by the
/// consumer; a pull the provider's crash breaks off is marked on the consumer's transfer with the error;
/// and the CLI resumes the interrupted download from where the file ends.
#[test]
fn pulls_are_counted_served_in_ranges_and_an_interrupted_one_is_marked_and_resumed() {
    let provider_node = Node::init_with(
        "Malmö",
        &city_settings(
            "token-lund-presents-to-malmo-01",
            "did:web:lund.example",
            "token-malmo-presents-to-lund-01",
        ),
    );
    let consumer_node = Node::init_with(
        "Lund",
        &city_settings(
            "token-malmo-presents-to-lund-01",
            "did:web:malmo.example",
            "token-lund-presents-to-malmo-01",
        ),
    );
    // Large enough that it cannot all sit in socket buffers when the provider dies.
    let payload: Vec<u8> = (0..64 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(provider_node.dir.path().join("files/big.bin"), &payload).unwrap();
    let provider_env = [("CAAP_PARTICIPANT_ID", "did:web:malmo.example")];
    let provider = provider_node.start(&provider_env);
    let consumer = consumer_node.start(&[("CAAP_PARTICIPANT_ID", "did:web:lund.example")]);
    publish_one(
        &provider,
        "big-file",
        json!({"type": "File", "path": "big.bin", "mediaType": "application/octet-stream"}),
        "big",
    );
    let agreement = finalized_agreement(&consumer, &provider.dsp, "big");
    let t = started_transfer(&consumer, &agreement);
    let tid = t["id"].as_str().unwrap().to_owned();
    let provider_pid = t["providerPid"].as_str().unwrap().to_owned();
    let bytes = |server: &Server, id: &str| {
        server
            .api("GET", &format!("/api/v1/transfers/{id}"), None)
            .body["bytes"]
            .as_u64()
            .unwrap_or(0)
    };

    // A whole pull is counted on both sides.
    assert!(fetch(&consumer, &tid) == payload);
    let total = payload.len() as u64;
    eventually(10, "the pull counted by the consumer", || {
        (bytes(&consumer, &tid) == total).then_some(())
    });
    eventually(10, "the pull counted by the provider", || {
        (bytes(&provider, &provider_pid) == total).then_some(())
    });

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = reqwest::Client::new();
    let data_url = format!("{}/api/v1/transfers/{tid}/data", consumer.api);
    // A range: served from the file by the provider, relayed by the consumer.
    let (status, content_range, body) = rt.block_on(async {
        let res = client
            .get(&data_url)
            .bearer_auth(&consumer.admin)
            .header("Range", "bytes=1000000-1000099")
            .send()
            .await
            .unwrap();
        let cr = res.headers().get("content-range").cloned();
        (res.status(), cr, res.bytes().await.unwrap())
    });
    assert_eq!(status, 206);
    assert_eq!(
        content_range.unwrap().to_str().unwrap(),
        format!("bytes 1000000-1000099/{total}")
    );
    assert!(body[..] == payload[1_000_000..1_000_100]);
    let r = rt.block_on(async {
        client
            .get(&data_url)
            .bearer_auth(&consumer.admin)
            .header("Range", format!("bytes={total}-"))
            .send()
            .await
            .unwrap()
            .status()
    });
    assert_eq!(r, 416, "a range past the end");

    // The provider crashes in the middle of a pull: the consumer's transfer says so.
    let dsp_port = provider.dsp.rsplit(':').next().unwrap().to_owned();
    let partial = consumer_node.dir.path().join("partial.bin");
    let received = rt.block_on(async {
        use futures_util::StreamExt;
        let res = client
            .get(&data_url)
            .bearer_auth(&consumer.admin)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let mut stream = res.bytes_stream();
        let mut got = stream.next().await.unwrap().unwrap().to_vec();
        drop(provider); // kill -9
        while let Some(Ok(chunk)) = stream.next().await {
            got.extend_from_slice(&chunk);
        }
        got
    });
    assert!(received.len() < payload.len(), "the pull broke off");
    assert!(received[..] == payload[..received.len()]);
    std::fs::write(&partial, &received).unwrap();
    let t = eventually(10, "the interruption recorded", || {
        let t = consumer
            .api("GET", &format!("/api/v1/transfers/{tid}"), None)
            .body;
        t["lastError"]
            .as_str()
            .is_some_and(|e| e.contains("broke off"))
            .then_some(t)
    });
    assert_eq!(t["state"], "STARTED", "{t}");

    // The provider is back (on the port its pull address names): the CLI resumes the download.
    let provider = provider_node.start(&[
        provider_env[0],
        ("CAAP_DSP_BIND", &format!("127.0.0.1:{dsp_port}")),
    ]);
    let out = crate::support::caap()
        .args(["transfer", "data", &tid, "--out"])
        .arg(&partial)
        .arg("--config")
        .arg(&consumer_node.config)
        .args(["--api-url", &consumer.api])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(std::fs::read(&partial).unwrap() == payload, "{stderr}");
    // Only the rest went over the wire (what the crashed run served was never recorded).
    let expected = total + 100 + (total - received.len() as u64);
    eventually(10, "the resumed part counted by the provider", || {
        (bytes(&provider, &provider_pid) == expected).then_some(())
    });
}
