//! The command line: the demo, the embedded default, config errors, two connectors federating,
//! and state surviving a restart on SQLite and PostgreSQL.

use std::process::Stdio;

use serde_json::json;

use crate::support::*;

#[test]
fn demo_runs_the_walk_through_and_exits_zero() {
    let out = caap().args(["demo", "--exit"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for needle in [
        "[1/11]",
        "Alva withdraws consent",
        "portal › Requests: Lund: Resident parking permits",
        "portal › My consents: You gave consent",
        "portal › Withdrawals: Lund: Resident parking permits, Malmö (synthetic citizens): Deletion confirmed",
        "Alva's are dropped at once",
        "records deleted, deletion confirmed (signed)",
        "holds MembershipCredential",
        "the authority rejected the request",
        "monitor terminated the running stream",
        "next request is refused",
        "readings received by Malmö",
        "the flow stopped at once",
        "cached",
        "OffStreetParking",
        "ContractAgreementVerificationMessage -> VERIFIED",
        "hash chain intact, 1 agreement signature(s) verified",
        "all steps passed",
    ] {
        assert!(stdout.contains(needle), "missing {needle:?} in:\n{stdout}");
    }
}

#[test]
fn serve_without_config_starts_the_embedded_default() {
    let cwd = tempfile::tempdir().unwrap();
    let mut child = caap()
        .arg("serve")
        .current_dir(cwd.path())
        .env("CAAP_DSP_BIND", "127.0.0.1:0")
        .env("CAAP_API_BIND", "127.0.0.1:0")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id().to_string();
    let config = cwd.path().join("caap-data/caap.toml");
    let key = cwd.path().join("caap-data/keys/participant.jwk");
    // Wait for the first-start files, then for readiness via the output.
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(child.stdout.take().unwrap()));
    let mut seen = Vec::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        seen.push(line.clone());
        if line.starts_with("caap: ready") {
            break;
        }
    }
    let all = seen.join("\n");
    for needle in [
        "first start",
        "participant id",
        "management API",
        "admin token",
        "SQLite",
    ] {
        assert!(all.contains(needle), "missing {needle:?} in:\n{all}");
    }
    assert!(config.exists() && key.exists());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(child.wait().unwrap().success());
}

#[test]
fn config_errors_name_the_key_and_help_is_complete() {
    let node = Node::init("Lund", "");
    let text = std::fs::read_to_string(&node.config).unwrap();
    std::fs::write(
        &node.config,
        text.replace(
            "mode = \"static-token\"",
            "mode = \"static-token\"
bogus = 1",
        ),
    )
    .unwrap();
    let out = caap()
        .args(["serve", "--config"])
        .arg(&node.config)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bogus") && err.contains("dsp.auth"), "{err}");

    let node = Node::init("Lund", "");
    let out = caap()
        .args(["serve", "--config"])
        .arg(&node.config)
        .env("CAAP_DSP_BIND", "nowhere")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("dsp.bind") && err.contains("environment"),
        "{err}"
    );

    let out = caap()
        .args(["init", "--dir"])
        .arg(node.dir.path())
        .args(["--name", "again"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--force"));

    for args in [
        &["--help"][..],
        &["serve", "--help"],
        &["init", "--help"],
        &["demo", "--help"],
        &["catalog", "--help"],
        &["catalog", "fetch", "--help"],
        &["catalog", "search", "--help"],
        &["migrate", "--help"],
    ] {
        let out = caap().args(args).output().unwrap();
        assert!(out.status.success(), "{args:?}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("Usage:") && text.len() > 200,
            "{args:?}: {text}"
        );
    }
}

#[test]
fn a_city_fetches_and_searches_another_citys_catalog() {
    let provider_node = Node::init("Lund", &token_table("did:web:malmo"));
    let provider = provider_node.start(&[]);
    publish_sample(&provider, 1);
    let consumer_node = Node::init("Malmö", "");
    let consumer = consumer_node.start(&[("CAAP_DSP_AUTH_OUTBOUND_TOKEN", TOKEN)]);

    let out = caap()
        .args([
            "catalog",
            "fetch",
            &provider.dsp,
            "--api-url",
            &consumer.api,
            "--config",
        ])
        .arg(&consumer_node.config)
        .env("CAAP_DSP_AUTH_OUTBOUND_TOKEN", TOKEN)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("cached 4 datasets from Lund"), "{stdout}");

    let out = caap()
        .args([
            "catalog",
            "search",
            "--data-model",
            "OffStreetParking",
            "--api-url",
            &consumer.api,
            "--config",
        ])
        .arg(&consumer_node.config)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("2 hit(s)") && stdout.contains("Lund"),
        "{stdout}"
    );

    let r = consumer.api(
        "GET",
        "/api/v1/catalogs/search?q=air%20quality&city=lund",
        None,
    );
    assert_eq!(r.body["total"], 2, "{}", r.body);
    let r = consumer.api("GET", "/api/v1/catalogs/search?colour=red", None);
    assert_eq!(r.status, 400);

    // A provider that refuses us: the error says who answered what.
    let stranger_node = Node::init("Ystad", "");
    let stranger = stranger_node.start(&[]);
    let r = stranger.api(
        "POST",
        "/api/v1/catalogs/request",
        Some(&json!({"counterPartyAddress": provider.dsp})),
    );
    assert_eq!(r.status, 502, "{}", r.body);
    assert!(
        r.body["detail"].as_str().unwrap().contains("401"),
        "{}",
        r.body
    );
    let r = stranger.api(
        "POST",
        "/api/v1/catalogs/request",
        Some(&json!({"counterPartyAddress": "http://127.0.0.1:9"})),
    );
    assert_eq!(r.status, 502, "{}", r.body);
}

fn restart_keeps(env: &[(&str, &str)]) {
    let node = Node::init("Malmö", "");
    let server = node.start(env);
    let ids = publish_sample(&server, 0);
    let before = server
        .api("GET", &format!("/api/v1/assets/{}", ids[0]), None)
        .body;
    assert!(server.stop().success());
    let server = node.start(env);
    assert_eq!(
        server
            .api("GET", &format!("/api/v1/assets/{}", ids[0]), None)
            .body,
        before
    );
    assert_eq!(
        server.api("GET", "/api/v1/offers", None).body["items"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert!(server.stop().success());
}

#[test]
fn assets_and_offers_survive_a_restart_on_sqlite() {
    restart_keeps(&[]);
}

#[test]
fn assets_and_offers_survive_a_restart_on_postgres() {
    if let Some(url) = postgres_database("restart") {
        restart_keeps(&[("CAAP_DATABASE_URL", &url)]);
    }
}
