//! Citizen consent (MIM4) end to end with two real connectors: Malmö provides resident parking permits (personal
//! data on the basis of consent), Lund receives them for a stated purpose. Only consented citizens' records flow;
//! a withdrawal stops them from the next access on, and the notice reaches Lund (also after Lund was down),
//! which deletes the records it received and confirms it with a signed answer.

use caap_catalog::asset::PersonalData;
use caap_policy::consent::DataAgreementTerms;
use serde_json::{Value, json};

use crate::negotiation::eventually;
use crate::support::{Node, Server, postgres_database};
use crate::transfers::{city_settings, fetch, finalized_agreement, started_transfer};

pub(crate) const MALMO: &str = "did:web:malmo.example";
pub(crate) const LUND: &str = "did:web:lund.example";
const PURPOSE: &str = "dpv:ServiceProvision";
/// Synthetic citizens (not real identity numbers).
pub(crate) const ANNA: &str = "19990101-0001";
pub(crate) const BO: &str = "19990101-0002";
const CAJSA: &str = "19990101-0003";

fn permits() -> String {
    let mut out = String::new();
    for (i, who) in [ANNA, BO, CAJSA, ANNA, BO, CAJSA].iter().enumerate() {
        out.push_str(
            &json!({"id": format!("permit-{i}"), "type": "ParkingPermit", "zone": format!("Z{}", i % 3),
                    "refCitizen": who})
            .to_string(),
        );
        out.push('\n');
    }
    out
}

fn declaration() -> Value {
    json!({"subjectField": "refCitizen", "categories": ["pd:VehicleLicence", "pd:Location"],
           "purposes": [PURPOSE], "retention": "P6M", "jurisdiction": "loc:SE",
           "storageLocations": ["loc:SE"]})
}

/// Publishes the permit dataset under an offer for Lund that binds the purpose and the duties to delete.
pub(crate) fn publish(provider: &Server) {
    let decl: PersonalData = serde_json::from_value(declaration()).unwrap();
    let terms = DataAgreementTerms::new(&decl, PURPOSE, LUND).unwrap();
    let base =
        caap_policy::parse_policy(&json!({"@type": "Set", "permission": [{"action": "use"}]}))
            .unwrap();
    let policy = terms.apply(&base).to_compact_json();
    let r = provider.api(
        "POST",
        "/api/v1/policies",
        Some(&json!({"id": "permits-for-planning", "policy": policy})),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let r = provider.api("POST", "/api/v1/policies", Some(&json!({"id": "members", "policy": {"@type": "Set", "permission": [{"action": "use"}]}})));
    assert_eq!(r.status, 201, "{}", r.body);
    let asset = json!({"id": "resident-parking-permits", "title": "Resident parking permits (synthetic)",
        "dataAddress": {"type": "File", "path": "permits.ndjson", "mediaType": "application/x-ndjson"},
        "personalData": declaration()});
    let r = provider.api("POST", "/api/v1/assets", Some(&asset));
    assert_eq!(r.status, 201, "{}", r.body);
    // An offer on personal data must bind one of its purposes.
    let r = provider.api(
        "POST",
        "/api/v1/offers",
        Some(
            &json!({"id": "permits-any-use", "assets": ["resident-parking-permits"],
            "accessPolicy": "members", "contractPolicy": "members"}),
        ),
    );
    assert_eq!(r.status, 422, "{}", r.body);
    let text = r.body.to_string();
    assert!(
        text.contains("/contractPolicy") && text.contains("purpose"),
        "{text}"
    );
    let r = provider.api(
        "POST",
        "/api/v1/offers",
        Some(
            &json!({"id": "permits", "assets": ["resident-parking-permits"],
        "accessPolicy": "members", "contractPolicy": "permits-for-planning"}),
        ),
    );
    assert_eq!(r.status, 201, "{}", r.body);
}

fn lines(data: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(data)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

pub(crate) fn citizens(data: &[u8]) -> Vec<String> {
    let mut who: Vec<String> = lines(data)
        .iter()
        .map(|v| v["refCitizen"].as_str().unwrap().to_owned())
        .collect();
    who.sort();
    who
}

pub(crate) fn request_consent(provider: &Server, who: &str) -> String {
    let r = provider.api(
        "POST",
        "/api/v1/consents/requests",
        Some(&json!({"subject": who, "dataset": "resident-parking-permits", "purpose": PURPOSE, "recipient": LUND})),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    r.body["id"].as_str().unwrap().to_owned()
}

fn decide(provider: &Server, record: &str, who: &str, decision: &str) -> Value {
    let r = provider.api(
        "POST",
        &format!("/api/v1/consents/{record}/decision"),
        Some(&json!({"subject": who, "decision": decision, "method": "e2e test"})),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    r.body
}

#[test]
fn only_consented_records_flow_and_a_withdrawal_reaches_the_recipient() {
    walk(None);
}

#[test]
fn the_same_on_postgresql() {
    if let (Some(p), Some(c)) = (
        postgres_database("consent (provider)"),
        postgres_database("consent (recipient)"),
    ) {
        walk(Some((p, c)));
    }
}

/// The whole walk, on SQLite or (with two database URLs) on PostgreSQL.
fn walk(databases: Option<(String, String)>) {
    let env = |id: &'static str, db: Option<&String>| {
        let mut v = vec![("CAAP_PARTICIPANT_ID", id.to_owned())];
        if let Some(url) = db {
            v.push(("CAAP_DATABASE_URL", url.clone()));
        }
        v
    };
    let provider_env = env(MALMO, databases.as_ref().map(|d| &d.0));
    let consumer_env = env(LUND, databases.as_ref().map(|d| &d.1));
    let (provider_node, consumer_node) = permit_cities(vec![]);
    let provider = provider_node.start(&pairs(&provider_env));
    let mut consumer = consumer_node.start(&pairs(&consumer_env));
    publish(&provider);
    let agreement = finalized_agreement(&consumer, &provider.dsp, "permits");

    // Nobody has consented yet: nothing flows.
    let t = started_transfer(&consumer, &agreement);
    let pull = t["id"].as_str().unwrap().to_owned();
    assert!(fetch(&consumer, &pull).is_empty());

    // The agreement asked every citizen the dataset holds (three pending requests, no identity number kept).
    let asked = eventually(10, "consent requests for every citizen", || {
        let l = provider.api("GET", "/api/v1/consents", None).body;
        let items = l["items"].as_array()?.clone();
        (items.len() == 3).then_some(items)
    });
    assert!(
        asked.iter().all(|r| r["standing"] == "requested"),
        "{asked:?}"
    );
    assert!(!format!("{asked:?}").contains("19990101"));
    // Anna grants, Bo refuses, Cajsa does not answer.
    let anna = request_consent(&provider, ANNA);
    let bo = request_consent(&provider, BO);
    assert_eq!(
        request_consent(&provider, ANNA),
        anna,
        "one record per citizen and scope"
    );
    let granted = decide(&provider, &anna, ANNA, "grant");
    assert_eq!(granted["state"], "given", "{granted}");
    assert!(
        granted["receipt"]["jws"].is_string(),
        "a signed receipt: {granted}"
    );
    decide(&provider, &bo, BO, "refuse");
    // Someone else cannot decide on Anna's record.
    let r = provider.api(
        "POST",
        &format!("/api/v1/consents/{anna}/decision"),
        Some(&json!({"subject": BO, "decision": "withdraw"})),
    );
    assert_eq!(r.status, 404, "{}", r.body);
    assert_eq!(citizens(&fetch(&consumer, &pull)), [ANNA, ANNA]);

    // A push lands Anna's records in Lund's receiver.
    let r = consumer.api(
        "POST",
        "/api/v1/transfers",
        Some(&json!({"agreementId": agreement, "format": "HttpData-PUSH"})),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let push = r.body["id"].as_str().unwrap().to_owned();
    eventually(20, "push COMPLETED", || {
        let t = consumer
            .api("GET", &format!("/api/v1/transfers/{push}"), None)
            .body;
        (t["state"] == "COMPLETED").then_some(())
    });
    assert_eq!(citizens(&fetch(&consumer, &push)), [ANNA, ANNA]);
    // The transfer log knows Lund received Anna's records (pull and push).
    delivered(&provider, &anna, 4);

    // Lund is down when Anna withdraws: the notice is retried with the reason visible.
    // Lund comes back on the same address (as a real city would).
    let port = consumer.dsp.rsplit(':').next().unwrap().to_owned();
    consumer.stop();
    consumer_node.set_all(&[("dsp.bind", format!("\"127.0.0.1:{port}\""))]);
    decide(&provider, &anna, ANNA, "withdraw");
    let failing = eventually(20, "a failed attempt", || {
        let n = provider.api("GET", "/api/v1/consent-notices", None).body;
        let n = n["items"].as_array()?.first()?.clone();
        (n["attempts"].as_u64()? >= 1 && n["lastError"].is_string()).then_some(n)
    });
    assert_eq!(failing["state"], "SENT", "{failing}");
    assert_eq!(failing["recipient"], LUND);
    consumer = consumer_node.start(&pairs(&consumer_env));
    // Delivered when Lund is back: acknowledged, then deletion confirmed, both signed by Lund.
    deletion_confirmed(&provider);
    // The pull transfer carried only Anna's records: it depended on her consent and is ended with the reason.
    let ended = eventually(30, "the pull transfer ended", || {
        let t = provider.api("GET", "/api/v1/transfers", None).body;
        t["items"]
            .as_array()?
            .iter()
            .find(|t| {
                t["consumerPid"].as_str() == Some(pull.as_str()) && t["state"] == "TERMINATED"
            })
            .cloned()
    });
    assert!(ended.to_string().contains("consent"), "{ended}");
    eventually(30, "the consumer hears of it", || {
        let t = consumer
            .api("GET", &format!("/api/v1/transfers/{pull}"), None)
            .body;
        (t["state"] == "TERMINATED").then_some(())
    });
    let received = consumer
        .api("GET", "/api/v1/consent-notices/received", None)
        .body;
    assert_eq!(received["items"][0]["state"], "DELETED", "{received}");
    assert_eq!(received["items"][0]["recordsDeleted"], 2, "{received}");
    // Lund's copy of the pushed data no longer holds Anna's records; the provider releases none of them.
    assert!(citizens(&fetch(&consumer, &push)).is_empty());
    let t = started_transfer(&consumer, &agreement);
    assert!(fetch(&consumer, t["id"].as_str().unwrap()).is_empty());

    // The chain of every record verifies; the JSON-LD export names the events in DPV terms.
    let v = provider.api("GET", "/api/v1/consents/verify", None).body;
    assert_eq!(v["faults"], json!([]), "{v}");
    assert_eq!(v["records"], 3, "{v}");
    let doc = provider
        .api("GET", &format!("/api/v1/consents/{anna}"), None)
        .body;
    let text = doc.to_string();
    assert!(
        text.contains("dpv:ConsentWithdrawn") && text.contains("dpv:ConsentGiven"),
        "{text}"
    );
    assert!(
        !text.contains(ANNA),
        "no identity number in the record: {text}"
    );
    // The MIM4 configuration document.
    let r = crate::support::request(
        "GET",
        &format!("{}/.well-known/mim4-configuration", provider.dsp),
        None,
        None,
        "application/json",
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["mim"], "MIM4");
}

/// Waits until the transfer log holds at least `records` records released under the consent `record`.
pub(crate) fn delivered(provider: &Server, record: &str, records: u64) {
    eventually(20, "deliveries recorded", || {
        let d = provider
            .api(
                "GET",
                &format!("/api/v1/consents/{record}/deliveries"),
                None,
            )
            .body;
        let total: u64 = d["items"]
            .as_array()?
            .iter()
            .map(|i| i["records"].as_u64().unwrap_or(0))
            .sum();
        (total >= records).then_some(())
    });
}

/// Waits until the first withdrawal notice is answered: acknowledged, then deletion confirmed, both signed
/// by the recipient.
pub(crate) fn deletion_confirmed(provider: &Server) {
    let done = eventually(40, "deletion confirmed", || {
        let n = provider.api("GET", "/api/v1/consent-notices", None).body;
        let n = n["items"].as_array()?.first()?.clone();
        (n["state"] == "DELETED").then_some(n)
    });
    assert!(
        done["acknowledgement"].is_string() && done["deletion"].is_string(),
        "{done}"
    );
}

/// Malmö (the permits file in place, notices retried quickly, and `extra` settings) and Lund, each
/// trusting the other's token; not started.
pub(crate) fn permit_cities(extra: Vec<(&'static str, String)>) -> (Node, Node) {
    let provider = Node::init_with(
        "Malmö",
        &[
            city_settings("token-lund-to-malmo-0001", LUND, "token-malmo-to-lund-0001"),
            vec![
                ("consent.notice_retry_secs", "1".into()),
                ("consent.notice_max_backoff_secs", "2".into()),
            ],
            extra,
        ]
        .concat(),
    );
    let consumer = Node::init_with(
        "Lund",
        &city_settings(
            "token-malmo-to-lund-0001",
            MALMO,
            "token-lund-to-malmo-0001",
        ),
    );
    std::fs::write(provider.dir.path().join("files/permits.ndjson"), permits()).unwrap();
    (provider, consumer)
}

fn pairs<'a>(v: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    v.iter().map(|(k, val)| (*k, val.as_str())).collect()
}
