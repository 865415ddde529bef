//! A hostile caller's and a failing peer's view: data-plane errors that name nothing of the provider's
//! sources, text the database cannot store, DSP bodies that are not JSON in UTF-8, a peer that never answers,
//! and thousands of slow clients that must not stop the catalog.

use serde_json::{Value, json};

use crate::negotiation::eventually;
use crate::support::{Node, Server, TOKEN, postgres_database, request, serve_routes, token_table};
use crate::transfers::{city_settings, finalized_agreement, sample_asset, started_transfer};

/// A provider and a consumer that trust each other's static tokens.
fn two_cities() -> (Node, Node) {
    let provider = Node::init_with(
        "Malmö",
        &city_settings(
            "token-lund-presents-to-malmo-01",
            "did:web:lund.example",
            "token-malmo-presents-to-lund-01",
        ),
    );
    let consumer = Node::init_with(
        "Lund",
        &city_settings(
            "token-malmo-presents-to-lund-01",
            "did:web:malmo.example",
            "token-lund-presents-to-malmo-01",
        ),
    );
    (provider, consumer)
}

fn publish(provider: &Server, id: &str, address: Value) {
    let mut asset = sample_asset();
    asset["id"] = json!(id);
    asset["dataAddress"] = address;
    let r = provider.api("POST", "/api/v1/assets", Some(&asset));
    assert_eq!(r.status, 201, "{}", r.body);
    provider.api(
        "POST",
        "/api/v1/policies",
        Some(&json!({"id": "use", "policy": {"@type": "Set", "permission": [{"action": "use"}]}})),
    );
    let r = provider.api(
        "POST",
        "/api/v1/offers",
        Some(&json!({"id": format!("{id}-offer"), "assets": [id], "accessPolicy": "use", "contractPolicy": "use"})),
    );
    assert_eq!(r.status, 201, "{}", r.body);
}

#[test]
fn data_plane_errors_name_no_source_url_query_or_path() {
    use actix_web::{HttpResponse, web};
    let source = serve_routes(|app| {
        app.route(
            "/internal/export",
            web::get().to(|| async { HttpResponse::NotFound().body("no export here") }),
        );
    });
    let (provider_node, consumer_node) = two_cities();
    let provider = provider_node.start(&[("CAAP_PARTICIPANT_ID", "did:web:malmo.example")]);
    let consumer = consumer_node.start(&[("CAAP_PARTICIPANT_ID", "did:web:lund.example")]);
    let source_url = format!("{source}/internal/export?apikey=SECRET-0123&region=north");
    publish(
        &provider,
        "export",
        json!({"type": "HttpApi", "url": source_url}),
    );
    publish(
        &provider,
        "gone",
        json!({"type": "File", "path": "secret/dir/gone.csv", "mediaType": "text/csv"}),
    );
    let secrets = [
        source.trim_start_matches("http://").to_owned(),
        "internal/export".to_owned(),
        "apikey".to_owned(),
        "SECRET-0123".to_owned(),
        "region=north".to_owned(),
        "secret/dir".to_owned(),
        "gone.csv".to_owned(),
        "No such file".to_owned(),
        "/data/".to_owned(),
    ];
    let mut bodies = Vec::new();
    for offer in ["export-offer", "gone-offer"] {
        let agreement = finalized_agreement(&consumer, &provider.dsp, offer);
        let t = started_transfer(&consumer, &agreement);
        let tid = t["id"].as_str().unwrap();
        // Through the consumer's management API (which relays the provider's answer)…
        let r = consumer.api("GET", &format!("/api/v1/transfers/{tid}/data"), None);
        assert_eq!(r.status, 502, "{}", r.body);
        assert!(
            r.body["detail"]
                .as_str()
                .unwrap()
                .contains("the provider's request id is"),
            "{}",
            r.body
        );
        bodies.push(r.body.to_string());
        // … and at the provider's data plane directly, with the consumer's own pull token.
        let provider_transfer = provider
            .api(
                "GET",
                &format!("/api/v1/transfers/{}", t["providerPid"].as_str().unwrap()),
                None,
            )
            .body;
        assert_eq!(provider_transfer["state"], "STARTED", "{provider_transfer}");
        let r = request(
            "GET",
            &format!(
                "{}/data/{}",
                provider.dsp,
                t["providerPid"].as_str().unwrap()
            ),
            Some("Bearer not-a-valid-pull-token"),
            None,
            "application/json",
        );
        assert_eq!(r.status, 401, "{}", r.body);
        bodies.push(r.body.to_string());
    }
    for body in &bodies {
        for secret in &secrets {
            assert!(!body.contains(secret.as_str()), "`{secret}` leaked: {body}");
        }
    }
    // The provider's log has the detail, under the request id the consumer was told.
    let said = bodies[0].clone();
    let id = said
        .split("request id is ")
        .nth(1)
        .unwrap()
        .split(|c: char| !c.is_ascii_alphanumeric() && c != '-')
        .next()
        .unwrap()
        .to_owned();
    assert_ne!(id, "unknown", "{said}");
    let log = provider.output.lock().unwrap().join("\n");
    assert!(
        log.lines()
            .any(|l| l.contains(&id) && l.contains("internal/export")),
        "the provider's log names the source under request {id}:\n{log}"
    );
    // What the provider answered the consumer: the generic reason with that request id (the consumer logs it).
    let log = consumer.output.lock().unwrap().join("\n");
    assert!(
        log.lines()
            .any(|l| l.contains("the source is unavailable") && l.contains(&id)),
        "the provider answered a generic reason with request id {id}:\n{log}"
    );
}

/// The NUL cases on one connector (SQLite or PostgreSQL): each answers 400 naming the field, DSP endpoints with
/// a DSP error body.
fn nul_is_refused_naming_the_field(extra_env: &[(&str, &str)]) {
    let node = Node::init("Göteborg", &token_table("did:web:x"));
    let server = node.start(extra_env);
    let dsp = |path: &str, body: &str| {
        request(
            "POST",
            &format!("{}/dsp{path}", server.dsp),
            Some(&format!("Bearer {TOKEN}")),
            Some(body),
            "application/json",
        )
    };
    let request_message = |consumer_pid: &str| {
        json!({
            "@context": ["https://w3id.org/dspace/2025/1/context.jsonld"],
            "@type": "ContractRequestMessage",
            "consumerPid": consumer_pid,
            "callbackAddress": "http://127.0.0.1:9/cb",
            "offer": {"@id": "o1", "@type": "Offer", "target": "t1", "assigner": "did:web:x",
                      "permission": [{"action": "use"}]}
        })
        .to_string()
    };
    // DSP: a pid with a NUL, in the body and in the path; a catalog filter.
    let r = dsp(
        "/negotiations/request",
        &request_message("urn:uuid:a\u{0}b"),
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.body["@type"], "ContractNegotiationError", "{}", r.body);
    assert!(r.body.to_string().contains("/consumerPid"), "{}", r.body);
    for (process, error) in [
        ("negotiations", "ContractNegotiationError"),
        ("transfers", "TransferError"),
    ] {
        let r = request(
            "GET",
            &format!("{}/dsp/{process}/a%00b", server.dsp),
            Some(&format!("Bearer {TOKEN}")),
            None,
            "application/json",
        );
        assert_eq!(r.status, 400, "{}", r.body);
        assert_eq!(r.body["@type"], error, "{}", r.body);
        assert!(r.body.to_string().contains("the path"), "{}", r.body);
    }
    let r = dsp(
        "/catalog/request?continuationToken=a%00",
        &json!({"@context": ["https://w3id.org/dspace/2025/1/context.jsonld"], "@type": "CatalogRequestMessage"})
            .to_string(),
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.body["@type"], "CatalogError", "{}", r.body);
    assert!(
        r.body.to_string().contains("continuationToken"),
        "{}",
        r.body
    );
    // The management API: problem+json naming the field.
    let r = server.api(
        "POST",
        "/api/v1/assets",
        Some(&json!({"id": "a1", "title": "t\u{0}", "dataAddress": {"type": "HttpApi", "url": "http://x"}})),
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(
        r.body["detail"].as_str().unwrap().contains("/title"),
        "{}",
        r.body
    );
    let r = server.api("GET", "/api/v1/assets/a%00", None);
    assert_eq!(r.status, 400, "{}", r.body);
    let r = server.api(
        "POST",
        "/api/v1/negotiations",
        Some(&json!({"counterPartyAddress": "http://127.0.0.1:9/dsp", "offerId": "o\u{0}"})),
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(
        r.body["detail"].as_str().unwrap().contains("/offerId"),
        "{}",
        r.body
    );
    // Nothing was stored, and the connector still answers.
    let r = server.api("GET", "/api/v1/negotiations", None);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["items"].as_array().unwrap().len(), 0, "{}", r.body);
}

#[test]
fn nul_is_refused_with_400_naming_the_field_on_sqlite() {
    nul_is_refused_naming_the_field(&[]);
}

#[test]
fn nul_is_refused_with_400_naming_the_field_on_postgresql() {
    let Some(url) = postgres_database("NUL refusals") else {
        return;
    };
    nul_is_refused_naming_the_field(&[("CAAP_DATABASE_URL", &url)]);
}

#[test]
fn dsp_posts_must_be_json_in_utf8() {
    let node = Node::init("Göteborg", &token_table("did:web:x"));
    let server = node.start(&[]);
    let catalog = json!({"@context": ["https://w3id.org/dspace/2025/1/context.jsonld"], "@type": "CatalogRequestMessage"}).to_string();
    let post = |path: &str, content_type: Option<&str>| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let mut req = reqwest::Client::new()
                .post(format!("{}/dsp{path}", server.dsp))
                .bearer_auth(TOKEN)
                .body(catalog.clone());
            if let Some(ct) = content_type {
                req = req.header("content-type", ct);
            }
            let res = req.send().await.unwrap();
            let status = res.status().as_u16();
            (status, res.json::<Value>().await.unwrap_or(Value::Null))
        })
    };
    for (path, kind) in [
        ("/catalog/request", "CatalogError"),
        ("/negotiations/request", "ContractNegotiationError"),
        ("/transfers/request", "TransferError"),
    ] {
        for ct in [
            None,
            Some("application/json; charset=utf-16"),
            Some("text/plain"),
        ] {
            let (status, body) = post(path, ct);
            assert_eq!(status, 415, "{path} {ct:?}: {body}");
            assert_eq!(body["@type"], kind, "{path} {ct:?}: {body}");
        }
    }
    // JSON in UTF-8, said either way, is read.
    for ct in ["application/json", "application/ld+json; charset=UTF-8"] {
        let (status, body) = post("/catalog/request", Some(ct));
        assert_eq!(status, 200, "{ct}: {body}");
    }
}

#[test]
fn a_hung_peer_is_given_up_on_with_the_reason() {
    // A peer that accepts connections and never answers.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let hung = format!("http://{}/dsp", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in listener.incoming() {
            held.push(s);
        }
    });
    let node = Node::init_with(
        "Lund",
        &[
            ("negotiation.max_attempts", "2".into()),
            ("negotiation.retry_base_ms", "20".into()),
            (
                "dsp.auth.outbound_token",
                "\"token-lund-presents-0001\"".into(),
            ),
            (
                "dsp.auth.tokens",
                "[{token = \"token-hung-presents-0001\", participant = \"did:web:hung.example\"}]"
                    .into(),
            ),
        ],
    );
    let consumer = node.start(&[]);
    // The default per-attempt timeout, not the 30 s of other requests.
    let r = consumer.api(
        "POST",
        "/api/v1/negotiations",
        Some(
            &json!({"counterPartyAddress": hung, "counterPartyId": "did:web:hung.example",
            "offer": {"@id": "urn:offer:o1", "@type": "Offer", "target": "urn:dataset:t1",
                "permission": [{"action": "use"}]}}),
        ),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let nid = r.body["id"].as_str().unwrap().to_owned();
    let n = eventually(50, "TERMINATED after two unanswered attempts", || {
        let n = consumer
            .api("GET", &format!("/api/v1/negotiations/{nid}"), None)
            .body;
        (n["state"] == "TERMINATED").then_some(n)
    });
    assert!(
        n.to_string().contains("no answer within 5 s"),
        "the reason is visible: {n}"
    );
}

/// One slow client from `from`: declares a 100 kB body to `path` and sends it a byte a second until the server
/// closes the connection or `stop` is set. Reports on `connected` once its headers are out.
async fn slow_client(
    from: std::net::IpAddr,
    to: std::net::SocketAddr,
    path: &'static str,
    auth: Option<&'static str>,
    connected: std::sync::Arc<tokio::sync::Semaphore>,
    stop: tokio::sync::watch::Receiver<bool>,
) {
    use tokio::io::AsyncWriteExt;
    let sent = async {
        let socket = tokio::net::TcpSocket::new_v4().ok()?;
        socket.bind(std::net::SocketAddr::new(from, 0)).ok()?;
        let mut stream = socket.connect(to).await.ok()?;
        let auth = auth.map(|a| format!("Authorization: {a}\r\n")).unwrap_or_default();
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: {to}\r\nContent-Type: application/json\r\n{auth}Content-Length: 100000\r\n\r\n{{"
        );
        stream.write_all(head.as_bytes()).await.ok()?;
        Some(stream)
    }
    .await;
    connected.add_permits(1);
    let Some(mut stream) = sent else {
        return;
    };
    let mut stop = stop;
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            _ = tick.tick() => {
                if stream.write_all(b" ").await.is_err() {
                    return;
                }
            }
        }
    }
}

#[test]
fn thousands_of_slow_clients_do_not_stop_the_catalog() {
    const CLIENTS: usize = 3000;
    let node = Node::init("Göteborg", &token_table("did:web:x"));
    let server = node.start(&[]);
    crate::support::publish_sample(&server, 2);
    // A usual limit on open files (systemd's default): slow clients that held a connection each would use
    // them all, and the catalog could not even accept a connection.
    let limited = std::process::Command::new("prlimit")
        .args(["--pid", &server.pid().to_string(), "--nofile=1024:1024"])
        .status()
        .unwrap();
    assert!(limited.success());
    let dsp: std::net::SocketAddr = server.dsp.trim_start_matches("http://").parse().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let connected = std::sync::Arc::new(tokio::sync::Semaphore::new(0));
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let bearer: &'static str = Box::leak(format!("Bearer {TOKEN}").into_boxed_str());
        // From two addresses other than the catalog client's: notifications for a stream that does not exist,
        // DCP requests without a token, and authenticated DSP requests, all with a body that never finishes.
        let targets: [(&'static str, Option<&'static str>); 6] = [
            ("/notify/no-such-subscription", None),
            ("/dcp/presentations/query", None),
            ("/dsp/negotiations/request", Some(bearer)),
            ("/dsp/catalog/request", Some(bearer)),
            ("/dsp/negotiations/request", Some(bearer)),
            ("/dsp/catalog/request", Some(bearer)),
        ];
        let mut clients = Vec::new();
        for i in 0..CLIENTS {
            let from = std::net::IpAddr::from([127, 0, 0, 2 + (i % 2) as u8]);
            let (path, auth) = targets[i % targets.len()];
            clients.push(tokio::spawn(slow_client(
                from,
                dsp,
                path,
                auth,
                connected.clone(),
                stop_rx.clone(),
            )));
        }
        let all = u32::try_from(CLIENTS).unwrap();
        let _ = connected.acquire_many(all).await.unwrap();
        // While they are connected, the catalog answers (the client's timeout is generous on purpose: this
        // is about answering at all, not about latency).
        let catalog = reqwest::Client::builder()
            .local_address(std::net::IpAddr::from([127, 0, 0, 1]))
            .timeout(std::time::Duration::from_secs(20))
            .build()
            .unwrap();
        let body = json!({"@context": ["https://w3id.org/dspace/2025/1/context.jsonld"], "@type": "CatalogRequestMessage"});
        for round in 0..5 {
            let res = catalog
                .post(format!("{}/dsp/catalog/request", server.dsp))
                .bearer_auth(TOKEN)
                .json(&body)
                .send()
                .await
                .unwrap_or_else(|e| panic!("catalog request {round} failed: {e}"));
            assert_eq!(res.status(), 200, "round {round}");
            let page: Value = res.json().await.unwrap();
            assert!(page["dataset"].is_array() || page["dataset"].is_object(), "{page}");
        }
        let _ = stop_tx.send(true);
        for c in clients {
            let _ = c.await;
        }
    });
    // The connector is still healthy.
    let r = server.api("GET", "/api/v1/assets", None);
    assert_eq!(r.status, 200, "{}", r.body);
}
