//! What the benchmarks share: a connector made with `caap init` and run as a `caap serve` process, a load
//! of concurrent clients with its latencies, percentiles and medians, and a process's RSS.
#![allow(dead_code, reason = "each benchmark uses a part of the harness")]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The `caap` binary: this build's, or `CAAP_BENCH_BIN` (e.g. a release build measured by a benchmark built
/// without optimizations).
pub fn bin() -> String {
    std::env::var("CAAP_BENCH_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_caap").to_owned())
}

/// A running `caap serve`, killed when dropped.
pub struct Proc {
    /// The process.
    pub child: Child,
    /// `http://host:port` of the DSP listener.
    pub dsp: String,
    /// `http://host:port` of the management API.
    pub api: String,
    /// The admin token of the management API.
    pub admin: String,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `caap init` in `dir` (both listeners on free ports), then `settings` (dotted keys, TOML values) written
/// into its `caap.toml`. Returns the config's path and the admin token.
pub fn init(dir: &Path, name: &str, settings: &[(&str, &str)]) -> (PathBuf, String) {
    let out = Command::new(bin())
        .args(["init", "--dir"])
        .arg(dir)
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
    assert!(out.status.success(), "{out:?}");
    let config = dir.join("caap.toml");
    let mut table: toml::Table =
        toml::from_str(&std::fs::read_to_string(&config).unwrap()).unwrap();
    for (key, value) in settings {
        let v: toml::Table = toml::from_str(&format!("v = {value}")).unwrap();
        let parts: Vec<&str> = key.split('.').collect();
        let mut current = &mut table;
        for p in &parts[..parts.len() - 1] {
            current = current
                .entry(p.to_string())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()))
                .as_table_mut()
                .unwrap();
        }
        current.insert(parts[parts.len() - 1].to_owned(), v["v"].clone());
    }
    let admin = table["api"]["admin_token"].as_str().unwrap().to_owned();
    std::fs::write(&config, toml::to_string(&table).unwrap()).unwrap();
    (config, admin)
}

/// Starts `caap serve --config <config>` (log level warn, `env` added) and waits for its `caap: ready` line.
pub fn start(config: &Path, admin: &str, env: &[(&str, &str)]) -> Proc {
    let mut child = Command::new(bin())
        .args(["serve", "--config"])
        .arg(config)
        .env("CAAP_LOG_LEVEL", "warn")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let ready = wait_ready(&mut child);
    let field = |k: &str| {
        ready
            .split_whitespace()
            .find_map(|p| p.strip_prefix(k))
            .unwrap()
            .to_owned()
    };
    Proc {
        dsp: format!("http://{}", field("dsp=")),
        api: format!("http://{}", field("api=")),
        admin: admin.to_owned(),
        child,
    }
}

/// Reads a child's stdout up to its `caap: ready` line; the rest of that line (`dsp=… api=…`).
pub fn wait_ready(child: &mut Child) -> String {
    let stdout = BufReader::new(child.stdout.take().unwrap());
    for line in stdout.lines() {
        if let Some(rest) = line.unwrap().strip_prefix("caap: ready") {
            return rest.trim().to_owned();
        }
    }
    panic!("caap serve ended before it was ready")
}

/// The `p` quantile (0..=1) of sorted values.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// The median of some values.
pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    percentile(&v, 0.5)
}

/// A process's resident set in KiB (`field` of /proc/<pid>/status, e.g. `VmRSS`, `RssFile`).
pub fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// What a load run measured.
pub struct Load {
    /// Every request's latency in ms, sorted.
    pub latencies: Vec<f64>,
    /// Requests per second over the run.
    pub rate: f64,
}

impl Load {
    /// The `p` quantile of the latencies, in ms.
    pub fn p(&self, p: f64) -> f64 {
        percentile(&self.latencies, p)
    }
}

/// `clients` concurrent clients send `request(client, n)` (n counting up per client, starting at the
/// client's number) for `secs` seconds, each waiting for its answer (which must be a success) before the next.
pub async fn hammer<F>(client: &reqwest::Client, clients: usize, secs: f64, request: F) -> Load
where
    F: Fn(&reqwest::Client, usize) -> reqwest::RequestBuilder + Clone + Send + 'static,
{
    let started = Instant::now();
    let until = started + Duration::from_secs_f64(secs);
    let mut tasks = Vec::new();
    for c in 0..clients {
        let (client, request) = (client.clone(), request.clone());
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::new();
            let mut n = c;
            while Instant::now() < until {
                let t = Instant::now();
                let res = request(&client, n).send().await.unwrap();
                let status = res.status();
                let body = res.bytes().await.unwrap();
                assert!(
                    status.is_success(),
                    "{status}: {}",
                    String::from_utf8_lossy(&body)
                );
                out.push(t.elapsed().as_secs_f64() * 1000.0);
                n += clients;
            }
            out
        }));
    }
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await.unwrap());
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort_by(f64::total_cmp);
    Load {
        rate: latencies.len() as f64 / elapsed,
        latencies,
    }
}
