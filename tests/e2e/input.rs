//! Bad input on every endpoint gets a clear 4xx and changes nothing.

use serde_json::{Value, json};

use crate::support::*;

fn count(server: &Server, path: &str) -> usize {
    server.api("GET", &format!("{path}?limit=500"), None).body["items"]
        .as_array()
        .unwrap()
        .len()
}

#[test]
fn malformed_wrong_oversized_and_unknown_input_is_refused_without_side_effects() {
    let node = Node::init("Göteborg", &token_table("did:web:x"));
    let server = node.start(&[("CAAP_LIMITS_MAX_BODY_BYTES", "4096")]);
    publish_sample(&server, 2);
    let asset_id = server.api("GET", "/api/v1/assets", None).body["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let before: Vec<usize> = ["/api/v1/assets", "/api/v1/policies", "/api/v1/offers"]
        .iter()
        .map(|p| count(&server, p))
        .collect();
    let original = server
        .api("GET", &format!("/api/v1/assets/{asset_id}"), None)
        .body;

    let big = format!("{{\"id\":\"x\",\"title\":\"{}\"}}", "a".repeat(5000));
    let cases: Vec<(&str, String, u16, &str)> = vec![
        ("{\"id\": ", "malformed".into(), 400, "not valid JSON"),
        ("", "empty".into(), 400, "empty"),
        (&big, "oversized".into(), 413, "larger than"),
    ];
    for path in [
        "/api/v1/assets",
        "/api/v1/policies",
        "/api/v1/offers",
        "/api/v1/catalogs/request",
    ] {
        for (body, what, status, needle) in &cases {
            let r = request(
                "POST",
                &format!("{}{path}", server.api),
                Some(&format!("Bearer {}", server.admin)),
                Some(body),
                "application/json",
            );
            assert_eq!(r.status, *status, "{what} on {path}: {}", r.body);
            assert_eq!(r.headers["content-type"], "application/problem+json");
            assert!(
                r.body["detail"].as_str().unwrap().contains(needle),
                "{what} on {path}: {}",
                r.body
            );
        }
        let r = request(
            "POST",
            &format!("{}{path}", server.api),
            Some(&format!("Bearer {}", server.admin)),
            Some("{}"),
            "text/plain",
        );
        assert_eq!(r.status, 415, "{path}");
    }
    // Wrong types and unknown fields are named by pointer.
    let named: Vec<(&str, Value, &str)> = vec![
        (
            "/api/v1/assets",
            json!({"id": "a1", "title": 5, "dataAddress": {"type": "HttpApi", "url": "http://x"}}),
            "/title",
        ),
        (
            "/api/v1/assets",
            json!({"id": "a1", "title": "t", "colour": "red", "dataAddress": {"type": "HttpApi", "url": "http://x"}}),
            "colour",
        ),
        (
            "/api/v1/assets",
            json!({"id": "a1", "title": "t", "dataAddress": {"type": "Ftp", "url": "http://x"}}),
            "/dataAddress",
        ),
        (
            "/api/v1/assets",
            json!({"id": "a 1", "title": "t", "dataAddress": {"type": "HttpApi", "url": "nope"}}),
            "/dataAddress/url",
        ),
        (
            "/api/v1/policies",
            json!({"id": "p1", "policy": {"@type": "Set", "permission": [{"action": "use", "constraint": [{"leftOperand": "shoeSize", "operator": "eq", "rightOperand": "42"}]}]}}),
            "/policy/permission/0/constraint/0/leftOperand",
        ),
        (
            "/api/v1/policies",
            json!({"id": "p1", "policy": "use"}),
            "/policy",
        ),
        // What cannot be sent on DSP is refused: a count that is not a whole number, a boolean count.
        (
            "/api/v1/policies",
            json!({"id": "p1", "policy": {"@type": "Set", "permission": [{"action": "use", "constraint": [{"leftOperand": "count", "operator": "lteq", "rightOperand": 1000.5}]}]}}),
            "/policy/permission/0/constraint/0/rightOperand",
        ),
        (
            "/api/v1/policies",
            json!({"id": "p1", "policy": {"@type": "Set", "permission": [{"action": "use", "constraint": [{"leftOperand": "count", "operator": "lteq", "rightOperand": true}]}]}}),
            "/policy/permission/0/constraint/0/rightOperand",
        ),
        (
            "/api/v1/offers",
            json!({"id": "o1", "assets": [asset_id.clone(), "ghost"], "accessPolicy": "open-data-cc-by", "contractPolicy": "open-data-cc-by"}),
            "/assets/1",
        ),
        (
            "/api/v1/offers",
            json!({"id": "o1", "assets": [], "accessPolicy": "open-data-cc-by", "contractPolicy": "nope"}),
            "/assets",
        ),
        (
            "/api/v1/catalogs/request",
            json!({"counterPartyAddress": 7}),
            "counterPartyAddress",
        ),
        (
            "/api/v1/catalogs/request",
            json!({"counterPartyAddress": "ftp://x"}),
            "/counterPartyAddress",
        ),
    ];
    for (path, body, needle) in named {
        let r = server.api("POST", path, Some(&body));
        assert!(
            (400..500).contains(&r.status),
            "{path} {body}: {} {}",
            r.status,
            r.body
        );
        assert!(
            r.body.to_string().contains(needle),
            "{path} should name {needle}: {}",
            r.body
        );
    }
    // Addresses are checked on input: 400 naming the field, nothing created.
    let transfers_before = count(&server, "/api/v1/transfers");
    for (path, body, pointer) in [
        (
            "/api/v1/transfers",
            json!({"agreementId": "a1", "counterPartyAddress": "not a url", "counterPartyId": "did:web:x"}),
            "/counterPartyAddress",
        ),
        (
            "/api/v1/transfers",
            json!({"agreementId": "a1", "counterPartyAddress": "file:///etc/passwd", "counterPartyId": "did:web:x"}),
            "/counterPartyAddress",
        ),
        (
            "/api/v1/transfers",
            json!({"agreementId": "a1", "counterPartyAddress": "http://127.0.0.1:9/dsp", "counterPartyId": "did:web:x",
                "format": "HttpData-PUSH", "pushTo": "ftp://x/in"}),
            "/pushTo",
        ),
        (
            "/api/v1/negotiations",
            json!({"counterPartyAddress": "not a url", "counterPartyId": "did:web:x",
                "offer": {"@id": "o", "@type": "Offer", "target": "d", "permission": [{"action": "use"}]}}),
            "/counterPartyAddress",
        ),
        (
            "/api/v1/negotiations",
            json!({"counterPartyAddress": "http://user:pw@127.0.0.1:9", "offerId": "o"}),
            "/counterPartyAddress",
        ),
    ] {
        let r = server.api("POST", path, Some(&body));
        assert_eq!(r.status, 400, "{path} {body}: {}", r.body);
        assert_eq!(r.headers["content-type"], "application/problem+json");
        assert!(r.body.to_string().contains(pointer), "{path}: {}", r.body);
    }
    assert_eq!(count(&server, "/api/v1/transfers"), transfers_before);
    // PUT with a changed id, a stale If-Match, and on a missing document.
    let mut changed = original.clone();
    changed["id"] = json!("other");
    assert_eq!(
        server
            .api("PUT", &format!("/api/v1/assets/{asset_id}"), Some(&changed))
            .status,
        422
    );
    assert_eq!(
        server
            .api("PUT", "/api/v1/assets/ghost", Some(&original))
            .status,
        422
    );
    // In-use documents cannot be deleted; unknown ones are 404; no token is 401.
    assert_eq!(
        server
            .api("DELETE", "/api/v1/policies/open-data-cc-by", None)
            .status,
        409
    );
    assert_eq!(
        server.api("DELETE", "/api/v1/assets/ghost", None).status,
        404
    );
    assert_eq!(
        request(
            "GET",
            &format!("{}/api/v1/assets", server.api),
            None,
            None,
            ""
        )
        .status,
        401
    );
    assert_eq!(
        server.api("GET", "/api/v1/assets?limit=0", None).status,
        400
    );
    assert_eq!(
        server
            .api("GET", "/api/v1/assets?cursor=forged", None)
            .status,
        400
    );
    assert_eq!(server.api("GET", "/api/v1/nothing-here", None).status, 404);

    // DSP: malformed bodies get CatalogErrors.
    for body in [
        "{",
        "[]",
        "{\"@type\": \"CatalogRequestMessage\"}",
        "{\"@context\": [\"https://w3id.org/dspace/2025/1/context.jsonld\"], \"@type\": \"CatalogRequestMessage\", \"extra\": 1}",
    ] {
        let r = request(
            "POST",
            &format!("{}/dsp/catalog/request", server.dsp),
            Some(&format!("Bearer {TOKEN}")),
            Some(body),
            "application/json",
        );
        assert_eq!(r.status, 400, "{body}: {}", r.body);
        assert_eq!(r.body["@type"], "CatalogError", "{body}");
    }

    let after: Vec<usize> = ["/api/v1/assets", "/api/v1/policies", "/api/v1/offers"]
        .iter()
        .map(|p| count(&server, p))
        .collect();
    assert_eq!(before, after, "nothing was written");
    let now = server
        .api("GET", &format!("/api/v1/assets/{asset_id}"), None)
        .body;
    assert_eq!(original, now);
}

#[test]
fn the_openapi_document_lists_every_route() {
    let node = Node::init("Lund", "");
    let server = node.start(&[]);
    let doc = request(
        "GET",
        &format!("{}/api/v1/openapi.json", server.api),
        None,
        None,
        "",
    );
    assert_eq!(doc.status, 200);
    let paths = doc.body["paths"].as_object().unwrap();
    for (method, path) in [
        ("get", "/health"),
        ("get", "/ready"),
        ("get", "/api/v1/participant"),
        ("get", "/api/v1/catalogs"),
        ("post", "/api/v1/catalogs/request"),
        ("get", "/api/v1/catalogs/search"),
        ("get", "/api/v1/assets"),
        ("post", "/api/v1/offers"),
        ("put", "/api/v1/policies/{id}"),
        ("delete", "/api/v1/assets/{id}"),
        ("get", "/api/v1/identity"),
        ("get", "/api/v1/credentials"),
        ("post", "/api/v1/credentials/requests"),
        ("delete", "/api/v1/credentials/{id}"),
        ("get", "/api/v1/authority/members"),
        ("post", "/api/v1/authority/members"),
        ("get", "/api/v1/authority/credentials"),
        ("post", "/api/v1/authority/revocations"),
    ] {
        assert!(paths[path].get(method).is_some(), "{method} {path}");
        let real = path.replace("{id}", "x");
        let r = request(
            &method.to_uppercase(),
            &format!("{}{real}", server.api),
            Some(&format!("Bearer {}", server.admin)),
            (method != "get" && method != "delete").then_some("{}"),
            "application/json",
        );
        let unrouted = r.status == 404
            && r.body["detail"]
                .as_str()
                .unwrap_or_default()
                .starts_with("no endpoint");
        assert!(!unrouted, "{method} {path} is documented but not routed");
    }
    let who = server.api("GET", "/api/v1/participant", None);
    assert!(
        who.body["participantId"]
            .as_str()
            .unwrap()
            .starts_with("did:web:")
    );
    assert_eq!(
        request("GET", &format!("{}/ready", server.api), None, None, "").body["database"],
        "sqlite"
    );
    // A documented path asked with a method it does not allow: 405 with what it allows.
    for (method, path, allow) in [
        ("TRACE", "/api/v1/assets", "GET, POST"),
        ("PATCH", "/api/v1/assets/a1", "DELETE, GET, PUT"),
        ("TRACE", "/health", "GET"),
        ("DELETE", "/api/v1/transfers/t1/data", "GET"),
        ("GET", "/api/v1/credentials/requests", "POST"),
    ] {
        let r = server.api(method, path, None);
        assert_eq!(r.status, 405, "{method} {path}: {}", r.body);
        assert_eq!(r.headers["allow"], allow, "{method} {path}");
        assert_eq!(r.headers["content-type"], "application/problem+json");
    }
    assert_eq!(
        server.api("TRACE", "/api/v1/nothing-here", None).status,
        404
    );
}

/// schemathesis (from PyPI, installed by `scripts/test.sh`) against a live connector's management API: every
/// check, a bounded number of examples (`tests/schemathesis/schemathesis.toml`), and no finding. The
/// connector's outbound traffic goes to a closed port, so no generated address is ever contacted.
#[test]
fn the_management_api_answers_as_its_openapi_description_says_under_schemathesis() {
    let st = std::env::var("CAAP_SCHEMATHESIS").map_or_else(
        |_| {
            std::path::Path::new(&std::env::var("HOME").unwrap_or_default())
                .join(".cache/caap/schemathesis/bin/st")
        },
        std::path::PathBuf::from,
    );
    if !st.exists() {
        assert!(
            std::env::var("CAAP_TEST_REQUIRE_SCHEMATHESIS").as_deref() != Ok("1"),
            "CAAP_TEST_REQUIRE_SCHEMATHESIS=1 but {} does not exist (scripts/test.sh installs it)",
            st.display()
        );
        println!(
            "SKIPPED: schemathesis is not installed at {} (scripts/test.sh installs it)",
            st.display()
        );
        return;
    }
    let node = Node::init("Lund", "");
    let closed = "http://127.0.0.1:9";
    let server = node.start(&[
        ("HTTP_PROXY", closed),
        ("HTTPS_PROXY", closed),
        ("http_proxy", closed),
        ("https_proxy", closed),
        ("NO_PROXY", ""),
        ("no_proxy", ""),
    ]);
    let config = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/schemathesis/schemathesis.toml"
    );
    let out = std::process::Command::new(&st)
        .arg("--config-file")
        .arg(config)
        .args(["--no-color", "run"])
        .arg(format!("{}/api/v1/openapi.json", server.api))
        .arg("--header")
        .arg(format!("Authorization: Bearer {}", server.admin))
        .current_dir(node.dir.path())
        .output()
        .unwrap();
    // The connector's own account of any failure (a 500 names its cause only in the log).
    let log = server
        .output
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.contains("ERROR") || l.contains("\"level\":\"error\""))
        .cloned()
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        out.status.success(),
        "schemathesis found mismatches:\n{}\n{}\nthe connector's errors:\n{log}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
