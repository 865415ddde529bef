//! Publishing as a city's IT team: the catalog as files, `caap apply` (plan, create, update, prune,
//! refusal of broken files), `caap export`, and the `caap asset|policy|offer` commands, with a real
//! `caap serve` driven by the real `caap` binary, on SQLite and PostgreSQL.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::support::*;

const SENSORS: &str = "http://127.0.0.1:9";

/// The example catalog of a city (examples/cities/<slug>/catalog).
fn example(slug: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/cities")
        .join(slug)
        .join("catalog")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.path().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

struct Cli<'a> {
    node: &'a Node,
    server: &'a Server,
}

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Cli<'_> {
    fn run(&self, args: &[&str], stdin: Option<&str>) -> Out {
        let mut cmd = caap();
        cmd.args(args)
            .args(["--api-url", &self.server.api, "--config"])
            .arg(&self.node.config)
            .env("SENSORS_URL", SENSORS)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .stdin(std::process::Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        {
            use std::io::Write;
            let mut input = child.stdin.take().unwrap();
            if let Some(s) = stdin {
                input.write_all(s.as_bytes()).unwrap();
            }
        }
        let out = child.wait_with_output().unwrap();
        Out {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args, None);
        assert_eq!(out.code, 0, "{args:?}:\n{}{}", out.stdout, out.stderr);
        out.stdout
    }

    fn apply(&self, dir: &Path, extra: &[&str]) -> Out {
        let mut args = vec!["apply", "-f", dir.to_str().unwrap()];
        args.extend_from_slice(extra);
        self.run(&args, None)
    }
}

fn items(server: &Server, kind: &str) -> Vec<Value> {
    server
        .api("GET", &format!("/api/v1/{kind}?limit=100"), None)
        .body["items"]
        .as_array()
        .unwrap()
        .clone()
}

fn edit(path: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.contains(from), "{from:?} not in {}", path.display());
    std::fs::write(path, text.replacen(from, to, 1)).unwrap();
}

fn a_city_publishes_from_files(env: &[(&str, &str)]) {
    let node = Node::init("Lund", "");
    let server = node.start(env);
    let cli = Cli {
        node: &node,
        server: &server,
    };
    let repo = tempfile::tempdir().unwrap();
    let dir = repo.path().join("catalog");
    copy_dir(&example("lund"), &dir);

    // Dry run: the whole plan, nothing written.
    let out = cli.apply(&dir, &["--dry-run"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    for line in [
        "+ policy open-data-cc-by\n",
        "+ policy public-service-use\n",
        "+ asset lund-parking-p-hus-druvan\n",
        "+ offer lund-parking-public-service\n",
    ] {
        assert!(out.stdout.contains(line), "{line:?} in {}", out.stdout);
    }
    assert!(
        out.stdout.contains("8 to create, 0 to update, 0 to delete"),
        "{}",
        out.stdout
    );
    assert!(items(&server, "assets").is_empty());
    // --check: a plan that is not empty is exit status 3.
    assert_eq!(cli.apply(&dir, &["--check"]).code, 3);

    // Apply: exactly what the demo publishes for Lund.
    let out = cli.apply(&dir, &[]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout
            .contains("applied: 8 created, 0 updated, 0 deleted"),
        "{}",
        out.stdout
    );
    let city = &caap_catalog::samples::CITIES[1];
    // Stored as written: the reference stays (the data plane resolves it).
    let demo_assets = caap_catalog::samples::assets(city, "${env:SENSORS_URL}");
    let mut want: Vec<Value> = demo_assets
        .iter()
        .map(|a| serde_json::to_value(a).unwrap())
        .collect();
    want.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
    assert_eq!(items(&server, "assets"), want);
    let mut want: Vec<Value> = caap_catalog::samples::offers(city, &demo_assets)
        .iter()
        .map(|o| serde_json::to_value(o).unwrap())
        .collect();
    want.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
    assert_eq!(items(&server, "offers"), want);
    for (id, policy) in caap_catalog::samples::policies() {
        let stored = server
            .api("GET", &format!("/api/v1/policies/{id}"), None)
            .body;
        let demo = caap_policy::parse_policy(&policy)
            .unwrap()
            .to_compact_json();
        assert_eq!(stored["policy"], demo, "{id}");
    }

    // Again: nothing to change, and --check agrees.
    let out = cli.apply(&dir, &[]);
    assert!(out.stdout.contains("nothing to change"), "{}", out.stdout);
    assert_eq!(cli.apply(&dir, &["--check", "--prune"]).code, 0);

    // One field changed: one update, guarded by the ETag.
    let before = server.api("GET", "/api/v1/assets/lund-parking-p-hus-druvan", None);
    edit(
        &dir.join("assets.toml"),
        "title = \"Parking occupancy, P-hus Druvan, Lund\"",
        "title = \"Parking occupancy, P-hus Druvan (Lund)\"",
    );
    let out = cli.apply(&dir, &["--check"]);
    assert_eq!(out.code, 3);
    assert_eq!(
        out.stdout.lines().next().unwrap(),
        "~ asset lund-parking-p-hus-druvan: title changed"
    );
    let out = cli.apply(&dir, &[]);
    assert!(
        out.stdout
            .contains("applied: 0 created, 1 updated, 0 deleted"),
        "{}",
        out.stdout
    );
    let after = server.api("GET", "/api/v1/assets/lund-parking-p-hus-druvan", None);
    assert_eq!(
        after.body["title"],
        "Parking occupancy, P-hus Druvan (Lund)"
    );
    assert_ne!(after.headers["etag"], before.headers["etag"]);

    // A policy's constraint changed: the plan says which.
    edit(
        &dir.join("policies/public-service-use.jsonld"),
        "dpv:PublicBenefit",
        "dpv:ServiceProvision",
    );
    let out = cli.apply(&dir, &["--dry-run"]);
    assert_eq!(
        out.stdout.lines().next().unwrap(),
        "~ policy public-service-use: purpose constraint changed"
    );
    assert_eq!(cli.apply(&dir, &[]).code, 0);

    // An offer no longer named: kept without --prune, deleted with it.
    let offers = dir.join("offers.toml");
    let text = std::fs::read_to_string(&offers).unwrap();
    let cut = text.rfind("[[offer]]").unwrap();
    std::fs::write(&offers, &text[..cut]).unwrap();
    assert!(cli.apply(&dir, &[]).stdout.contains("nothing to change"));
    let out = cli.apply(&dir, &["--prune", "--dry-run"]);
    assert_eq!(
        out.stdout.lines().next().unwrap(),
        "- offer lund-parking-public-service"
    );
    let out = cli.apply(&dir, &["--prune"]);
    assert!(
        out.stdout.contains("0 created, 0 updated, 1 deleted"),
        "{}",
        out.stdout
    );
    assert_eq!(
        server
            .api("GET", "/api/v1/offers/lund-parking-public-service", None)
            .status,
        404
    );

    // Broken files: every problem with its file and line, nothing written.
    let snapshot = (
        items(&server, "assets"),
        items(&server, "policies"),
        items(&server, "offers"),
    );
    edit(
        &dir.join("assets.toml"),
        "spatial = \"Lund\"",
        "spatial = \"Lund\"\ncolour = \"red\"",
    );
    edit(
        &dir.join("policies/open-data-cc-by.jsonld"),
        "\"action\": \"attribute\"",
        "\"action\": \"sing\"",
    );
    std::fs::write(
        dir.join("more.toml"),
        "[[asset]]\nid = \"lund-register\"\ntitle = \"Resident parking permits\"\n\
         [asset.personal_data]\nsubject_field = \"refCitizen\"\ncategories = []\n\
         purposes = [\"dpv:ServiceProvision\"]\n[asset.data_address]\ntype = \"HttpApi\"\n\
         url = \"https://permits.lund.example/p?apikey=hunter2\"\n\n\
         [[offer]]\nid = \"lund-register-open\"\nassets = [\"lund-register\", \"lund-nothing\"]\n\
         access_policy = \"public-service-use\"\ncontract_policy = \"public-service-use\"\n",
    )
    .unwrap();
    let out = cli.apply(&dir, &[]);
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    for needle in [
        "assets.toml:13: colour: unknown field `colour`",
        "open-data-cc-by.jsonld:12: /obligation/0/action",
        "more.toml:10: data_address.url: the apikey is a secret written into the file",
        "more.toml:14: assets: no asset `lund-nothing` in the catalog files",
        "problem(s) in the catalog files; nothing was applied",
    ] {
        assert!(out.stderr.contains(needle), "{needle:?} in {}", out.stderr);
    }
    assert!(!out.stderr.contains("hunter2"));
    assert_eq!(
        (
            items(&server, "assets"),
            items(&server, "policies"),
            items(&server, "offers")
        ),
        snapshot
    );
    // Personal data under an open contract policy.
    let lines: Vec<String> = std::fs::read_to_string(dir.join("more.toml"))
        .unwrap()
        .lines()
        .map(|l| match l {
            l if l.starts_with("url =") => {
                "url = \"https://permits.lund.example/p?apikey=${env:LUND_PERMITS_KEY}\"".into()
            }
            l if l.starts_with("contract_policy") => "contract_policy = \"open-data-cc-by\"".into(),
            l if l.starts_with("assets =") => "assets = [\"lund-register\"]".into(),
            l => l.to_owned(),
        })
        .collect();
    std::fs::write(dir.join("more.toml"), lines.join("\n")).unwrap();
    copy_dir(&example("lund").join("policies"), &dir.join("policies"));
    edit(&dir.join("assets.toml"), "colour = \"red\"\n", "");
    let out = cli.apply(&dir, &[]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr
            .contains("more.toml:14: assets: `lund-register` declares personal data"),
        "{}",
        out.stderr
    );
    std::fs::remove_file(dir.join("more.toml")).unwrap();

    // The resource commands: list as a table, show, create from standard input, update with a stale
    // ETag (refused), delete.
    let table = cli.ok(&["asset", "list"]);
    assert!(table.starts_with("ID "), "{table}");
    assert!(
        table.contains("lund-air-quality-stortorget") && table.contains("LiveStream"),
        "{table}"
    );
    let shown: Value =
        serde_json::from_str(&cli.ok(&["asset", "show", "lund-parking-p-hus-druvan", "--json"]))
            .unwrap();
    assert_eq!(shown["dataModel"], "OffStreetParking");
    let text = cli.ok(&["policy", "show", "public-service-use"]);
    assert!(text.contains("etag") && text.contains("purpose"), "{text}");
    let body = json!({"id": "lund-bikes", "title": "Bike counts", "dataAddress": {"type": "HttpApi",
        "url": "https://u:pw@bikes.lund.example/c?key=k1&day=mon"}});
    let out = cli.run(&["asset", "create", "-f", "-"], Some(&body.to_string()));
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.contains("created asset lund-bikes (etag \"1\")"),
        "{}",
        out.stdout
    );
    let text = cli.ok(&["asset", "show", "lund-bikes", "--json"]);
    assert!(
        text.contains("https://u:***@bikes.lund.example/c?key=***&day=mon"),
        "{text}"
    );
    assert!(!text.contains("k1") && !text.contains(":pw@"), "{text}");
    let file = repo.path().join("bikes.json");
    std::fs::write(
        &file,
        json!({"id": "lund-bikes", "title": "Bike counts, Lund",
        "dataAddress": {"type": "HttpApi", "url": "https://bikes.lund.example/c"}})
        .to_string(),
    )
    .unwrap();
    let f = file.to_str().unwrap();
    assert!(
        cli.ok(&["asset", "update", "lund-bikes", "-f", f, "--if-match", "1"])
            .contains("etag \"2\"")
    );
    let out = cli.run(
        &["asset", "update", "lund-bikes", "-f", f, "--if-match", "1"],
        None,
    );
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("is at version 2, not 1"),
        "{}",
        out.stderr
    );
    let out = cli.run(&["asset", "create", "-f", f], None);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("409"), "{}", out.stderr);
    for args in [
        &["agreements", "--json"][..],
        &["negotiation", "list", "--json"],
        &["transfer", "list", "--json"],
    ] {
        let listed: Value = serde_json::from_str(&cli.ok(args)).unwrap();
        assert_eq!(listed, json!([]), "{args:?}");
    }
    let listed: Value = serde_json::from_str(&cli.ok(&["offer", "list", "--json"])).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert!(
        cli.ok(&["asset", "delete", "lund-bikes"])
            .contains("deleted asset lund-bikes")
    );
    let out = cli.run(&["policy", "delete", "open-data-cc-by"], None);
    assert_eq!(out.code, 1, "an offer still uses it");

    // Export, then apply of the export: no change.
    let exported = repo.path().join("exported");
    let out = cli.ok(&["export", "-o", exported.to_str().unwrap()]);
    assert!(
        out.contains("wrote 4 asset(s), 2 policy(ies) and 1 offer(s)"),
        "{out}"
    );
    let out = cli.apply(&exported, &["--check", "--prune"]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("nothing to change"), "{}", out.stdout);
    let out = cli.run(&["export", "-o", exported.to_str().unwrap()], None);
    assert_eq!(out.code, 1, "exporting over files needs --force");
    assert!(server.stop().success());
}

#[test]
fn a_city_publishes_from_files_on_sqlite() {
    a_city_publishes_from_files(&[]);
}

#[test]
fn a_city_publishes_from_files_on_postgres() {
    if let Some(url) = postgres_database("publishing from files") {
        a_city_publishes_from_files(&[("CAAP_DATABASE_URL", &url)]);
    }
}

#[test]
fn every_example_city_catalog_is_valid_and_help_and_completions_work() {
    for slug in ["malmo", "lund", "goteborg"] {
        let out = caap()
            .args(["apply", "-f", example(slug).to_str().unwrap(), "--check"])
            .args([
                "--api-url",
                "http://127.0.0.1:9",
                "--config",
                "/nonexistent.toml",
            ])
            .output()
            .unwrap();
        // Files are checked before the connector is reached: only the missing config fails.
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("nonexistent") && !err.contains("problem(s)"),
            "{slug}: {err}"
        );
    }
    for args in [
        &["apply", "--help"][..],
        &["export", "--help"],
        &["asset", "--help"],
        &["asset", "update", "--help"],
        &["policy", "--help"],
        &["offer", "list", "--help"],
    ] {
        let out = caap().args(args).output().unwrap();
        assert!(out.status.success(), "{args:?}");
        assert!(String::from_utf8_lossy(&out.stdout).contains("Usage:"));
    }
    let policy =
        String::from_utf8_lossy(&caap().args(["policy", "--help"]).output().unwrap().stdout)
            .into_owned();
    for sub in [
        "evaluate", "explain", "list", "show", "create", "update", "delete",
    ] {
        assert!(policy.contains(sub), "{sub} in {policy}");
    }
    for shell in ["bash", "zsh", "fish"] {
        let out = caap().args(["completions", shell]).output().unwrap();
        let script = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && script.contains("caap") && script.contains("apply"),
            "{shell}"
        );
    }
}

/// A secret in a data address stays a reference from the file to the data plane: the source gets the
/// key (from the provider's environment) and the OAuth2 client secret (`{ env = … }` in caap.toml), the
/// transfer works, and neither the management API, the CLI nor the database ever holds the value.
#[test]
fn a_secret_referenced_in_a_file_reaches_only_the_source() {
    use crate::transfers::{fetch, finalized_agreement, started_transfer};
    use actix_web::{HttpRequest, HttpResponse, web};
    const KEY: &str = "k3y-only-in-the-environment";
    const CLIENT_SECRET: &str = "client-s3cret-only-in-the-environment";
    let source = serve_routes(|app| {
        app.route(
            "/token",
            web::post().to(|req: HttpRequest| async move {
                // client_secret_basic: base64("caap:" + CLIENT_SECRET)
                let basic = req
                    .headers()
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    == Some("Basic Y2FhcDpjbGllbnQtczNjcmV0LW9ubHktaW4tdGhlLWVudmlyb25tZW50");
                if !basic {
                    return HttpResponse::Unauthorized().json(json!({"error": "invalid_client"}));
                }
                HttpResponse::Ok().json(json!({"access_token": "tok-1",
                                "token_type": "bearer", "expires_in": 3600}))
            }),
        )
        .route(
            "/traffic",
            web::get().to(|req: HttpRequest| async move {
                let bearer = req
                    .headers()
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    == Some("Bearer tok-1");
                if req.query_string() != format!("apikey={KEY}") || !bearer {
                    return HttpResponse::Unauthorized().finish();
                }
                HttpResponse::Ok().json(json!({"vehicles": 42}))
            }),
        );
    });
    let source_credentials = format!(
        "[{{name = \"traffic\", token_url = \"{source}/token\", client_id = \"caap\", \
         client_secret = {{ env = \"TRAFFIC_CLIENT_SECRET\" }}}}]"
    );
    let (provider_node, provider, _consumer_node, consumer) = malmo_and_lund(
        &[("source_credentials", source_credentials)],
        &[
            ("TRAFFIC_API_KEY", KEY),
            ("TRAFFIC_CLIENT_SECRET", CLIENT_SECRET),
        ],
    );

    let repo = tempfile::tempdir().unwrap();
    std::fs::write(
        repo.path().join("catalog.toml"),
        format!(
            "[[policy]]\nid = \"use\"\npolicy = {{ \"@type\" = \"Set\", permission = [{{ action = \"use\" }}] }}\n\n\
             [[asset]]\nid = \"traffic\"\ntitle = \"Traffic counts\"\n\n\
             [asset.data_address]\ntype = \"HttpApi\"\n\
             url = \"{source}/traffic?apikey=${{env:TRAFFIC_API_KEY}}\"\ncredentials = \"traffic\"\n\n\
             [[offer]]\nid = \"traffic\"\nassets = [\"traffic\"]\naccess_policy = \"use\"\ncontract_policy = \"use\"\n"
        ),
    )
    .unwrap();
    let cli = Cli {
        node: &provider_node,
        server: &provider,
    };
    // The CLI has no secret to send (TRAFFIC_API_KEY is not in its environment): it sends the reference.
    let out = cli.apply(repo.path(), &[]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert_eq!(
        cli.apply(repo.path(), &["--check"]).code,
        0,
        "re-apply is a no-op"
    );

    let agreement = finalized_agreement(&consumer, &provider.dsp, "traffic");
    let tid = started_transfer(&consumer, &agreement)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(fetch(&consumer, &tid), br#"{"vehicles":42}"#);

    // Nowhere to be seen: the management API, the CLI, the provider's files (its SQLite database).
    let shown = provider.api("GET", "/api/v1/assets/traffic", None).body;
    assert_eq!(
        shown["dataAddress"]["url"],
        format!("{source}/traffic?apikey=${{env:TRAFFIC_API_KEY}}")
    );
    let listed = provider.api("GET", "/api/v1/assets", None).body.to_string();
    let cli_out = cli.ok(&["asset", "show", "traffic", "--json"]) + &cli.ok(&["asset", "list"]);
    let exported = repo.path().join("export");
    cli.ok(&["export", "-o", exported.to_str().unwrap()]);
    let mut files = Vec::new();
    collect_files(provider_node.dir.path(), &mut files);
    collect_files(&exported, &mut files);
    for (what, text) in [
        ("the API", shown.to_string()),
        ("the API's list", listed),
        ("the CLI", cli_out),
    ]
    .into_iter()
    .chain(files.into_iter().map(|p| {
        let bytes = std::fs::read(&p).unwrap();
        (
            "a file",
            format!("{}: {}", p.display(), String::from_utf8_lossy(&bytes)),
        )
    })) {
        for secret in [KEY, CLIENT_SECRET] {
            assert!(!text.contains(secret), "{what} holds a secret: {text}");
        }
    }
}

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            collect_files(&p, out);
        } else {
            out.push(p);
        }
    }
}

/// When the provider's environment lacks the variable, the transfer's data request fails with a reason
/// that names neither the variable nor the source.
#[test]
fn an_unresolvable_reference_fails_the_access_without_saying_why() {
    use crate::transfers::{finalized_agreement, started_transfer};
    let (_provider_node, provider, _consumer_node, consumer) = malmo_and_lund(&[], &[]);
    provider.api(
        "POST",
        "/api/v1/policies",
        Some(&json!({"id": "use", "policy": {"@type": "Set", "permission": [{"action": "use"}]}})),
    );
    let r = provider.api(
        "POST",
        "/api/v1/assets",
        Some(
            &json!({"id": "traffic", "title": "Traffic", "dataAddress": {"type": "HttpApi",
            "url": "http://traffic.internal.example/t?apikey=${env:NOT_SET_ANYWHERE}"}}),
        ),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let bad = provider.api(
        "POST",
        "/api/v1/assets",
        Some(
            &json!({"id": "bad", "title": "Bad", "dataAddress": {"type": "HttpApi",
            "url": "http://traffic.internal.example/t?apikey=${file:../../etc/shadow}"}}),
        ),
    );
    assert_eq!(bad.status, 422, "{}", bad.body);
    provider.api(
        "POST",
        "/api/v1/offers",
        Some(&json!({"id": "traffic", "assets": ["traffic"], "accessPolicy": "use", "contractPolicy": "use"})),
    );
    let agreement = finalized_agreement(&consumer, &provider.dsp, "traffic");
    let tid = started_transfer(&consumer, &agreement)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = consumer.api("GET", &format!("/api/v1/transfers/{tid}/data"), None);
    let text = format!("{} {}", r.status, r.body);
    assert!(r.status >= 500, "{text}");
    for hidden in ["NOT_SET_ANYWHERE", "traffic.internal", "apikey"] {
        assert!(!text.contains(hidden), "{text}");
    }
}

/// Malmö (the provider, with `settings` and the environment `env`) and Lund, which accept each other's
/// static tokens; both running.
fn malmo_and_lund(
    settings: &[(&'static str, String)],
    env: &[(&str, &str)],
) -> (Node, Server, Node, Server) {
    use crate::transfers::city_settings;
    let start = |name: &str, mut s: Vec<(&'static str, String)>, me: &str, env: &[(&str, &str)]| {
        s.push(("participant.id", format!("\"{me}\"")));
        let node = Node::init_with(name, &s);
        let server = node.start(env);
        (node, server)
    };
    let mut ps = city_settings(
        "token-lund-presents-to-malmo-01",
        "did:web:lund.example",
        "token-malmo-presents-to-lund-01",
    );
    ps.extend_from_slice(settings);
    let (pn, p) = start("Malmö", ps, "did:web:malmo.example", env);
    let cs = city_settings(
        "token-malmo-presents-to-lund-01",
        "did:web:malmo.example",
        "token-lund-presents-to-malmo-01",
    );
    let (cn, c) = start("Lund", cs, "did:web:lund.example", &[]);
    (pn, p, cn, c)
}
