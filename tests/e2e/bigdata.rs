//! 1 GiB between two real connectors over HTTPS, in flat memory: a pull streamed through the consumer's API
//! and a push into the consumer's receiver. The provider's dataset is a 1 GiB file in its files directory
//! (the simulator's deterministic byte pattern, so every byte is checked on arrival without keeping any).
//! Both `caap` processes' peak RSS is sampled from `/proc` while the data flows.
//!
//! The source is a file rather than the provider's own simulator over HTTPS: that would need the provider
//! to trust its own certificate besides the consumer's, and two `caap init --tls` certificates share one
//! subject name, so openssl picks the wrong one of the two and the connection fails.

use std::io::{Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::{Node, Server};

/// The size the issue asks for.
const SIZE: u64 = 1 << 30;
/// Generous bound on either process's peak RSS while 1 GiB flows through it.
const RSS_BOUND_MIB: u64 = 200;
const MIB: f64 = 1024.0 * 1024.0;

/// The simulator's deterministic pattern: byte `i` is `block[i % block.len()]`.
fn pattern() -> Vec<u8> {
    caap_connector::sim::data::byte_block(caap_connector::sim::BLOCK)
}

/// Checks streamed bytes against the pattern without keeping them.
struct Verifier {
    block: Vec<u8>,
    offset: u64,
}

impl Verifier {
    fn new() -> Verifier {
        Verifier {
            block: pattern(),
            offset: 0,
        }
    }

    fn feed(&mut self, mut chunk: &[u8]) {
        while !chunk.is_empty() {
            let at = (self.offset % self.block.len() as u64) as usize;
            let n = chunk.len().min(self.block.len() - at);
            assert!(
                chunk[..n] == self.block[at..at + n],
                "the bytes differ from the source within {n} bytes of offset {}",
                self.offset
            );
            self.offset += n as u64;
            chunk = &chunk[n..];
        }
    }
}

/// A `/proc/<pid>/status` field in KiB.
fn status_kib(pid: u32, field: &str) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Polls the resident memory of processes every 10 ms until stopped; [`RssSampler::stop`] gives each one's
/// peak in MiB (the larger of the sampled `VmRSS` and the kernel's `VmHWM`, which also catches spikes between
/// samples, but counts from the process's start).
struct RssSampler {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<Vec<u64>>,
    pids: Vec<u32>,
}

impl RssSampler {
    fn start(pids: &[u32]) -> RssSampler {
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = stop.clone();
            let pids = pids.to_vec();
            std::thread::spawn(move || {
                let mut peak = vec![0u64; pids.len()];
                while !stop.load(Ordering::Relaxed) {
                    for (p, pid) in peak.iter_mut().zip(&pids) {
                        *p = (*p).max(status_kib(*pid, "VmRSS:"));
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
                peak
            })
        };
        RssSampler {
            stop,
            thread,
            pids: pids.to_vec(),
        }
    }

    /// Peak RSS of each process in MiB: (sampled VmRSS, VmHWM).
    fn stop(self) -> Vec<(u64, u64)> {
        self.stop.store(true, Ordering::Relaxed);
        let sampled = self.thread.join().unwrap();
        sampled
            .into_iter()
            .zip(&self.pids)
            .map(|(s, pid)| (s / 1024, status_kib(*pid, "VmHWM:") / 1024))
            .collect()
    }
}

fn assert_flat(what: &str, peaks: &[(u64, u64)]) {
    for ((sampled, hwm), who) in peaks.iter().zip(["provider", "consumer"]) {
        println!("{what}: {who} peak RSS {sampled} MiB sampled, VmHWM {hwm} MiB");
        assert!(
            *sampled < RSS_BOUND_MIB && *hwm < RSS_BOUND_MIB,
            "{what}: the {who}'s memory grew to {sampled} MiB sampled / {hwm} MiB VmHWM \
             (bound {RSS_BOUND_MIB} MiB): the data is not streamed"
        );
    }
}

/// Two connectors over HTTPS (each trusts the other's certificate) with a finalized agreement for one
/// dataset: a 1 GiB file in the provider's files directory.
struct Pair {
    /// Kept for its directory.
    _provider_node: Node,
    consumer_node: Node,
    provider: Server,
    consumer: Server,
    agreement: String,
}

fn https(server: &Server) -> String {
    server.dsp.replacen("http://", "https://", 1)
}

fn pair() -> Pair {
    let settings = |id: &str, token: &str, from: &str, outbound: &str| {
        vec![
            ("participant.id", format!("\"{id}\"")),
            (
                "dsp.auth.tokens",
                format!("[{{token = \"{token}\", participant = \"{from}\"}}]"),
            ),
            ("dsp.auth.outbound_token", format!("\"{outbound}\"")),
            ("negotiation.retry_base_ms", "20".into()),
            ("log.level", "\"warn\"".into()),
        ]
    };
    let provider_node = Node::init_tls_with(
        "Malmö",
        &settings(
            "did:web:malmo.example",
            "token-lund-presents-to-malmo-01",
            "did:web:lund.example",
            "token-malmo-presents-to-lund-01",
        ),
    );
    let consumer_node = Node::init_tls_with(
        "Lund",
        &settings(
            "did:web:lund.example",
            "token-malmo-presents-to-lund-01",
            "did:web:malmo.example",
            "token-lund-presents-to-malmo-01",
        ),
    );
    let trust = |node: &Node, other: &Node| {
        node.set_all(&[(
            "tls.ca_files",
            format!("[\"{}\"]", other.tls_cert().display()),
        )]);
    };
    trust(&provider_node, &consumer_node);
    trust(&consumer_node, &provider_node);
    // Written block by block: the test does not hold the file either.
    let block = pattern();
    let file = std::fs::File::create(provider_node.dir.path().join("files/big.bin")).unwrap();
    let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
    for _ in 0..SIZE / block.len() as u64 {
        out.write_all(&block).unwrap();
    }
    out.flush().unwrap();
    let provider = provider_node.start(&[]);
    let consumer = consumer_node.start(&[]);

    let mut asset = serde_json::to_value(
        caap_catalog::samples::assets(&caap_catalog::samples::CITIES[0], "http://127.0.0.1:9")
            .into_iter()
            .next()
            .unwrap(),
    )
    .unwrap();
    asset["id"] = json!("one-gib");
    asset["dataAddress"] =
        json!({"type": "File", "path": "big.bin", "mediaType": "application/octet-stream"});
    let r = provider.api("POST", "/api/v1/assets", Some(&asset));
    assert_eq!(r.status, 201, "{}", r.body);
    let r = provider.api(
        "POST",
        "/api/v1/policies",
        Some(&json!({"id": "use", "policy": {"@type": "Set", "permission": [{"action": "use"}]}})),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let r = provider.api(
        "POST",
        "/api/v1/offers",
        Some(
            &json!({"id": "one-gib", "assets": ["one-gib"], "accessPolicy": "use", "contractPolicy": "use"}),
        ),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let r = consumer.api(
        "POST",
        "/api/v1/negotiations",
        Some(&json!({"counterPartyAddress": https(&provider), "offerId": "one-gib"})),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let nid = r.body["id"].as_str().unwrap().to_owned();
    let n = wait_for(
        &consumer,
        &format!("/api/v1/negotiations/{nid}"),
        "FINALIZED",
        20,
    );
    let agreement = n["agreementId"].as_str().unwrap().to_owned();
    Pair {
        _provider_node: provider_node,
        consumer_node,
        provider,
        consumer,
        agreement,
    }
}

/// Polls a negotiation or transfer until it is in `state`; fails with the last answer on TERMINATED or after
/// `secs`.
fn wait_for(server: &Server, path: &str, state: &str, secs: u64) -> Value {
    let start = Instant::now();
    loop {
        let body = server.api("GET", path, None).body;
        if body["state"] == state {
            return body;
        }
        assert!(
            body["state"] != "TERMINATED" && start.elapsed() < Duration::from_secs(secs),
            "waiting {secs} s for {path} to be {state}: {body:#}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn transfer(id: &str) -> String {
    format!("/api/v1/transfers/{id}")
}

/// 1 GiB pulled: the provider's data plane streams the file over HTTPS to the consumer, whose API streams it
/// to the test; every byte is checked on the way.
#[test]
fn a_1_gib_pull_over_https_in_flat_memory() {
    let p = pair();
    let r = p.consumer.api(
        "POST",
        "/api/v1/transfers",
        Some(&json!({"agreementId": p.agreement})),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let tid = r.body["id"].as_str().unwrap().to_owned();
    let t = wait_for(&p.consumer, &transfer(&tid), "STARTED", 20);
    let endpoint = t["dataAddress"]["endpoint"].as_str().unwrap_or_default();
    assert!(
        endpoint.starts_with("https://"),
        "the data plane is HTTPS: {t}"
    );

    let sampler = RssSampler::start(&[p.provider.pid(), p.consumer.pid()]);
    let started = Instant::now();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let received = rt.block_on(async {
        let mut res = reqwest::Client::new()
            .get(format!("{}/api/v1/transfers/{tid}/data", p.consumer.api))
            .bearer_auth(&p.consumer.admin)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let mut verifier = Verifier::new();
        while let Some(chunk) = res.chunk().await.unwrap() {
            verifier.feed(&chunk);
        }
        verifier.offset
    });
    let elapsed = started.elapsed().as_secs_f64();
    let peaks = sampler.stop();
    println!(
        "1 GiB pull over HTTPS: {received} bytes in {elapsed:.1} s ({:.0} MiB/s)",
        received as f64 / MIB / elapsed
    );
    assert_eq!(received, SIZE, "every byte arrives");
    assert_flat("pull", &peaks);

    let r = p
        .consumer
        .api("POST", &format!("/api/v1/transfers/{tid}/complete"), None);
    assert_eq!(r.status, 200, "{}", r.body);
    let provider_pid = t["providerPid"].as_str().unwrap().to_owned();
    wait_for(&p.provider, &transfer(&provider_pid), "COMPLETED", 20);
}

/// 1 GiB pushed: the provider streams a 1 GiB file from its files directory to the consumer's receiver over
/// HTTPS and completes; both sides count 1 GiB and the received file holds the same bytes.
#[test]
fn a_1_gib_push_over_https_in_flat_memory() {
    let p = pair();
    let sampler = RssSampler::start(&[p.provider.pid(), p.consumer.pid()]);
    let started = Instant::now();
    let r = p.consumer.api(
        "POST",
        "/api/v1/transfers",
        Some(&json!({"agreementId": p.agreement, "format": "HttpData-PUSH"})),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let tid = r.body["id"].as_str().unwrap().to_owned();
    let t = wait_for(&p.consumer, &transfer(&tid), "COMPLETED", 110);
    let elapsed = started.elapsed().as_secs_f64();
    let peaks = sampler.stop();
    assert!(
        t["dataAddress"].to_string().contains("https://"),
        "the push goes to an HTTPS receiver: {t}"
    );
    let provider_pid = t["providerPid"].as_str().unwrap().to_owned();
    let pt = wait_for(&p.provider, &transfer(&provider_pid), "COMPLETED", 20);
    println!(
        "1 GiB push over HTTPS: request to COMPLETED in {elapsed:.1} s ({:.0} MiB/s)",
        SIZE as f64 / MIB / elapsed
    );
    assert_eq!(t["bytes"], SIZE, "the consumer counts 1 GiB: {t}");
    assert_eq!(pt["bytes"], SIZE, "the provider counts 1 GiB: {pt}");
    assert_flat("push", &peaks);

    // The received file: 1 GiB, the same bytes (read back in 1 MiB pieces).
    let received: Vec<_> = std::fs::read_dir(p.consumer_node.dir.path().join("received"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(received.len(), 1, "{received:?}");
    assert_eq!(std::fs::metadata(&received[0]).unwrap().len(), SIZE);
    let mut file = std::fs::File::open(&received[0]).unwrap();
    let mut buf = vec![0u8; 1 << 20];
    let mut verifier = Verifier::new();
    loop {
        let n = file.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        verifier.feed(&buf[..n]);
    }
    assert_eq!(verifier.offset, SIZE);
}
