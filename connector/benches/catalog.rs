//! Benchmark (not a test): the DSP catalog as a provider serves it (issue 16). Three connectors, one after the
//! other, each a `caap serve` process on SQLite: one with a single dataset, one with 1,000 datasets and one
//! with 10,000 datasets in 20 offers (one of them under an access policy the caller does not meet, so its
//! datasets are hidden). 16 concurrent clients send `POST <dsp>/catalog/request` (static-token caller, pages of
//! 50 as caap pages: `continuationToken` and `limit` in the query): the 1-dataset catalog, the first page, a
//! middle page, and a filtered query (`dataModel`, one dataset in ten). Beside each, a same-run baseline: the
//! same clients on the connector's DSP version endpoint. Prints rate, p50 and p99 per kind, and the rates as
//! ratios against the baseline and against the 1,000-dataset first page.
//!
//! Run with `cargo bench -p caap-connector --bench catalog` (`CAAP_BENCH_SECS` sets the seconds per kind,
//! default 5; `CAAP_BENCH_BIN` another `caap` binary to serve). Issue 16's targets: 1-dataset catalog ≥ 10,000 req/s; first page with 1,000 datasets
//! ≥ 3,000 req/s; with 10,000 datasets the same rate ±10 % and p99 ≤ 20 ms.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout,
    reason = "benchmark harness"
)]

mod harness;

use std::sync::Arc;

use caap_catalog::offer::Offer;
use caap_catalog::page::Cursor;
use caap_connector::clock::SystemClock;
use caap_connector::config::Config;
use caap_connector::store::{DocKind, DocRef, Store};
use harness::{Load, Proc, hammer, init, start};
use serde_json::{Value, json};

const CLIENTS: usize = 16;
const OFFERS: usize = 20;
const TOKEN: &str = "bench-token-of-lund-000001";
const MODELS: &[&str] = &[
    "AirQualityObserved",
    "OffStreetParking",
    "TrafficFlowObserved",
    "NoiseLevelObserved",
    "WaterQualityObserved",
    "WeatherObserved",
    "BikeHireDockingStation",
    "StreetLight",
    "WasteContainer",
    "EVChargingStation",
];

fn dataset_id(i: usize) -> String {
    format!("bench-ds-{i:05}")
}

fn asset(i: usize) -> Value {
    let model = MODELS[i % MODELS.len()];
    json!({
        "id": dataset_id(i),
        "title": format!("{model} sensor {i}, Malmö"),
        "description": format!("Readings of sensor {i} as Smart Data Models {model} entities, every five minutes."),
        "keywords": ["sensor", model.to_lowercase(), format!("district-{}", i % 12)],
        "themes": [if i.is_multiple_of(2) { "environment" } else { "mobility" }],
        "spatial": "Malmö",
        "dataModel": model,
        "license": "https://creativecommons.org/licenses/by/4.0/",
        "mediaType": "application/ld+json",
        "dataAddress": {"type": "HttpApi", "url": format!("http://127.0.0.1:9/sensors/{i}"), "method": "GET"}
    })
}

/// A connector with `datasets` datasets in `offers` offers (dataset i in offer i mod offers; the last offer of
/// several is for members only), ready to serve.
async fn connector(dir: &std::path::Path, datasets: usize, offers: usize) -> Proc {
    let (config_path, admin) = init(
        dir,
        "Malmö (bench)",
        &[
            (
                "dsp.auth.tokens",
                &format!("[{{token = \"{TOKEN}\", participant = \"did:web:lund.bench\"}}]"),
            ),
            ("dsp.auth.outbound_token", "\"bench-token-of-malmo-00001\""),
            ("dsp.auth.mode", "\"static-token\""),
        ],
    );
    let config = Config::load(&config_path, Vec::new()).unwrap();
    let store = Store::open(&config.database_url(), 1, Arc::new(SystemClock))
        .await
        .unwrap();
    let policies = [
        json!({"id": "anyone", "policy": {"@type": "Set", "permission": [{"action": "use"}]}}),
        json!({"id": "members", "policy": {"@type": "Set", "permission": [{"action": "use", "constraint": [
            {"leftOperand": "caap:claim:membership", "operator": "eq", "rightOperand": "gold"}]}]}}),
    ];
    for p in policies {
        let id = p["id"].as_str().unwrap().to_owned();
        store.create(DocKind::Policy, &id, &p, &[]).await.unwrap();
    }
    for i in 0..datasets {
        store
            .create(DocKind::Asset, &dataset_id(i), &asset(i), &[])
            .await
            .unwrap();
    }
    for k in 0..offers {
        let access = if offers > 1 && k == offers - 1 {
            "members"
        } else {
            "anyone"
        };
        let body = json!({
            "id": format!("bench-offer-{k:02}"),
            "assets": (k..datasets).step_by(offers).map(dataset_id).collect::<Vec<_>>(),
            "accessPolicy": access,
            "contractPolicy": "anyone",
        });
        let offer: Offer = serde_json::from_value(body.clone()).unwrap();
        store
            .create(DocKind::Offer, &offer.id, &body, &DocRef::of_offer(&offer))
            .await
            .unwrap();
    }
    store.close().await.unwrap();
    let p = start(&config_path, &admin, &[]);
    // Let the start's background work (the processor's first rounds) pass before measuring.
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    p
}

fn report(label: &str, load: &Load, baseline: &Load, reference: Option<&Load>) {
    let against = reference
        .map(|r| format!("  {:>5.2}× the 1,000 first page", load.rate / r.rate))
        .unwrap_or_default();
    println!(
        "  {label:<44} {:>7.0} req/s  p50 {:>6.2} ms  p99 {:>6.2} ms  ({:.2}× baseline rate){against}",
        load.rate,
        load.p(0.5),
        load.p(0.99),
        load.rate / baseline.rate,
    );
}

/// The same clients on the version endpoint, then `POST catalog/request` for each of `kinds` (a label, the
/// query string and the body's filter).
async fn measure(
    client: &reqwest::Client,
    p: &Proc,
    secs: f64,
    kinds: &[(&str, String, Value)],
    reference: Option<&Load>,
) -> Vec<Load> {
    let version = format!("{}/.well-known/dspace-version", p.dsp);
    let get = move |c: &reqwest::Client, _| c.get(&version);
    hammer(client, CLIENTS, 0.5, get.clone()).await;
    let baseline = hammer(client, CLIENTS, secs, get).await;
    report("baseline: DSP version endpoint", &baseline, &baseline, None);
    let mut out = Vec::new();
    for (label, query, filter) in kinds {
        let url = format!("{}/dsp/catalog/request{query}", p.dsp);
        let mut body = json!({"@context": ["https://w3id.org/dspace/2025/1/context.jsonld"],
            "@type": "CatalogRequestMessage"});
        if !filter.is_null() {
            body["filter"] = filter.clone();
        }
        let body = body.to_string();
        let post = move |c: &reqwest::Client, _| {
            c.post(&url)
                .bearer_auth(TOKEN)
                .header("content-type", "application/json")
                .body(body.clone())
        };
        // Warm up (and check that it answers with datasets).
        let first = post(client, 0).send().await.unwrap();
        assert!(first.status().is_success(), "{label}: {}", first.status());
        let catalog: Value = first.json().await.unwrap();
        assert!(
            catalog["dataset"].as_array().is_some_and(|d| !d.is_empty()),
            "{label}: {catalog}"
        );
        hammer(client, CLIENTS, 0.5, post.clone()).await;
        let load = hammer(client, CLIENTS, secs, post).await;
        report(label, &load, &baseline, reference);
        out.push(load);
    }
    out
}

fn main() {
    // Test runners list targets with `--list`; a benchmark is not a test, so list nothing.
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let secs: f64 = std::env::var("CAAP_BENCH_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5.0);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(CLIENTS)
            .build()
            .unwrap();
        let page = "?limit=50".to_owned();
        println!(
            "DSP catalog (POST catalog/request), caap serve on SQLite, {CLIENTS} concurrent clients, {secs} s per kind"
        );

        println!("== 1 dataset, 1 offer ==");
        let dir = tempfile::tempdir().unwrap();
        let p = connector(dir.path(), 1, 1).await;
        measure(&client, &p, secs, &[("1-dataset catalog", String::new(), Value::Null)], None).await;
        drop(p);

        println!("== 1,000 datasets in {OFFERS} offers ==");
        let dir = tempfile::tempdir().unwrap();
        let p = connector(dir.path(), 1_000, OFFERS).await;
        let small = measure(&client, &p, secs, &[("first page (50)", page.clone(), Value::Null)], None).await;
        drop(p);

        println!("== 10,000 datasets in {OFFERS} offers ==");
        let dir = tempfile::tempdir().unwrap();
        let p = connector(dir.path(), 10_000, OFFERS).await;
        let middle = Cursor::After(dataset_id(5_000)).token().unwrap();
        let large = measure(
            &client,
            &p,
            secs,
            &[
                ("first page (50)", page.clone(), Value::Null),
                ("middle page (50 after #5,000)", format!("{page}&continuationToken={middle}"), Value::Null),
                ("filtered (dataModel, 1 in 10), first page", page.clone(),
                    json!([{"dataModel": "StreetLight"}])),
            ],
            small.first(),
        )
        .await;
        drop(p);
        let (s, l) = (&small[0], &large[0]);
        println!(
            "first page: 10,000 datasets at {:.2}× the 1,000-dataset rate (target 0.90–1.10), p99 {:.1} ms (target ≤ 20 ms)",
            l.rate / s.rate,
            l.p(0.99)
        );
    });
}
