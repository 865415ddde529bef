//! What independent tools see in caap's real traffic. Three DCP connectors (a trust anchor and two cities)
//! are reached only through recording taps (their `public_url`s), so every message they exchange (DID
//! documents, the version document, DCP issuance and presentation messages, catalog, dataset, every
//! negotiation and transfer message and the protocol errors) is captured as sent. Each captured body is
//! validated against the official DSP 2025-1 or DCP 1.0 schema in ../shared and expanded by a JSON-LD 1.1
//! processor with offline contexts: no term may be dropped, no IRI left relative, and the agreement signature
//! must survive. The same dataset must have the same IRI in the catalog, at the dataset endpoint and as the
//! agreement's target.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Value, json};

use crate::identity::{dcp_settings, did_of, enrol, negotiate_and_pull, publish_reading};
use crate::jsonld as ld;
use crate::negotiation::eventually;
use crate::support::{Node, Server, publish_sample, request};

/// One request/response pair that passed a tap.
#[derive(Debug, Clone)]
struct Exchange {
    method: String,
    path: String,
    request: Option<Value>,
    status: u16,
    response: Option<Value>,
}

/// A recording HTTP forwarder in front of one connector's DSP listener.
struct Tap {
    url: String,
    target: Arc<Mutex<String>>,
    log: Arc<Mutex<Vec<Exchange>>>,
}

impl Tap {
    fn start() -> Tap {
        let target = Arc::new(Mutex::new(String::new()));
        let log = Arc::new(Mutex::new(Vec::new()));
        let (t, l) = (target.clone(), log.clone());
        let addr = crate::peer::serve(move |req, body| forward(req, body, t.clone(), l.clone()));
        Tap {
            url: format!("http://{addr}"),
            target,
            log,
        }
    }

    fn forward_to(&self, server: &Server) {
        *self.target.lock().unwrap() = server.dsp.clone();
    }

    fn exchanges(&self) -> Vec<Exchange> {
        self.log.lock().unwrap().clone()
    }
}

async fn forward(
    req: HttpRequest,
    body: web::Bytes,
    target: Arc<Mutex<String>>,
    log: Arc<Mutex<Vec<Exchange>>>,
) -> HttpResponse {
    let base = target.lock().unwrap().clone();
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut out = client.request(
        req.method().as_str().parse().unwrap(),
        format!("{base}{path}"),
    );
    for name in ["authorization", "content-type", "accept"] {
        if let Some(v) = req.headers().get(name).and_then(|v| v.to_str().ok()) {
            out = out.header(name, v);
        }
    }
    let res = match out.body(body.to_vec()).send().await {
        Ok(res) => res,
        Err(e) => return HttpResponse::BadGateway().body(format!("tap: {e}")),
    };
    let status = res.status().as_u16();
    let headers: Vec<(String, String)> = res
        .headers()
        .iter()
        .filter(|(n, _)| {
            ["content-type", "link", "location", "www-authenticate"].contains(&n.as_str())
        })
        .filter_map(|(n, v)| Some((n.to_string(), v.to_str().ok()?.to_owned())))
        .collect();
    let bytes = res.bytes().await.unwrap_or_default();
    let json = |b: &[u8]| serde_json::from_slice::<Value>(b).ok();
    log.lock().unwrap().push(Exchange {
        method: req.method().to_string(),
        path: req.path().to_owned(),
        request: json(&body),
        status,
        response: json(&bytes),
    });
    let mut answer = HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap());
    for (n, v) in headers {
        answer.insert_header((n, v));
    }
    answer.body(bytes)
}

/// The official DSP schema of a DSP body, by `@type`.
fn dsp_schema(kind: &str) -> Option<&'static str> {
    Some(match kind {
        "Catalog" => "catalog/catalog-schema.json",
        "Dataset" => "catalog/dataset-schema.json",
        "CatalogRequestMessage" => "catalog/catalog-request-message-schema.json",
        "CatalogError" => "catalog/catalog-error-schema.json",
        other => return crate::peer::schema_for(other),
    })
}

/// Relative IRIs that the official contexts produce from the official examples themselves, so no sender
/// can avoid them: (the expanded path that ends in it, the official example that shows it, why).
const UPSTREAM: &[(&str, &str, &str)] = &[
    (
        "http://purl.org/dc/terms/format/0/@id",
        "dsp/2025-1/catalog/examples/dataset.json",
        "the DSP 2025-1 context types `format` as a vocabulary IRI but defines no term for the transfer \
         format names its own examples use (HttpData-PULL), which other connectors match as strings",
    ),
    (
        "https://w3id.org/dspace-dcp/v1.0/status/0/@id",
        "vectors/identity/dcp/issuance/example/credential-message.json",
        "the DCP 1.0 context types CredentialMessage's `status` as @id and defines no ISSUED term there \
         (CredentialStatus's `status` is a @vocab with terms)",
    ),
];

/// The allowances of [`UPSTREAM`], each checked against its official example (if upstream fixes one, the
/// allowance fails here and must go).
fn upstream_allowances(tools: &ld::LinkedData) -> Vec<String> {
    UPSTREAM
        .iter()
        .map(|(fragment, example, why)| {
            let path = ld::shared_dir().join(example);
            let doc: Value =
                serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            let marker = format!("/{fragment}:");
            assert!(
                tools.problems(&doc).iter().any(|p| p.contains(&marker)),
                "the official {example} no longer shows `{fragment}` ({why}): remove the allowance"
            );
            marker
        })
        .collect()
}

/// A connector node whose public URL is its tap.
fn tapped(name: &str, tap: &Tap, authority: Option<&str>) -> Node {
    let node = Node::init_with(name, &dcp_settings(authority));
    node.set_all(&[("participant.public_url", format!("\"{}\"", tap.url))]);
    node
}

#[test]
fn every_message_caap_sends_validates_and_expands_with_independent_tools() {
    let Some(tools) = ld::load() else { return };
    let Some(schemas) = crate::peer::schemas() else {
        return;
    };
    let (ta, tl, tm) = (Tap::start(), Tap::start(), Tap::start());

    // A trust anchor and two members, each reachable only through its tap.
    let fed_node = tapped("Federationen", &ta, None);
    fed_node.set_all(&[("authority.enabled", "true".into())]);
    let authority = fed_node.start(&[]);
    ta.forward_to(&authority);
    let authority_did = did_of(&authority);
    let lund_node = tapped("Lund", &tl, Some(&authority_did));
    let malmo_node = tapped("Malmö", &tm, Some(&authority_did));
    let (lund, malmo) = (lund_node.start(&[]), malmo_node.start(&[]));
    tl.forward_to(&lund);
    tm.forward_to(&malmo);
    for s in [&lund, &malmo] {
        enrol(&authority, s, &ta.url);
    }

    // Lund publishes the sample catalog (purposes, dates, places, other ODRL actions) and a dataset whose
    // contract policy limits the count with a number.
    publish_sample(&lund, 1);
    std::fs::write(
        lund_node.dir.path().join("files/reading.json"),
        br#"{"no2": 17}"#,
    )
    .unwrap();
    let counted = json!({"id": "counted", "policy": {"@type": "Set", "permission": [{"action": "use",
        "constraint": [{"leftOperand": "count", "operator": "lteq", "rightOperand": 1000}]}]}});
    assert_eq!(
        lund.api("POST", "/api/v1/policies", Some(&counted)).status,
        201
    );
    publish_reading(&lund, Some("counted"));
    let manual = json!({"id": "reading-manual", "assets": ["reading"], "approval": "manual",
        "accessPolicy": caap_catalog::samples::OPEN_POLICY_ID, "contractPolicy": "counted"});
    let r = lund.api("POST", "/api/v1/offers", Some(&manual));
    assert_eq!(r.status, 201, "{}", r.body);

    // Catalog and dataset, through the version document, with DCP presentations on the way.
    let r = malmo.api(
        "POST",
        "/api/v1/catalogs/request",
        Some(&json!({"counterPartyAddress": tl.url})),
    );
    assert_eq!(r.status, 200, "{}", r.body);

    // A negotiation to FINALIZED (offer named by its handle), a pull transfer, then its end.
    let tid = negotiate_and_pull(&malmo, &tl.url, "reading-offer");
    let state = |id: &str| {
        malmo
            .api("GET", &format!("/api/v1/transfers/{id}"), None)
            .body
    };
    for (step, want) in [("suspend", "SUSPENDED"), ("terminate", "TERMINATED")] {
        let r = malmo.api(
            "POST",
            &format!("/api/v1/transfers/{tid}/{step}"),
            Some(&json!({})),
        );
        assert!(r.status < 300, "{step}: {}", r.body);
        eventually(20, want, || (state(&tid)["state"] == want).then_some(()));
    }
    // A request the provider's staff reject: a termination message.
    let r = malmo.api(
        "POST",
        "/api/v1/negotiations",
        Some(&json!({"counterPartyAddress": tl.url, "offerId": "reading-manual"})),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let rejected = r.body["id"].as_str().unwrap().to_owned();
    let pending = eventually(20, "waiting for approval at Lund", || {
        let list = lund.api("GET", "/api/v1/negotiations", None).body;
        list["items"]
            .as_array()?
            .iter()
            .find(|n| n["pending"].is_string() || n["awaiting"].is_string())
            .and_then(|n| n["id"].as_str().map(str::to_owned))
    });
    let r = lund.api(
        "POST",
        &format!("/api/v1/negotiations/{pending}/reject"),
        Some(&json!({"reason": "not this month"})),
    );
    assert!(r.status < 300, "{}", r.body);
    eventually(20, "TERMINATED at Malmö", || {
        let n = malmo
            .api("GET", &format!("/api/v1/negotiations/{rejected}"), None)
            .body;
        (n["state"] == "TERMINATED").then_some(())
    });

    // Protocol errors, as a stranger without a token would see them.
    for path in [
        "/dsp/catalog/datasets/no-such-dataset",
        "/dsp/negotiations/urn:uuid:00000000-0000-4000-8000-000000000000",
        "/dsp/transfers/urn:uuid:00000000-0000-4000-8000-000000000000",
    ] {
        request(
            "GET",
            &format!("{}{path}", tl.url),
            None,
            None,
            "application/json",
        );
    }
    // caap's context is served where every caap serves it.
    let ctx = request(
        "GET",
        &format!("{}{}", tl.url, caap_catalog::CAAP_CONTEXT_PATH),
        None,
        None,
        "",
    );
    assert_eq!(ctx.status, 200);
    assert_eq!(
        ctx.body,
        serde_json::from_str::<Value>(caap_catalog::CAAP_CONTEXT_DOCUMENT).unwrap()
    );

    // Now read everything that passed the taps as independent tools would.
    let allowed = upstream_allowances(tools);
    let mut seen = BTreeSet::new();
    let mut problems = Vec::new();
    let mut catalog_ids = BTreeSet::new();
    let mut dataset_ids = BTreeSet::new();
    let mut targets = BTreeSet::new();
    let exchanges: Vec<Exchange> = [&ta, &tl, &tm].iter().flat_map(|t| t.exchanges()).collect();
    for x in &exchanges {
        for (side, body) in [("request", &x.request), ("response", &x.response)] {
            let Some(body) = body else { continue };
            let at = format!("{} {} ({side}, {})", x.method, x.path, x.status);
            if x.path.ends_with("/.well-known/dspace-version") {
                seen.insert("VersionResponse".to_owned());
                if let Err(e) = schemas.validate("common/protocol-version-schema.json", body) {
                    problems.push(format!("{at}: {e:?}"));
                }
                continue;
            }
            if x.path.ends_with("/.well-known/did.json") {
                seen.insert("DidDocument".to_owned());
                for problem in did_document_problems(&schemas, body) {
                    problems.push(format!("{at}: {problem}"));
                }
                // Service types are bare names by the DSP schema (`CatalogService`) and DCP
                // (`CredentialService`, `IssuerService`); no context defines them.
                for p in tools.problems(body) {
                    let service_type = [
                        "CredentialService",
                        "IssuerService",
                        "CatalogService",
                        "DataService",
                    ]
                    .iter()
                    .any(|t| p.ends_with(&format!("/@type: relative type `{t}`")));
                    if !service_type {
                        problems.push(format!("{at}: DID document: {p}"));
                    }
                }
                continue;
            }
            if let Some(kind) = body.get("@type").and_then(Value::as_str) {
                let Some(schema) = dsp_schema(kind) else {
                    problems.push(format!("{at}: no official schema for @type {kind}"));
                    continue;
                };
                seen.insert(kind.to_owned());
                if let Err(e) = schemas.validate(schema, body) {
                    problems.push(format!("{at}: {kind} fails {schema}: {e:?}"));
                }
                for p in tools.problems(body) {
                    if !allowed.iter().any(|a| p.contains(a.as_str())) {
                        problems.push(format!("{at}: {kind}: {p}"));
                    }
                }
                match kind {
                    "Catalog" => catalog_ids.extend(
                        body["dataset"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .map(|d| d["@id"].to_string()),
                    ),
                    "Dataset" => {
                        dataset_ids.insert(body["@id"].to_string());
                    }
                    "ContractAgreementMessage" => {
                        targets.insert(body["agreement"]["target"].to_string());
                        let expanded = tools.expand(body).unwrap();
                        let sig =
                            ld::values_of(&expanded, "https://w3id.org/caap/v1#agreementSignature");
                        assert!(
                            sig.first().is_some_and(|s| s["@type"] == "@json"
                                && s["@value"]["jws"].is_string()
                                && s["@value"]["signerJwk"].is_object()),
                            "the agreement signature did not survive expansion: {expanded}"
                        );
                    }
                    _ => {}
                }
            } else if let Some(kind) = body.get("type").and_then(Value::as_str) {
                match tools.dcp_errors(body) {
                    Some(errors) => {
                        seen.insert(kind.to_owned());
                        problems.extend(errors.into_iter().map(|e| format!("{at}: {kind}: {e}")));
                        for p in tools.problems(body) {
                            if !allowed.iter().any(|a| p.contains(a.as_str())) {
                                problems.push(format!("{at}: {kind}: {p}"));
                            }
                        }
                    }
                    // DCP error bodies (`{"type": "Error", …}`) have no schema and no @context.
                    None if kind == "Error" => {}
                    None => problems.push(format!("{at}: no official schema for type {kind}")),
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{} problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
    let expected = [
        "VersionResponse",
        "DidDocument",
        "CatalogRequestMessage",
        "Catalog",
        "Dataset",
        "CatalogError",
        "ContractRequestMessage",
        "ContractNegotiation",
        "ContractAgreementMessage",
        "ContractAgreementVerificationMessage",
        "ContractNegotiationEventMessage",
        "ContractNegotiationTerminationMessage",
        "ContractNegotiationError",
        "TransferRequestMessage",
        "TransferProcess",
        "TransferStartMessage",
        "TransferSuspensionMessage",
        "TransferTerminationMessage",
        "TransferError",
        "PresentationQueryMessage",
        "PresentationResponseMessage",
        "CredentialRequestMessage",
        "CredentialMessage",
    ];
    let missing: Vec<&str> = expected
        .iter()
        .filter(|k| !seen.contains(**k))
        .copied()
        .collect();
    assert!(
        missing.is_empty(),
        "never captured: {missing:?} (seen {seen:?})"
    );
    // One dataset, one IRI: the catalog's, the dataset endpoint's and the agreement's target agree.
    assert!(!targets.is_empty());
    for target in &targets {
        assert!(
            catalog_ids.contains(target),
            "{target} not in {catalog_ids:?}"
        );
        assert!(
            dataset_ids.contains(target),
            "{target} not in {dataset_ids:?}"
        );
        assert!(target.starts_with(&format!("\"{}/", tl.url)), "{target}");
    }
}

/// What the DSP schema finds wrong with a DID document: its DSP service entries (`CatalogService`,
/// `DataService`) against `did-service-schema.json`, and the shape of its `@context` (an array of IRIs).
fn did_document_problems(schemas: &crate::dsp_schema::DspSchemas, doc: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    for service in doc["service"].as_array().into_iter().flatten() {
        let kind = service["type"].as_str().unwrap_or_default();
        if (kind == "CatalogService" || kind == "DataService")
            && let Err(e) = schemas.validate("common/did-service-schema.json", service)
        {
            problems.push(format!("service {kind}: {e:?}"));
        }
    }
    if !doc["@context"].as_array().is_some_and(|c| {
        c.iter()
            .all(|v| v.as_str().is_some_and(caap_catalog::iri::is_absolute))
    }) {
        problems.push(format!(
            "@context is not an array of IRIs: {}",
            doc["@context"]
        ));
    }
    problems
}
