//! Identity end to end with DCP on every DSP request: a trust anchor (`caap` with `[authority]`)
//! issues credentials to two cities over the DCP issuance protocol; the cities fetch catalogs,
//! negotiate and transfer with self-issued tokens and presentations; a stranger without a
//! membership is refused; a revoked member loses access, and its running transfer is terminated.

use serde_json::{Value, json};

use crate::negotiation::eventually;
use crate::support::{Node, Server, caap, publish_sample};

/// Settings of a DCP node on loopback (did:web over plain HTTP: the loud development setting).
pub fn dcp_settings(authority_did: Option<&str>) -> Vec<(&'static str, String)> {
    let mut s = vec![
        ("dsp.auth.mode", "\"dcp\"".to_owned()),
        ("identity.insecure_did_web_over_http", "true".to_owned()),
        ("identity.status_list_cache_secs", "1".to_owned()),
        ("negotiation.retry_base_ms", "20".to_owned()),
        ("negotiation.max_attempts", "3".to_owned()),
    ];
    if let Some(did) = authority_did {
        s.push((
            "identity.trusted_issuers",
            format!("[{{issuer = \"{did}\"}}]"),
        ));
    }
    s
}

/// The DID a running node serves.
pub fn did_of(server: &Server) -> String {
    let r = server.api("GET", "/api/v1/identity", None);
    assert_eq!(r.status, 200, "{}", r.body);
    r.body["did"].as_str().unwrap().to_owned()
}

pub struct Federation {
    pub _nodes: Vec<Node>,
    pub authority: Server,
    pub authority_did: String,
}

/// Starts a trust anchor.
pub fn start_authority() -> Federation {
    let node = Node::init_with("Federationen", &dcp_settings(None));
    node.set_all(&[("authority.enabled", "true".into())]);
    let authority = node.start(&[]);
    let authority_did = did_of(&authority);
    Federation {
        _nodes: vec![node],
        authority,
        authority_did,
    }
}

impl Federation {
    /// Starts a member connector (registered at the authority with `roles` and `attrs`, or not
    /// registered when `roles` is `None`) and, when registered, obtains its credentials.
    pub fn member(&mut self, name: &str, roles: Option<(&[&str], Value)>) -> (Server, String) {
        let node = Node::init_with(name, &dcp_settings(Some(&self.authority_did)));
        let server = node.start(&[]);
        let did = did_of(&server);
        if let Some((roles, attrs)) = roles {
            let r = self.authority.api(
                "POST",
                "/api/v1/authority/members",
                Some(&json!({"holder": did, "name": name, "roles": roles, "attributes": attrs})),
            );
            assert_eq!(r.status, 201, "{}", r.body);
            let r = server.api(
                "POST",
                "/api/v1/credentials/requests",
                Some(&json!({"authority": self.authority.dsp})),
            );
            assert_eq!(r.status, 201, "{}", r.body);
            assert_eq!(r.body["status"], "ISSUED", "{}", r.body);
            assert_eq!(
                r.body["credentials"].as_array().unwrap().len(),
                1 + roles.len(),
                "{}",
                r.body
            );
        }
        self._nodes.push(node);
        (server, did)
    }
}

fn fetch_catalog(consumer: &Server, provider: &Server) -> crate::support::Response {
    consumer.api(
        "POST",
        "/api/v1/catalogs/request",
        Some(&json!({"counterPartyAddress": provider.dsp})),
    )
}

#[test]
fn two_cities_with_credentials_from_one_authority_negotiate_and_transfer_with_dcp() {
    let mut fed = start_authority();
    // The DID document names the issuer service; the status list is served and signed.
    let doc = crate::support::request(
        "GET",
        &format!("{}/.well-known/did.json", fed.authority.dsp),
        None,
        None,
        "application/json",
    );
    assert_eq!(doc.status, 200);
    assert_eq!(doc.body["id"], fed.authority_did.as_str());
    assert!(doc.body["service"].to_string().contains("IssuerService"));

    let (lund, _lund_did) = fed.member(
        "Lund",
        Some((
            &["Municipality"],
            json!({"municipalityCode": "1281", "country": "SE"}),
        )),
    );
    let (malmo, malmo_did) = fed.member(
        "Malmö",
        Some((
            &["Municipality"],
            json!({"municipalityCode": "1280", "country": "SE"}),
        )),
    );
    let held = malmo.api("GET", "/api/v1/credentials", None);
    let types = held.body.to_string();
    assert!(
        types.contains("MembershipCredential") && types.contains("MunicipalityCredential"),
        "{types}"
    );

    // Catalog over DCP: Lund verifies Malmö's presentation on the request.
    publish_sample(&lund, 1);
    std::fs::write(
        fed._nodes[1].dir.path().join("files/reading.json"),
        br#"{"no2": 17}"#,
    )
    .unwrap();
    let r = fetch_catalog(&malmo, &lund);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body["datasets"].as_u64().unwrap() > 0, "{}", r.body);

    // Negotiation and transfer over DCP, every message authenticated.
    let mut file_asset = serde_json::to_value(
        caap_catalog::samples::assets(&caap_catalog::samples::CITIES[1], "http://127.0.0.1:9")
            .into_iter()
            .next()
            .unwrap(),
    )
    .unwrap();
    file_asset["id"] = json!("lund-reading");
    file_asset["dataAddress"] =
        json!({"type": "File", "path": "reading.json", "mediaType": "application/json"});
    assert_eq!(
        lund.api("POST", "/api/v1/assets", Some(&file_asset)).status,
        201
    );
    let offer = json!({"id": "lund-reading-offer", "assets": ["lund-reading"],
        "accessPolicy": caap_catalog::samples::OPEN_POLICY_ID,
        "contractPolicy": caap_catalog::samples::OPEN_POLICY_ID});
    let r = lund.api("POST", "/api/v1/offers", Some(&offer));
    assert_eq!(r.status, 201, "{}", r.body);
    let r = malmo.api(
        "POST",
        "/api/v1/negotiations",
        Some(&json!({"counterPartyAddress": lund.dsp, "offerId": "lund-reading-offer"})),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let nid = r.body["id"].as_str().unwrap().to_owned();
    let agreement = eventually(20, "FINALIZED", || {
        let n = malmo
            .api("GET", &format!("/api/v1/negotiations/{nid}"), None)
            .body;
        assert_ne!(n["state"], "TERMINATED", "{n}");
        (n["state"] == "FINALIZED").then(|| n["agreementId"].as_str().unwrap().to_owned())
    });
    let r = malmo.api(
        "POST",
        "/api/v1/transfers",
        Some(&json!({"agreementId": agreement})),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let tid = r.body["id"].as_str().unwrap().to_owned();
    eventually(20, "STARTED", || {
        let t = malmo
            .api("GET", &format!("/api/v1/transfers/{tid}"), None)
            .body;
        assert_ne!(t["state"], "TERMINATED", "{t}");
        (t["state"] == "STARTED").then_some(())
    });
    let data = malmo.api("GET", &format!("/api/v1/transfers/{tid}/data"), None);
    assert_eq!(data.status, 200, "{}", data.body);
    assert_eq!(data.body["no2"], 17);

    // A stranger: the authority rejects its request; Lund refuses its catalog request.
    let (stranger, _) = fed.member("Okänd AB", None);
    let r = stranger.api(
        "POST",
        "/api/v1/credentials/requests",
        Some(&json!({"authority": fed.authority.dsp})),
    );
    assert_eq!(r.status, 202, "{}", r.body);
    assert_eq!(r.body["status"], "REJECTED", "{}", r.body);
    assert!(
        r.body["reason"].as_str().unwrap().contains("not a member"),
        "{}",
        r.body
    );
    let r = fetch_catalog(&stranger, &lund);
    assert_eq!(r.status, 502, "{}", r.body);
    assert!(r.body["detail"].to_string().contains("401"), "{}", r.body);

    // Revocation: the authority revokes Malmö; Lund's monitor terminates the running transfer with
    // the reason, and Malmö's next request is refused.
    let out = caap()
        .args(["authority", "--config"])
        .arg(&fed._nodes[0].config)
        .args(["--api-url", &fed.authority.api])
        .args(["revoke", &malmo_did, "--reason", "left the federation"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("2 credential(s) revoked"));
    let provider_side = eventually(20, "the transfer TERMINATED at Lund", || {
        let list = lund.api("GET", "/api/v1/transfers", None).body;
        let t = list["items"].as_array()?.first()?.clone();
        (t["state"] == "TERMINATED").then_some(t)
    });
    assert!(
        provider_side.to_string().contains("revoked"),
        "{provider_side}"
    );
    let r = fetch_catalog(&malmo, &lund);
    assert_eq!(r.status, 502, "{}", r.body);
}

#[test]
fn keys_rotate_keeps_the_old_key_published_for_verification_and_signs_with_the_new_one() {
    let mut fed = start_authority();
    // The version endpoint advertises DCP.
    let v = crate::support::request(
        "GET",
        &format!("{}/.well-known/dspace-version", fed.authority.dsp),
        None,
        None,
        "application/json",
    );
    assert_eq!(
        v.body["protocolVersions"][0]["auth"]["protocol"], "DCP",
        "{}",
        v.body
    );

    let node = Node::init_with("Lund", &dcp_settings(Some(&fed.authority_did)));
    let out = caap()
        .args(["keys", "rotate", "--keep-hours", "2", "--config"])
        .arg(&node.config)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("key-2"), "{stdout}");
    #[cfg(unix)]
    for f in ["keys/participant.jwk", "keys/retired-keys.json"] {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(node.dir.path().join(f))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{f}");
    }
    let listed = caap()
        .args(["keys", "list", "--config"])
        .arg(&node.config)
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&listed.stdout);
    assert!(
        listed.contains("current") && listed.contains("retired"),
        "{listed}"
    );

    let lund = node.start(&[]);
    let did = did_of(&lund);
    let doc = crate::support::request(
        "GET",
        &format!("{}/.well-known/did.json", lund.dsp),
        None,
        None,
        "application/json",
    )
    .body;
    let methods: Vec<&str> = doc["verificationMethod"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(methods, [format!("{did}#key-2"), format!("{did}#key-1")]);
    assert_eq!(doc["capabilityInvocation"], json!([format!("{did}#key-2")]));
    assert_eq!(doc["authentication"], json!([format!("{did}#key-2")]));
    assert_eq!(
        doc["assertionMethod"],
        json!([format!("{did}#key-2"), format!("{did}#key-1")])
    );
    // Its tokens are signed with the new key: the authority accepts its credential request.
    let r = fed.authority.api(
        "POST",
        "/api/v1/authority/members",
        Some(&json!({"holder": did, "roles": ["Municipality"], "attributes": {"municipalityCode": "1281"}})),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let out = caap()
        .args(["credentials", "--config"])
        .arg(&node.config)
        .args(["--api-url", &lund.api])
        .args(["request", "--authority", &fed.authority.dsp])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("MunicipalityCredential"), "{stdout}");
    let out = caap()
        .args(["credentials", "--config"])
        .arg(&node.config)
        .args(["--api-url", &lund.api, "list"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("MembershipCredential"));
    fed._nodes.push(node);
}
