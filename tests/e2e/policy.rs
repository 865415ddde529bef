//! Policy enforcement end to end, with two connectors: the catalog hides what a requester's claims do not
//! allow, a negotiation outside the offer's time window is terminated with the evaluator's reason, the
//! 1001st access of a 1000-a-day agreement is refused, and a running transfer is suspended when its window
//! closes. Plus `caap policy evaluate` and `caap policy explain`.

use serde_json::{Value, json};

use crate::negotiation::eventually;
use crate::support::{Node, Server, caap, request};

const LUND: &str = "token-lund-presents-to-malmo-01";
const BUS: &str = "token-bus-presents-to-malmo-001";
const MALMO: &str = "token-malmo-presents-to-lund-01";

struct Setup {
    _provider_node: Node,
    _consumer_node: Node,
    provider: Server,
    consumer: Server,
}

fn setup() -> Setup {
    let provider_node = Node::init_with(
        "Malmö",
        &[
            (
                "dsp.auth.tokens",
                format!(
                    "[{{token = \"{LUND}\", participant = \"did:web:lund.example\", claims = {{role = \"Municipality\"}}}}, \
                     {{token = \"{BUS}\", participant = \"did:web:bus.example\", claims = {{role = \"Supplier\"}}}}]"
                ),
            ),
            ("dsp.auth.outbound_token", format!("\"{MALMO}\"")),
            ("negotiation.retry_base_ms", "20".into()),
        ],
    );
    let consumer_node = Node::init_with(
        "Lund",
        &[
            (
                "dsp.auth.tokens",
                format!("[{{token = \"{MALMO}\", participant = \"did:web:malmo.example\"}}]"),
            ),
            ("dsp.auth.outbound_token", format!("\"{LUND}\"")),
            ("negotiation.retry_base_ms", "20".into()),
        ],
    );
    std::fs::write(
        provider_node.dir.path().join("files/reading.json"),
        br#"{"no2": 17}"#,
    )
    .unwrap();
    let provider = provider_node.start(&[("CAAP_PARTICIPANT_ID", "did:web:malmo.example")]);
    let consumer = consumer_node.start(&[("CAAP_PARTICIPANT_ID", "did:web:lund.example")]);
    Setup {
        _provider_node: provider_node,
        _consumer_node: consumer_node,
        provider,
        consumer,
    }
}

/// Publishes a file dataset `id` under an offer `id` with `access` and `contract` policies.
fn publish(p: &Server, id: &str, access: Value, contract: Value) {
    for (pid, policy) in [
        (format!("{id}-access"), access),
        (format!("{id}-contract"), contract),
    ] {
        let r = p.api(
            "POST",
            "/api/v1/policies",
            Some(&json!({"id": pid, "policy": policy})),
        );
        assert_eq!(r.status, 201, "{}", r.body);
    }
    let mut asset = serde_json::to_value(
        caap_catalog::samples::assets(&caap_catalog::samples::CITIES[0], "http://127.0.0.1:9")
            .into_iter()
            .next()
            .unwrap(),
    )
    .unwrap();
    asset["id"] = json!(id);
    asset["dataAddress"] =
        json!({"type": "File", "path": "reading.json", "mediaType": "application/json"});
    let r = p.api("POST", "/api/v1/assets", Some(&asset));
    assert_eq!(r.status, 201, "{}", r.body);
    let r = p.api(
        "POST",
        "/api/v1/offers",
        Some(&json!({"id": id, "assets": [id], "accessPolicy": format!("{id}-access"), "contractPolicy": format!("{id}-contract")})),
    );
    assert_eq!(r.status, 201, "{}", r.body);
}

fn open() -> Value {
    json!({"@type": "Set", "permission": [{"action": "use"}]})
}

fn negotiate(s: &Setup, offer: &str) -> Value {
    let r = s.consumer.api(
        "POST",
        "/api/v1/negotiations",
        Some(&json!({"counterPartyAddress": s.provider.dsp, "offerId": offer})),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let id = r.body["id"].as_str().unwrap().to_owned();
    eventually(20, "the negotiation ends", || {
        let n = s
            .consumer
            .api("GET", &format!("/api/v1/negotiations/{id}"), None)
            .body;
        matches!(n["state"].as_str(), Some("FINALIZED" | "TERMINATED")).then_some(n)
    })
}

fn start_transfer(s: &Setup, agreement: &str) -> String {
    let r = s.consumer.api(
        "POST",
        "/api/v1/transfers",
        Some(&json!({"agreementId": agreement})),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let id = r.body["id"].as_str().unwrap().to_owned();
    eventually(10, "STARTED", || {
        let t = s
            .consumer
            .api("GET", &format!("/api/v1/transfers/{id}"), None)
            .body;
        (t["state"] == "STARTED").then_some(())
    });
    id
}

#[test]
fn the_catalog_shows_each_requester_what_its_claims_allow() {
    let s = setup();
    publish(
        &s.provider,
        "for-municipalities",
        json!({"@type": "Set", "permission": [{"action": "use", "constraint": [
            {"leftOperand": "caap:claim:role", "operator": "eq", "rightOperand": "Municipality"}]}]}),
        open(),
    );
    publish(&s.provider, "for-everyone", open(), open());
    let ids = |token: &str| -> Vec<String> {
        let r = request(
            "POST",
            &format!("{}/dsp/catalog/request", s.provider.dsp),
            Some(&format!("Bearer {token}")),
            Some(&json!({"@context": ["https://w3id.org/dspace/2025/1/context.jsonld"], "@type": "CatalogRequestMessage"}).to_string()),
            "application/json",
        );
        assert_eq!(r.status, 200, "{}", r.body);
        // Published under IRIs; the handles are what the provider chose.
        let ns = caap_catalog::iri::Namespace::new(&format!("{}/dsp", s.provider.dsp));
        r.body["dataset"]
            .as_array()
            .map(|d| {
                d.iter()
                    .map(|x| {
                        let iri = x["@id"].as_str().unwrap();
                        ns.dataset_handle(iri).unwrap().to_owned()
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    assert_eq!(ids(LUND), ["for-everyone", "for-municipalities"]);
    assert_eq!(ids(BUS), ["for-everyone"]);
    // Nor can the supplier fetch the hidden dataset by id.
    let r = request(
        "GET",
        &format!("{}/dsp/catalog/datasets/for-municipalities", s.provider.dsp),
        Some(&format!("Bearer {BUS}")),
        None,
        "application/json",
    );
    assert_eq!(r.status, 404, "{}", r.body);
}

#[test]
fn a_request_outside_the_time_window_is_terminated_with_the_evaluators_reason() {
    let s = setup();
    publish(
        &s.provider,
        "expired-offer",
        open(),
        json!({"@type": "Set", "permission": [{"action": "use", "constraint": [
            {"leftOperand": "dateTime", "operator": "lt", "rightOperand": {"@value": "2020-01-01T00:00:00Z", "@type": "xsd:dateTime"}}]}]}),
    );
    let n = negotiate(&s, "expired-offer");
    assert_eq!(n["state"], "TERMINATED", "{n}");
    let t = &n["termination"];
    assert_eq!(t["by"], "provider");
    assert_eq!(t["code"], "policy-denied");
    let reason = t["reason"].as_str().unwrap();
    assert!(
        reason.contains("2020-01-01"),
        "the reason names the window: {reason}"
    );
}

#[test]
fn the_1001st_access_of_a_1000_a_day_agreement_is_refused() {
    let s = setup();
    publish(
        &s.provider,
        "quota",
        open(),
        json!({"@type": "Set", "permission": [{"action": "use", "constraint": [
            {"leftOperand": "count", "operator": "lteq", "rightOperand": 1000},
            {"leftOperand": "timeInterval", "operator": "eq", "rightOperand": "P1D"}]}]}),
    );
    let n = negotiate(&s, "quota");
    assert_eq!(n["state"], "FINALIZED", "{n}");
    let tid = start_transfer(&s, n["agreementId"].as_str().unwrap());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (ok, refused) = rt.block_on(async {
        let client = reqwest::Client::new();
        let url = format!("{}/api/v1/transfers/{tid}/data", s.consumer.api);
        let mut ok = 0;
        let mut refused = None;
        for i in 1..=1001 {
            let res = client
                .get(&url)
                .bearer_auth(&s.consumer.admin)
                .send()
                .await
                .unwrap();
            if res.status() == 200 {
                assert_eq!(res.bytes().await.unwrap().as_ref(), br#"{"no2": 17}"#);
                ok += 1;
            } else {
                refused = Some((i, res.status().as_u16(), res.text().await.unwrap()));
                break;
            }
        }
        (ok, refused)
    });
    assert_eq!(ok, 1000);
    let (n, status, body) = refused.expect("the 1001st access was served");
    assert_eq!(n, 1001);
    assert_eq!(
        status, 502,
        "the consumer's API passes the provider's refusal on: {body}"
    );
    assert!(body.contains("403"), "{body}");
    assert!(body.contains("count"), "the reason names the count: {body}");
}

#[test]
fn a_running_transfer_is_suspended_when_its_window_closes() {
    let s = setup();
    // The window closes a few seconds from now.
    let until = chrono::DateTime::from_timestamp(
        std::time::SystemTime::UNIX_EPOCH
            .elapsed()
            .unwrap()
            .as_secs() as i64
            + 4,
        0,
    )
    .unwrap()
    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    publish(
        &s.provider,
        "window",
        open(),
        json!({"@type": "Set", "permission": [{"action": "use", "constraint": [
            {"leftOperand": "dateTime", "operator": "lt", "rightOperand": {"@value": until, "@type": "xsd:dateTime"}}]}]}),
    );
    let n = negotiate(&s, "window");
    assert_eq!(n["state"], "FINALIZED", "{n}");
    let tid = start_transfer(&s, n["agreementId"].as_str().unwrap());
    let r = s
        .consumer
        .api("GET", &format!("/api/v1/transfers/{tid}/data"), None);
    assert_eq!(r.status, 200, "{}", r.body);
    let t = eventually(15, "SUSPENDED by the provider's monitor", || {
        let t = s
            .consumer
            .api("GET", &format!("/api/v1/transfers/{tid}"), None)
            .body;
        (t["state"] == "SUSPENDED").then_some(t)
    });
    assert_eq!(t["termination"]["by"], "provider");
    assert_eq!(t["termination"]["code"], "policy");
    assert!(
        t["termination"]["reason"]
            .as_str()
            .unwrap()
            .contains(&until[..10]),
        "{t}"
    );
    let r = s
        .consumer
        .api("GET", &format!("/api/v1/transfers/{tid}/data"), None);
    assert_eq!(r.status, 409, "{}", r.body);
    // A new transfer under the same agreement is refused, with the reason.
    let r = s.consumer.api(
        "POST",
        "/api/v1/transfers",
        Some(&json!({"agreementId": n["agreementId"]})),
    );
    let again = r.body["id"].as_str().unwrap().to_owned();
    let t = eventually(20, "the refused request ends the transfer", || {
        let t = s
            .consumer
            .api("GET", &format!("/api/v1/transfers/{again}"), None)
            .body;
        (t["state"] == "TERMINATED").then_some(t)
    });
    let reason = t["termination"]["reason"].as_str().unwrap();
    assert!(
        reason.contains("does not permit a transfer now"),
        "{reason}"
    );
}

#[test]
fn caap_policy_explains_and_evaluates_offline() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.json");
    std::fs::write(
        &policy,
        json!({"@context": "http://www.w3.org/ns/odrl.jsonld", "@type": "Set", "uid": "urn:p1",
            "permission": [{"target": "urn:a", "action": "use", "constraint": [
                {"leftOperand": "dateTime", "operator": "lt", "rightOperand": {"@value": "2027-01-01T00:00:00Z", "@type": "xsd:dateTime"}}]}]})
        .to_string(),
    )
    .unwrap();
    let out = caap()
        .args(["policy", "explain"])
        .arg(&policy)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("2027-01-01"), "{text}");
    let request = dir.path().join("request.ttl");
    std::fs::write(
        &request,
        "@prefix odrl: <http://www.w3.org/ns/odrl/2/> .\n@prefix ex: <http://example.org/> .\n\
         @prefix dct: <http://purl.org/dc/terms/> .\n@prefix xsd: <http://www.w3.org/2001/XMLSchema#> .\n\
         ex:request a odrl:Request ; odrl:permission [ odrl:assignee ex:alice ; odrl:action odrl:use ; odrl:target <urn:a> ] .\n",
    )
    .unwrap();
    let state = dir.path().join("state.ttl");
    std::fs::write(
        &state,
        "@prefix temp: <http://example.com/request/> .\n@prefix dct: <http://purl.org/dc/terms/> .\n\
         @prefix xsd: <http://www.w3.org/2001/XMLSchema#> .\n\
         temp:currentTime dct:issued \"2026-11-22T10:00:00Z\"^^xsd:dateTime .\n",
    )
    .unwrap();
    let out = caap()
        .args(["policy", "evaluate", "--policy"])
        .arg(&policy)
        .arg("--request")
        .arg(&request)
        .arg("--state")
        .arg(&state)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert!(report.to_string().contains("compliance-report"), "{report}");
    // Unreadable input: non-zero with a clear message.
    std::fs::write(&request, "this is not turtle").unwrap();
    let out = caap()
        .args(["policy", "evaluate", "--policy"])
        .arg(&policy)
        .arg("--request")
        .arg(&request)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("request"));
}
