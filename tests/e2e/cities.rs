//! Negotiations between two real `caap` processes (a city and its neighbour), the MIM3 ledger on both sides,
//! refusals with readable reasons, approval by hand, crashes and restarts, retries and giving up, and
//! replicas on one PostgreSQL.

use std::time::Duration;

use serde_json::{Value, json};

use crate::negotiation::{eventually, peer_settings, publish_offer};
use crate::peer::{PEER_ID, Peer};
use crate::support::{Node, Relay, Server, caap, postgres_database};

const LUND_TOKEN: &str = "token-lund-presents-to-malmo-01";
const MALMO_TOKEN: &str = "token-malmo-presents-to-lund-01";

/// Two connectors that know each other's tokens. The provider (Malmö) has `provider_extra` in its config.
struct Pair {
    provider_node: Node,
    consumer_node: Node,
    provider: Server,
    consumer: Server,
    provider_id: String,
}

fn participant(server: &Server) -> String {
    server.api("GET", "/api/v1/participant", None).body["participantId"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn pair(
    provider_extra: &[(&'static str, String)],
    consumer_extra: &[(&'static str, String)],
) -> Pair {
    // Participant ids are fixed so each side's token table can name the other before either starts.
    let settings = |token: &str, from: &str, outbound: &str, extra: &[(&'static str, String)]| {
        let mut v: Vec<(&'static str, String)> = vec![
            (
                "dsp.auth.tokens",
                format!("[{{token = \"{token}\", participant = \"{from}\"}}]"),
            ),
            ("dsp.auth.outbound_token", format!("\"{outbound}\"")),
            ("negotiation.retry_base_ms", "20".into()),
        ];
        v.extend(extra.iter().cloned());
        v
    };
    let provider_node = Node::init_with(
        "Malmö",
        &settings(
            LUND_TOKEN,
            "did:web:lund.example",
            MALMO_TOKEN,
            provider_extra,
        ),
    );
    let consumer_node = Node::init_with(
        "Lund",
        &settings(
            MALMO_TOKEN,
            "did:web:malmo.example",
            LUND_TOKEN,
            consumer_extra,
        ),
    );
    let provider = provider_node.start(&[("CAAP_PARTICIPANT_ID", "did:web:malmo.example")]);
    let consumer = consumer_node.start(&[("CAAP_PARTICIPANT_ID", "did:web:lund.example")]);
    Pair {
        provider_id: participant(&provider),
        provider_node,
        consumer_node,
        provider,
        consumer,
    }
}

fn negotiation(server: &Server, id: &str) -> Value {
    let r = server.api("GET", &format!("/api/v1/negotiations/{id}"), None);
    assert_eq!(r.status, 200, "{}", r.body);
    r.body
}

fn wait_for(server: &Server, id: &str, state: &str) -> Value {
    let start = std::time::Instant::now();
    loop {
        let last = negotiation(server, id);
        if last["state"] == state {
            return last;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "negotiation {id} not in {state} after 20 s: {last:#}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn ledger_verify(node: &Node) -> std::process::Output {
    caap()
        .args(["ledger", "verify", "--config"])
        .arg(&node.config)
        .output()
        .unwrap()
}

#[test]
fn two_cities_negotiate_sign_and_both_ledgers_verify_until_a_row_is_tampered_with() {
    let p = pair(&[], &[]);
    assert_eq!(p.provider_id, "did:web:malmo.example");
    let dataset = publish_offer(&p.provider, "malmo-open", "automatic");
    // Through the CLI, waiting until the end.
    let out = caap()
        .args([
            "negotiate",
            "--provider",
            &p.provider.dsp,
            "--offer",
            "malmo-open",
            "--wait",
            "--config",
        ])
        .arg(&p.consumer_node.config)
        .args(["--api-url", &p.consumer.api])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("FINALIZED; agreement urn:uuid:"),
        "{stdout}"
    );
    // Both sides hold the same signed agreement.
    let mine = p.consumer.api("GET", "/api/v1/agreements", None).body["items"][0].clone();
    let theirs = p.provider.api("GET", "/api/v1/agreements", None).body["items"][0].clone();
    assert_eq!(mine["id"], theirs["id"]);
    assert_eq!(mine["body"]["agreement"], theirs["body"]["agreement"]);
    assert!(mine["body"]["jws"].is_string());
    assert_eq!(
        mine["datasetId"],
        caap_catalog::iri::Namespace::new(&format!("{}/dsp", p.provider.dsp)).dataset(&dataset)
    );
    assert_eq!(mine["body"]["agreement"]["target"], mine["datasetId"]);
    assert_eq!(mine["providerId"], "did:web:malmo.example");
    assert_eq!(theirs["consumerId"], "did:web:lund.example");
    assert_eq!(
        mine["body"]["agreement"]["assignee"],
        "did:web:lund.example"
    );
    // The negotiation shows its history; the provider's ledger export lists the transitions.
    let list = p.consumer.api("GET", "/api/v1/negotiations", None);
    let n = &list.body["items"][0];
    assert_eq!(n["state"], "FINALIZED");
    assert_eq!(n["retryCount"], 0);
    assert!(n["history"].as_array().unwrap().len() >= 4, "{n}");
    let export = crate::support::request(
        "GET",
        &format!("{}/api/v1/ledger?limit=3", p.provider.api),
        Some(&format!("Bearer {}", p.provider.admin)),
        None,
        "application/json",
    );
    assert_eq!(export.status, 200);
    assert!(export.headers["link"].to_str().unwrap().contains("after=3"));
    let text = export.body.as_str().unwrap().to_owned();
    assert_eq!(text.lines().count(), 3);
    for line in text.lines() {
        let e: Value = serde_json::from_str(line).unwrap();
        assert_eq!(e["hash"].as_str().unwrap().len(), 64);
    }
    // `caap ledger verify` passes on both sides (read straight from each database).
    p.provider.api("GET", "/api/v1/health", None);
    let provider = p.provider;
    let consumer = p.consumer;
    assert!(provider.stop().success());
    assert!(consumer.stop().success());
    for node in [&p.provider_node, &p.consumer_node] {
        let out = ledger_verify(node);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.contains("ledger OK"), "{stdout}");
        assert!(
            stdout.contains("1 agreement signature(s) verified"),
            "{stdout}"
        );
        // Checked against the signed heads in the database and in the data directory.
        let entries = stdout
            .split("ledger OK: ")
            .nth(1)
            .and_then(|s| s.split(' ').next())
            .unwrap();
        assert!(
            stdout.contains(&format!(
                "signed heads checked: database entry {entries}, file entry {entries}"
            )),
            "{stdout}"
        );
    }
    // Someone with database access rewrites history: verify names the entry.
    let sql = |node: &Node, statements: &[&str]| {
        let db = node.dir.path().join("caap.db");
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let store = caap_connector::store::Store::open(
                &caap_identity::Secret::new(format!("sqlite://{}", db.display())),
                1,
                std::sync::Arc::new(caap_connector::clock::SystemClock),
            )
            .await
            .unwrap();
            for s in statements {
                store.execute_raw(s).await.unwrap();
            }
            store.close().await.unwrap();
        });
    };
    sql(
        &p.consumer_node,
        &["UPDATE ledger SET payload = replace(payload, 'malmo', 'mallo') WHERE seq = 2"],
    );
    let out = ledger_verify(&p.consumer_node);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("entry 2"), "{stderr}");
    // Or deletes its end: the last row, the last five, all of them and the checkpoint row too.
    for (statements, failure) in [
        (
            &["DELETE FROM ledger WHERE seq = (SELECT MAX(seq) FROM ledger)"][..],
            "TRUNCATED",
        ),
        (
            &["DELETE FROM ledger WHERE seq > (SELECT MAX(seq) FROM ledger) - 5"][..],
            "TRUNCATED",
        ),
        (
            &["DELETE FROM ledger", "DELETE FROM ledger_checkpoint"][..],
            "TRUNCATED: the signed head in the head file",
        ),
    ] {
        sql(&p.provider_node, statements);
        let out = ledger_verify(&p.provider_node);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{statements:?}");
        assert!(stderr.contains(failure), "{statements:?}: {stderr}");
    }
}

/// Publishes the provider's `malmo-open` offer and has the consumer ask for it by handle with one permission of
/// `action`: (the dataset handle, the consumer's negotiation id).
fn ask_for_malmo_open(p: &Pair, action: &str) -> (String, String) {
    let dataset = publish_offer(&p.provider, "malmo-open", "automatic");
    let r = p.consumer.api(
        "POST",
        "/api/v1/negotiations",
        Some(&json!({"counterPartyAddress": format!("{}/dsp", p.provider.dsp), "counterPartyId": p.provider_id,
            "offer": {"@id": "malmo-open", "@type": "Offer", "target": dataset,
                "permission": [{"action": action}]}})),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    (dataset, r.body["id"].as_str().unwrap().to_owned())
}

#[test]
fn a_request_for_other_terms_is_terminated_with_a_reason_the_consumer_can_read() {
    let p = pair(&[], &[]);
    let (_, id) = ask_for_malmo_open(&p, "distribute");
    let n = wait_for(&p.consumer, &id, "TERMINATED");
    let t = &n["termination"];
    assert_eq!(t["by"], "provider");
    assert_eq!(t["code"], "terms-differ");
    assert!(
        t["reason"]
            .as_str()
            .unwrap()
            .contains("/catalog/offers/malmo-open: asked"),
        "{t}"
    );
    // A stranger to the catalog: an unknown offer id is refused at once.
    let r = p.consumer.api(
        "POST",
        "/api/v1/negotiations",
        Some(&json!({"counterPartyAddress": p.provider.dsp, "offerId": "no-such-offer"})),
    );
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(r.body["detail"].as_str().unwrap().contains("no-such-offer"));
}

#[test]
fn an_offer_named_by_its_handles_is_agreed_on_the_datasets_published_iri() {
    // The consumer names a caap provider's offer and dataset by handle; the provider's agreement targets the
    // IRI it publishes the dataset under, which is the same dataset.
    let p = pair(&[], &[]);
    let (dataset, id) = ask_for_malmo_open(&p, "use");
    let n = wait_for(&p.consumer, &id, "FINALIZED");
    let target = n["agreement"]["target"].as_str().unwrap();
    assert!(
        target.ends_with(&format!("/dsp/catalog/datasets/{dataset}")),
        "{target}"
    );
}

#[test]
fn manual_approval_survives_a_provider_crash_and_a_consumer_outage() {
    // The provider keeps retrying for a while (about every second) while the consumer is down.
    let p = pair(
        &[
            ("negotiation.max_attempts", "60".into()),
            ("negotiation.retry_max_secs", "1".into()),
        ],
        &[],
    );
    publish_offer(&p.provider, "malmo-by-hand", "manual");
    let r = p.consumer.api(
        "POST",
        "/api/v1/negotiations",
        Some(&json!({"counterPartyAddress": p.provider.dsp, "offerId": "malmo-by-hand"})),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let id = r.body["id"].as_str().unwrap().to_owned();
    let n = wait_for(&p.consumer, &id, "REQUESTED");
    let provider_pid = n["providerPid"].as_str().unwrap().to_owned();
    let pn = eventually(10, "the provider waits for approval", || {
        let n = negotiation(&p.provider, &provider_pid);
        (n["awaiting"] == "approval").then_some(n)
    });
    assert_eq!(pn["state"], "REQUESTED");
    // The provider crashes (no graceful stop) and comes back on the same database.
    let Pair {
        provider_node,
        consumer_node,
        provider,
        consumer,
        ..
    } = p;
    let provider_port = provider.dsp.rsplit(':').next().unwrap().to_owned();
    drop(provider);
    let provider = provider_node.start(&[
        ("CAAP_PARTICIPANT_ID", "did:web:malmo.example"),
        ("CAAP_DSP_BIND", &format!("127.0.0.1:{provider_port}")),
    ]);
    assert_eq!(
        negotiation(&provider, &provider_pid)["awaiting"],
        "approval"
    );
    // The consumer is down when the provider approves: the agreement is retried with back-off.
    let consumer_port = consumer.dsp.rsplit(':').next().unwrap().to_owned();
    assert!(consumer.stop().success());
    let r = provider.api(
        "POST",
        &format!("/api/v1/negotiations/{provider_pid}/approve"),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let failing = eventually(10, "a failed attempt is visible", || {
        let n = negotiation(&provider, &provider_pid);
        (n["retryCount"].as_u64().unwrap_or(0) >= 1).then_some(n)
    });
    assert_eq!(failing["pending"], "agree");
    assert!(
        failing["lastError"]
            .as_str()
            .unwrap()
            .contains("cannot connect"),
        "{failing}"
    );
    assert!(failing["nextAttemptAt"].is_string());
    // The CLI shows the same.
    let out = caap()
        .args(["negotiation", "show", &provider_pid, "--config"])
        .arg(&provider_node.config)
        .args(["--api-url", &provider.api])
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(shown.contains("last error"), "{shown}");
    assert!(shown.contains("sending         agree"), "{shown}");
    // The consumer comes back on the DSP port its callback address names.
    let consumer = consumer_node.start(&[
        ("CAAP_PARTICIPANT_ID", "did:web:lund.example"),
        ("CAAP_DSP_BIND", &format!("127.0.0.1:{consumer_port}")),
    ]);
    wait_for(&consumer, &id, "FINALIZED");
    wait_for(&provider, &provider_pid, "FINALIZED");
}

#[test]
fn a_consumer_killed_mid_send_takes_its_work_back_at_once_when_it_restarts() {
    let p = pair(&[], &[]);
    let dataset = publish_offer(&p.provider, "malmo-open", "automatic");
    // The consumer's request hangs in flight (the processor holds its lease) when it is killed.
    let relay = Relay::hanging(p.provider.dsp.trim_start_matches("http://"));
    // The dataset by the IRI the provider publishes it under (the relay's address is not the provider's).
    let target = format!("{}/dsp/catalog/datasets/{dataset}", p.provider.dsp);
    let r = p.consumer.api(
        "POST",
        "/api/v1/negotiations",
        Some(&json!({"counterPartyAddress": format!("{}/dsp", relay.base), "counterPartyId": p.provider_id,
            "offer": {"@id": "malmo-open", "@type": "Offer", "target": target,
                "permission": [{"action": "use"}]}})),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let id = r.body["id"].as_str().unwrap().to_owned();
    eventually(20, "the request in flight", || {
        (relay.accepted() > 0).then_some(())
    });
    let Pair {
        consumer_node,
        consumer,
        provider,
        ..
    } = p;
    let consumer_port = consumer.dsp.rsplit(':').next().unwrap().to_owned();
    drop(consumer); // kill -9
    relay.forward();
    let consumer = consumer_node.start(&[
        ("CAAP_PARTICIPANT_ID", "did:web:lund.example"),
        ("CAAP_DSP_BIND", &format!("127.0.0.1:{consumer_port}")),
    ]);
    // The crashed run's lease lasts `outbound_timeout_secs` + 30 s (60 s): the restarted connector must not
    // wait for it.
    eventually(20, "FINALIZED after the restart", || {
        (negotiation(&consumer, &id)["state"] == "FINALIZED").then_some(())
    });
    let provider_pid = negotiation(&consumer, &id)["providerPid"]
        .as_str()
        .unwrap()
        .to_owned();
    wait_for(&provider, &provider_pid, "FINALIZED");
}

#[test]
fn a_counterparty_that_stays_down_ends_the_negotiation_with_the_reason() {
    let node = Node::init_with("Lund", &peer_settings(&[("max_attempts", "3")]));
    let caap_server = node.start(&[]);
    let peer = Peer::start();
    peer.fail_next(2);
    let start = |offer_id: &str| {
        let r = caap_server.api(
            "POST",
            "/api/v1/negotiations",
            Some(&json!({"counterPartyAddress": peer.base, "counterPartyId": PEER_ID,
                "offer": {"@id": offer_id, "@type": "Offer", "target": "d", "permission": [{"action": "use"}]}})),
        );
        assert_eq!(r.status, 201, "{}", r.body);
        r.body["id"].as_str().unwrap().to_owned()
    };
    // Two failures, then the request gets through: the retries are visible afterwards in the history.
    let first = start("o-1");
    let n = wait_for(&caap_server, &first, "REQUESTED");
    assert_eq!(n["retryCount"], 0);
    assert!(n["lastError"].is_null());
    peer.expect("ContractRequestMessage");
    // Down for good: after max_attempts the negotiation is terminated locally, with the last error.
    peer.always_fail(true);
    let second = start("o-2");
    let n = wait_for(&caap_server, &second, "TERMINATED");
    let reason = n["termination"]["reason"].as_str().unwrap();
    assert!(
        reason.contains("gave up sending the request message after 3 attempts"),
        "{reason}"
    );
    assert!(reason.contains("503"), "{reason}");
    assert_eq!(n["termination"]["by"], "local");
    // The count stays what the history says.
    assert_eq!(n["retryCount"], 3, "{n}");
}

#[test]
fn replicas_on_one_postgresql_never_send_a_message_twice() {
    let Some(url) = postgres_database("replicas") else {
        return;
    };
    let node = Node::init_with(
        "Göteborg",
        &peer_settings(&[("concurrency", "2"), ("poll_interval_ms", "20")]),
    );
    let env = [("CAAP_DATABASE_URL", url.as_str())];
    let a = node.start(&env);
    let b = node.start(&env);
    let peer = Peer::start();
    peer.delay(Duration::from_millis(30));
    let mut ids = Vec::new();
    for i in 0..30 {
        let server = if i % 2 == 0 { &a } else { &b };
        let r = server.api(
            "POST",
            "/api/v1/negotiations",
            Some(&json!({"counterPartyAddress": peer.base, "counterPartyId": PEER_ID,
                "offer": {"@id": format!("o-{i}"), "@type": "Offer", "target": "d", "permission": [{"action": "use"}]}})),
        );
        assert_eq!(r.status, 201, "{}", r.body);
        ids.push(r.body["id"].as_str().unwrap().to_owned());
    }
    for id in &ids {
        wait_for(&a, id, "REQUESTED");
    }
    std::thread::sleep(Duration::from_millis(300));
    let received = peer.drain();
    let mut pids: Vec<String> = received
        .iter()
        .map(|r| r.body["consumerPid"].as_str().unwrap().to_owned())
        .collect();
    pids.sort();
    let total = pids.len();
    pids.dedup();
    assert_eq!(total, pids.len(), "a request was sent twice");
    assert_eq!(total, 30);
}
