//! The DSP TCK profile's scripted counterpart: what a human operator would do with `caap` during the
//! Eclipse DSP TCK, done by a small program next to an unchanged `caap serve`.
//!
//! * On start it seeds the connector through the management API: the datasets the TCK asks for (CAT0101,
//!   CAT0102, ACN0101 … ACN0304; CAT0103 deliberately absent), each with the offer id of the TCK's sample
//!   properties and `approval = "stepwise"`, so that caap takes no provider step by itself.
//! * It serves the TCK's two "initiate" webhooks: the negotiation one starts a consumer negotiation with
//!   `manual = true` (no automatic consumer step); the transfer one answers 501 until transfers exist.
//! * It polls `GET /api/v1/negotiations` and, per dataset id, takes caap's side of the TCK scenario through
//!   `POST /api/v1/negotiations/{id}/{step}`, a few hundred milliseconds after the counterparty's message
//!   (the TCK records its own state only after its POSTs return).
//!
//! Where a negotiation is in its scenario is the number of transitions in its history (`… -> STATE`
//! lines), checked against the state it should be in; caap acts only when nothing is on its way
//! (`pending` is null). None of this is in the default build: it is the TCK profile only.
//!
//! Run it through `examples/tck/serve.sh`, or as
//! `cargo run -p caap-connector --example tck-script -- --config examples/tck/caap.toml`.
//! Settings (environment): `TCK_SCRIPT_BIND` (webhooks, default 127.0.0.1:8687), `TCK_REACTION_MS`
//! (default 300), `TCK_POLL_MS` (default 100).
#![allow(
    clippy::print_stdout,
    reason = "an example program: its log on stdout is its output"
)]

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{App, HttpResponse, HttpServer, web};
use anyhow::{Context, bail};
use caap_connector::config::Config;
use serde::Deserialize;
use serde_json::{Value, json};

/// One move of a TCK scenario, in order, and the state the negotiation is in after it.
#[derive(Debug, Clone, Copy)]
enum Turn {
    /// The TCK's message.
    Them(&'static str),
    /// caap's step (`request` is taken by the initiate webhook, the others by this script).
    Us(&'static str, &'static str),
}

use Turn::{Them as T, Us as U};

const REQUESTED: Turn = T("REQUESTED");
const START: Turn = U("request", "REQUESTED");

/// CN (caap is the provider), keyed by dataset id: DSP-TCK.md's sequences, one turn per transition.
const PROVIDER: &[(&str, &[Turn])] = &[
    // request, provider offers, consumer terminates.
    (
        "ACN0101",
        &[REQUESTED, U("offer", "OFFERED"), T("TERMINATED")],
    ),
    // request, offer, consumer counter-offers, provider terminates.
    (
        "ACN0102",
        &[
            REQUESTED,
            U("offer", "OFFERED"),
            T("REQUESTED"),
            U("terminate", "TERMINATED"),
        ],
    ),
    // request, offer, accept, agree, verify, finalize.
    (
        "ACN0103",
        &[
            REQUESTED,
            U("offer", "OFFERED"),
            T("ACCEPTED"),
            U("agree", "AGREED"),
            T("VERIFIED"),
            U("finalize", "FINALIZED"),
        ],
    ),
    // request, agree, verify, finalize.
    (
        "ACN0104",
        &[
            REQUESTED,
            U("agree", "AGREED"),
            T("VERIFIED"),
            U("finalize", "FINALIZED"),
        ],
    ),
    // request, provider terminates.
    ("ACN0201", &[REQUESTED, U("terminate", "TERMINATED")]),
    // request, consumer terminates.
    ("ACN0202", &[REQUESTED, T("TERMINATED")]),
    // request, agree, consumer terminates.
    (
        "ACN0203",
        &[REQUESTED, U("agree", "AGREED"), T("TERMINATED")],
    ),
    // request, offer, consumer terminates.
    (
        "ACN0204",
        &[REQUESTED, U("offer", "OFFERED"), T("TERMINATED")],
    ),
    // request, offer, provider terminates.
    (
        "ACN0205",
        &[
            REQUESTED,
            U("offer", "OFFERED"),
            U("terminate", "TERMINATED"),
        ],
    ),
    // request, offer, accept, provider terminates.
    (
        "ACN0206",
        &[
            REQUESTED,
            U("offer", "OFFERED"),
            T("ACCEPTED"),
            U("terminate", "TERMINATED"),
        ],
    ),
    // request, agree, verify, provider terminates.
    (
        "ACN0207",
        &[
            REQUESTED,
            U("agree", "AGREED"),
            T("VERIFIED"),
            U("terminate", "TERMINATED"),
        ],
    ),
    // request, agree, verify, finalize; then an illegal termination (caap must answer 4xx).
    (
        "ACN0301",
        &[
            REQUESTED,
            U("agree", "AGREED"),
            T("VERIFIED"),
            U("finalize", "FINALIZED"),
        ],
    ),
    // request, offer; then an illegal verification.
    ("ACN0302", &[REQUESTED, U("offer", "OFFERED")]),
    // request, offer, accept; then an illegal verification.
    (
        "ACN0303",
        &[REQUESTED, U("offer", "OFFERED"), T("ACCEPTED")],
    ),
    // request, offer, counter-offer; then an illegal second counter-offer.
    (
        "ACN0304",
        &[REQUESTED, U("offer", "OFFERED"), T("REQUESTED")],
    ),
];

/// CN_C (caap is the consumer), keyed by the dataset id the TCK sends to the initiate webhook.
const CONSUMER: &[(&str, &[Turn])] = &[
    // offer, accept, agree, verify, finalize.
    (
        "ACNC0101",
        &[
            START,
            T("OFFERED"),
            U("accept", "ACCEPTED"),
            T("AGREED"),
            U("verify", "VERIFIED"),
            T("FINALIZED"),
        ],
    ),
    // offer, counter-offer, TCK terminates.
    (
        "ACNC0102",
        &[
            START,
            T("OFFERED"),
            U("counter-offer", "REQUESTED"),
            T("TERMINATED"),
        ],
    ),
    // offer, caap terminates.
    (
        "ACNC0103",
        &[START, T("OFFERED"), U("terminate", "TERMINATED")],
    ),
    // agree, verify, finalize.
    (
        "ACNC0104",
        &[START, T("AGREED"), U("verify", "VERIFIED"), T("FINALIZED")],
    ),
    // TCK terminates after the request.
    ("ACNC0201", &[START, T("TERMINATED")]),
    // caap terminates after its own request.
    ("ACNC0202", &[START, U("terminate", "TERMINATED")]),
    // agree, caap terminates.
    (
        "ACNC0203",
        &[START, T("AGREED"), U("terminate", "TERMINATED")],
    ),
    // offer, TCK terminates.
    ("ACNC0204", &[START, T("OFFERED"), T("TERMINATED")]),
    // offer, accept, TCK terminates.
    (
        "ACNC0205",
        &[
            START,
            T("OFFERED"),
            U("accept", "ACCEPTED"),
            T("TERMINATED"),
        ],
    ),
    // agree, verify, TCK terminates.
    (
        "ACNC0206",
        &[START, T("AGREED"), U("verify", "VERIFIED"), T("TERMINATED")],
    ),
    // an illegal FINALIZED while REQUESTED.
    ("ACNC0301", &[START]),
    // offer; then an illegal agreement while OFFERED.
    ("ACNC0302", &[START, T("OFFERED")]),
    // offer; then an illegal FINALIZED while OFFERED.
    ("ACNC0303", &[START, T("OFFERED")]),
    // offer, accept; then an illegal FINALIZED while ACCEPTED.
    ("ACNC0304", &[START, T("OFFERED"), U("accept", "ACCEPTED")]),
    // offer, accept; then an illegal new offer while ACCEPTED.
    ("ACNC0305", &[START, T("OFFERED"), U("accept", "ACCEPTED")]),
    // offer, accept, agree; then an illegal FINALIZED while AGREED (so no verification here).
    (
        "ACNC0306",
        &[START, T("OFFERED"), U("accept", "ACCEPTED"), T("AGREED")],
    ),
];

/// Catalog datasets (CAT_01_03's CAT0103 must not exist).
const CATALOG: &[&str] = &["CAT0101", "CAT0102"];

/// The offer id of a seeded dataset, as in the TCK's sample properties (`CD123:ACN0101:456`).
fn offer_id(dataset: &str) -> String {
    format!("CD123:{dataset}:456")
}

fn scenario(role: &str, dataset: &str) -> Option<&'static [Turn]> {
    let table = match role {
        "provider" => PROVIDER,
        "consumer" => CONSUMER,
        _ => return None,
    };
    table.iter().find(|(d, _)| *d == dataset).map(|(_, s)| *s)
}

/// The management API of the connector under test.
#[derive(Debug, Clone)]
struct Api {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Api {
    async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<(u16, Value)> {
        let url = format!("{}{path}", self.base);
        let mut req = match method {
            "GET" => self.http.get(&url),
            _ => self.http.post(&url),
        }
        .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(b);
        }
        let res = req
            .send()
            .await
            .with_context(|| format!("{method} {url}"))?;
        let status = res.status().as_u16();
        let text = res.text().await.unwrap_or_default();
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Ok((status, value))
    }

    async fn wait_until_up(&self) -> anyhow::Result<()> {
        for _ in 0..300 {
            if let Ok(res) = self.http.get(format!("{}/health", self.base)).send().await
                && res.status().is_success()
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        bail!(
            "the management API at {} did not come up within 60 s",
            self.base
        )
    }

    /// Every negotiation (following the pages).
    async fn negotiations(&self) -> anyhow::Result<Vec<Value>> {
        let mut out = Vec::new();
        let mut path = "/api/v1/negotiations?limit=500".to_owned();
        loop {
            let (status, page) = self.call("GET", &path, None).await?;
            if status != 200 {
                bail!("GET {path} answered {status}: {page}");
            }
            if let Some(items) = page.get("items").and_then(Value::as_array) {
                out.extend(items.iter().cloned());
            }
            match page.get("next").and_then(Value::as_str) {
                Some(next) => path = format!("/api/v1/negotiations?limit=500&cursor={next}"),
                None => return Ok(out),
            }
        }
    }
}

/// Creates a document; one that exists already (409) is fine.
async fn seed_one(api: &Api, path: &str, body: Value) -> anyhow::Result<()> {
    let (status, answer) = api.call("POST", path, Some(&body)).await?;
    match status {
        201 => Ok(()),
        409 => {
            println!("seed: {path} {} exists already", body["id"]);
            Ok(())
        }
        _ => bail!("POST {path} {} answered {status}: {answer}", body["id"]),
    }
}

async fn seed(api: &Api, data_base: &str) -> anyhow::Result<()> {
    seed_one(
        api,
        "/api/v1/policies",
        json!({"id": "tck-use", "policy": {"@type": "Set", "permission": [{"action": "use"}]}}),
    )
    .await?;
    let provider = PROVIDER.iter().map(|(d, _)| *d);
    for dataset in CATALOG.iter().copied().chain(provider) {
        seed_one(
            api,
            "/api/v1/assets",
            json!({
                "id": dataset,
                "title": format!("DSP TCK dataset {dataset}"),
                "description": "Seeded by the DSP TCK profile of caap (examples/tck).",
                "keywords": ["dsp-tck"],
                "mediaType": "application/json",
                "dataAddress": {"type": "HttpApi", "url": format!("{data_base}/tck/data/{dataset}")},
            }),
        )
        .await?;
        seed_one(
            api,
            "/api/v1/offers",
            json!({
                "id": offer_id(dataset),
                "assets": [dataset],
                "accessPolicy": "tck-use",
                "contractPolicy": "tck-use",
                "approval": "stepwise",
            }),
        )
        .await?;
        println!("seed: dataset {dataset} with offer {}", offer_id(dataset));
    }
    Ok(())
}

/// The body of the TCK's negotiation initiate call.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct InitiateNegotiation {
    provider_id: String,
    dataset_id: String,
    offer_id: String,
    connector_address: String,
}

async fn initiate_negotiation(api: web::Data<Api>, body: web::Bytes) -> HttpResponse {
    let start: InitiateNegotiation = match serde_json::from_slice(&body) {
        Ok(s) => s,
        Err(e) => {
            println!("webhook: negotiation initiate with a bad body: {e}");
            return HttpResponse::BadRequest().json(json!({
                "error": format!("expected {{providerId, datasetId, offerId, connectorAddress}}: {e}")
            }));
        }
    };
    println!(
        "webhook: start a consumer negotiation for {} (offer {}) with {} at {}",
        start.dataset_id, start.offer_id, start.provider_id, start.connector_address
    );
    let request = json!({
        "counterPartyAddress": start.connector_address,
        "counterPartyId": start.provider_id,
        "offer": {
            "@id": start.offer_id,
            "@type": "Offer",
            "target": start.dataset_id,
            "permission": [{"action": "use"}],
        },
        "manual": true,
    });
    match api
        .call("POST", "/api/v1/negotiations", Some(&request))
        .await
    {
        Ok((status, answer)) => {
            println!(
                "webhook: caap answered {status}: negotiation {}",
                answer.get("id").unwrap_or(&answer)
            );
            HttpResponse::build(StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY))
                .json(answer)
        }
        Err(e) => {
            println!("webhook: the management API failed: {e:#}");
            HttpResponse::BadGateway().json(json!({"error": format!("{e:#}")}))
        }
    }
}

async fn initiate_transfer(body: web::Bytes) -> HttpResponse {
    println!(
        "webhook: transfer initiate ({}) refused: not implemented yet",
        String::from_utf8_lossy(&body)
    );
    HttpResponse::NotImplemented().json(json!({
        "error": "caap has no transfer process yet: transfers come with the transfer-process issue",
    }))
}

async fn data(id: web::Path<String>) -> HttpResponse {
    HttpResponse::Ok().json(json!({"dataset": id.into_inner(), "source": "caap DSP TCK profile"}))
}

/// What the poller knows: attempts per step (negotiation id, turn index), the steps being taken now, the
/// last position shown per negotiation, and the negotiations without a scenario.
#[derive(Debug, Default)]
struct Memory {
    attempts: HashMap<(String, usize), u32>,
    in_flight: HashSet<(String, usize)>,
    shown: HashMap<String, (usize, String)>,
    unknown: HashSet<String>,
}

/// Most attempts at one scripted step (a refused step is retried on the next polls).
const MAX_ATTEMPTS: u32 = 3;

/// Where a negotiation is: (transitions so far, state).
fn position(n: &Value) -> (usize, String) {
    let count = n
        .get("history")
        .and_then(Value::as_array)
        .map(|h| {
            h.iter()
                .filter(|i| {
                    i.get("what")
                        .and_then(Value::as_str)
                        .is_some_and(|w| w.contains(" -> "))
                })
                .count()
        })
        .unwrap_or(0);
    let state = n
        .get("state")
        .and_then(Value::as_str)
        .unwrap_or("(none)")
        .to_owned();
    (count, state)
}

fn text<'a>(n: &'a Value, key: &str) -> &'a str {
    n.get(key).and_then(Value::as_str).unwrap_or_default()
}

/// The step caap owes now in `n`'s scenario, if any: (turn index, step).
fn due(n: &Value) -> Option<(usize, &'static str)> {
    let turns = scenario(text(n, "role"), text(n, "datasetId"))?;
    if n.get("pending").is_some_and(|p| !p.is_null()) {
        return None;
    }
    let (count, state) = position(n);
    let Some(Turn::Us(step, _)) = turns.get(count) else {
        return None;
    };
    if *step == "request" {
        return None;
    }
    let expected = match count.checked_sub(1).and_then(|i| turns.get(i)) {
        Some(Turn::Them(s) | Turn::Us(_, s)) => *s,
        None => "(none)",
    };
    (state == expected).then_some((count, *step))
}

fn step_body(n: &Value, step: &str) -> Option<Value> {
    match step {
        "offer" | "counter-offer" => {
            Some(json!({"offer": n.get("offer").cloned().unwrap_or_default()}))
        }
        "terminate" => Some(json!({
            "code": "tck-scripted",
            "reason": format!("scripted termination for {} (caap DSP TCK profile)", text(n, "datasetId")),
        })),
        _ => None,
    }
}

/// Waits `reaction`, checks the negotiation is still where it was, and takes `step`.
async fn react(
    api: Api,
    memory: Arc<Mutex<Memory>>,
    id: String,
    index: usize,
    step: &'static str,
    reaction: Duration,
) {
    tokio::time::sleep(reaction).await;
    take(&api, &id, index, step).await;
    if let Ok(mut m) = memory.lock() {
        m.in_flight.remove(&(id, index));
    }
}

async fn take(api: &Api, id: &str, index: usize, step: &'static str) {
    let path = format!("/api/v1/negotiations/{id}");
    let n = match api.call("GET", &path, None).await {
        Ok((200, n)) => n,
        Ok((status, answer)) => {
            println!("{id}: GET answered {status}: {answer}");
            return;
        }
        Err(e) => {
            println!("{id}: {e:#}");
            return;
        }
    };
    if due(&n) != Some((index, step)) {
        return;
    }
    let dataset = text(&n, "datasetId");
    println!(
        "{dataset} {id}: taking step `{step}` as {} (turn {})",
        text(&n, "role"),
        index + 1
    );
    let body = step_body(&n, step);
    match api
        .call("POST", &format!("{path}/{step}"), body.as_ref())
        .await
    {
        Ok((200, after)) => println!(
            "{dataset} {id}: `{step}` accepted by caap; it is sending {}",
            text(&after, "pending")
        ),
        Ok((status, answer)) => {
            println!("{dataset} {id}: `{step}` refused with {status}: {answer}")
        }
        Err(e) => println!("{dataset} {id}: `{step}` failed: {e:#}"),
    }
}

async fn poll(api: Api, every: Duration, reaction: Duration) {
    let memory = Arc::new(Mutex::new(Memory::default()));
    let mut failing = false;
    loop {
        tokio::time::sleep(every).await;
        let negotiations = match api.negotiations().await {
            Ok(n) => n,
            Err(e) => {
                if !failing {
                    println!("poll: {e:#} (retrying quietly)");
                    failing = true;
                }
                continue;
            }
        };
        if failing {
            println!("poll: the management API answers again");
            failing = false;
        }
        for n in negotiations {
            let id = text(&n, "id").to_owned();
            let dataset = text(&n, "datasetId").to_owned();
            let role = text(&n, "role").to_owned();
            let Ok(mut m) = memory.lock() else { return };
            let Some(turns) = scenario(&role, &dataset) else {
                if m.unknown.insert(id.clone()) {
                    println!(
                        "{dataset} {id}: no TCK scenario for this dataset as {role}; leaving it alone"
                    );
                }
                continue;
            };
            let now = position(&n);
            if m.shown.get(&id) != Some(&now) {
                let why = n
                    .get("termination")
                    .and_then(|t| t.get("reason"))
                    .and_then(Value::as_str)
                    .map(|r| format!(" ({r})"))
                    .unwrap_or_default();
                println!(
                    "{dataset} {id}: {role}, {} after {}/{} turns{why}",
                    now.1,
                    now.0,
                    turns.len()
                );
                m.shown.insert(id.clone(), now);
            }
            let Some((index, step)) = due(&n) else {
                continue;
            };
            let key = (id.clone(), index);
            if m.in_flight.contains(&key) {
                continue;
            }
            let attempts = m.attempts.entry(key.clone()).or_insert(0);
            if *attempts >= MAX_ATTEMPTS {
                continue;
            }
            *attempts += 1;
            m.in_flight.insert(key);
            drop(m);
            actix_web::rt::spawn(react(
                api.clone(),
                memory.clone(),
                id,
                index,
                step,
                reaction,
            ));
        }
    }
}

fn env_ms(name: &str, default: u64) -> anyhow::Result<Duration> {
    match std::env::var(name) {
        Ok(v) => v
            .trim()
            .parse()
            .map(Duration::from_millis)
            .with_context(|| format!("{name}=`{v}` is not a number of milliseconds")),
        Err(_) => Ok(Duration::from_millis(default)),
    }
}

#[actix_web::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let mut config_path = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/tck/caap.toml"
    ));
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--config" | "-c" => {
                config_path = args.next().context("--config needs a file")?.into();
            }
            other => bail!("unknown argument `{other}`; usage: tck-script [--config caap.toml]"),
        }
    }
    let config = Config::load(&config_path, std::env::vars())
        .with_context(|| format!("loading {}", config_path.display()))?;
    let mut api_addr = config.api.bind;
    if api_addr.ip().is_unspecified() {
        api_addr.set_ip(IpAddr::V4(Ipv4Addr::LOCALHOST));
    }
    let api = Api {
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .context("HTTP client")?,
        base: format!("http://{api_addr}"),
        token: config.api.admin_token.expose().to_owned(),
    };
    let bind: SocketAddr = std::env::var("TCK_SCRIPT_BIND")
        .unwrap_or_else(|_| "127.0.0.1:8687".into())
        .parse()
        .context("TCK_SCRIPT_BIND must be an address such as 127.0.0.1:8687")?;
    let reaction = env_ms("TCK_REACTION_MS", 300)?;
    let every = env_ms("TCK_POLL_MS", 100)?;

    println!(
        "tck-script: waiting for caap's management API at {}",
        api.base
    );
    api.wait_until_up().await?;
    let data_host = if bind.ip().is_unspecified() {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), bind.port())
    } else {
        bind
    };
    seed(&api, &format!("http://{data_host}")).await?;
    println!(
        "tck-script: seeded; webhooks at http://{bind}/tck/negotiations/requests and \
         http://{bind}/tck/transfers/requests; reacting {} ms after each message",
        reaction.as_millis()
    );
    actix_web::rt::spawn(poll(api.clone(), every, reaction));
    let state = web::Data::new(api);
    HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .route(
                "/tck/negotiations/requests",
                web::post().to(initiate_negotiation),
            )
            .route("/tck/transfers/requests", web::post().to(initiate_transfer))
            .route("/tck/data/{id}", web::get().to(data))
    })
    .workers(1)
    .bind(bind)
    .with_context(|| format!("binding the webhooks to {bind} (TCK_SCRIPT_BIND)"))?
    .run()
    .await
    .context("webhook server")?;
    Ok(())
}
