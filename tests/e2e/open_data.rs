//! Open data and operations: public offers downloaded without credentials (rate-limited, counted), personal
//! data refused in public offers, the DCAT-AP 3.0 feed validated with pySHACL against the official shapes,
//! Prometheus metrics parsed with `prometheus_client` after real flows, and JSON logs with the request id.
//!
//! pySHACL and prometheus_client come from the Python venv `scripts/test.sh` installs
//! (`$HOME/.cache/caap/venv`, or `CAAP_PYTHON_VENV`); the DCAT-AP shapes from `../shared/vectors/dcat-ap`.

use std::path::PathBuf;
use std::process::Command;

use serde_json::{Value, json};

use crate::negotiation::eventually;
use crate::support::{Node, Server, publish_sample, request};
use crate::transfers::{city_settings, finalized_agreement, started_transfer};

/// The venv's `bin` directory, or `None` after printing SKIPPED (a failure when `CAAP_REQUIRE_SHARED=1`).
fn python_tools(what: &str) -> Option<PathBuf> {
    let venv = std::env::var_os("CAAP_PYTHON_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/caap/venv")
        });
    let bin = venv.join("bin");
    let ok = Command::new(bin.join("python"))
        .args(["-c", "import pyshacl, prometheus_client"])
        .output()
        .is_ok_and(|o| o.status.success());
    if ok {
        return Some(bin);
    }
    let reason = format!(
        "{what}: no Python venv with pyshacl and prometheus_client at {} (scripts/test.sh installs it)",
        venv.display()
    );
    assert!(
        std::env::var("CAAP_REQUIRE_SHARED").as_deref() != Ok("1"),
        "CAAP_REQUIRE_SHARED=1 but {reason}"
    );
    println!("SKIPPED: {reason}");
    None
}

const OPEN_POLICY: &str = r#"{"@type": "Set", "permission": [{"action": "use"}], "obligation": [{"action": "attribute"}]}"#;

/// A GET without credentials: the status, the headers and the body (at most `limit` bytes are read, so a
/// live stream can be sampled).
struct Got {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: String,
}

fn get_limited(url: &str, accept: Option<&str>, limit: usize) -> Got {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = reqwest::Client::new();
        let mut req = client.get(url);
        if let Some(a) = accept {
            req = req.header("accept", a);
        }
        let mut res = req.send().await.unwrap();
        let (status, headers) = (res.status().as_u16(), res.headers().clone());
        let mut body = Vec::new();
        while body.len() < limit {
            match res.chunk().await.unwrap() {
                Some(chunk) => body.extend_from_slice(&chunk),
                None => break,
            }
        }
        Got {
            status,
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        }
    })
}

fn get(url: &str, accept: Option<&str>) -> Got {
    get_limited(url, accept, usize::MAX)
}

#[test]
fn public_datasets_are_downloaded_without_credentials_rate_limited_and_counted() {
    let node = Node::init_with(
        "Malmö",
        &[
            ("open_data.requests_per_minute", "1".into()),
            ("open_data.burst", "3".into()),
            ("simulator.enabled", "true".into()),
            ("simulator.interval_ms", "40".into()),
            (
                "dsp.auth.tokens",
                format!(
                    "[{{token = \"{}\", participant = \"did:web:lund.example\"}}]",
                    crate::support::TOKEN
                ),
            ),
        ],
    );
    std::fs::write(
        node.dir.path().join("files/readings.json"),
        r#"{"no2": 12.5}"#,
    )
    .unwrap();
    let s = node.start(&[]);
    let policy = |id: &str, body: &str| {
        let r = s.api(
            "POST",
            "/api/v1/policies",
            Some(&json!({"id": id, "policy": serde_json::from_str::<Value>(body).unwrap()})),
        );
        assert_eq!(r.status, 201, "{}", r.body);
    };
    policy("open", OPEN_POLICY);
    policy(
        "purpose",
        r#"{"@type": "Set", "permission": [{"action": "use", "constraint": [{"leftOperand": "purpose", "operator": "eq", "rightOperand": "dpv:PublicBenefit"}]}]}"#,
    );
    let asset = |id: &str, address: Value| {
        json!({"id": id, "title": format!("Readings {id}"), "description": "NO2 readings",
               "license": "https://creativecommons.org/licenses/by/4.0/", "dataAddress": address})
    };
    for a in [
        asset(
            "readings",
            json!({"type": "File", "path": "readings.json", "mediaType": "application/json"}),
        ),
        asset(
            "live",
            json!({"type": "LiveStream", "source": "Sse",
                   "url": format!("{}/sim/malmo/air-quality/radhuset/stream", s.dsp)}),
        ),
        asset("closed", json!({"type": "File", "path": "readings.json"})),
    ] {
        let r = s.api("POST", "/api/v1/assets", Some(&a));
        assert_eq!(r.status, 201, "{}", r.body);
    }
    let mut citizens = asset("citizens", json!({"type": "File", "path": "readings.json"}));
    citizens["personalData"] = json!({"subjectField": "refCitizen", "categories": ["dpv-pd:Location"],
                                       "purposes": ["dpv:ServiceProvision"]});
    assert_eq!(s.api("POST", "/api/v1/assets", Some(&citizens)).status, 201);

    // Personal data is never public, whatever the policy; a public offer needs a policy anyone may use.
    let offer = |id: &str, assets: &[&str], contract: &str| json!({"id": id, "assets": assets, "accessPolicy": "open", "contractPolicy": contract, "public": true});
    let r = s.api(
        "POST",
        "/api/v1/offers",
        Some(&offer("bad", &["citizens"], "open")),
    );
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(
        r.body["detail"].as_str().unwrap().contains("personal data"),
        "{}",
        r.body
    );
    let r = s.api(
        "POST",
        "/api/v1/offers",
        Some(&offer("bad", &["closed"], "purpose")),
    );
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(
        r.body["detail"].as_str().unwrap().contains("anyone"),
        "{}",
        r.body
    );
    let r = s.api(
        "POST",
        "/api/v1/offers",
        Some(&offer("open-air", &["readings", "live"], "open")),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let mut restricted = offer("negotiated", &["closed"], "purpose");
    restricted["public"] = json!(false);
    assert_eq!(
        s.api("POST", "/api/v1/offers", Some(&restricted)).status,
        201
    );
    // A dataset under a public offer cannot start declaring personal data.
    let mut readings = asset("readings", json!({"type": "File", "path": "readings.json"}));
    readings["personalData"] = citizens["personalData"].clone();
    let r = s.api("PUT", "/api/v1/assets/readings", Some(&readings));
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(
        r.body["detail"].as_str().unwrap().contains("open-air"),
        "{}",
        r.body
    );

    // Still in the DSP catalog, with the download URL on the public dataset only.
    let r = crate::support::dsp_catalog_request(
        &s,
        "",
        &json!({"@context": ["https://w3id.org/dspace/2025/1/context.jsonld"], "@type": "CatalogRequestMessage"}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let datasets = r.body["dataset"].as_array().unwrap();
    let download = |id: &str| {
        datasets
            .iter()
            .find(|d| d["@id"].as_str().unwrap().ends_with(&format!("/{id}")))
            .unwrap()["distribution"][0]["dcat:downloadURL"]["@id"]
            .as_str()
            .map(str::to_owned)
    };
    let url = download("readings").expect("a public dataset's distribution has a downloadURL");
    assert_eq!(url, format!("{}/open/v1/datasets/readings/data", s.dsp));
    assert_eq!(download("closed"), None);

    // Anyone downloads it over plain HTTP, no Authorization header.
    let r = get(&url, None);
    assert_eq!(r.status, 200);
    assert_eq!(r.body, r#"{"no2": 12.5}"#);
    // A live stream, relayed from its source like a transfer's pull.
    let live = get_limited(&format!("{}/open/v1/datasets/live/data", s.dsp), None, 400);
    assert_eq!(live.status, 200);
    assert!(live.body.contains("data:"), "{}", live.body);
    // Not public: 404, the same as no dataset at all.
    let r = get(&format!("{}/open/v1/datasets/closed/data", s.dsp), None);
    assert_eq!(r.status, 404);
    // The burst (3) is used up: the client waits.
    let r = get(&url, None);
    assert_eq!(r.status, 429);
    assert!(r.headers.get("retry-after").is_some());
    // Counted per dataset and day, anonymously.
    let r = s.api("GET", "/api/v1/open/downloads?days=1", None);
    assert_eq!(r.status, 200, "{}", r.body);
    let counts = r.body["downloads"].as_array().unwrap();
    let count = |id: &str| {
        counts
            .iter()
            .find(|c| c["datasetId"] == id)
            .map(|c| c["downloads"].as_u64().unwrap())
    };
    assert_eq!(
        (count("readings"), count("live"), count("closed")),
        (Some(1), Some(1), None)
    );
    assert_eq!(
        counts[0].as_object().unwrap().len(),
        3,
        "no client data is kept: {}",
        r.body
    );
}

fn pyshacl(bin: &std::path::Path, shapes: &std::path::Path, data: &std::path::Path, format: &str) {
    let out = Command::new(bin.join("pyshacl"))
        .arg("-s")
        .arg(shapes)
        .args(["-df", format, "--allow-warnings", "--allow-infos"])
        .arg(data)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{} does not conform to {}:\n{}{}",
        data.display(),
        shapes.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_dcat_ap_feed_validates_against_the_official_shapes_in_every_syntax_and_page() {
    let shapes = crate::dsp_schema::shared_dir().join("vectors/dcat-ap");
    if !shapes.is_dir() {
        let reason = format!("the DCAT-AP shapes are not at {}", shapes.display());
        assert!(
            std::env::var("CAAP_REQUIRE_SHARED").as_deref() != Ok("1"),
            "CAAP_REQUIRE_SHARED=1 but {reason}"
        );
        println!("SKIPPED: {reason}");
        return;
    }
    let Some(bin) = python_tools("DCAT-AP validation") else {
        return;
    };
    let node = Node::init_with(
        "Malmö",
        &[
            ("open_data.feed_page_size", "2".into()),
            (
                "open_data.contact_email",
                "\"opendata@malmo.example\"".into(),
            ),
            ("open_data.homepage", "\"https://malmo.example\"".into()),
        ],
    );
    let s = node.start(&[]);
    publish_sample(&s, 0); // 3 air-quality stations (public) and 2 car parks (negotiated): 3 pages of 2
    let feed = format!("{}/open/v1/catalog", s.dsp);
    let work = tempfile::tempdir().unwrap();
    let mut turtle = String::new();
    for page in 1..=3 {
        let r = get(&format!("{feed}?page={page}"), Some("text/turtle"));
        assert_eq!(r.status, 200);
        assert!(
            r.headers["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/turtle")
        );
        let text = r.body;
        assert!(
            text.contains("hydra:totalItems \"5\"^^xsd:integer"),
            "{text}"
        );
        assert_eq!(
            text.contains(&format!("hydra:next <{feed}?page={}>", page + 1)),
            page < 3,
            "{text}"
        );
        let file = work.path().join(format!("page{page}.ttl"));
        std::fs::write(&file, &text).unwrap();
        for shape in ["dcat-ap-3.0.0-shapes.ttl", "dcat-ap-3.0.0-range.ttl"] {
            pyshacl(&bin, &shapes.join(shape), &file, "turtle");
        }
        turtle.push_str(&text);
    }
    // Public datasets in full, restricted ones as metadata pointing at the DSP endpoint; absolute IRIs.
    assert!(turtle.contains("dcat:downloadURL <http://"), "{turtle}");
    assert!(
        turtle.contains("<http://publications.europa.eu/resource/authority/access-right/PUBLIC>")
    );
    assert!(
        turtle
            .contains("<http://publications.europa.eu/resource/authority/access-right/RESTRICTED>")
    );
    assert!(turtle.contains("<http://publications.europa.eu/resource/authority/data-theme/ENVI>"));
    assert!(turtle.contains("dct:conformsTo <https://smart-data-models.github.io/"));
    assert!(turtle.contains("vcard:hasEmail <mailto:opendata@malmo.example>"));
    assert!(turtle.contains("dcat:endpointURL <http://"));
    assert!(turtle.contains("dct:license <https://creativecommons.org/licenses/by/4.0/>"));
    // The other syntaxes, by content negotiation, validate alike.
    for (accept, format, ext) in [
        ("application/ld+json", "json-ld", "jsonld"),
        ("application/rdf+xml", "xml", "rdf"),
    ] {
        let r = get(&format!("{feed}?page=2"), Some(accept));
        assert_eq!(r.status, 200);
        assert!(
            r.headers["content-type"]
                .to_str()
                .unwrap()
                .starts_with(accept)
        );
        let file = work.path().join(format!("page2.{ext}"));
        std::fs::write(&file, &r.body).unwrap();
        for shape in ["dcat-ap-3.0.0-shapes.ttl", "dcat-ap-3.0.0-range.ttl"] {
            pyshacl(&bin, &shapes.join(shape), &file, format);
        }
    }
    // A bad page is a clear 400.
    let r = request("GET", &format!("{feed}?page=0"), None, None, "");
    assert_eq!(r.status, 400, "{}", r.body);
    let r = request("GET", &format!("{feed}?pages=2"), None, None, "");
    assert_eq!(r.status, 400, "{}", r.body);
}

/// Parses a Prometheus exposition with prometheus_client's parser; `{name: [[labels, value], …]}`.
fn parse_metrics(bin: &std::path::Path, text: &str) -> Value {
    let script = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
out = {}
for family in text_string_to_metric_families(sys.stdin.read()):
    for s in family.samples:
        out.setdefault(s.name, []).append([s.labels, s.value])
print(json.dumps(out))
"#;
    let mut child = Command::new(bin.join("python"))
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn metrics_after_negotiation_transfer_and_download_parse_and_logs_are_json_with_the_request_id() {
    let Some(bin) = python_tools("Prometheus metrics") else {
        return;
    };
    let mut provider_settings = city_settings(
        "token-lund-presents-to-malmo-01",
        "did:web:lund.example",
        "token-malmo-presents-to-lund-01",
    );
    provider_settings.push(("log.format", "\"json\"".into()));
    let provider_node = Node::init_with("Malmö", &provider_settings);
    let consumer_node = Node::init_with(
        "Lund",
        &city_settings(
            "token-malmo-presents-to-lund-01",
            "did:web:malmo.example",
            "token-lund-presents-to-malmo-01",
        ),
    );
    std::fs::write(
        provider_node.dir.path().join("files/readings.json"),
        "[1,2,3]",
    )
    .unwrap();
    let provider = provider_node.start(&[("CAAP_PARTICIPANT_ID", "did:web:malmo.example")]);
    let consumer = consumer_node.start(&[("CAAP_PARTICIPANT_ID", "did:web:lund.example")]);
    let r = provider.api(
        "POST",
        "/api/v1/policies",
        Some(&json!({"id": "open", "policy": serde_json::from_str::<Value>(OPEN_POLICY).unwrap()})),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let asset = json!({"id": "readings", "title": "Readings", "dataAddress": {"type": "File", "path": "readings.json"}});
    let created = provider.api("POST", "/api/v1/assets", Some(&asset));
    assert_eq!(created.status, 201);
    let r = provider.api(
        "POST",
        "/api/v1/offers",
        Some(&json!({"id": "o", "assets": ["readings"],
        "accessPolicy": "open", "contractPolicy": "open", "public": true})),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let agreement = finalized_agreement(&consumer, &provider.dsp, "o");
    let t = started_transfer(&consumer, &agreement);
    let r = consumer.api(
        "GET",
        &format!("/api/v1/transfers/{}/data", t["id"].as_str().unwrap()),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        get(
            &format!("{}/open/v1/datasets/readings/data", provider.dsp),
            None
        )
        .status,
        200
    );

    let text = get(&format!("{}/metrics", provider.api), None).body;
    let m = parse_metrics(&bin, &text);
    let samples = |name: &str| m[name].as_array().cloned().unwrap_or_default();
    let value = |name: &str, label: (&str, &str)| {
        samples(name)
            .iter()
            .filter(|s| s[0][label.0] == label.1)
            .map(|s| s[1].as_f64().unwrap())
            .sum::<f64>()
    };
    assert_eq!(
        samples("caap_build_info")[0][0]["version"],
        env!("CARGO_PKG_VERSION")
    );
    assert!(
        value(
            "caap_dsp_request_duration_seconds_count",
            ("endpoint", "/dsp/negotiations/request")
        ) >= 1.0,
        "{text}"
    );
    assert!(value("caap_dsp_request_duration_seconds_count", ("status", "200")) >= 1.0);
    assert!(!samples("caap_dsp_request_duration_seconds_bucket").is_empty());
    assert_eq!(
        value("caap_processes", ("state", "FINALIZED")),
        1.0,
        "{text}"
    );
    assert_eq!(value("caap_processes", ("state", "STARTED")), 1.0, "{text}");
    assert!(!samples("caap_processor_queue_depth").is_empty());
    assert!(!samples("caap_processor_lag_seconds").is_empty());
    assert!(
        value("caap_dataplane_bytes_total", ("direction", "out")) >= 14.0,
        "{text}"
    );
    assert!(
        value("caap_policy_decisions_total", ("outcome", "permit")) >= 1.0,
        "{text}"
    );
    assert_eq!(
        value("caap_public_downloads_total", ("dataset", "readings")),
        1.0,
        "{text}"
    );
    assert!(
        samples("caap_db_pool_max_connections")[0][1]
            .as_f64()
            .unwrap()
            >= 1.0
    );
    for family in [
        "caap_processor_retries_total",
        "caap_processor_give_ups_total",
        "caap_dcp_refusals_total",
    ] {
        assert!(
            text.contains(&format!("# TYPE {family} counter")),
            "{family}"
        );
    }

    // Every log line (stderr; the start-up banner on stdout is for humans) is JSON; those of a request carry
    // its id.
    let request_id = created.headers["x-request-id"].to_str().unwrap().to_owned();
    let lines: Vec<String> = eventually(10, "the asset's log line", || {
        let lines = provider.output.lock().unwrap().clone();
        lines
            .iter()
            .any(|l| l.contains(&request_id))
            .then_some(lines)
    });
    let mut with_id = 0;
    let banner = |l: &&String| l.starts_with("caap") || l.starts_with(' ') || l.is_empty();
    for line in lines.iter().filter(|l| !banner(l)) {
        let v: Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        let spans = v["spans"].as_array().cloned().unwrap_or_default();
        if spans.iter().any(|s| s["request_id"] == request_id.as_str()) {
            with_id += 1;
        }
    }
    assert!(with_id >= 1, "{lines:?}");
    drop(consumer);
    let _ = Server::stop(provider);
}
