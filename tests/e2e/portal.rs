//! The citizen portal end to end: a real OIDC provider (`tests/oidc/provider.mjs`, started here with the
//! portal's client), real headless Chromium (`tests/portal/walk.mjs`: playwright-core with
//! `/usr/bin/chromium`, axe-core), and `caap serve` with `[portal] enabled`.
//!
//! Needs node, `/usr/bin/chromium`, and `npm ci` in `tests/oidc` and `tests/portal` (scripts/test.sh does
//! all of it); skipped without them unless `CI` or `CAAP_REQUIRE_SHARED=1`.
//!
//! The browser walk runs twice: against `caap serve` and its consent service (a request made through the
//! management API; Anna grants, downloads the receipt and withdraws in the browser, Bo sees nothing of hers),
//! and against the portal's app with an in-memory consent service (`tests/support/portal_backend.rs`) where
//! both citizens have requests and a withdrawal has a notice. A third walk logs citizens in at `caap demo`'s
//! own development-only provider (`portal::demo_idp`), its login page checked with axe-core in both
//! languages. With a second connector (data flowing to a
//! recipient, its acknowledgement of the withdrawal in the portal): `portal_flow`.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use caap_connector::portal::backend::{ConsentStanding, PortalBackend};
use caap_connector::portal::{Portal, PortalParts};

use crate::support::*;

mod memory {
    use caap_connector::portal::backend::*;
    include!("../support/portal_backend.rs");
}

const CLIENT_SECRET: &str = "portal-e2e-secret-0123456789";
const PNR_SCOPE: &str = "https://id.oidc.se/scope/naturalPersonNumber";
const PNR_CLAIM: &str = "https://id.oidc.se/claim/personalIdentityNumber";

pub(crate) fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Whether node, Chromium and both npm folders are there; prints SKIPPED (or fails when required).
pub(crate) fn tools_present(what: &str) -> bool {
    let repo = repo();
    let missing: Vec<&str> = [
        (
            Command::new("node").arg("--version").output().is_ok(),
            "node",
        ),
        (Path::new("/usr/bin/chromium").exists(), "/usr/bin/chromium"),
        (
            repo.join("tests/oidc/node_modules/oidc-provider").exists(),
            "npm ci --prefix tests/oidc",
        ),
        (
            repo.join("tests/portal/node_modules/playwright-core")
                .exists(),
            "npm ci --prefix tests/portal",
        ),
    ]
    .into_iter()
    .filter_map(|(ok, name)| (!ok).then_some(name))
    .collect();
    if missing.is_empty() {
        return true;
    }
    let required = std::env::var_os("CI").is_some()
        || std::env::var("CAAP_REQUIRE_SHARED").as_deref() == Ok("1");
    assert!(
        !required,
        "{what} needs {} (scripts/test.sh installs them)",
        missing.join(", ")
    );
    println!("SKIPPED: {what} (missing {})", missing.join(", "));
    false
}

/// The OIDC provider of tests/oidc on a free loopback port, with the portal's client.
pub(crate) struct Provider {
    child: Child,
    pub(crate) issuer: String,
}

impl Provider {
    pub(crate) fn start() -> Provider {
        let mut child = Command::new("node")
            .arg(repo().join("tests/oidc/provider.mjs"))
            .arg("0")
            .env("OIDC_PORTAL_CLIENT_SECRET", CLIENT_SECRET)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in stdout.lines().map_while(Result::ok) {
                if let Some(issuer) = line.strip_prefix("oidc-provider ready issuer=") {
                    let _ = tx.send(issuer.to_owned());
                }
            }
        });
        let issuer = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("the OIDC provider did not start");
        Provider { child, issuer }
    }

    fn portal_oidc(&self) -> caap_connector::config::PortalOidcConfig {
        caap_connector::config::PortalOidcConfig {
            issuer: self.issuer.clone(),
            client_id: "caap-portal".into(),
            client_secret: Some(caap_connector::config::SecretValue::Value(
                caap_identity::Secret::new(CLIENT_SECRET),
            )),
            subject_claim: PNR_CLAIM.into(),
            scopes: vec!["openid".into(), PNR_SCOPE.into()],
            leeway_secs: 60,
        }
    }
}

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Where the browser tests' screenshots go: `$CARGO_TARGET_DIR/portal-screenshots/<test>/`.
pub(crate) fn screenshot_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .join("portal-screenshots")
}

/// The portal's app on `listener` (loopback) in its own thread, logging in at `oidc`, over `backend`.
fn serve_portal(
    listener: std::net::TcpListener,
    oidc: caap_connector::config::PortalOidcConfig,
    backend: Arc<memory::MemoryBackend>,
) -> (String, actix_web::dev::ServerHandle) {
    let bound = listener.local_addr().unwrap();
    let config = caap_connector::config::PortalConfig {
        enabled: true,
        bind: bound,
        oidc: Some(oidc),
        ..Default::default()
    };
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let portal = Arc::new(
                Portal::new(PortalParts {
                    config,
                    city: "Malmö stad".into(),
                    bound,
                    data_dir: ".".into(),
                    backend: Some(backend),
                    http: reqwest::Client::new().into(),
                    clock: Arc::new(caap_connector::clock::SystemClock),
                })
                .unwrap(),
            );
            let server =
                actix_web::HttpServer::new(move || caap_connector::portal::app(portal.clone()))
                    .workers(1)
                    .disable_signals()
                    .listen(listener)
                    .unwrap()
                    .run();
            tx.send(server.handle()).unwrap();
            let _ = server.await;
        });
    });
    let handle = rx.recv_timeout(Duration::from_secs(30)).unwrap();
    (format!("http://{bound}"), handle)
}

#[test]
fn citizens_log_in_grant_and_withdraw_in_a_real_browser_in_both_languages() {
    if !tools_present("the portal in a real browser") {
        return;
    }
    let provider = Provider::start();
    let backend = Arc::new(memory::MemoryBackend::new());
    let (anna, bo) = ("198507099805", "199001011234");
    backend.request(anna, "rec-anna-parking", "Parkeringstillstånd", "Lund stad");
    backend.request(bo, "rec-bo-waste", "Avfallshämtning", "Sysav");
    let (url, server) = serve_portal(loopback(), provider.portal_oidc(), backend.clone());
    let shots = screenshot_dir().join("in-memory-backend");
    walk(
        &url,
        &[
            ("CITIZEN_A", anna),
            ("CITIZEN_B", bo),
            ("A_REQUEST", "Parkeringstillstånd"),
            ("B_REQUEST", "Avfallshämtning"),
        ],
        &shots,
        None,
    );
    // What the browser did is what the consent service recorded, for A only, with the portal session.
    let a = backend.citizen(&backend.pseudonym(anna));
    let standings: Vec<_> = a.events.iter().map(|e| e.standing).collect();
    assert_eq!(
        standings,
        [ConsentStanding::Withdrawn, ConsentStanding::Given]
    );
    assert!(a.events.iter().all(|e| {
        e.method == "portal"
            && e.session
                .as_deref()
                .is_some_and(|s| s.starts_with("portal-session:"))
    }));
    assert!(backend.citizen(&backend.pseudonym(bo)).events.is_empty());
    actix_web::rt::System::new().block_on(server.stop(true));
}

fn loopback() -> std::net::TcpListener {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap()
}

/// `caap demo`'s own identity provider, in its own thread, for the portal at `redirect_uri`: its
/// `[portal.oidc]`, and a sender that stops it.
fn demo_provider(
    redirect_uri: String,
    citizens: &[(&str, &str)],
) -> (
    caap_connector::config::PortalOidcConfig,
    tokio::sync::oneshot::Sender<()>,
) {
    use caap_connector::portal::demo_idp::{DemoCitizen, DemoIdp, DemoIdpParts};
    let citizens: Vec<DemoCitizen> = citizens
        .iter()
        .map(|(name, id)| DemoCitizen {
            name: (*name).into(),
            identifier: (*id).into(),
        })
        .collect();
    let (tx, rx) = std::sync::mpsc::channel();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let idp = DemoIdp::start(DemoIdpParts {
                client_id: "caap-demo-portal".into(),
                redirect_uri,
                subject_claim: PNR_CLAIM.into(),
                citizens,
                clock: Arc::new(caap_connector::clock::SystemClock),
            })
            .unwrap();
            tx.send(idp.portal_oidc()).unwrap();
            let _ = stopped.await;
            idp.stop().await;
        });
    });
    (rx.recv_timeout(Duration::from_secs(30)).unwrap(), stop)
}

#[test]
fn the_demos_own_provider_logs_citizens_into_the_portal_in_a_real_browser() {
    if !tools_present("the demo's identity provider in a real browser") {
        return;
    }
    let (cleo, dag) = ("19990101-0003", "19990101-0004");
    let listener = loopback();
    let redirect = format!("http://{}/callback", listener.local_addr().unwrap());
    let (oidc, stop) = demo_provider(redirect, &[("Cleo", cleo), ("Dag", dag)]);
    let backend = Arc::new(memory::MemoryBackend::new());
    backend.request(cleo, "rec-cleo-parking", "Parkeringstillstånd", "Lund stad");
    backend.request(dag, "rec-dag-waste", "Avfallshämtning", "Sysav");
    let (url, server) = serve_portal(listener, oidc, backend);
    walk(
        &url,
        &[
            ("PHASE", "demo-login"),
            ("CITIZEN_A", cleo),
            ("CITIZEN_B", dag),
            ("A_REQUEST", "Parkeringstillstånd"),
            ("B_REQUEST", "Avfallshämtning"),
        ],
        &screenshot_dir().join("demo-provider"),
        None,
    );
    actix_web::rt::System::new().block_on(server.stop(true));
    let _ = stop.send(());
}

#[test]
fn caap_serve_starts_the_portal_on_its_own_listener_and_sends_citizens_to_the_provider() {
    if !tools_present("the portal's login against the real provider") {
        return;
    }
    let provider = Provider::start();
    let (_node, server, portal) = serve_with_portal(&provider);
    let home = request("GET", &format!("{portal}/"), None, None, "");
    assert_eq!(home.status, 200);
    let csp = home.headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("default-src 'none'") && csp.contains(&provider.issuer),
        "{csp}"
    );
    assert!(home.body.as_str().unwrap().contains("Malmö stad"));
    // The login goes to the provider: authorization code, PKCE S256, state, nonce, our redirect URI.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let res = rt.block_on(async {
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
            .get(format!("{portal}/login"))
            .send()
            .await
            .unwrap()
    });
    assert_eq!(res.status(), 303);
    let location = url::Url::parse(res.headers()["location"].to_str().unwrap()).unwrap();
    assert!(
        location.as_str().starts_with(&provider.issuer),
        "{location}"
    );
    let q: std::collections::HashMap<_, _> = location.query_pairs().into_owned().collect();
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["client_id"], "caap-portal");
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["redirect_uri"], format!("{portal}/callback"));
    assert!(q["scope"].split(' ').any(|s| s == PNR_SCOPE));
    assert!(q.contains_key("state") && q.contains_key("nonce"));
    let cookie = res.headers()["set-cookie"].to_str().unwrap();
    assert!(
        cookie.starts_with(&format!("caap_portal_login={};", q["state"])),
        "{cookie}"
    );
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"));
    server.stop();
}

/// `caap serve` with `[portal]` enabled against `provider`; answers the server and the portal's URL.
fn serve_with_portal(provider: &Provider) -> (Node, Server, String) {
    let node = Node::init("Malmö stad", "");
    node.set_all(&portal_settings(provider));
    let server = node.start(&[]);
    let portal = portal_url(&server);
    (node, server, portal)
}

/// `[portal]` enabled on a free port, logging in at `provider`.
pub(crate) fn portal_settings(provider: &Provider) -> Vec<(&'static str, String)> {
    vec![
        ("portal.enabled", "true".into()),
        ("portal.bind", "\"127.0.0.1:0\"".into()),
        ("portal.oidc.issuer", format!("\"{}\"", provider.issuer)),
        ("portal.oidc.client_id", "\"caap-portal\"".into()),
        ("portal.oidc.client_secret", format!("\"{CLIENT_SECRET}\"")),
        ("portal.oidc.subject_claim", format!("\"{PNR_CLAIM}\"")),
        (
            "portal.oidc.scopes",
            format!("[\"openid\", \"{PNR_SCOPE}\"]"),
        ),
    ]
}

/// The portal's URL from the ready line of `server`.
pub(crate) fn portal_url(server: &Server) -> String {
    let ready = server
        .output
        .lock()
        .unwrap()
        .iter()
        .find_map(|l| l.strip_prefix("caap: ready ").map(str::to_owned))
        .unwrap();
    let portal = ready
        .split_whitespace()
        .find_map(|p| p.strip_prefix("portal="))
        .expect("the ready line names the portal's address");
    format!("http://{portal}")
}

/// Runs the browser walk; panics with its output when it fails, and with the log of `server` (the
/// `caap serve` process behind the portal) when there is one.
pub(crate) fn walk(portal: &str, env: &[(&str, &str)], shots: &Path, server: Option<&Server>) {
    let _ = std::fs::remove_dir_all(shots);
    let mut cmd = Command::new("node");
    cmd.arg(repo().join("tests/portal/walk.mjs"))
        .env("PORTAL_URL", portal)
        .env("SCREENSHOT_DIR", shots);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    println!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if !out.status.success() {
        if let Some(server) = server {
            let log = server.output.lock().unwrap();
            let tail = log.len().saturating_sub(80);
            println!(
                "the last lines of the portal's process:\n{}",
                log[tail..].join("\n")
            );
        }
        panic!("the browser walk failed");
    }
    println!("screenshots in {}", shots.display());
}

#[test]
fn caap_serve_shows_a_citizen_the_consent_services_request_in_a_real_browser() {
    if !tools_present("the portal of caap serve in a real browser") {
        return;
    }
    let provider = Provider::start();
    let (_node, server, portal) = serve_with_portal(&provider);
    crate::consent::publish(&server);
    let (anna, bo) = ("19990101-0001", "19990101-0002");
    let record = crate::consent::request_consent(&server, anna);
    // No data has reached a recipient, so a withdrawal sends no notice; Bo has no request.
    walk(
        &portal,
        &[
            ("CITIZEN_A", anna),
            ("CITIZEN_B", bo),
            ("A_REQUEST", "Resident parking permits (synthetic)"),
            ("B_REQUEST", ""),
            ("EXPECT_NOTICE", "0"),
        ],
        &screenshot_dir().join("caap-serve"),
        Some(&server),
    );
    // The consent service holds what Anna did in the browser.
    let r = server.api("GET", &format!("/api/v1/consents/{record}"), None);
    assert_eq!(r.status, 200, "{}", r.body);
    let text = r.body.to_string();
    assert!(
        text.contains("Withdrawn") || text.contains("withdrawn"),
        "{text}"
    );
    server.stop();
}
