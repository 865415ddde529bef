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
    agree_and_pull(&malmo, &lund);

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
    if let crate::dsp_schema::Shared::Found(schemas) = crate::dsp_schema::load() {
        schemas.assert_valid("common/protocol-version-schema.json", &v.body);
    }

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

/// A node's signing key under its DID (the key file written by `caap init` names it `key-1`).
fn key_of(node: &Node, did: &str) -> caap_identity::ParticipantKey {
    let jwk = std::fs::read_to_string(node.dir.path().join("keys/participant.jwk")).unwrap();
    caap_identity::ParticipantKey::from_jwk_json(&jwk)
        .unwrap()
        .with_key_id(&format!("{did}#key-1"))
}

fn post_json(url: &str, token: Option<&str>, body: &Value) -> crate::support::Response {
    crate::support::request(
        "POST",
        url,
        token.map(|t| format!("Bearer {t}")).as_deref(),
        Some(&body.to_string()),
        "application/json",
    )
}

/// The embedded credential service and the authority's issuer service answer the DCP TCK's
/// credential-service and issuer cases: scopes are limited to what the access token grants (no
/// escalation), malformed queries and tokens are refused with the right status, a request without
/// holderPid or from a stranger's token is refused, and request status is for the requester only.
#[test]
fn the_credential_service_and_the_issuer_refuse_what_dcp_says_they_must() {
    use caap_identity::dcp::{self, Scope};
    let mut fed = start_authority();
    let (malmo, malmo_did) = fed.member(
        "Malmö",
        Some((&["Municipality"], json!({"municipalityCode": "1280"}))),
    );
    let (lund, lund_did) = fed.member(
        "Lund",
        Some((&["Municipality"], json!({"municipalityCode": "1281"}))),
    );
    let malmo_key = key_of(&fed._nodes[1], &malmo_did);
    let lund_key = key_of(&fed._nodes[2], &lund_did);
    let now = caap_connector::clock::Clock::now(&caap_connector::clock::SystemClock);
    let minutes = chrono::Duration::minutes(5);
    let cs = format!("{}/dcp/presentations/query", malmo.dsp);
    // Malmö grants Lund its membership only; Lund asks with a token of its own carrying that grant.
    let membership = Scope::for_type("MembershipCredential");
    let municipality = Scope::for_type("MunicipalityCredential");
    let grant = |bearer: &str, scopes: &[String]| {
        dcp::issue_access_token(&malmo_did, &malmo_key, bearer, scopes, now, minutes).unwrap()
    };
    let lund_token = |access: Option<&caap_identity::Secret>| {
        dcp::create_self_issued_token(&lund_did, &lund_key, &malmo_did, access, now, minutes)
            .unwrap()
            .expose()
            .to_owned()
    };
    let query = |scopes: Vec<String>| {
        serde_json::to_value(dcp::PresentationQueryMessage::for_scopes(scopes)).unwrap()
    };
    let access = grant(&lund_did, std::slice::from_ref(&membership));

    let r = post_json(
        &cs,
        Some(&lund_token(Some(&access))),
        &query(vec![membership.clone()]),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let vp = r.body["presentation"][0].as_str().unwrap();
    let (_, vp) = caap_identity::vc::parse_presentation_jwt(vp).unwrap();
    assert_eq!(vp.credentials.len(), 1, "only the membership");

    // Escalation: asking for more than granted yields only what was granted.
    let r = post_json(
        &cs,
        Some(&lund_token(Some(&access))),
        &query(vec![membership.clone(), municipality.clone()]),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let (_, vp) =
        caap_identity::vc::parse_presentation_jwt(r.body["presentation"][0].as_str().unwrap())
            .unwrap();
    assert_eq!(vp.credentials.len(), 1, "no escalation past the grant");

    // Malformed queries.
    let r = post_json(&cs, Some(&lund_token(Some(&access))), &query(vec![]));
    assert_eq!(r.status, 400, "empty scope: {}", r.body);
    let both = json!({"@context": [dcp::DCP_CONTEXT], "type": "PresentationQueryMessage",
        "scope": [membership], "presentationDefinition": {"id": "x", "input_descriptors": []}});
    assert_eq!(
        post_json(&cs, Some(&lund_token(Some(&access))), &both).status,
        400,
        "scope and definition"
    );
    let pd = json!({"@context": [dcp::DCP_CONTEXT], "type": "PresentationQueryMessage",
        "presentationDefinition": {"id": "x", "input_descriptors": [{"id": "m"}]}});
    assert_eq!(
        post_json(&cs, Some(&lund_token(Some(&access))), &pd).status,
        501,
        "presentation definitions are not supported"
    );
    // Bad tokens: none, no Bearer prefix, no access token, an access token given to someone else,
    // a replayed token.
    assert_eq!(
        post_json(&cs, None, &query(vec![membership.clone()])).status,
        401
    );
    let bare = crate::support::request(
        "POST",
        &cs,
        Some(&lund_token(Some(&access))),
        Some(&query(vec![membership.clone()]).to_string()),
        "application/json",
    );
    assert_eq!(bare.status, 401, "no Bearer prefix");
    assert_eq!(
        post_json(
            &cs,
            Some(&lund_token(None)),
            &query(vec![membership.clone()])
        )
        .status,
        401,
        "no access token"
    );
    let someone_else = grant(&fed.authority_did, std::slice::from_ref(&membership));
    assert_eq!(
        post_json(
            &cs,
            Some(&lund_token(Some(&someone_else))),
            &query(vec![membership.clone()])
        )
        .status,
        401,
        "an access token given to another verifier"
    );
    let once = lund_token(Some(&access));
    assert_eq!(
        post_json(&cs, Some(&once), &query(vec![membership.clone()])).status,
        200
    );
    let again = post_json(&cs, Some(&once), &query(vec![membership.clone()]));
    assert_eq!(again.status, 401, "jti replay");
    assert_eq!(again.body["code"], "jti_replayed", "{}", again.body);

    // The issuer service.
    let issuer = format!("{}/issuer", fed.authority.dsp);
    let to_authority = |key: &caap_identity::ParticipantKey, did: &str| {
        dcp::create_self_issued_token(did, key, &fed.authority_did, None, now, minutes)
            .unwrap()
            .expose()
            .to_owned()
    };
    let meta = crate::support::request("GET", &format!("{issuer}/metadata"), None, None, "");
    assert_eq!(meta.status, 200);
    assert_eq!(meta.body["issuer"], fed.authority_did.as_str());
    let request = json!({"@context": [dcp::DCP_CONTEXT], "type": "CredentialRequestMessage",
        "holderPid": "h-1", "credentials": [{"id": "MembershipCredential"}]});
    assert_eq!(
        post_json(&format!("{issuer}/credentials"), None, &request).status,
        401,
        "no token"
    );
    let mut no_pid = request.clone();
    no_pid.as_object_mut().unwrap().remove("holderPid");
    assert_eq!(
        post_json(
            &format!("{issuer}/credentials"),
            Some(&to_authority(&lund_key, &lund_did)),
            &no_pid
        )
        .status,
        400,
        "missing holderPid"
    );
    let mut unknown = request.clone();
    unknown["credentials"] = json!([{"id": "PassportCredential"}]);
    assert_eq!(
        post_json(
            &format!("{issuer}/credentials"),
            Some(&to_authority(&lund_key, &lund_did)),
            &unknown
        )
        .status,
        400,
        "not offered"
    );
    let wrong_aud =
        dcp::create_self_issued_token(&lund_did, &lund_key, &malmo_did, None, now, minutes)
            .unwrap();
    assert_eq!(
        post_json(
            &format!("{issuer}/credentials"),
            Some(wrong_aud.expose()),
            &request
        )
        .status,
        401,
        "a token for another audience"
    );
    let r = post_json(
        &format!("{issuer}/credentials"),
        Some(&to_authority(&lund_key, &lund_did)),
        &request,
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let location = r.headers["location"].to_str().unwrap().to_owned();
    let status_url = format!("{}{location}", fed.authority.dsp);
    let mine = crate::support::request(
        "GET",
        &status_url,
        Some(&format!("Bearer {}", to_authority(&lund_key, &lund_did))),
        None,
        "",
    );
    assert_eq!(mine.status, 200, "{}", mine.body);
    assert_eq!(mine.body["holderPid"], "h-1");
    let theirs = crate::support::request(
        "GET",
        &status_url,
        Some(&format!("Bearer {}", to_authority(&malmo_key, &malmo_did))),
        None,
        "",
    );
    assert_eq!(theirs.status, 404, "another holder's request");
    let unknown = crate::support::request(
        "GET",
        &format!("{issuer}/requests/nope"),
        Some(&format!("Bearer {}", to_authority(&lund_key, &lund_did))),
        None,
        "",
    );
    assert_eq!(unknown.status, 404);
    drop(lund);
}

/// The production path: every connector serves HTTPS (`caap init --tls`), `did:web` is resolved over
/// HTTPS with the peers' certificates trusted through `tls.ca_files`, and the development setting
/// (`insecure_did_web_over_http`) is off; `localhost` is named as a private host DIDs may be on, as on a
/// city's private network.
#[test]
fn dcp_over_https_resolves_did_web_with_tls_and_no_development_setting() {
    let dcp = || {
        vec![
            ("dsp.auth.mode", "\"dcp\"".to_owned()),
            ("negotiation.retry_base_ms", "20".to_owned()),
            (
                "identity.allowed_private_hosts",
                "[\"localhost\"]".to_owned(),
            ),
        ]
    };
    let fed = Node::init_tls_with("Federationen", &dcp());
    fed.set_all(&[("authority.enabled", "true".into())]);
    let lund = Node::init_tls_with("Lund", &dcp());
    let malmo = Node::init_tls_with("Malmö", &dcp());
    let nodes = [&fed, &lund, &malmo];
    // did:web names a host, not an IP address: each connector is `https://localhost:<port>`.
    for n in nodes {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        n.set_all(&[
            ("dsp.bind", format!("\"127.0.0.1:{port}\"")),
            (
                "participant.public_url",
                format!("\"https://localhost:{port}\""),
            ),
        ]);
    }
    for n in nodes {
        let others: Vec<String> = nodes
            .iter()
            .filter(|o| !std::ptr::eq(**o, n))
            .map(|o| format!("\"{}\"", o.tls_cert().display()))
            .collect();
        n.set_all(&[("tls.ca_files", format!("[{}]", others.join(", ")))]);
    }
    let https = |s: &Server| s.dsp.replacen("http://", "https://", 1);
    let authority = fed.start(&[]);
    let authority_did = did_of(&authority);
    for n in [&lund, &malmo] {
        n.set_all(&[(
            "identity.trusted_issuers",
            format!("[{{issuer = \"{authority_did}\"}}]"),
        )]);
    }
    let lund_s = lund.start(&[]);
    let malmo_s = malmo.start(&[]);
    for s in [&lund_s, &malmo_s] {
        let did = did_of(s);
        assert!(did.starts_with("did:web:localhost%3A"), "{did}");
        enrol(&authority, s, &authority_did);
    }
    publish_sample(&lund_s, 1);
    let r = malmo_s.api(
        "POST",
        "/api/v1/catalogs/request",
        Some(&json!({"counterPartyAddress": https(&lund_s)})),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body["datasets"].as_u64().unwrap() > 0, "{}", r.body);
}

/// Registers `member` at the trust anchor as a municipality and has it ask for its credentials, naming the
/// authority by `authority_address` (its DID or URL).
pub fn enrol(authority: &Server, member: &Server, authority_address: &str) {
    let did = did_of(member);
    let r = authority.api(
        "POST",
        "/api/v1/authority/members",
        Some(&json!({"holder": did, "roles": ["Municipality"], "attributes": {"municipalityCode": "1280"}})),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let r = member.api(
        "POST",
        "/api/v1/credentials/requests",
        Some(&json!({"authority": authority_address})),
    );
    assert_eq!(r.status, 201, "{}", r.body);
}

/// Publishes `files/reading.json` of the provider's directory as asset `reading` with the offer
/// `reading-offer` under `contract_policy` (the open policy when `None`).
pub fn publish_reading(provider: &Server, contract_policy: Option<&str>) {
    let mut file_asset = serde_json::to_value(
        caap_catalog::samples::assets(&caap_catalog::samples::CITIES[1], "http://127.0.0.1:9")
            .into_iter()
            .next()
            .unwrap(),
    )
    .unwrap();
    file_asset["id"] = json!("reading");
    file_asset["dataAddress"] =
        json!({"type": "File", "path": "reading.json", "mediaType": "application/json"});
    assert_eq!(
        provider
            .api("POST", "/api/v1/assets", Some(&file_asset))
            .status,
        201
    );
    let open = caap_catalog::samples::OPEN_POLICY_ID;
    if provider
        .api("GET", &format!("/api/v1/policies/{open}"), None)
        .status
        == 404
    {
        let policy =
            json!({"id": open, "policy": {"@type": "Set", "permission": [{"action": "use"}]}});
        assert_eq!(
            provider
                .api("POST", "/api/v1/policies", Some(&policy))
                .status,
            201
        );
    }
    let offer = json!({"id": "reading-offer", "assets": ["reading"],
        "accessPolicy": open, "contractPolicy": contract_policy.unwrap_or(open)});
    let r = provider.api("POST", "/api/v1/offers", Some(&offer));
    assert_eq!(r.status, 201, "{}", r.body);
}

/// Negotiates `offer` (by its handle) with the provider at `address` from `consumer` until FINALIZED,
/// starts a pull transfer and reads the data through the consumer's API; returns the transfer id.
pub fn negotiate_and_pull(consumer: &Server, address: &str, offer: &str) -> String {
    let r = consumer.api(
        "POST",
        "/api/v1/negotiations",
        Some(&json!({"counterPartyAddress": address, "offerId": offer})),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let nid = r.body["id"].as_str().unwrap().to_owned();
    let agreement = eventually(20, "FINALIZED", || {
        let n = consumer
            .api("GET", &format!("/api/v1/negotiations/{nid}"), None)
            .body;
        assert_ne!(n["state"], "TERMINATED", "{n}");
        (n["state"] == "FINALIZED").then(|| n["agreementId"].as_str().unwrap().to_owned())
    });
    let r = consumer.api(
        "POST",
        "/api/v1/transfers",
        Some(&json!({"agreementId": agreement})),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let tid = r.body["id"].as_str().unwrap().to_owned();
    eventually(20, "STARTED", || {
        let t = consumer
            .api("GET", &format!("/api/v1/transfers/{tid}"), None)
            .body;
        assert_ne!(t["state"], "TERMINATED", "{t}");
        (t["state"] == "STARTED").then_some(())
    });
    let data = consumer.api("GET", &format!("/api/v1/transfers/{tid}/data"), None);
    assert_eq!(data.status, 200, "{}", data.body);
    assert_eq!(data.body["no2"], 17);
    tid
}

/// Publishes the reading as an open offer, negotiates it from `consumer` and pulls it.
fn agree_and_pull(consumer: &Server, provider: &Server) {
    publish_reading(provider, None);
    negotiate_and_pull(consumer, &provider.dsp, "reading-offer");
}

/// A participant whose key is Ed25519 (did:web with an OKP key): its self-issued tokens and
/// presentations, its signed agreements (EdDSA, bound to its DID document) and its pull tokens work
/// with a P-256 peer.
#[test]
fn an_ed25519_participant_negotiates_and_transfers_with_a_p256_one() {
    let mut fed = start_authority();
    let node = Node::init_with("Lund", &dcp_settings(Some(&fed.authority_did)));
    let ed = caap_identity::ParticipantKey::generate_with(
        caap_identity::keys::KeyAlgorithm::EdDsa,
        "key-1",
    )
    .unwrap();
    std::fs::write(
        node.dir.path().join("keys/participant.jwk"),
        ed.to_private_jwk_json(),
    )
    .unwrap();
    std::fs::write(
        node.dir.path().join("files/reading.json"),
        br#"{"no2": 17}"#,
    )
    .unwrap();
    let lund = node.start(&[]);
    let lund_did = did_of(&lund);
    let r = fed.authority.api(
        "POST",
        "/api/v1/authority/members",
        Some(&json!({"holder": lund_did, "roles": ["Municipality"], "attributes": {"municipalityCode": "1281"}})),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let r = lund.api(
        "POST",
        "/api/v1/credentials/requests",
        Some(&json!({"authority": fed.authority.dsp})),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    fed._nodes.push(node);
    let (malmo, _) = fed.member(
        "Malmö",
        Some((&["Municipality"], json!({"municipalityCode": "1280"}))),
    );
    let doc = lund.api("GET", "/api/v1/identity", None).body;
    assert_eq!(
        doc["didDocument"]["verificationMethod"][0]["publicKeyJwk"]["crv"], "Ed25519",
        "{doc}"
    );
    agree_and_pull(&malmo, &lund);
}

/// Bad input on the identity endpoints of the management API gets problem details naming what is
/// wrong, and writes nothing.
#[test]
fn identity_management_endpoints_refuse_bad_input_clearly() {
    let fed = start_authority();
    let a = &fed.authority;
    let problem = |r: &crate::support::Response, status: u16, needle: &str| {
        assert_eq!(r.status, status, "{}", r.body);
        assert!(
            r.headers["content-type"]
                .to_str()
                .unwrap()
                .contains("problem+json"),
            "{:?}",
            r.headers
        );
        assert!(r.body.to_string().contains(needle), "{needle}: {}", r.body);
    };
    let raw = crate::support::request(
        "POST",
        &format!("{}/api/v1/authority/members", a.api),
        Some(&format!("Bearer {}", a.admin)),
        Some("{not json"),
        "application/json",
    );
    assert_eq!(raw.status, 400, "{}", raw.body);
    let r = a.api(
        "POST",
        "/api/v1/authority/members",
        Some(&json!({"holder": "did:web:x", "colour": "blue"})),
    );
    problem(&r, 400, "colour");
    let r = a.api(
        "POST",
        "/api/v1/authority/members",
        Some(&json!({"holder": "lund"})),
    );
    problem(&r, 422, "/holder");
    let r = a.api(
        "POST",
        "/api/v1/authority/members",
        Some(&json!({"holder": "did:web:lund.example", "roles": ["Mayor"]})),
    );
    problem(&r, 422, "/roles/0");
    assert_eq!(
        a.api("GET", "/api/v1/authority/members", None).body,
        json!([])
    );
    let r = a.api("GET", "/api/v1/authority/credentials?bogus=1", None);
    problem(&r, 400, "bogus");
    let r = a.api(
        "POST",
        "/api/v1/authority/revocations",
        Some(&json!({"subject": "did:web:nobody.example", "reason": "x"})),
    );
    problem(&r, 404, "did:web:nobody.example");
    let r = a.api(
        "POST",
        "/api/v1/credentials/requests",
        Some(&json!({"authority": "not a url"})),
    );
    problem(&r, 422, "/authority");
    let r = a.api(
        "POST",
        "/api/v1/credentials/requests",
        Some(&json!({"authority": "http://127.0.0.1:9"})),
    );
    problem(&r, 502, "127.0.0.1");
    let r = a.api("DELETE", "/api/v1/credentials/urn:uuid:none", None);
    problem(&r, 404, "urn:uuid:none");
    // A connector that is not a trust anchor has no member register.
    let node = Node::init_with("Lund", &dcp_settings(Some(&fed.authority_did)));
    let lund = node.start(&[]);
    let r = lund.api("GET", "/api/v1/authority/members", None);
    problem(&r, 404, "trust anchor");
}

/// Members asking at the same moment each get credentials with their own status-list entries.
#[test]
fn concurrent_credential_requests_get_distinct_status_entries() {
    let mut fed = start_authority();
    let mut servers = Vec::new();
    for name in ["Lund", "Malmö", "Ystad"] {
        let node = Node::init_with(name, &dcp_settings(Some(&fed.authority_did)));
        let server = node.start(&[]);
        let did = did_of(&server);
        let r = fed.authority.api(
            "POST",
            "/api/v1/authority/members",
            Some(&json!({"holder": did, "roles": ["Municipality"], "attributes": {"municipalityCode": "1281"}})),
        );
        assert_eq!(r.status, 201, "{}", r.body);
        fed._nodes.push(node);
        servers.push(server);
    }
    let authority = fed.authority.dsp.clone();
    std::thread::scope(|s| {
        for server in &servers {
            let authority = authority.clone();
            s.spawn(move || {
                let r = server.api(
                    "POST",
                    "/api/v1/credentials/requests",
                    Some(&json!({"authority": authority})),
                );
                assert_eq!(r.status, 201, "{}", r.body);
            });
        }
    });
    let issued = fed
        .authority
        .api("GET", "/api/v1/authority/credentials", None)
        .body;
    let mut indexes: Vec<u64> = issued
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["statusIndex"].as_u64().unwrap())
        .collect();
    indexes.sort_unstable();
    assert_eq!(indexes, (0..6).collect::<Vec<u64>>(), "{issued}");
}
