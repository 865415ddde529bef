//! Benchmark (not a test): contract negotiations from request to FINALIZED between two `caap serve`
//! processes on loopback (SQLite each), beside a same-run baseline: plain HTTP round trips to the same
//! provider process (its DSP version endpoint).
//!
//! Run with `cargo bench -p caap-connector --bench negotiation`. Prints p50/p99 latency of one negotiation
//! at a time, negotiations per second with 600 started at once, and how many baseline round trips one negotiation
//! costs. Issue 16's targets: p50 ≤ 10 ms, ≥ 300 negotiations/s. Then the same between two DCP connectors
//! holding a trust anchor's credentials (every DSP message authenticated with a self-issued token; a
//! presentation query when the verifier holds no verified presentation for the caller's access token):
//! p50 ≤ 15 ms, ≥ 200/s.
//!
//! `cargo bench -p caap-connector --bench negotiation -- --soak [N]` instead runs the soak: N negotiations
//! (10,000 by default) in waves of 500, printing both processes' resident memory (and its anonymous part,
//! the heap) after a warm-up, every 2,000 negotiations and at the end (it must stay flat within a few MB:
//! nothing is kept per negotiation in memory). Run it with `MALLOC_ARENA_MAX=2` too to tell allocator
//! fragmentation from a leak (the variable passes to both processes).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout,
    reason = "benchmark harness"
)]

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

mod harness;
use harness::{Proc, percentile};

const SEQUENTIAL: usize = 200;
const CONCURRENT: usize = 600;
/// How often a negotiation's state is polled by default (see [`negotiate`]; `--poll-us N` changes it).
const POLL: Duration = Duration::from_millis(1);

/// `--poll-us N`: the polling interval in microseconds.
fn poll() -> Duration {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == "--poll-us")
        .and_then(|at| args.get(at + 1)?.parse().ok())
        .map_or(POLL, Duration::from_micros)
}

/// `harness::init` with the rate limit raised: the bench's one client address starts up to 600
/// negotiations at once through the management API.
fn init(dir: &Path, name: &str, settings: &[(&str, &str)]) -> (std::path::PathBuf, String) {
    let settings = [&[("limits.max_requests_per_address", "1000")], settings].concat();
    harness::init(dir, name, &settings)
}

/// `harness::start`, as participant `id` if given.
fn start(config: &Path, admin: &str, id: Option<&str>) -> Proc {
    match id {
        Some(id) => harness::start(config, admin, &[("CAAP_PARTICIPANT_ID", id)]),
        None => harness::start(config, admin, &[]),
    }
}

/// A management API: base URL and admin token.
#[derive(Clone)]
struct Api(String, String);

impl Proc {
    fn api(&self) -> Api {
        Api(self.api.clone(), self.admin.clone())
    }
}

async fn api(
    client: &reqwest::Client,
    p: &Api,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> Value {
    let mut req = client
        .request(method, format!("{}{path}", p.0))
        .bearer_auth(&p.1);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let res = req.send().await.unwrap();
    assert!(res.status().is_success(), "{path}: {}", res.status());
    res.json().await.unwrap()
}

/// How many negotiations a provider has finalized (it then holds their agreements): one `GROUP BY` count
/// read from its `/metrics`, so counting costs the same after 30,000 negotiations as after 30 (paging through
/// the agreements list grew with every one, and dominated a long soak).
async fn finalized_negotiations(client: &reqwest::Client, p: &Api) -> usize {
    let text = client
        .get(format!("{}/metrics", p.0))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|l| {
            l.starts_with("caap_processes{")
                && l.contains("kind=\"negotiation\"")
                && l.contains("role=\"provider\"")
                && l.contains("state=\"FINALIZED\"")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .map(|n| n as usize)
        .sum()
}

/// One negotiation from the consumer's API call to FINALIZED (observed through the consumer's API, polled
/// every `poll`: each poll is a request the consumer serves, so polling much faster than 1 ms would load the
/// two cores the connectors share; 1 ms adds half a millisecond to a measurement on average).
async fn negotiate(client: &reqwest::Client, consumer: &Api, start: &Value, poll: Duration) -> f64 {
    let t = Instant::now();
    let n = api(
        client,
        consumer,
        reqwest::Method::POST,
        "/api/v1/negotiations",
        Some(start.clone()),
    )
    .await;
    let id = n["id"].as_str().unwrap().to_owned();
    loop {
        let n = api(
            client,
            consumer,
            reqwest::Method::GET,
            &format!("/api/v1/negotiations/{id}"),
            None,
        )
        .await;
        match n["state"].as_str() {
            Some("FINALIZED") => return t.elapsed().as_secs_f64(),
            Some("TERMINATED") => panic!("terminated: {n}"),
            _ => tokio::time::sleep(poll).await,
        }
    }
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let dirs = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (pc, padmin) = init(
        dirs.0.path(),
        "Malmö (bench)",
        &[
            (
                "dsp.auth.tokens",
                "[{token = \"bench-token-of-lund-000001\", participant = \"did:web:lund.bench\"}]",
            ),
            ("dsp.auth.outbound_token", "\"bench-token-of-malmo-00001\""),
            ("dsp.auth.mode", "\"static-token\""),
        ],
    );
    let (cc, cadmin) = init(
        dirs.1.path(),
        "Lund (bench)",
        &[
            (
                "dsp.auth.tokens",
                "[{token = \"bench-token-of-malmo-00001\", participant = \"did:web:malmo.bench\"}]",
            ),
            ("dsp.auth.outbound_token", "\"bench-token-of-lund-000001\""),
            ("dsp.auth.mode", "\"static-token\""),
        ],
    );
    let provider = start(&pc, &padmin, Some("did:web:malmo.bench"));
    let consumer = start(&cc, &cadmin, Some("did:web:lund.bench"));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (papi, capi) = (provider.api(), consumer.api());
    rt.block_on(async {
        let client = reqwest::Client::new();
        let city = &caap_catalog::samples::CITIES[0];
        let asset = caap_catalog::samples::assets(city, "http://127.0.0.1:9").into_iter().next().unwrap();
        api(&client, &papi, reqwest::Method::POST, "/api/v1/policies",
            Some(json!({"id": "use", "policy": {"@type": "Set", "permission": [{"action": "use"}]}}))).await;
        api(&client, &papi, reqwest::Method::POST, "/api/v1/assets", Some(serde_json::to_value(&asset).unwrap())).await;
        api(&client, &papi, reqwest::Method::POST, "/api/v1/offers",
            Some(json!({"id": "bench-offer", "assets": [asset.id], "accessPolicy": "use", "contractPolicy": "use"}))).await;
        let start = json!({"counterPartyAddress": format!("{}/dsp", provider.dsp), "counterPartyId": "did:web:malmo.bench",
            "offer": {"@id": "bench-offer", "@type": "Offer", "target": asset.id, "permission": [{"action": "use"}]}});
        if let Some(total) = soak_count() {
            soak(&client, (&provider, &consumer), &start, total).await;
            return;
        }

        // Baseline: plain HTTP round trips to the provider process.
        let version = format!("{}/.well-known/dspace-version", provider.dsp);
        for _ in 0..50 {
            client.get(&version).send().await.unwrap().bytes().await.unwrap();
        }
        let mut rtt = Vec::new();
        for _ in 0..500 {
            let t = Instant::now();
            client.get(&version).send().await.unwrap().bytes().await.unwrap();
            rtt.push(t.elapsed().as_secs_f64());
        }
        rtt.sort_by(|a, b| a.partial_cmp(b).unwrap());

        let (lat, per_sec) = measure(&client, &papi, &capi, &start, SEQUENTIAL, CONCURRENT).await;

        let (p50, p99) = (percentile(&lat, 0.5), percentile(&lat, 0.99));
        let (b50, b99) = (percentile(&rtt, 0.5), percentile(&rtt, 0.99));
        println!(
            "negotiation request -> FINALIZED, two caap processes on loopback (SQLite, HTTP; state polled every {} us)",
            poll().as_micros()
        );
        println!(
            "  baseline: plain HTTP round trip   p50 {:>7.2} ms  p99 {:>7.2} ms",
            b50 * 1e3,
            b99 * 1e3
        );
        println!(
            "  one negotiation at a time ({SEQUENTIAL})  p50 {:>7.2} ms  p99 {:>7.2} ms  = {:.1}x / {:.1}x the round trip; target p50 10 ms -> {:.2} of target",
            p50 * 1e3,
            p99 * 1e3,
            p50 / b50,
            p99 / b99,
            p50 / 0.010
        );
        println!(
            "  {CONCURRENT} started at once             {:>7.0} negotiations/s; target 300/s -> {:.2}x target (Rainbow: ~95 ms each)",
            per_sec,
            per_sec / 300.0
        );

        // The same with DCP on every DSP request: a trust anchor, credentials, self-issued tokens and a
        // presentation query per message.
        let dcp = dcp_pair(&client).await;
        let start = json!({"counterPartyAddress": format!("{}/dsp", dcp.provider.dsp), "counterPartyId": dcp.provider_did,
            "offer": {"@id": "bench-offer", "@type": "Offer", "target": asset.id, "permission": [{"action": "use"}]}});
        let dpapi = dcp.provider.api();
        api(&client, &dpapi, reqwest::Method::POST, "/api/v1/policies",
            Some(json!({"id": "use", "policy": {"@type": "Set", "permission": [{"action": "use"}]}}))).await;
        api(&client, &dpapi, reqwest::Method::POST, "/api/v1/assets", Some(serde_json::to_value(&asset).unwrap())).await;
        api(&client, &dpapi, reqwest::Method::POST, "/api/v1/offers",
            Some(json!({"id": "bench-offer", "assets": [asset.id], "accessPolicy": "use", "contractPolicy": "use"}))).await;
        let (dlat, dper_sec) = measure(&client, &dpapi, &dcp.consumer.api(), &start, SEQUENTIAL / 2, CONCURRENT / 3).await;
        let (d50, d99) = (percentile(&dlat, 0.5), percentile(&dlat, 0.99));
        println!("the same with DCP 1.0 on every DSP request (self-issued token; presentation query with 2 credentials per access token)");
        println!(
            "  one negotiation at a time ({})   p50 {:>7.2} ms  p99 {:>7.2} ms  = {:.2}x the static-token p50; target p50 15 ms -> {:.2} of target",
            SEQUENTIAL / 2,
            d50 * 1e3,
            d99 * 1e3,
            d50 / p50,
            d50 / 0.015
        );
        println!(
            "  {} started at once             {:>7.0} negotiations/s = {:.2}x the static-token rate; target 200/s -> {:.2}x target",
            CONCURRENT / 3,
            dper_sec,
            dper_sec / per_sec,
            dper_sec / 200.0
        );
        drop(dcp);
    });
}

/// Sequential latencies (after a warm-up) and the rate with `concurrent` started at once.
async fn measure(
    client: &reqwest::Client,
    papi: &Api,
    capi: &Api,
    start: &Value,
    sequential: usize,
    concurrent: usize,
) -> (Vec<f64>, f64) {
    for _ in 0..20 {
        negotiate(client, capi, start, poll()).await;
    }
    let mut lat = Vec::new();
    for _ in 0..sequential {
        lat.push(negotiate(client, capi, start, poll()).await);
    }
    lat.sort_by(|a, b| a.partial_cmp(b).unwrap());
    // Throughput: `concurrent` negotiations started at once (the consumer's processor sends at most
    // `negotiation.concurrency` messages at a time), until the provider holds every agreement. Counted
    // from the provider's finalized negotiations, so the measurement does not poll each negotiation.
    let before = finalized_negotiations(client, papi).await;
    let t = Instant::now();
    let mut starts = Vec::new();
    for _ in 0..concurrent {
        let client = client.clone();
        let c = capi.clone();
        let start = start.clone();
        starts.push(tokio::spawn(async move {
            api(
                &client,
                &c,
                reqwest::Method::POST,
                "/api/v1/negotiations",
                Some(start),
            )
            .await
        }));
    }
    for s in starts {
        s.await.unwrap();
    }
    loop {
        let done = finalized_negotiations(client, papi).await - before;
        if done >= concurrent {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(300),
            "only {done} of {concurrent} finalized after 300 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    (lat, concurrent as f64 / t.elapsed().as_secs_f64())
}

/// `--soak [N]`: how many negotiations the soak runs.
fn soak_count() -> Option<usize> {
    let args: Vec<String> = std::env::args().collect();
    let at = args.iter().position(|a| a == "--soak")?;
    Some(
        args.get(at + 1)
            .and_then(|n| n.parse().ok())
            .unwrap_or(10_000),
    )
}

/// A process's resident memory and its anonymous part (heap, stacks), in MiB (`VmRSS`, `RssAnon`).
fn rss_mib(p: &Proc) -> (f64, f64) {
    let kib = |field| harness::status_kib(p.child.id(), field) as f64 / 1024.0;
    (kib("VmRSS"), kib("RssAnon"))
}

/// `total` negotiations in waves of 500 after two warm-up waves, with resident memory before, along the way
/// and after.
async fn soak(
    client: &reqwest::Client,
    (provider, consumer): (&Proc, &Proc),
    start: &Value,
    total: usize,
) {
    const WAVE: usize = 500;
    const REPORT_EVERY: usize = 2_000;
    let (papi, capi) = (provider.api(), consumer.api());
    for _ in 0..2 {
        measure(client, &papi, &capi, start, 0, WAVE).await;
    }
    let show = |done: usize| {
        let (p, c) = (rss_mib(provider), rss_mib(consumer));
        println!(
            "  after {done:>6}: provider RSS {:>6.1} MiB (anon {:>6.1}), consumer RSS {:>6.1} MiB (anon {:>6.1})",
            p.0, p.1, c.0, c.1
        );
        (p, c)
    };
    println!(
        "soak: {total} negotiations, two caap processes on loopback (SQLite){}",
        std::env::var("MALLOC_ARENA_MAX")
            .map(|v| format!(", MALLOC_ARENA_MAX={v}"))
            .unwrap_or_default()
    );
    let before = show(0);
    let t = Instant::now();
    let mut done = 0;
    while done < total {
        let n = WAVE.min(total - done);
        measure(client, &papi, &capi, start, 0, n).await;
        done += n;
        if done % REPORT_EVERY == 0 && done < total {
            show(done);
        }
    }
    let after = show(done);
    println!(
        "  {total} negotiations in {:.0} s; provider RSS {:+.1} MiB (anon {:+.1}), consumer RSS {:+.1} MiB (anon {:+.1})",
        t.elapsed().as_secs_f64(),
        after.0.0 - before.0.0,
        after.0.1 - before.0.1,
        after.1.0 - before.1.0,
        after.1.1 - before.1.1
    );
}

/// A trust anchor and two DCP connectors holding its credentials.
struct DcpPair {
    _dirs: Vec<tempfile::TempDir>,
    _authority: Proc,
    provider: Proc,
    consumer: Proc,
    provider_did: String,
}

async fn dcp_pair(client: &reqwest::Client) -> DcpPair {
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let common = [
        ("dsp.auth.mode", "\"dcp\""),
        ("identity.insecure_did_web_over_http", "true"),
    ];
    let (ac, aadmin) = init(
        dirs[0].path(),
        "Federation (bench)",
        &[common[0], common[1], ("authority.enabled", "true")],
    );
    let authority = start(&ac, &aadmin, None);
    let did_of = |p: &Proc| {
        let a = p.api();
        let client = client.clone();
        async move {
            api(&client, &a, reqwest::Method::GET, "/api/v1/identity", None).await["did"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    let authority_did = did_of(&authority).await;
    let trust = format!("[{{issuer = \"{authority_did}\"}}]");
    let member = |dir: &Path, name: &str| {
        init(
            dir,
            name,
            &[
                common[0],
                common[1],
                ("identity.trusted_issuers", trust.as_str()),
            ],
        )
    };
    let (pc, padmin) = member(dirs[1].path(), "Malmö (bench, DCP)");
    let (cc, cadmin) = member(dirs[2].path(), "Lund (bench, DCP)");
    let provider = start(&pc, &padmin, None);
    let consumer = start(&cc, &cadmin, None);
    let mut provider_did = String::new();
    for p in [&provider, &consumer] {
        let did = did_of(p).await;
        api(client, &authority.api(), reqwest::Method::POST, "/api/v1/authority/members",
            Some(json!({"holder": did, "roles": ["Municipality"], "attributes": {"municipalityCode": "1280"}}))).await;
        let got = api(
            client,
            &p.api(),
            reqwest::Method::POST,
            "/api/v1/credentials/requests",
            Some(json!({"authority": authority.dsp})),
        )
        .await;
        assert_eq!(got["status"], "ISSUED", "{got}");
        if provider_did.is_empty() {
            provider_did = did;
        }
    }
    DcpPair {
        _dirs: dirs,
        _authority: authority,
        provider,
        consumer,
        provider_did,
    }
}
