//! Starting and stopping real `caap serve` processes.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

pub const BIN: &str = env!("CARGO_BIN_EXE_caap");

/// The `caap` binary under test: `CAAP_E2E_BIN` when set (a copy of the binary built for this run, safe from
/// other builds that share the target directory), else the one Cargo built with the tests.
pub fn caap() -> Command {
    let bin = std::env::var("CAAP_E2E_BIN").unwrap_or_else(|_| BIN.to_owned());
    let mut c = Command::new(bin);
    // Keep the children's environment free of the test runner's CAAP_* settings.
    for (k, _) in std::env::vars() {
        if k.starts_with("CAAP_") && k != "CAAP_SHARED_DIR" {
            c.env_remove(k);
        }
    }
    c
}

/// A connector directory made by `caap init`.
pub struct Node {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    pub admin: String,
}

impl Node {
    /// `caap init` with loopback port 0 listeners, plus extra TOML appended to the config.
    pub fn init(name: &str, extra_toml: &str) -> Node {
        Node::init_args(name, &[], extra_toml)
    }

    /// `caap init` with extra arguments (e.g. `--tls`), loopback port 0 listeners, plus extra TOML.
    fn init_args(name: &str, args: &[&str], extra_toml: &str) -> Node {
        let dir = tempfile::tempdir().unwrap();
        let out = caap()
            .arg("init")
            .args(args)
            .arg("--dir")
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
        let config = dir.path().join("caap.toml");
        let mut text = std::fs::read_to_string(&config).unwrap();
        text.push_str(extra_toml);
        std::fs::write(&config, &text).unwrap();
        let admin = text
            .lines()
            .find_map(|l| l.strip_prefix("admin_token = "))
            .unwrap()
            .trim_matches('"')
            .to_owned();
        let node = Node { dir, config, admin };
        // Most tests are about something else than identity: they use the token table (loopback
        // only). The DCP tests (`identity.rs`) switch back to `dcp`, the default.
        node.set_all(&[("dsp.auth.mode", "\"static-token\"".into())]);
        node
    }

    /// `caap init`, then sets dotted keys of the config to TOML values, e.g.
    /// `("negotiation.retry_base_ms", "20")` or `("dsp.auth.tokens", "[{token = \"…\", participant = \"…\"}]")`.
    pub fn init_with(name: &str, settings: &[(&str, String)]) -> Node {
        let node = Node::init(name, "");
        node.set_all(settings);
        node
    }

    /// `caap init --tls` (a self-signed certificate for `127.0.0.1`, HTTPS on the DSP listener), then sets
    /// dotted keys like [`Node::init_with`].
    pub fn init_tls_with(name: &str, settings: &[(&str, String)]) -> Node {
        let node = Node::init_args(name, &["--tls"], "");
        node.set_all(settings);
        node
    }

    /// The certificate `caap init --tls` wrote (to trust through another node's `tls.ca_files`).
    pub fn tls_cert(&self) -> PathBuf {
        self.dir.path().join("keys/tls.crt")
    }

    /// Sets dotted keys of the config to TOML values.
    pub fn set_all(&self, settings: &[(&str, String)]) {
        let node = self;
        let text = std::fs::read_to_string(&node.config).unwrap();
        let mut table: toml::Table = toml::from_str(&text).unwrap();
        for (key, value) in settings {
            let v: toml::Table = toml::from_str(&format!("v = {value}")).unwrap();
            let mut current = &mut table;
            let parts: Vec<&str> = key.split('.').collect();
            for part in &parts[..parts.len() - 1] {
                current = current
                    .entry(part.to_string())
                    .or_insert_with(|| toml::Value::Table(toml::Table::new()))
                    .as_table_mut()
                    .unwrap();
            }
            current.insert(parts[parts.len() - 1].to_owned(), v["v"].clone());
        }
        std::fs::write(&node.config, toml::to_string(&table).unwrap()).unwrap();
    }

    pub fn start(&self, env: &[(&str, &str)]) -> Server {
        Server::spawn(&self.config, &self.admin, env)
    }
}

/// A running `caap serve`.
pub struct Server {
    child: Child,
    pub dsp: String,
    pub api: String,
    pub admin: String,
    #[allow(dead_code, reason = "kept for debugging a failing test")]
    pub output: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Server {
    pub fn spawn(config: &Path, admin: &str, env: &[(&str, &str)]) -> Server {
        let mut cmd = caap();
        cmd.args(["serve", "--config"])
            .arg(config)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let stderr = BufReader::new(child.stderr.take().unwrap());
        let output = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        for reader in [
            Box::new(stdout) as Box<dyn BufRead + Send>,
            Box::new(stderr),
        ] {
            let tx = tx.clone();
            let output = output.clone();
            std::thread::spawn(move || {
                for line in reader.lines().map_while(Result::ok) {
                    output.lock().unwrap().push(line.clone());
                    if let Some(rest) = line.strip_prefix("caap: ready ") {
                        let _ = tx.send(rest.to_owned());
                    }
                }
            });
        }
        drop(tx);
        let ready = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(r) => r,
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "caap serve did not become ready:\n{}",
                    output.lock().unwrap().join("\n")
                );
            }
        };
        let field = |k: &str| {
            ready
                .split_whitespace()
                .find_map(|p| p.strip_prefix(k))
                .unwrap()
                .to_owned()
        };
        Server {
            dsp: format!("http://{}", field("dsp=")),
            api: format!("http://{}", field("api=")),
            admin: admin.to_owned(),
            child,
            output,
        }
    }

    /// The process id of the `caap serve` child (to read its memory from `/proc`).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM, then wait for a clean exit.
    pub fn stop(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        for _ in 0..300 {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        panic!("caap serve did not stop within 15 s of SIGTERM");
    }

    pub fn api(&self, method: &str, path: &str, body: Option<&Value>) -> Response {
        request(
            method,
            &format!("{}{path}", self.api),
            Some(&format!("Bearer {}", self.admin)),
            body.map(|b| b.to_string()).as_deref(),
            "application/json",
        )
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct Response {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

/// A blocking HTTP request (the tests drive processes, so no async runtime is needed here).
pub fn request(
    method: &str,
    url: &str,
    auth: Option<&str>,
    body: Option<&str>,
    content_type: &str,
) -> Response {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = reqwest::Client::new();
        let mut req = client.request(method.parse().unwrap(), url);
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        if let Some(b) = body {
            req = req.header("content-type", content_type).body(b.to_owned());
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let text = res.text().await.unwrap();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Response {
            status,
            headers,
            body,
        }
    })
}

/// A fresh PostgreSQL database on `CAAP_TEST_POSTGRES_URL`'s server, as a URL; `None` (after printing
/// SKIPPED for `what`) when no server is configured, unless `CAAP_TEST_REQUIRE_POSTGRES=1`.
pub fn postgres_database(what: &str) -> Option<String> {
    let Ok(admin) = std::env::var("CAAP_TEST_POSTGRES_URL") else {
        assert_ne!(
            std::env::var("CAAP_TEST_REQUIRE_POSTGRES").as_deref(),
            Ok("1"),
            "CAAP_TEST_POSTGRES_URL is required"
        );
        println!("SKIPPED: {what} on PostgreSQL (set CAAP_TEST_POSTGRES_URL)");
        return None;
    };
    let name = format!("caap_e2e_{}", uuid::Uuid::new_v4().simple());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        use sea_orm::ConnectionTrait;
        let db = sea_orm::Database::connect(admin.as_str()).await.unwrap();
        db.execute_unprepared(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap();
        db.close().await.unwrap();
    });
    Some(format!("{}/{name}", admin.rsplit_once('/').unwrap().0))
}

/// Publishes the demo data of one sample city through the management API.
pub fn publish_sample(server: &Server, city: usize) -> Vec<String> {
    let city = &caap_catalog::samples::CITIES[city];
    let assets = caap_catalog::samples::assets(city, "http://127.0.0.1:9");
    for (id, policy) in caap_catalog::samples::policies() {
        let r = server.api(
            "POST",
            "/api/v1/policies",
            Some(&json!({"id": id, "policy": policy})),
        );
        assert_eq!(r.status, 201, "{}", r.body);
    }
    for a in &assets {
        let r = server.api(
            "POST",
            "/api/v1/assets",
            Some(&serde_json::to_value(a).unwrap()),
        );
        assert_eq!(r.status, 201, "{}", r.body);
    }
    for o in caap_catalog::samples::offers(city, &assets) {
        let r = server.api(
            "POST",
            "/api/v1/offers",
            Some(&serde_json::to_value(&o).unwrap()),
        );
        assert_eq!(r.status, 201, "{}", r.body);
    }
    assets.into_iter().map(|a| a.id).collect()
}

pub const TOKEN: &str = "e2e-token-of-the-consumer-0001";

pub fn token_table(participant: &str) -> String {
    format!("\n[[dsp.auth.tokens]]\ntoken = \"{TOKEN}\"\nparticipant = \"{participant}\"\n")
}

pub fn dsp_catalog_request(server: &Server, query: &str, body: &Value) -> Response {
    request(
        "POST",
        &format!("{}/dsp/catalog/request{query}", server.dsp),
        Some(&format!("Bearer {TOKEN}")),
        Some(&body.to_string()),
        "application/json",
    )
}

/// Serves `routes` (a stand-in for some outside service) on a loopback port, in a thread of its own;
/// its root URL.
pub fn serve_routes<F>(routes: F) -> String
where
    F: Fn(&mut actix_web::web::ServiceConfig) + Clone + Send + 'static,
{
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let server =
                actix_web::HttpServer::new(move || actix_web::App::new().configure(routes.clone()))
                    .workers(1)
                    .bind("127.0.0.1:0")
                    .unwrap();
            tx.send(server.addrs()[0]).unwrap();
            server.run().await.unwrap();
        });
    });
    format!(
        "http://{}",
        rx.recv_timeout(std::time::Duration::from_secs(10)).unwrap()
    )
}

/// A TCP relay in front of a real connector: while it hangs, it accepts connections and never answers (a
/// message the sender is sending stays in flight); once told to forward, it passes connections through to
/// `target` (`host:port`).
pub struct Relay {
    /// Its root URL.
    pub base: String,
    hang: std::sync::Arc<std::sync::atomic::AtomicBool>,
    accepted: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Relay {
    /// A relay to `target` that starts out hanging.
    pub fn hanging(target: &str) -> Relay {
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let hang = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (h, a, target) = (hang.clone(), accepted.clone(), target.to_owned());
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                a.fetch_add(1, Ordering::SeqCst);
                if h.load(Ordering::SeqCst) {
                    held.push(conn);
                    continue;
                }
                held.clear();
                let Ok(upstream) = std::net::TcpStream::connect(&target) else {
                    continue;
                };
                for (mut from, mut to) in [
                    (conn.try_clone().unwrap(), upstream.try_clone().unwrap()),
                    (upstream, conn),
                ] {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(std::net::Shutdown::Write);
                    });
                }
            }
        });
        Relay {
            base,
            hang,
            accepted,
        }
    }

    /// How many connections it has accepted.
    pub fn accepted(&self) -> usize {
        self.accepted.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// From now on, passes new connections through.
    pub fn forward(&self) {
        self.hang.store(false, std::sync::atomic::Ordering::SeqCst);
    }
}
