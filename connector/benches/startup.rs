//! Benchmark (not a test): start-to-ready time and idle RSS of `caap serve` on SQLite, the embedded default.
//! Run with `cargo bench -p caap-connector --bench startup`. Prints figures and ratios against issue 16's
//! targets (≤ 50 ms, ≤ 20 MiB) and a same-run baseline: the time `caap --version` takes to start and exit
//! (process start-up cost on this machine).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout,
    reason = "benchmark harness"
)]

mod harness;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use harness::{bin, init, median, status_kib, wait_ready};

const RUNS: usize = 10;

fn main() {
    // Test runners list targets with `--list`; a benchmark is not a test, so list nothing.
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (config, _) = init(dir.path(), "bench", &[]);

    let mut baseline = Vec::new();
    for _ in 0..RUNS {
        let t = Instant::now();
        Command::new(bin()).arg("--version").output().unwrap();
        baseline.push(t.elapsed().as_secs_f64());
    }

    let (mut ready, mut rss, mut file) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..RUNS {
        let t = Instant::now();
        let mut child = Command::new(bin())
            .args(["serve", "--config"])
            .arg(&config)
            .env("CAAP_LOG_LEVEL", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        wait_ready(&mut child);
        ready.push(t.elapsed().as_secs_f64());
        std::thread::sleep(Duration::from_millis(1500));
        rss.push(status_kib(child.id(), "VmRSS") as f64 / 1024.0);
        file.push(status_kib(child.id(), "RssFile") as f64 / 1024.0);
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        child.wait().unwrap();
    }
    let (b, r, m, f) = (median(baseline), median(ready), median(rss), median(file));
    println!("caap serve (embedded default: SQLite, {RUNS} runs, medians)");
    println!(
        "  start to ready   {:>8.1} ms   target 50 ms  -> {:.2} of target; {:.1}x `caap --version` ({:.1} ms)",
        r * 1000.0,
        r / 0.05,
        r / b,
        b * 1000.0
    );
    println!(
        "  idle RSS         {:>8.1} MiB  target 20 MiB -> {:.2} of target ({f:.1} MiB of it file-backed; Rainbow catalog+negotiation agents: ~37 MB)",
        m,
        m / 20.0
    );
}
