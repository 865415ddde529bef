//! Benchmark (not a test): start-to-ready time and idle RSS of `caap serve` on SQLite.
//! Run with `cargo bench -p caap-connector --bench startup`. Prints figures and ratios against
//! PRODUCT.md's targets (≤ 0.3 s, ≤ 30 MiB) and a same-run baseline: the time `caap --version`
//! takes to start and exit (process start-up cost on this machine).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout,
    reason = "benchmark harness"
)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_caap");
const RUNS: usize = 10;

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn main() {
    // Test runners list targets with `--list`; a benchmark is not a test, so list nothing.
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args(["init", "--dir"])
        .arg(dir.path())
        .args([
            "--name",
            "bench",
            "--dsp-bind",
            "127.0.0.1:0",
            "--api-bind",
            "127.0.0.1:0",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let config = dir.path().join("caap.toml");

    let mut baseline = Vec::new();
    for _ in 0..RUNS {
        let t = Instant::now();
        Command::new(BIN).arg("--version").output().unwrap();
        baseline.push(t.elapsed().as_secs_f64());
    }

    let mut ready = Vec::new();
    let mut rss = Vec::new();
    for _ in 0..RUNS {
        let t = Instant::now();
        let mut child = Command::new(BIN)
            .args(["serve", "--config"])
            .arg(&config)
            .env("CAAP_LOG_LEVEL", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        for line in stdout.lines() {
            if line.unwrap().starts_with("caap: ready") {
                break;
            }
        }
        ready.push(t.elapsed().as_secs_f64());
        std::thread::sleep(Duration::from_millis(1500));
        rss.push(rss_kib(child.id()) as f64 / 1024.0);
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        child.wait().unwrap();
    }
    let (b, r, m) = (median(baseline), median(ready), median(rss));
    println!("caap serve (SQLite, {RUNS} runs, medians)");
    println!(
        "  start to ready   {:>8.1} ms   target 300 ms  -> {:.2} of target; {:.1}x `caap --version` ({:.1} ms)",
        r * 1000.0,
        r / 0.3,
        r / b,
        b * 1000.0
    );
    println!(
        "  idle RSS         {:>8.1} MiB  target 30 MiB -> {:.2} of target (Rainbow catalog+negotiation agents: ~37 MB)",
        m,
        m / 30.0
    );
}
