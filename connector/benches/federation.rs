//! Benchmark (not a test): the federated catalog at national scale (issue 18). A generated federation of
//! 300 sources × 1,000 datasets is written straight into the store through the crawler's write path
//! (`put_source`, `stage_page` per page of 250, `commit_crawl`), then a connector serving that store answers
//! `GET /api/v1/catalogs/search` to 16 concurrent clients: text, facet and combined queries, each with its
//! facets, one page of 50. Beside it, a same-run baseline: the same clients on the connector's DSP version
//! endpoint. Prints p50/p99 per query kind, the crawl write throughput (datasets per second) and the
//! process's peak RSS during the queries. On SQLite always; on PostgreSQL too when
//! `CAAP_TEST_POSTGRES_URL` names a server (a fresh database is made for the run).
//!
//! Run with `cargo bench -p caap-connector --bench federation` (`CAAP_BENCH_SOURCES`,
//! `CAAP_BENCH_DATASETS`, `CAAP_BENCH_SECS` scale it down for a quick look; `CAAP_BENCH_EACH=1` also
//! prints each query's latency alone, `CAAP_BENCH_KEEP_DB=1` keeps the data directory and the PostgreSQL database, `CAAP_BENCH_ONLY=sqlite|postgresql` runs one). Issue 18's targets: p99 ≤ 50 ms
//! for each query kind at 16 clients, RSS ≤ 64 MiB.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout,
    reason = "benchmark harness"
)]

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use caap_catalog::remote::RemoteDataset;
use caap_connector::clock::{Clock, SystemClock};
use caap_connector::config::Config;
use caap_connector::store::Store;
use caap_connector::store::federation::{NewSource, SourceOrigin, new_generation};
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_caap");
const CLIENTS: usize = 16;
const PAGE: usize = 250;

fn env_or(key: &str, default: usize) -> usize {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

const MODELS: &[(&str, &str, &str)] = &[
    ("OffStreetParking", "Parkeringar", "transport"),
    ("ParkingSpot", "Parkeringsplatser", "transport"),
    ("AirQualityObserved", "Luftkvalitet", "environment"),
    ("NoiseLevelObserved", "Buller", "environment"),
    ("TrafficFlowObserved", "Trafikflöden", "transport"),
    ("WaterQualityObserved", "Vattenkvalitet", "environment"),
    ("WeatherObserved", "Väderobservationer", "environment"),
    ("BikeHireDockingStation", "Lånecyklar", "mobility"),
    ("StreetLight", "Gatubelysning", "energy"),
    ("WasteContainer", "Avfallskärl", "environment"),
    ("EVChargingStation", "Laddstationer", "energy"),
    ("Building", "Byggnader", "housing"),
];
const LICENCES: &[&str] = &[
    "https://creativecommons.org/licenses/by/4.0/",
    "https://creativecommons.org/publicdomain/zero/1.0/",
    "https://data.example/licences/restricted",
];
const PLACES: &[&str] = &[
    "centrum",
    "hamnen",
    "stationen",
    "universitetet",
    "sjukhuset",
    "torget",
    "parken",
    "norr",
    "söder",
    "väster",
    "öster",
    "industriområdet",
];

fn dataset(city: usize, i: usize) -> RemoteDataset {
    let (model, label, theme) = MODELS[(city * 7 + i) % MODELS.len()];
    let place = PLACES[(i / MODELS.len()) % PLACES.len()];
    let open = !(city + i).is_multiple_of(3);
    let constraint = if open {
        json!([])
    } else {
        json!([{"leftOperand": "purpose", "operator": "eq", "rightOperand": "research"}])
    };
    let id = format!("urn:kommun{city}:dataset:{i}");
    RemoteDataset {
        id: id.clone(),
        title: Some(format!("{label} vid {place}, sensor {i}")),
        description: Some(format!(
            "Mätningar från {label} nära {place} i kommun {city}; uppdateras var femte minut. \
             Measurements of {model} near the {place} station."
        )),
        keywords: vec!["sensor".into(), model.to_lowercase(), place.into()],
        themes: vec![theme.into()],
        spatial: None,
        data_model: Some(model.into()),
        offer_ids: vec![format!("{id}:offer")],
        formats: vec!["HttpData-PULL".into()],
        raw: json!({
            "@id": id,
            "dct:license": LICENCES[(city + i) % LICENCES.len()],
            "hasPolicy": [{"@id": format!("{id}:offer"), "permission": [{"action": "use", "constraint": constraint}]}]
        }),
    }
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// `clients` clients GET `urls` (round robin) for `secs`; the latencies in ms, sorted.
async fn hammer(
    client: &reqwest::Client,
    admin: &str,
    urls: &[String],
    secs: u64,
    clients: usize,
) -> Vec<f64> {
    let until = Instant::now() + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    for c in 0..clients {
        let (client, admin, urls) = (client.clone(), admin.to_owned(), urls.to_vec());
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::new();
            let mut n = c;
            while Instant::now() < until {
                let url = &urls[n % urls.len()];
                n += 1;
                let t = Instant::now();
                let res = client.get(url).bearer_auth(&admin).send().await.unwrap();
                assert!(res.status().is_success(), "{url}: {}", res.status());
                res.bytes().await.unwrap();
                out.push(t.elapsed().as_secs_f64() * 1000.0);
            }
            out
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all.sort_by(f64::total_cmp);
    all
}

async fn run(backend: &str, database_url: Option<String>) {
    let sources = env_or("CAAP_BENCH_SOURCES", 300);
    let per_source = env_or("CAAP_BENCH_DATASETS", 1000);
    let secs = env_or("CAAP_BENCH_SECS", 8) as u64;
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args(["init", "--dir"])
        .arg(dir.path())
        .args([
            "--name",
            "Bench",
            "--dsp-bind",
            "127.0.0.1:0",
            "--api-bind",
            "127.0.0.1:0",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let mut env = vec![
        ("CAAP_FEDERATION_CRAWL".to_owned(), "false".to_owned()),
        ("CAAP_LOG_LEVEL".to_owned(), "warn".to_owned()),
    ];
    if let Some(url) = &database_url {
        env.push(("CAAP_DATABASE_URL".to_owned(), url.clone()));
    }
    let config = Config::load(&dir.path().join("caap.toml"), env).unwrap();

    // The federation, written through the crawler's write path.
    let store = Store::open(&config.database_url(), 4, Arc::new(SystemClock))
        .await
        .unwrap();
    let started = Instant::now();
    let later = SystemClock.now() + chrono::Duration::days(1);
    for city in 0..sources {
        let address = format!("https://kommun{city}.example/dsp");
        let name = format!("Kommun {city}");
        store
            .put_source(
                &NewSource {
                    address: address.clone(),
                    participant_id: format!("did:web:kommun{city}.example"),
                    city: name.clone(),
                },
                SourceOrigin::Directory,
                later,
            )
            .await
            .unwrap();
        let generation = new_generation();
        let all: Vec<RemoteDataset> = (0..per_source).map(|i| dataset(city, i)).collect();
        for page in all.chunks(PAGE) {
            store
                .stage_page(&address, &name, generation, page)
                .await
                .unwrap();
        }
        store
            .commit_crawl(
                &address,
                generation,
                &format!("did:web:kommun{city}.example"),
                &name,
                later,
            )
            .await
            .unwrap();
    }
    let written = sources * per_source;
    let write_secs = started.elapsed().as_secs_f64();
    // What autovacuum does in the hours a real federation's crawls are spread over, done before the
    // queries instead of during them (a bulk load of a gigabyte in a minute otherwise has PostgreSQL
    // vacuuming and analysing it while the clients run).
    if database_url.is_some() {
        use sea_orm::ConnectionTrait;
        let t = Instant::now();
        let db = sea_orm::Database::connect(database_url.as_deref().unwrap())
            .await
            .unwrap();
        db.execute_unprepared("VACUUM ANALYZE").await.unwrap();
        db.close().await.unwrap();
        println!(
            "(VACUUM ANALYZE after the load: {:.1} s)",
            t.elapsed().as_secs_f64()
        );
    }
    store.close().await.unwrap();

    let running = caap_connector::server::start(config).await.unwrap();
    let api = running.api_url();
    let admin = {
        let text = std::fs::read_to_string(dir.path().join("caap.toml")).unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix("admin_token = "))
            .unwrap()
            .trim_matches('"')
            .to_owned()
    };
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(CLIENTS)
        .build()
        .unwrap();
    let search = |q: &str| format!("{api}/api/v1/catalogs/search?{q}");
    let kinds: Vec<(&str, Vec<String>)> =
        vec![
        (
            "baseline: DSP version endpoint",
            vec![format!("{}/.well-known/dspace-version", running.dsp_url())],
        ),
        (
            "text (q=parkering, q=luftkvalitet stationen, …)",
            ["parkering", "luftkvalitet%20stationen", "laddstation", "buller%20torget"]
                .iter()
                .map(|q| search(&format!("q={q}")))
                .collect(),
        ),
        (
            "facet (dataModel=…, theme=…, city=…)",
            [
                "dataModel=OffStreetParking",
                "theme=energy",
                "city=Kommun%2042",
                "access=open&licence=https%3A%2F%2Fcreativecommons.org%2Flicenses%2Fby%2F4.0%2F",
            ]
            .iter()
            .map(|q| search(q))
            .collect(),
        ),
        (
            "combined (text + filters)",
            [
                "q=parkering&access=open",
                "q=luft&theme=environment&city=Kommun%207",
                "q=sensor%20hamnen&dataModel=StreetLight",
                "q=l%C3%A5necyklar&access=negotiable",
            ]
            .iter()
            .map(|q| search(q))
            .collect(),
        ),
    ];
    // Warm up (and check every query answers).
    for (_, urls) in &kinds {
        for u in urls {
            let r = client.get(u).bearer_auth(&admin).send().await.unwrap();
            assert!(r.status().is_success(), "{u}: {}", r.status());
        }
    }
    // What the process holds before the first timed query: what the write path left in the
    // allocator, the server, the warm-up's caches.
    let before_queries = rss_kib();
    let peak = Arc::new(AtomicU64::new(before_queries));
    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = {
        let (peak, sampling) = (peak.clone(), sampling.clone());
        tokio::spawn(async move {
            while sampling.load(Ordering::Relaxed) {
                peak.fetch_max(rss_kib(), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };
    println!(
        "\n== federated catalog on {backend}: {sources} sources × {per_source} datasets = {written} ==\n\
         crawl write path: {written} datasets in {write_secs:.1} s = {:.0} datasets/s\n\
         {CLIENTS} concurrent clients, {secs} s per kind:",
        written as f64 / write_secs
    );
    let mut baseline_p99 = f64::NAN;
    for (label, urls) in &kinds {
        // One client first: the latency of a query alone, without waiting for the others.
        let alone = hammer(&client, &admin, urls, secs.min(3), 1).await;
        let lat = hammer(&client, &admin, urls, secs, CLIENTS).await;
        let (p50, p99) = (percentile(&lat, 0.5), percentile(&lat, 0.99));
        if baseline_p99.is_nan() {
            baseline_p99 = p99;
        }
        println!(
            "  {label:<48} n={:>6}  {:>7.0} req/s  p50 {p50:>7.2} ms  p99 {p99:>7.2} ms  (p99 {:>5.1}× baseline)  alone: p50 {:>7.2} ms",
            lat.len(),
            lat.len() as f64 / secs as f64,
            p99 / baseline_p99,
            percentile(&alone, 0.5)
        );
        if std::env::var("CAAP_BENCH_EACH").is_ok_and(|v| v == "1") {
            for u in urls {
                let one = hammer(&client, &admin, std::slice::from_ref(u), 1, 1).await;
                let query = u.split_once('?').map_or(u.as_str(), |(_, q)| q);
                println!("      alone p50 {:>7.2} ms  {query}", percentile(&one, 0.5));
            }
        }
    }
    sampling.store(false, Ordering::Relaxed);
    sampler.await.unwrap();
    println!(
        "  peak RSS of the process (store, server and clients) during the queries: {:.1} MiB \
         ({:.1} MiB before the first)",
        peak.load(Ordering::Relaxed) as f64 / 1024.0,
        before_queries as f64 / 1024.0
    );
    running.stop().await;
    if std::env::var("CAAP_BENCH_KEEP_DB").is_ok_and(|v| v == "1") {
        println!("(data directory {} kept)", dir.keep().display());
    }
}

fn main() {
    // The connector's listeners run on actix's system (as in `caap serve`).
    actix_web::rt::System::new().block_on(async {
        let only = std::env::var("CAAP_BENCH_ONLY").unwrap_or_default();
        if only.is_empty() || only.eq_ignore_ascii_case("sqlite") {
            run("SQLite", None).await;
        }
        if only.eq_ignore_ascii_case("sqlite") {
            return;
        }
        if let Ok(admin) = std::env::var("CAAP_TEST_POSTGRES_URL")
            && !admin.is_empty()
        {
            use sea_orm::ConnectionTrait;
            let name = format!("caap_bench_fed_{}", uuid::Uuid::new_v4().simple());
            let db = sea_orm::Database::connect(admin.as_str()).await.unwrap();
            db.execute_unprepared(&format!("CREATE DATABASE {name}"))
                .await
                .unwrap();
            db.close().await.unwrap();
            let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin);
            run("PostgreSQL", Some(format!("{base}/{name}"))).await;
            // 300,000 datasets take most of a gigabyte: the run's database goes with it (unless kept
            // for a look at its plans).
            if std::env::var("CAAP_BENCH_KEEP_DB").is_ok_and(|v| v == "1") {
                println!("(database {name} kept)");
                return;
            }
            let db = sea_orm::Database::connect(admin.as_str()).await.unwrap();
            db.execute_unprepared(&format!("DROP DATABASE {name} WITH (FORCE)"))
                .await
                .unwrap();
            db.close().await.unwrap();
        } else {
            println!("\n(PostgreSQL skipped: set CAAP_TEST_POSTGRES_URL)");
        }
    });
}
