//! The built-in sensor simulator, for the demo and the tests. It is clearly a simulator: every
//! answer carries `x-caap-simulator: true`, every entity's `description` says its values are
//! generated, and nothing is measured. Mounted under `/sim` on the DSP listener when
//! `simulator.enabled = true` (off by default).
//!
//! Readings are a pure function of (city, place, time): sequence number `n` is the reading taken at
//! `n × simulator.interval_ms` milliseconds after the Unix epoch ([`data`]), so any reading can be
//! produced again, and a stream resumed from `Last-Event-ID` continues exactly where it stopped.
//!
//! Endpoints (all `GET` unless said otherwise):
//! - `/sim`: what is simulated and where.
//! - `/sim/{city}/air-quality/{station}` and `/sim/{city}/parking/{car-park}`: the latest reading
//!   (`?seq=N` for a given one) as an NGSI-LD entity (Smart Data Models `AirQualityObserved`,
//!   `OffStreetParking`), for polling.
//! - `…/stream`: server-sent events, one reading every `interval_ms`, `id:` = sequence number;
//!   `Last-Event-ID` (header, or `?lastEventId=`) resumes after that reading without loss.
//! - `/sim/ngsi-ld/v1/entities?type=T[&q=…][&id=…][&limit=N][&offset=M]`: an NGSI-LD style query
//!   over every demo place; `POST /sim/ngsi-ld/v1/subscriptions` sends notifications to an
//!   endpoint every interval until `DELETE /sim/ngsi-ld/v1/subscriptions/{id}`.
//! - `/sim/files/bytes?size=N`: `N` deterministic bytes (up to 1 TiB), streamed in 64 KiB chunks
//!   with `Content-Length`, in constant memory.
//! - `/sim/files/{air-quality|parking}.{csv|json}?rows=N`: generated hourly datasets, streamed.

pub mod data;

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::body::SizedStream;
use actix_web::http::StatusCode;
use actix_web::middleware::DefaultHeaders;
use actix_web::web::{self, Bytes};
use actix_web::{HttpRequest, HttpResponse};
use futures_util::stream::{self, Stream};
use serde_json::{Value, json};

use self::data::{Dataset, Kind, Place, Query};
use crate::clock::Clock;
use crate::error::ServiceError;
use crate::http::errors::ApiError;

/// The header on every simulator answer.
pub const HEADER: &str = "x-caap-simulator";
/// The header carrying a polled reading's sequence number.
pub const SEQUENCE_HEADER: &str = "x-caap-simulator-sequence";
/// Bytes per chunk of `/sim/files/bytes` (and the length of its repeating pattern).
pub const BLOCK: usize = 64 * 1024;
/// Largest `/sim/files/bytes` size.
pub const MAX_FILE_BYTES: u64 = 1 << 40;
/// Readings a resumed stream replays at most; older ones are skipped (and the stream says so).
pub const MAX_REPLAY: u64 = 10_000;
/// Largest `rows` of a generated dataset.
pub const MAX_ROWS: u64 = 100_000_000;
const ROWS_PER_CHUNK: u64 = 256;
const MAX_SUBSCRIPTIONS: usize = 64;
const MAX_NOTIFY_FAILURES: u32 = 10;

/// The simulator: its clock, its interval, and its subscriptions. Cheap to clone.
#[derive(Clone)]
pub struct Simulator(Arc<Inner>);

struct Inner {
    clock: Arc<dyn Clock>,
    interval_ms: u64,
    http: crate::outbound::Http,
    block: Bytes,
    subscriptions: Mutex<BTreeMap<String, Subscription>>,
}

struct Subscription {
    description: Value,
    stop: tokio::sync::watch::Sender<bool>,
}

impl std::fmt::Debug for Simulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Simulator")
            .field("interval_ms", &self.0.interval_ms)
            .finish_non_exhaustive()
    }
}

fn bad_request(detail: impl Into<String>) -> ApiError {
    ServiceError::BadRequest(detail.into(), vec![]).into()
}

fn not_found(detail: impl Into<String>) -> ApiError {
    ServiceError::NotFound(detail.into()).into()
}

/// Where a stream starts: the first sequence number, and a comment for the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Start {
    /// The first reading sent.
    pub first: u64,
    /// Readings skipped because they were older than [`MAX_REPLAY`].
    pub skipped: u64,
}

impl Simulator {
    /// A simulator reading time from `clock`, one reading every `interval_ms`, sending
    /// notifications with `http`.
    pub fn new(clock: Arc<dyn Clock>, interval_ms: u64, http: crate::outbound::Http) -> Simulator {
        Simulator(Arc::new(Inner {
            clock,
            interval_ms: interval_ms.max(1),
            http,
            block: Bytes::from(data::byte_block(BLOCK)),
            subscriptions: Mutex::new(BTreeMap::new()),
        }))
    }

    fn now_ms(&self) -> i64 {
        self.0.clock.now().timestamp_millis().max(0)
    }

    /// The sequence number of the latest reading.
    pub fn sequence(&self) -> u64 {
        u64::try_from(self.now_ms()).unwrap_or(0) / self.0.interval_ms
    }

    /// When reading `seq` is taken, in milliseconds since the Unix epoch.
    pub fn at_ms(&self, seq: u64) -> i64 {
        i64::try_from(seq.saturating_mul(self.0.interval_ms)).unwrap_or(i64::MAX)
    }

    /// Reading `seq` of `place` as an NGSI-LD entity.
    pub fn reading(&self, place: &Place, seq: u64) -> Value {
        data::entity(place, self.at_ms(seq))
    }

    /// Where a stream resumed after `last_event_id` starts (`None`: with the latest reading).
    pub fn start_after(&self, last_event_id: Option<&str>) -> Result<Start, String> {
        let now = self.sequence();
        let Some(last) = last_event_id.map(str::trim).filter(|s| !s.is_empty()) else {
            return Ok(Start {
                first: now,
                skipped: 0,
            });
        };
        let last: u64 = last.parse().map_err(|_| {
            format!("Last-Event-ID `{last}` is not one of this simulator's ids (a sequence number)")
        })?;
        if last > now.saturating_add(MAX_REPLAY) {
            return Err(format!(
                "Last-Event-ID {last} lies in the future (the latest reading is {now})"
            ));
        }
        let next = last.saturating_add(1);
        let oldest = now.saturating_sub(MAX_REPLAY);
        Ok(if next < oldest {
            Start {
                first: oldest,
                skipped: oldest - next,
            }
        } else {
            Start {
                first: next,
                skipped: 0,
            }
        })
    }

    /// Server-sent events for `place` from `start`: a comment, then one event per reading, each sent
    /// when it is due (at once for readings in the past).
    pub fn events(
        &self,
        place: Place,
        start: Start,
    ) -> impl Stream<Item = Result<Bytes, Infallible>> + 'static {
        let mut preface = format!(
            "retry: {}\n: caap simulator: simulated {} readings of {} ({}), one every {} ms; resume with Last-Event-ID\n",
            self.0.interval_ms,
            place.kind.entity_type(),
            place.name,
            place.city_name,
            self.0.interval_ms
        );
        if start.skipped > 0 {
            preface.push_str(&format!(
                ": caap simulator: {} readings older than the replay window ({MAX_REPLAY}) were skipped\n",
                start.skipped
            ));
        }
        preface.push('\n');
        let sim = self.clone();
        stream::unfold((start.first, Some(preface)), move |(next, preface)| {
            let sim = sim.clone();
            let place = place.clone();
            async move {
                if let Some(p) = preface {
                    return Some((Ok(Bytes::from(p)), (next, None)));
                }
                let due = sim.at_ms(next);
                let now = sim.now_ms();
                if due > now {
                    let wait = u64::try_from(due - now).unwrap_or(0);
                    tokio::time::sleep(Duration::from_millis(wait)).await;
                }
                let event = sse_event(next, &data::entity(&place, due));
                Some((Ok(Bytes::from(event)), (next.saturating_add(1), None)))
            }
        })
    }

    /// `size` deterministic bytes in [`BLOCK`]-sized chunks (byte `i` is `block[i % BLOCK]`).
    pub fn bytes(&self, size: u64) -> impl Stream<Item = Result<Bytes, Infallible>> + 'static {
        let block = self.0.block.clone();
        stream::unfold(0u64, move |sent| {
            let block = block.clone();
            async move {
                if sent >= size {
                    return None;
                }
                let n = usize::try_from((size - sent).min(BLOCK as u64)).unwrap_or(BLOCK);
                Some((Ok(block.slice(..n)), sent + n as u64))
            }
        })
    }
}

/// One server-sent event.
pub fn sse_event(seq: u64, entity: &Value) -> String {
    format!("id: {seq}\ndata: {entity}\n\n")
}

/// Mounts the simulator's routes, when there is one, on the DSP listener's app.
pub fn mount(sim: Option<Simulator>) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg| {
        if let Some(sim) = sim {
            routes(cfg, sim);
        }
    }
}

/// Mounts the simulator under `/sim`.
pub fn routes(cfg: &mut web::ServiceConfig, sim: Simulator) {
    cfg.service(
        web::scope("/sim")
            .app_data(web::Data::new(sim))
            .wrap(DefaultHeaders::new().add((HEADER, "true")))
            .route("", web::get().to(index))
            .route("/", web::get().to(index))
            .route("/ngsi-ld/v1/entities", web::get().to(entities))
            .route("/ngsi-ld/v1/subscriptions", web::post().to(subscribe))
            .route("/ngsi-ld/v1/subscriptions", web::get().to(subscriptions))
            .route(
                "/ngsi-ld/v1/subscriptions/{id}",
                web::delete().to(unsubscribe),
            )
            .route("/files/bytes", web::get().to(bytes))
            .route("/files/{file}", web::get().to(file))
            .route("/{city}/air-quality/{place}", web::get().to(air_latest))
            .route(
                "/{city}/air-quality/{place}/stream",
                web::get().to(air_stream),
            )
            .route("/{city}/parking/{place}", web::get().to(parking_latest))
            .route(
                "/{city}/parking/{place}/stream",
                web::get().to(parking_stream),
            )
            .default_service(web::to(no_endpoint)),
    );
}

fn query_params(req: &HttpRequest) -> BTreeMap<String, String> {
    url::form_urlencoded::parse(req.query_string().as_bytes())
        .into_owned()
        .collect()
}

fn find_place(kind: Kind, city: &str, slug: &str) -> Result<Place, ApiError> {
    data::place(kind, city, slug).ok_or_else(|| {
        not_found(format!(
            "`{city}/{slug}` is not a simulated sensor: use lower-case slugs (a-z, 0-9, -); see /sim for the demo's places"
        ))
    })
}

async fn index(sim: web::Data<Simulator>) -> HttpResponse {
    let places = |kind| {
        data::known_places(kind)
            .into_iter()
            .map(|p| {
                json!({"city": p.city, "name": p.name,
                       "path": format!("/sim/{}/{}/{}", p.city, match kind { Kind::AirQuality => "air-quality", Kind::Parking => "parking" }, p.slug)})
            })
            .collect::<Vec<_>>()
    };
    HttpResponse::Ok().json(json!({
        "description": "caap's built-in sensor simulator, for demos and tests: every value is generated from the place and the time, nothing is measured.",
        "intervalMs": sim.0.interval_ms,
        "latestSequence": sim.sequence(),
        "airQuality": places(Kind::AirQuality),
        "parking": places(Kind::Parking),
        "endpoints": [
            "GET /sim/{city}/air-quality/{station}[?seq=N]",
            "GET /sim/{city}/air-quality/{station}/stream (text/event-stream; Last-Event-ID resumes)",
            "GET /sim/{city}/parking/{car-park}[?seq=N]",
            "GET /sim/{city}/parking/{car-park}/stream",
            "GET /sim/ngsi-ld/v1/entities?type=AirQualityObserved|OffStreetParking[&q=no2>40][&id=…][&limit=N][&offset=M]",
            "POST /sim/ngsi-ld/v1/subscriptions, GET /sim/ngsi-ld/v1/subscriptions, DELETE /sim/ngsi-ld/v1/subscriptions/{id}",
            "GET /sim/files/bytes?size=N",
            "GET /sim/files/air-quality.csv|json?rows=N, /sim/files/parking.csv|json?rows=N"
        ],
    }))
}

async fn latest(
    req: HttpRequest,
    sim: web::Data<Simulator>,
    kind: Kind,
    city: &str,
    slug: &str,
) -> Result<HttpResponse, ApiError> {
    let place = find_place(kind, city, slug)?;
    let seq = match query_params(&req).get("seq") {
        Some(s) => s
            .parse::<u64>()
            .map_err(|_| bad_request(format!("seq `{s}` is not a sequence number")))?,
        None => sim.sequence(),
    };
    Ok(HttpResponse::Ok()
        .content_type("application/ld+json")
        .insert_header((SEQUENCE_HEADER, seq.to_string()))
        .insert_header(("etag", format!("\"{seq}\"")))
        .insert_header(("cache-control", "no-cache"))
        .body(sim.reading(&place, seq).to_string()))
}

async fn live(
    req: HttpRequest,
    sim: web::Data<Simulator>,
    kind: Kind,
    city: &str,
    slug: &str,
) -> Result<HttpResponse, ApiError> {
    let place = find_place(kind, city, slug)?;
    let params = query_params(&req);
    let last = req
        .headers()
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| params.get("lastEventId").cloned());
    let start = sim.start_after(last.as_deref()).map_err(bad_request)?;
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(("cache-control", "no-cache"))
        .insert_header(("x-accel-buffering", "no"))
        .streaming(sim.events(place, start)))
}

async fn air_latest(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    sim: web::Data<Simulator>,
) -> Result<HttpResponse, ApiError> {
    latest(req, sim, Kind::AirQuality, &path.0, &path.1).await
}

async fn parking_latest(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    sim: web::Data<Simulator>,
) -> Result<HttpResponse, ApiError> {
    latest(req, sim, Kind::Parking, &path.0, &path.1).await
}

async fn air_stream(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    sim: web::Data<Simulator>,
) -> Result<HttpResponse, ApiError> {
    live(req, sim, Kind::AirQuality, &path.0, &path.1).await
}

async fn parking_stream(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    sim: web::Data<Simulator>,
) -> Result<HttpResponse, ApiError> {
    live(req, sim, Kind::Parking, &path.0, &path.1).await
}

/// The entities an NGSI-LD query selects, at reading `seq`.
fn select(
    sim: &Simulator,
    kind: Kind,
    ids: Option<&str>,
    q: Option<&Query>,
    seq: u64,
) -> Vec<Value> {
    let ids: Option<Vec<&str>> = ids.map(|s| s.split(',').map(str::trim).collect());
    data::known_places(kind)
        .iter()
        .filter(|p| {
            ids.as_ref()
                .is_none_or(|ids| ids.contains(&data::entity_id(p).as_str()))
        })
        .map(|p| sim.reading(p, seq))
        .filter(|e| q.is_none_or(|q| q.matches(e)))
        .collect()
}

fn ngsi_error(kind: &str, status: StatusCode, detail: String) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("application/json")
        .body(
            json!({
                "type": format!("https://uri.etsi.org/ngsi-ld/errors/{kind}"),
                "title": kind,
                "detail": detail,
            })
            .to_string(),
        )
}

async fn entities(req: HttpRequest, sim: web::Data<Simulator>) -> HttpResponse {
    let params = query_params(&req);
    let Some(t) = params.get("type") else {
        return ngsi_error(
            "BadRequestData",
            StatusCode::BAD_REQUEST,
            "give type=AirQualityObserved or type=OffStreetParking".into(),
        );
    };
    let q = match params.get("q").map(|q| Query::parse(q)).transpose() {
        Ok(q) => q,
        Err(e) => return ngsi_error("InvalidRequest", StatusCode::BAD_REQUEST, e),
    };
    let number = |name: &str, default: usize, max: usize| -> Result<usize, String> {
        match params.get(name) {
            None => Ok(default),
            Some(v) => v
                .parse::<usize>()
                .ok()
                .filter(|n| *n <= max)
                .ok_or_else(|| format!("{name} `{v}` must be a whole number up to {max}")),
        }
    };
    let (limit, offset) = match (number("limit", 20, 1000), number("offset", 0, 1_000_000)) {
        (Ok(l), Ok(o)) => (l, o),
        (Err(e), _) | (_, Err(e)) => {
            return ngsi_error("BadRequestData", StatusCode::BAD_REQUEST, e);
        }
    };
    let found = match Kind::from_type(t) {
        Some(kind) => select(
            &sim,
            kind,
            params.get("id").map(String::as_str),
            q.as_ref(),
            sim.sequence(),
        ),
        None => Vec::new(),
    };
    let total = found.len();
    let page: Vec<Value> = found.into_iter().skip(offset).take(limit).collect();
    HttpResponse::Ok()
        .content_type("application/ld+json")
        .insert_header(("ngsild-results-count", total.to_string()))
        .body(Value::Array(page).to_string())
}

async fn subscribe(sim: web::Data<Simulator>, body: web::Bytes) -> HttpResponse {
    let bad = |detail: String| ngsi_error("BadRequestData", StatusCode::BAD_REQUEST, detail);
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return bad("the body is not JSON".into());
    };
    let Some(kind) = body
        .pointer("/entities/0/type")
        .and_then(Value::as_str)
        .and_then(Kind::from_type)
    else {
        return bad("entities[0].type must be AirQualityObserved or OffStreetParking".into());
    };
    let Some(uri) = body
        .pointer("/notification/endpoint/uri")
        .and_then(Value::as_str)
        .filter(|u| u.starts_with("http://") || u.starts_with("https://"))
        .map(str::to_owned)
    else {
        return bad("notification.endpoint.uri must be an http(s) URL".into());
    };
    let q = match body
        .get("q")
        .and_then(Value::as_str)
        .map(Query::parse)
        .transpose()
    {
        Ok(q) => q,
        Err(e) => return ngsi_error("InvalidRequest", StatusCode::BAD_REQUEST, e),
    };
    let period_ms = body
        .get("timeInterval")
        .and_then(Value::as_u64)
        .map(|s| s.saturating_mul(1000))
        .unwrap_or(0)
        .max(sim.0.interval_ms);
    let id = format!(
        "urn:ngsi-ld:Subscription:caap-sim:{}",
        uuid::Uuid::new_v4().simple()
    );
    let description = json!({
        "id": id, "type": "Subscription",
        "entities": [{"type": kind.entity_type()}],
        "q": body.get("q").cloned().unwrap_or(Value::Null),
        "notification": {"endpoint": {"uri": uri, "accept": "application/json"}},
        "timeInterval": period_ms as f64 / 1000.0,
        "status": "active",
        "description": data::DESCRIPTION,
    });
    let (stop, stopped) = tokio::sync::watch::channel(false);
    {
        let Ok(mut subs) = sim.0.subscriptions.lock() else {
            return ngsi_error(
                "InternalError",
                StatusCode::INTERNAL_SERVER_ERROR,
                "the simulator's subscription table is unusable".into(),
            );
        };
        if subs.len() >= MAX_SUBSCRIPTIONS {
            return ngsi_error(
                "OperationNotSupported",
                StatusCode::UNPROCESSABLE_ENTITY,
                format!(
                    "the simulator keeps at most {MAX_SUBSCRIPTIONS} subscriptions; delete one"
                ),
            );
        }
        subs.insert(id.clone(), Subscription { description, stop });
    }
    actix_web::rt::spawn(notify(
        sim.get_ref().clone(),
        id.clone(),
        kind,
        q,
        uri,
        Duration::from_millis(period_ms),
        stopped,
    ));
    HttpResponse::Created()
        .insert_header(("location", format!("/sim/ngsi-ld/v1/subscriptions/{id}")))
        .finish()
}

/// Sends a notification with the matching entities now and every `period` until stopped, or until
/// the endpoint failed [`MAX_NOTIFY_FAILURES`] times in a row.
async fn notify(
    sim: Simulator,
    id: String,
    kind: Kind,
    q: Option<Query>,
    uri: String,
    period: Duration,
    mut stopped: tokio::sync::watch::Receiver<bool>,
) {
    let mut failures = 0u32;
    loop {
        let seq = sim.sequence();
        let body = json!({
            "id": format!("urn:ngsi-ld:Notification:caap-sim:{}", uuid::Uuid::new_v4().simple()),
            "type": "Notification",
            "subscriptionId": id,
            "notifiedAt": data::timestamp(sim.now_ms()),
            "data": select(&sim, kind, None, q.as_ref(), seq),
        });
        let sent = sim
            .0
            .http
            .post(&uri)
            .header(HEADER, "true")
            .json(&body)
            .send()
            .await;
        match sent {
            Ok(r) if r.status().is_success() => failures = 0,
            Ok(r) => {
                failures += 1;
                tracing::debug!(subscription = %id, status = r.status().as_u16(), "simulator notification refused");
            }
            Err(e) => {
                failures += 1;
                tracing::debug!(subscription = %id, error = %e, "simulator notification failed");
            }
        }
        if failures >= MAX_NOTIFY_FAILURES {
            tracing::info!(subscription = %id, "simulator subscription dropped after repeated delivery failures");
            if let Ok(mut subs) = sim.0.subscriptions.lock() {
                subs.remove(&id);
            }
            return;
        }
        tokio::select! {
            _ = stopped.changed() => return,
            _ = tokio::time::sleep(period) => {}
        }
    }
}

async fn subscriptions(sim: web::Data<Simulator>) -> HttpResponse {
    let list: Vec<Value> = sim
        .0
        .subscriptions
        .lock()
        .map(|s| s.values().map(|s| s.description.clone()).collect())
        .unwrap_or_default();
    HttpResponse::Ok().json(list)
}

async fn unsubscribe(sim: web::Data<Simulator>, id: web::Path<String>) -> HttpResponse {
    let removed = sim
        .0
        .subscriptions
        .lock()
        .ok()
        .and_then(|mut s| s.remove(id.as_str()));
    match removed {
        Some(sub) => {
            let _ = sub.stop.send(true);
            HttpResponse::NoContent().finish()
        }
        None => ngsi_error(
            "ResourceNotFound",
            StatusCode::NOT_FOUND,
            format!("no simulator subscription {id}"),
        ),
    }
}

/// `64`, `64KiB`, `64MiB`, `1GiB` (also `k`, `M`, `G` as binary multiples).
fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    let n: u64 = digits.parse().ok()?;
    let factor: u64 = match unit.trim() {
        "" | "B" => 1,
        "k" | "K" | "KiB" => 1 << 10,
        "M" | "MiB" => 1 << 20,
        "G" | "GiB" => 1 << 30,
        _ => return None,
    };
    n.checked_mul(factor)
}

async fn bytes(req: HttpRequest, sim: web::Data<Simulator>) -> Result<HttpResponse, ApiError> {
    let params = query_params(&req);
    let size = match params.get("size") {
        None => 1 << 20,
        Some(s) => parse_size(s)
            .filter(|n| *n <= MAX_FILE_BYTES)
            .ok_or_else(|| {
                bad_request(format!(
                    "size `{s}` must be a byte count up to {MAX_FILE_BYTES} (suffixes KiB, MiB, GiB allowed)"
                ))
            })?,
    };
    Ok(HttpResponse::Ok()
        .content_type("application/octet-stream")
        .insert_header((
            "content-disposition",
            format!("attachment; filename=\"caap-sim-{size}.bin\""),
        ))
        .body(SizedStream::new(size, sim.bytes(size))))
}

async fn file(req: HttpRequest, name: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let unknown = || {
        not_found(format!(
            "no simulated file {name}; there are air-quality.csv, air-quality.json, parking.csv, parking.json and bytes?size=N"
        ))
    };
    let (stem, ext) = name.rsplit_once('.').ok_or_else(unknown)?;
    let dataset = Dataset::named(stem).ok_or_else(unknown)?;
    let rows = match query_params(&req).get("rows") {
        None => 1000,
        Some(r) => r
            .parse::<u64>()
            .ok()
            .filter(|n| *n <= MAX_ROWS)
            .ok_or_else(|| {
                bad_request(format!(
                    "rows `{r}` must be a whole number up to {MAX_ROWS}"
                ))
            })?,
    };
    let places = Arc::new(dataset.places());
    let csv = match ext {
        "csv" => true,
        "json" => false,
        _ => return Err(unknown()),
    };
    let header = if csv {
        dataset.csv_header().to_owned()
    } else {
        "[\n".to_owned()
    };
    let body = stream::unfold((0u64, Some(header), false), move |(row, head, done)| {
        let places = places.clone();
        async move {
            if let Some(h) = head {
                return Some((Ok::<_, Infallible>(Bytes::from(h)), (row, None, false)));
            }
            if done {
                return None;
            }
            if row >= rows {
                let tail = if csv { "" } else { "\n]\n" };
                if tail.is_empty() {
                    return None;
                }
                return Some((Ok(Bytes::from_static(tail.as_bytes())), (row, None, true)));
            }
            let end = (row + ROWS_PER_CHUNK).min(rows);
            let mut chunk = String::new();
            for r in row..end {
                if csv {
                    chunk.push_str(&Dataset::csv_row(&places, r));
                } else {
                    if r > 0 {
                        chunk.push_str(",\n");
                    }
                    chunk.push_str(&Dataset::json_row(&places, r).to_string());
                }
            }
            Some((Ok(Bytes::from(chunk)), (end, None, false)))
        }
    });
    Ok(HttpResponse::Ok()
        .content_type(if csv {
            "text/csv; charset=utf-8"
        } else {
            "application/json"
        })
        .streaming(body))
}

async fn no_endpoint(req: HttpRequest) -> HttpResponse {
    use actix_web::ResponseError;
    not_found(format!(
        "no simulator endpoint {} {}; see GET /sim",
        req.method(),
        req.path()
    ))
    .error_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use chrono::DateTime;
    use futures_util::StreamExt;

    fn sim_at(ms: i64, interval: u64) -> (Simulator, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock::at(
            DateTime::from_timestamp_millis(ms).unwrap(),
        ));
        let sim = Simulator::new(clock.clone(), interval, reqwest::Client::new().into());
        (sim, clock)
    }

    fn ids(text: &str) -> Vec<u64> {
        text.lines()
            .filter_map(|l| l.strip_prefix("id: "))
            .map(|s| s.parse().unwrap())
            .collect()
    }

    async fn take_text(s: impl Stream<Item = Result<Bytes, Infallible>>, n: usize) -> String {
        let chunks: Vec<_> = s.take(n).collect().await;
        chunks
            .into_iter()
            .map(|c| String::from_utf8(c.unwrap().to_vec()).unwrap())
            .collect()
    }

    #[tokio::test]
    async fn stream_resumes_after_last_event_id_without_loss_or_duplicates() {
        let (sim, _) = sim_at(1_000_000, 1000);
        assert_eq!(sim.sequence(), 1000);
        let place = data::place(Kind::AirQuality, "lund", "stortorget").unwrap();
        let start = sim.start_after(Some("990")).unwrap();
        assert_eq!(
            start,
            Start {
                first: 991,
                skipped: 0
            }
        );
        let first = take_text(sim.events(place.clone(), start), 4).await;
        assert!(
            first.starts_with("retry: 1000\n: caap simulator"),
            "{first}"
        );
        assert_eq!(ids(&first), [991, 992, 993]);
        let resumed = take_text(
            sim.events(place.clone(), sim.start_after(Some("993")).unwrap()),
            3,
        )
        .await;
        assert_eq!(ids(&resumed), [994, 995]);
        // The same reading is the same bytes, whichever connection carried it.
        let again = take_text(
            sim.events(place.clone(), sim.start_after(Some("990")).unwrap()),
            5,
        )
        .await;
        let event = |text: &str, id: u64| {
            text.split("\n\n")
                .find(|e| e.starts_with(&format!("id: {id}\n")))
                .unwrap()
                .to_owned()
        };
        assert_eq!(event(&again, 994), event(&resumed, 994));
        let data_line = event(&again, 992);
        let json: Value = serde_json::from_str(
            data_line
                .lines()
                .nth(1)
                .unwrap()
                .strip_prefix("data: ")
                .unwrap(),
        )
        .unwrap();
        assert_eq!(
            json["dateObserved"]["value"]["@value"],
            "1970-01-01T00:16:32.000Z"
        );
        assert_eq!(json, sim.reading(&place, 992));
    }

    #[tokio::test]
    async fn stream_starts_with_the_latest_reading_and_paces_later_ones() {
        let (sim, clock) = sim_at(5_000, 100);
        let place = data::place(Kind::Parking, "malmo", "p-hus-anna").unwrap();
        let mut events = Box::pin(sim.events(place, sim.start_after(None).unwrap()));
        let _preface = events.next().await;
        let first = String::from_utf8(events.next().await.unwrap().unwrap().to_vec()).unwrap();
        assert_eq!(ids(&first), [50]);
        let before = tokio::time::Instant::now();
        let second = String::from_utf8(events.next().await.unwrap().unwrap().to_vec()).unwrap();
        assert_eq!(ids(&second), [51]);
        assert!(before.elapsed() >= Duration::from_millis(100));
        clock.set(DateTime::from_timestamp_millis(10_000).unwrap());
        let third = String::from_utf8(events.next().await.unwrap().unwrap().to_vec()).unwrap();
        assert_eq!(
            ids(&third),
            [52],
            "readings in the past come at once, in order"
        );
    }

    #[test]
    fn resume_positions() {
        let (sim, _) = sim_at(100_000_000, 10);
        let now = sim.sequence();
        assert_eq!(sim.start_after(None).unwrap().first, now);
        assert_eq!(sim.start_after(Some(" ")).unwrap().first, now);
        let old = sim.start_after(Some("3")).unwrap();
        assert_eq!(old.first, now - MAX_REPLAY);
        assert_eq!(old.skipped, now - MAX_REPLAY - 4);
        assert!(sim.start_after(Some("abc")).is_err());
        assert!(
            sim.start_after(Some(&(now + MAX_REPLAY + 1).to_string()))
                .is_err()
        );
    }

    #[tokio::test]
    async fn bytes_are_deterministic_and_exact() {
        let (sim, _) = sim_at(0, 1000);
        let size = 3 * BLOCK as u64 + 17;
        let chunks: Vec<Bytes> = sim.bytes(size).map(|c| c.unwrap()).collect().await;
        assert_eq!(chunks.len(), 4);
        assert!(chunks.iter().all(|c| c.len() <= BLOCK));
        let all: Vec<u8> = chunks.concat();
        assert_eq!(all.len() as u64, size);
        let block = data::byte_block(BLOCK);
        assert!(all.iter().enumerate().all(|(i, b)| *b == block[i % BLOCK]));
        assert_eq!(sim.bytes(0).count().await, 0);
        assert_eq!(parse_size("64MiB"), Some(64 << 20));
        assert_eq!(parse_size("2G"), Some(2 << 30));
        assert_eq!(parse_size("12"), Some(12));
        assert_eq!(parse_size("12 parsecs"), None);
    }
}
