//! The DSP TCK profile's scripted counterpart: what a human operator would do with `caap` during the
//! Eclipse DSP TCK, done by a small program next to an unchanged `caap serve`.
//!
//! * On start it seeds the connector through the management API: the datasets the TCK asks for (CAT0101,
//!   CAT0102, ACN0101 … ACN0304; CAT0103 deliberately absent), each with the offer id of the TCK's sample
//!   properties and `approval = "stepwise"`, so that caap takes no provider step by itself; and the TP
//!   tests' pre-existing agreements ATP0101 … ATP0306 with `TCK_PARTICIPANT` as consumer, on the dataset
//!   `TCK-TP-DATA`, imported `stepwise` (caap takes no provider transfer step by itself).
//! * It serves the TCK's two "initiate" webhooks: the negotiation one starts a consumer negotiation, the
//!   transfer one a consumer transfer (for the TCK's agreement, which caap does not hold), both with
//!   `manual = true` (no automatic consumer step).
//! * It polls `GET /api/v1/negotiations` and `GET /api/v1/transfers` and, per dataset id (negotiations) or
//!   agreement id (transfers), takes caap's side of the TCK scenario through
//!   `POST /api/v1/{negotiations|transfers}/{id}/{step}`, a few hundred milliseconds after the
//!   counterparty's message (the TCK records its own state only after its POSTs return).
//!
//! Where a process is in its scenario is the number of transitions in its history (`… -> STATE`
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

/// One move of a TCK scenario, in order, and the state the process (negotiation or transfer) is in after it.
#[derive(Debug, Clone, Copy)]
enum Turn {
    /// The TCK's message.
    Them(&'static str),
    /// caap's step (`request` is taken by an initiate webhook, the others by this script).
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

const STARTED: Turn = U("start", "STARTED");

/// TP (caap is the provider), keyed by agreement id: the TCK's TransferProcessProvider0xTest sequences.
/// The TCK's consumer requests; caap starts, suspends, resumes, completes or terminates.
const TP_PROVIDER: &[(&str, &[Turn])] = &[
    // start, provider terminates.
    (
        "ATP0101",
        &[REQUESTED, STARTED, U("terminate", "TERMINATED")],
    ),
    // start, provider completes.
    ("ATP0102", &[REQUESTED, STARTED, U("complete", "COMPLETED")]),
    // start, provider suspends, provider terminates.
    (
        "ATP0103",
        &[
            REQUESTED,
            STARTED,
            U("suspend", "SUSPENDED"),
            U("terminate", "TERMINATED"),
        ],
    ),
    // start, provider suspends, starts again, completes.
    (
        "ATP0104",
        &[
            REQUESTED,
            STARTED,
            U("suspend", "SUSPENDED"),
            U("resume", "STARTED"),
            U("complete", "COMPLETED"),
        ],
    ),
    // provider terminates while REQUESTED.
    ("ATP0105", &[REQUESTED, U("terminate", "TERMINATED")]),
    // start, consumer terminates.
    ("ATP0201", &[REQUESTED, STARTED, T("TERMINATED")]),
    // start, consumer completes.
    ("ATP0202", &[REQUESTED, STARTED, T("COMPLETED")]),
    // start, consumer suspends, consumer terminates.
    (
        "ATP0203",
        &[REQUESTED, STARTED, T("SUSPENDED"), T("TERMINATED")],
    ),
    // start, consumer suspends, starts again, completes (@Disabled in the TCK).
    (
        "ATP0204",
        &[
            REQUESTED,
            STARTED,
            T("SUSPENDED"),
            T("STARTED"),
            T("COMPLETED"),
        ],
    ),
    // consumer terminates while REQUESTED.
    ("ATP0205", &[REQUESTED, T("TERMINATED")]),
    // an illegal consumer completion while REQUESTED.
    ("ATP0301", &[REQUESTED]),
    // an illegal consumer suspension while REQUESTED.
    ("ATP0302", &[REQUESTED]),
    // start, consumer suspends; then an illegal completion while SUSPENDED.
    ("ATP0303", &[REQUESTED, STARTED, T("SUSPENDED")]),
    // start, consumer terminates; then an illegal start after TERMINATED.
    ("ATP0304", &[REQUESTED, STARTED, T("TERMINATED")]),
    // start, consumer terminates; then an illegal suspension after TERMINATED.
    ("ATP0305", &[REQUESTED, STARTED, T("TERMINATED")]),
    // start, consumer terminates; then an illegal completion after TERMINATED.
    ("ATP0306", &[REQUESTED, STARTED, T("TERMINATED")]),
];

/// TP_C (caap is the consumer), keyed by the agreement id the TCK sends to the transfer initiate webhook:
/// the TCK's TransferProcessConsumer0xTest sequences. caap requests; the TCK's provider starts; caap
/// suspends, resumes, completes or terminates.
const TP_CONSUMER: &[(&str, &[Turn])] = &[
    // TCK starts, TCK terminates.
    ("ATPC0101", &[START, T("STARTED"), T("TERMINATED")]),
    // TCK starts, TCK completes.
    ("ATPC0102", &[START, T("STARTED"), T("COMPLETED")]),
    // TCK starts, suspends, terminates.
    (
        "ATPC0103",
        &[START, T("STARTED"), T("SUSPENDED"), T("TERMINATED")],
    ),
    // TCK starts, suspends, starts again, completes.
    (
        "ATPC0104",
        &[
            START,
            T("STARTED"),
            T("SUSPENDED"),
            T("STARTED"),
            T("COMPLETED"),
        ],
    ),
    // TCK terminates while REQUESTED.
    ("ATPC0105", &[START, T("TERMINATED")]),
    // TCK starts, caap terminates.
    (
        "ATPC0201",
        &[START, T("STARTED"), U("terminate", "TERMINATED")],
    ),
    // TCK starts, caap completes.
    (
        "ATPC0202",
        &[START, T("STARTED"), U("complete", "COMPLETED")],
    ),
    // TCK starts, caap suspends, caap terminates.
    (
        "ATPC0203",
        &[
            START,
            T("STARTED"),
            U("suspend", "SUSPENDED"),
            U("terminate", "TERMINATED"),
        ],
    ),
    // TCK starts, caap suspends, starts again, completes (@Disabled in the TCK).
    (
        "ATPC0204",
        &[
            START,
            T("STARTED"),
            U("suspend", "SUSPENDED"),
            U("resume", "STARTED"),
            U("complete", "COMPLETED"),
        ],
    ),
    // caap terminates while REQUESTED.
    ("ATPC0205", &[START, U("terminate", "TERMINATED")]),
    // an illegal TCK completion while REQUESTED.
    ("ATPC0301", &[START]),
    // an illegal TCK suspension while REQUESTED.
    ("ATPC0302", &[START]),
    // TCK starts, suspends; then an illegal completion while SUSPENDED.
    ("ATPC0303", &[START, T("STARTED"), T("SUSPENDED")]),
    // TCK starts, terminates; then an illegal start after TERMINATED.
    ("ATPC0304", &[START, T("STARTED"), T("TERMINATED")]),
    // TCK starts, terminates; then an illegal suspension after TERMINATED.
    ("ATPC0305", &[START, T("STARTED"), T("TERMINATED")]),
    // TCK starts, terminates; then an illegal completion after TERMINATED.
    ("ATPC0306", &[START, T("STARTED"), T("TERMINATED")]),
];

/// The dataset the TP agreements cover.
const TP_DATASET: &str = "TCK-TP-DATA";

/// The TCK's own participant id (the consumer of the TP agreements).
const TCK_PARTICIPANT: &str = "TCK_PARTICIPANT";

/// Catalog datasets (CAT_01_03's CAT0103 must not exist).
const CATALOG: &[&str] = &["CAT0101", "CAT0102"];

/// The offer id of a seeded dataset, as in the TCK's sample properties (`CD123:ACN0101:456`).
fn offer_id(dataset: &str) -> String {
    format!("CD123:{dataset}:456")
}

/// What the script follows: negotiations (scenarios keyed by dataset id) and transfer processes (keyed by
/// agreement id).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Negotiation,
    Transfer,
}

impl Kind {
    const ALL: [Kind; 2] = [Kind::Negotiation, Kind::Transfer];

    /// The management API's collection.
    fn path(self) -> &'static str {
        match self {
            Kind::Negotiation => "/api/v1/negotiations",
            Kind::Transfer => "/api/v1/transfers",
        }
    }

    /// The field the scenarios are keyed by.
    fn key_field(self) -> &'static str {
        match self {
            Kind::Negotiation => "datasetId",
            Kind::Transfer => "agreementId",
        }
    }

    /// What the key is, for the log.
    fn key_name(self) -> &'static str {
        match self {
            Kind::Negotiation => "dataset",
            Kind::Transfer => "agreement",
        }
    }
}

/// The scenario key of a process: its dataset id (negotiations) or agreement id (transfers).
fn key(kind: Kind, n: &Value) -> &str {
    text(n, kind.key_field())
}

fn scenario(kind: Kind, role: &str, key: &str) -> Option<&'static [Turn]> {
    let table = match (kind, role) {
        (Kind::Negotiation, "provider") => PROVIDER,
        (Kind::Negotiation, "consumer") => CONSUMER,
        (Kind::Transfer, "provider") => TP_PROVIDER,
        (Kind::Transfer, "consumer") => TP_CONSUMER,
        _ => return None,
    };
    table.iter().find(|(d, _)| *d == key).map(|(_, s)| *s)
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

    /// Every negotiation or transfer (following the pages).
    async fn list(&self, kind: Kind) -> anyhow::Result<Vec<Value>> {
        let mut out = Vec::new();
        let base = kind.path();
        let mut path = format!("{base}?limit=500");
        loop {
            let (status, page) = self.call("GET", &path, None).await?;
            if status != 200 {
                bail!("GET {path} answered {status}: {page}");
            }
            if let Some(items) = page.get("items").and_then(Value::as_array) {
                out.extend(items.iter().cloned());
            }
            match page.get("next").and_then(Value::as_str) {
                Some(next) => path = format!("{base}?limit=500&cursor={next}"),
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
    // TP: the pre-existing agreements the TCK's consumer names in its transfer requests, on one dataset.
    // No offer: the agreements are imported, not negotiated.
    seed_one(
        api,
        "/api/v1/assets",
        json!({
            "id": TP_DATASET,
            "title": "DSP TCK transfer dataset",
            "description": "The dataset of the DSP TCK's pre-existing agreements ATP0101 … (caap examples/tck).",
            "keywords": ["dsp-tck"],
            "mediaType": "application/json",
            "dataAddress": {"type": "HttpApi", "url": format!("{data_base}/tck/data/{TP_DATASET}")},
        }),
    )
    .await?;
    for (agreement, _) in TP_PROVIDER {
        seed_one(
            api,
            "/api/v1/agreements",
            json!({
                "id": agreement,
                "consumerId": TCK_PARTICIPANT,
                "datasetId": TP_DATASET,
                "policy": {"permission": [{"action": "use"}]},
                "stepwise": true,
            }),
        )
        .await?;
    }
    println!(
        "seed: agreements {} … {} for {TCK_PARTICIPANT} on {TP_DATASET}, stepwise",
        TP_PROVIDER.first().map_or("", |(a, _)| *a),
        TP_PROVIDER.last().map_or("", |(a, _)| *a),
    );
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

/// The body of the TCK's transfer initiate call.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct InitiateTransfer {
    provider_id: String,
    agreement_id: String,
    format: String,
    connector_address: String,
}

async fn initiate_transfer(api: web::Data<Api>, body: web::Bytes) -> HttpResponse {
    let start: InitiateTransfer = match serde_json::from_slice(&body) {
        Ok(s) => s,
        Err(e) => {
            println!("webhook: transfer initiate with a bad body: {e}");
            return HttpResponse::BadRequest().json(json!({
                "error": format!("expected {{providerId, agreementId, format, connectorAddress}}: {e}")
            }));
        }
    };
    println!(
        "webhook: start a consumer transfer under agreement {} ({}) with {} at {}",
        start.agreement_id, start.format, start.provider_id, start.connector_address
    );
    // The TCK's agreement is not in caap's store: name the provider and its DSP base explicitly.
    let request = json!({
        "agreementId": start.agreement_id,
        "format": start.format,
        "counterPartyAddress": start.connector_address,
        "counterPartyId": start.provider_id,
        "manual": true,
    });
    match api.call("POST", "/api/v1/transfers", Some(&request)).await {
        Ok((status, answer)) => {
            println!(
                "webhook: caap answered {status}: transfer {}",
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

async fn data(id: web::Path<String>) -> HttpResponse {
    HttpResponse::Ok().json(json!({"dataset": id.into_inner(), "source": "caap DSP TCK profile"}))
}

/// What the poller knows: attempts per step (process id, turn index), the steps being taken now, the
/// last position shown per process, and the processes without a scenario. (Negotiation and transfer ids
/// are random UUIDs, so one map serves both.)
#[derive(Debug, Default)]
struct Memory {
    attempts: HashMap<(String, usize), u32>,
    in_flight: HashSet<(String, usize)>,
    shown: HashMap<String, (usize, String)>,
    unknown: HashSet<String>,
}

/// Most attempts at one scripted step (a refused step is retried on the next polls).
const MAX_ATTEMPTS: u32 = 3;

/// Where a negotiation or transfer is: (transitions so far, state).
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
fn due(kind: Kind, n: &Value) -> Option<(usize, &'static str)> {
    let turns = scenario(kind, text(n, "role"), key(kind, n))?;
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

fn step_body(kind: Kind, n: &Value, step: &str) -> Option<Value> {
    match (kind, step) {
        (Kind::Negotiation, "offer" | "counter-offer") => {
            Some(json!({"offer": n.get("offer").cloned().unwrap_or_default()}))
        }
        (_, "terminate" | "suspend") => Some(json!({
            "code": "tck-scripted",
            "reason": format!(
                "scripted {step} for {} {} (caap DSP TCK profile)",
                kind.key_name(),
                key(kind, n)
            ),
        })),
        _ => None,
    }
}

/// Waits `reaction`, checks the process is still where it was, and takes `step`.
async fn react(
    api: Api,
    memory: Arc<Mutex<Memory>>,
    kind: Kind,
    id: String,
    index: usize,
    step: &'static str,
    reaction: Duration,
) {
    tokio::time::sleep(reaction).await;
    take(&api, kind, &id, index, step).await;
    if let Ok(mut m) = memory.lock() {
        m.in_flight.remove(&(id, index));
    }
}

async fn take(api: &Api, kind: Kind, id: &str, index: usize, step: &'static str) {
    let path = format!("{}/{id}", kind.path());
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
    if due(kind, &n) != Some((index, step)) {
        return;
    }
    let name = key(kind, &n);
    println!(
        "{name} {id}: taking step `{step}` as {} (turn {})",
        text(&n, "role"),
        index + 1
    );
    let body = step_body(kind, &n, step);
    match api
        .call("POST", &format!("{path}/{step}"), body.as_ref())
        .await
    {
        Ok((200, after)) => println!(
            "{name} {id}: `{step}` accepted by caap; it is sending {}",
            text(&after, "pending")
        ),
        Ok((status, answer)) => {
            println!("{name} {id}: `{step}` refused with {status}: {answer}")
        }
        Err(e) => println!("{name} {id}: `{step}` failed: {e:#}"),
    }
}

/// Looks at every process of one kind and schedules the steps caap owes.
fn follow(
    api: &Api,
    memory: &Arc<Mutex<Memory>>,
    kind: Kind,
    processes: Vec<Value>,
    reaction: Duration,
) {
    for n in processes {
        let id = text(&n, "id").to_owned();
        let name = key(kind, &n).to_owned();
        let role = text(&n, "role").to_owned();
        let Ok(mut m) = memory.lock() else { return };
        let Some(turns) = scenario(kind, &role, &name) else {
            if m.unknown.insert(id.clone()) {
                println!(
                    "{name} {id}: no TCK scenario for this {} as {role}; leaving it alone",
                    kind.key_name()
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
                "{name} {id}: {role}, {} after {}/{} turns{why}",
                now.1,
                now.0,
                turns.len()
            );
            m.shown.insert(id.clone(), now);
        }
        let Some((index, step)) = due(kind, &n) else {
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
            kind,
            id,
            index,
            step,
            reaction,
        ));
    }
}

async fn poll(api: Api, every: Duration, reaction: Duration) {
    let memory = Arc::new(Mutex::new(Memory::default()));
    let mut failing = false;
    loop {
        tokio::time::sleep(every).await;
        let mut lists = Vec::with_capacity(Kind::ALL.len());
        let mut error = None;
        for kind in Kind::ALL {
            match api.list(kind).await {
                Ok(l) => lists.push((kind, l)),
                Err(e) => {
                    error = Some(e);
                    break;
                }
            }
        }
        if let Some(e) = error {
            if !failing {
                println!("poll: {e:#} (retrying quietly)");
                failing = true;
            }
            continue;
        }
        if failing {
            println!("poll: the management API answers again");
            failing = false;
        }
        for (kind, processes) in lists {
            follow(&api, &memory, kind, processes, reaction);
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
