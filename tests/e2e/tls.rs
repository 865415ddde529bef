//! HTTPS between connectors: `caap init --tls` certificates, `[tls] ca_files` trust, and a readable
//! refusal when a connector does not trust the other's certificate.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::support::{Node, Server, TOKEN, caap, publish_sample, token_table};

/// `caap init --tls` with loopback port 0 listeners, plus extra TOML keys.
fn tls_node(name: &str, extra_toml: &str) -> Node {
    let dir = tempfile::tempdir().unwrap();
    let out = caap()
        .args(["init", "--tls", "--dir"])
        .arg(dir.path())
        .args([
            "--name",
            name,
            "--dsp-bind",
            "127.0.0.1:0",
            "--api-bind",
            "127.0.0.1:0",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("TLS certificate"), "{stdout}");
    let config = dir.path().join("caap.toml");
    let mut text = std::fs::read_to_string(&config).unwrap();
    assert!(
        text.contains("[tls]") && text.contains("keys/tls.crt"),
        "{text}"
    );
    text.push_str(extra_toml);
    std::fs::write(&config, &text).unwrap();
    let admin = text
        .lines()
        .find_map(|l| l.strip_prefix("admin_token = "))
        .unwrap()
        .trim_matches('"')
        .to_owned();
    let node = Node { dir, config, admin };
    // TLS is the subject here; DCP over HTTPS is tested in identity.rs.
    set(
        &node,
        "dsp.auth.mode",
        toml::Value::String("static-token".into()),
    );
    node
}

fn cert(node: &Node) -> PathBuf {
    node.dir.path().join("keys/tls.crt")
}

/// Sets a dotted key of a node's config to a TOML value.
fn set(node: &Node, key: &str, value: toml::Value) {
    let text = std::fs::read_to_string(&node.config).unwrap();
    let mut table: toml::Table = toml::from_str(&text).unwrap();
    let parts: Vec<&str> = key.split('.').collect();
    let mut current = &mut table;
    for part in &parts[..parts.len() - 1] {
        current = current
            .entry(part.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()))
            .as_table_mut()
            .unwrap();
    }
    current.insert(parts[parts.len() - 1].to_owned(), value);
    std::fs::write(&node.config, toml::to_string(&table).unwrap()).unwrap();
}

/// Sets `tls.ca_files` in a node's config.
fn trust(node: &Node, certs: &[&Path]) {
    let files = certs
        .iter()
        .map(|p| toml::Value::String(p.display().to_string()))
        .collect();
    set(node, "tls.ca_files", toml::Value::Array(files));
}

fn https(server: &Server) -> String {
    server.dsp.replacen("http://", "https://", 1)
}

/// A GET from the test, trusting `ca` (PEM): (status, headers, body).
fn get_trusting(ca: &Path, url: &str) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let root = reqwest::Certificate::from_pem(&std::fs::read(ca).unwrap()).unwrap();
        let client = reqwest::Client::builder()
            .tls_certs_merge([root])
            .build()
            .unwrap();
        let res = client.get(url).send().await.unwrap();
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        (status, headers, res.bytes().await.unwrap().to_vec())
    })
}

#[test]
fn two_connectors_talk_dsp_over_https_and_strangers_get_a_readable_refusal() {
    let provider_node = tls_node("Lund", &token_table("did:web:malmo"));
    set(
        &provider_node,
        "simulator.enabled",
        toml::Value::Boolean(true),
    );
    let consumer_node = tls_node("Malmö", "");
    trust(&provider_node, &[&cert(&consumer_node)]);
    trust(&consumer_node, &[&cert(&provider_node)]);
    let provider = provider_node.start(&[]);
    publish_sample(&provider, 1);
    let consumer = consumer_node.start(&[("CAAP_DSP_AUTH_OUTBOUND_TOKEN", TOKEN)]);

    // Version discovery over HTTPS, and the participant id is the did:web of an https URL.
    let (status, _, body) = get_trusting(
        &cert(&provider_node),
        &format!("{}/.well-known/dspace-version", https(&provider)),
    );
    assert_eq!(status, 200);
    let versions: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        versions["protocolVersions"][0]["version"], "2025-1",
        "{versions}"
    );
    let participant = provider.api("GET", "/api/v1/participant", None);
    assert!(
        participant.body.to_string().contains("https://127.0.0.1:"),
        "the default public URL is https: {}",
        participant.body
    );

    // The consumer fetches the catalog over HTTPS, trusting the provider through tls.ca_files.
    let r = consumer.api(
        "POST",
        "/api/v1/catalogs/request",
        Some(&json!({"counterPartyAddress": https(&provider)})),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["datasets"], 4, "{}", r.body);
    assert!(
        r.body["dspBase"].as_str().unwrap().starts_with("https://"),
        "{}",
        r.body
    );

    // The data plane's listener (here: the simulator on it) is HTTPS too.
    let (status, headers, body) = get_trusting(
        &cert(&provider_node),
        &format!("{}/sim/files/bytes?size=1MiB", https(&provider)),
    );
    assert_eq!(status, 200);
    assert_eq!(headers["x-caap-simulator"], "true");
    assert_eq!(body.len(), 1 << 20);

    // Plain HTTP to the HTTPS listener does not get an answer.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let plain = rt.block_on(async {
        reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(10))
            .build()
            .unwrap()
            .get(format!("{}/.well-known/dspace-version", provider.dsp))
            .send()
            .await
            .map(|r| r.status().as_u16())
    });
    assert!(!matches!(plain, Ok(200)), "{plain:?}");

    // A connector that does not trust the certificate gets a 502 that says why.
    let stranger_node = Node::init("Ystad", "");
    let stranger = stranger_node.start(&[("CAAP_DSP_AUTH_OUTBOUND_TOKEN", TOKEN)]);
    let r = stranger.api(
        "POST",
        "/api/v1/catalogs/request",
        Some(&json!({"counterPartyAddress": https(&provider)})),
    );
    assert_eq!(r.status, 502, "{}", r.body);
    let detail = r.body["detail"].as_str().unwrap();
    assert!(detail.contains("certificate"), "{detail}");
    assert!(detail.contains("tls.ca_files"), "{detail}");
}

#[test]
fn tls_misconfiguration_names_the_key() {
    let node = tls_node("Lund", "");
    // The key of another certificate.
    let other = tls_node("Malmö", "");
    std::fs::copy(
        other.dir.path().join("keys/tls.key"),
        node.dir.path().join("keys/tls.key"),
    )
    .unwrap();
    let out = caap()
        .args(["serve", "--config"])
        .arg(&node.config)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("tls.key_file") && stderr.contains("does not belong"),
        "{stderr}"
    );
    // A missing certificate file.
    std::fs::remove_file(node.dir.path().join("keys/tls.crt")).unwrap();
    let out = caap()
        .args(["serve", "--config"])
        .arg(&node.config)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("tls.cert_file") && stderr.contains("tls.crt"),
        "{stderr}"
    );
    // A missing trust root.
    let node = tls_node("Lund", "");
    trust(&node, &[Path::new("nowhere.pem")]);
    let out = caap()
        .args(["serve", "--config"])
        .arg(&node.config)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("tls.ca_files[0]") && stderr.contains("nowhere.pem"),
        "{stderr}"
    );
    // An http public URL with --tls is refused at init.
    let dir = tempfile::tempdir().unwrap();
    let out = caap()
        .args(["init", "--tls", "--dir"])
        .arg(dir.path())
        .args(["--name", "X", "--public-url", "http://caap.example"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("https://"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
