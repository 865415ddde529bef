//! The management API with OIDC access tokens from a real provider (`tests/oidc/provider.mjs`,
//! node-oidc-provider, started by scripts/test.sh): client-credentials tokens with and without the
//! required scope, garbage, forged and misaddressed tokens, the static admin token alongside, the CLI
//! with client credentials, and an unreachable provider.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Value, json};

use crate::support::*;

/// The provider scripts/test.sh started, with its clients.
struct Provider {
    issuer: String,
    token_url: String,
    audience: String,
    admin: (String, String),
    reader: (String, String),
}

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

/// The provider, or `None` (after printing SKIPPED) when none runs and none is required.
fn provider() -> Option<Provider> {
    let Ok(issuer) = std::env::var("CAAP_TEST_OIDC_ISSUER") else {
        let required = std::env::var_os("CI").is_some()
            || std::env::var("CAAP_REQUIRE_SHARED").as_deref() == Ok("1");
        assert!(
            !required,
            "CAAP_TEST_OIDC_ISSUER is required (scripts/test.sh starts tests/oidc/provider.mjs)"
        );
        println!(
            "SKIPPED: OIDC on the management API (set CAAP_TEST_OIDC_ISSUER; scripts/test.sh starts tests/oidc/provider.mjs)"
        );
        return None;
    };
    let discovery = request(
        "GET",
        &format!("{issuer}/.well-known/openid-configuration"),
        None,
        None,
        "",
    );
    assert_eq!(discovery.status, 200, "{}", discovery.body);
    Some(Provider {
        token_url: discovery.body["token_endpoint"]
            .as_str()
            .unwrap()
            .to_owned(),
        issuer,
        audience: env_or("CAAP_TEST_OIDC_AUDIENCE", "urn:caap:management-api"),
        admin: (
            env_or("CAAP_TEST_OIDC_ADMIN_CLIENT_ID", "caap-admin"),
            env_or(
                "CAAP_TEST_OIDC_ADMIN_CLIENT_SECRET",
                "caap-admin-secret-0123456789",
            ),
        ),
        reader: (
            env_or("CAAP_TEST_OIDC_READER_CLIENT_ID", "caap-reader"),
            env_or(
                "CAAP_TEST_OIDC_READER_CLIENT_SECRET",
                "caap-reader-secret-0123456789",
            ),
        ),
    })
}

impl Provider {
    /// A client-credentials access token (a JWT for `resource`).
    fn token(&self, client: &(String, String), scope: Option<&str>, resource: &str) -> String {
        let basic = STANDARD.encode(format!("{}:{}", client.0, client.1));
        let mut form = url::form_urlencoded::Serializer::new(String::new());
        form.append_pair("grant_type", "client_credentials");
        form.append_pair("resource", resource);
        if let Some(scope) = scope {
            form.append_pair("scope", scope);
        }
        let r = request(
            "POST",
            &self.token_url,
            Some(&format!("Basic {basic}")),
            Some(&form.finish()),
            "application/x-www-form-urlencoded",
        );
        assert_eq!(r.status, 200, "{}", r.body);
        r.body["access_token"].as_str().unwrap().to_owned()
    }

    /// A node whose management API accepts this provider's tokens with scope `caap:admin`.
    fn node(&self) -> Node {
        Node::init_with(
            "Malmö",
            &[
                ("api.oidc.issuer", format!("\"{}\"", self.issuer)),
                ("api.oidc.audience", format!("\"{}\"", self.audience)),
                ("api.oidc.required_scope", "\"caap:admin\"".into()),
            ],
        )
    }
}

fn list_negotiations(server: &Server, token: &str) -> Response {
    request(
        "GET",
        &format!("{}/api/v1/negotiations", server.api),
        Some(&format!("Bearer {token}")),
        None,
        "",
    )
}

fn challenge(r: &Response) -> String {
    r.headers
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

/// A token with the same header and claims as `token`, signed by a key the provider never had.
fn forged(token: &str, kid: &str) -> String {
    let claims = URL_SAFE_NO_PAD
        .decode(token.split('.').nth(1).unwrap())
        .unwrap();
    let pair = josekit::jws::RS256.generate_key_pair(2048).unwrap();
    let signer = josekit::jws::RS256
        .signer_from_jwk(&pair.to_jwk_private_key())
        .unwrap();
    let mut header = josekit::jws::JwsHeader::new();
    header.set_token_type("at+jwt");
    header.set_key_id(kid);
    josekit::jws::serialize_compact(&claims, &header, &signer).unwrap()
}

/// The provider's token with its `sub` changed and its signature kept.
fn tampered(token: &str) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    let mut claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    claims["sub"] = json!("someone-else");
    format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        parts[2]
    )
}

#[test]
fn management_api_accepts_oidc_access_tokens_with_the_scope() {
    let Some(idp) = provider() else { return };
    let node = idp.node();
    let server = node.start(&[]);

    // A client-credentials token with the scope: 200.
    let admin_token = idp.token(&idp.admin, Some("caap:admin"), &idp.audience);
    let r = list_negotiations(&server, &admin_token);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body["items"].is_array(), "{}", r.body);

    // Valid but without the scope: 403 insufficient_scope.
    let reader_token = idp.token(&idp.reader, Some("caap:read"), &idp.audience);
    let r = list_negotiations(&server, &reader_token);
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(challenge(&r), r#"Bearer error="insufficient_scope""#);
    assert_eq!(r.body["type"], "urn:caap:problem:insufficient-scope");
    assert_eq!(
        r.headers["content-type"].to_str().unwrap(),
        "application/problem+json"
    );

    // Garbage, a forged signature under the provider's kid, an unknown kid, a token for another
    // audience: 401 invalid_token, and the body never says why.
    let kid = {
        let header = URL_SAFE_NO_PAD
            .decode(admin_token.split('.').next().unwrap())
            .unwrap();
        serde_json::from_slice::<Value>(&header).unwrap()["kid"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let other_audience = idp.token(&idp.admin, Some("caap:admin"), "urn:caap:some-other-api");
    for (what, token) in [
        ("garbage", "not-a-token".to_owned()),
        ("forged", forged(&admin_token, &kid)),
        ("unknown kid", forged(&admin_token, "no-such-key")),
        ("wrong audience", other_audience),
        ("tampered", tampered(&admin_token)),
    ] {
        let r = list_negotiations(&server, &token);
        assert_eq!(r.status, 401, "{what}: {}", r.body);
        assert_eq!(challenge(&r), r#"Bearer error="invalid_token""#, "{what}");
        assert_eq!(r.body["type"], "urn:caap:problem:invalid-token", "{what}");
        let detail = r.body["detail"].as_str().unwrap().to_lowercase();
        for leak in ["signature", "audience", "kid", "expired", "issuer"] {
            assert!(
                !detail.contains(leak),
                "{what}: the body says {leak}: {detail}"
            );
        }
    }

    // The static admin token still works, and no token at all is a plain 401.
    let r = server.api("GET", "/api/v1/negotiations", None);
    assert_eq!(r.status, 200, "{}", r.body);
    let r = request(
        "GET",
        &format!("{}/api/v1/negotiations", server.api),
        None,
        None,
        "",
    );
    assert_eq!(r.status, 401);
    assert_eq!(challenge(&r), "Bearer");

    // The subject is logged at debug only; refusals with their reason at info.
    let log = server.output.lock().unwrap().join("\n");
    assert!(log.contains("insufficient scope"), "{log}");
    assert!(!log.contains(&admin_token), "a token reached the log");
}

#[test]
fn cli_uses_client_credentials_from_the_environment() {
    let Some(idp) = provider() else { return };
    let node = idp.node();
    let server = node.start(&[]);
    let cli = |client: &(String, String), scope: &str| {
        caap()
            .args(["negotiation", "list", "--config"])
            .arg(&node.config)
            .args(["--api-url", &server.api])
            .env("CAAP_OIDC_TOKEN_URL", &idp.token_url)
            .env("CAAP_OIDC_CLIENT_ID", &client.0)
            .env("CAAP_OIDC_CLIENT_SECRET", &client.1)
            .env("CAAP_OIDC_SCOPE", scope)
            .env("CAAP_OIDC_AUDIENCE", &idp.audience)
            .output()
            .unwrap()
    };
    let out = cli(&idp.admin, "caap:admin");
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // A wrong secret: a clear message naming the provider's answer and what to check.
    let out = cli(&(idp.admin.0.clone(), "wrong-secret".into()), "caap:admin");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    for needle in [
        "cannot get an access token",
        "invalid_client",
        "CAAP_OIDC_CLIENT_SECRET",
    ] {
        assert!(stderr.contains(needle), "missing {needle:?} in: {stderr}");
    }
    assert!(
        !stderr.contains("wrong-secret"),
        "the secret was printed: {stderr}"
    );

    // A client without the scope gets a token, and the connector refuses it with 403.
    let out = cli(&idp.reader, "caap:read");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("403"), "{stderr}");

    // The secret from a file works as well.
    let secret_file = node.dir.path().join("client-secret");
    std::fs::write(&secret_file, format!("{}\n", idp.admin.1)).unwrap();
    let out = caap()
        .args(["agreements", "--config"])
        .arg(&node.config)
        .args(["--api-url", &server.api])
        .args(["--token-url", &idp.token_url, "--client-id", &idp.admin.0])
        .arg("--client-secret-file")
        .arg(&secret_file)
        .args(["--scope", "caap:admin", "--audience", &idp.audience])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn an_unreachable_provider_answers_503_and_the_admin_token_still_works() {
    // Needs no provider: the issuer is a closed port.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let node = Node::init_with(
        "Lund",
        &[
            ("api.oidc.issuer", format!("\"http://127.0.0.1:{port}\"")),
            ("api.oidc.audience", "\"urn:caap:management-api\"".into()),
        ],
    );
    let server = node.start(&[]);
    let jwt = forged(
        &format!(
            "h.{}.s",
            URL_SAFE_NO_PAD
                .encode(json!({"sub": "x", "aud": "urn:caap:management-api"}).to_string())
        ),
        "k1",
    );
    let r = list_negotiations(&server, &jwt);
    assert_eq!(r.status, 503, "{}", r.body);
    assert_eq!(r.body["type"], "urn:caap:problem:oidc-unavailable");
    assert!(
        !r.body["detail"]
            .as_str()
            .unwrap()
            .contains(&port.to_string()),
        "{}",
        r.body
    );
    let r = server.api("GET", "/api/v1/negotiations", None);
    assert_eq!(r.status, 200, "{}", r.body);
}
