//! The management API under `/api/v1`: assets, policies and offers (CRUD), the federated catalog
//! (fetch and search), who this connector is, health and the OpenAPI document.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use super::auth::Admin;
use super::body::{query, read_json_limited};
use super::errors::ApiError;
use crate::catalog::{CatalogService, DocKind, FederatedQuery, Versioned};
use crate::ledger::Ledger;
use crate::negotiation::Negotiations;
use crate::service::ServiceError;
use crate::telemetry::Status;
use crate::transfer::Transfers;
use crate::transfer::dataplane::DataPlane;

/// The OpenAPI 3.1 description of this API.
pub const OPENAPI: &str = include_str!("../../openapi.json");

/// The documented routes of [`OPENAPI`]: the methods each path template allows (for 405 answers).
#[derive(Debug, Default)]
pub struct Documented(Vec<(Vec<String>, Vec<String>)>);

impl Documented {
    /// Read from [`OPENAPI`].
    pub fn from_openapi() -> Documented {
        let doc: serde_json::Value = serde_json::from_str(OPENAPI).unwrap_or_default();
        let Some(paths) = doc.get("paths").and_then(|p| p.as_object()) else {
            return Documented::default();
        };
        const METHODS: [&str; 7] = ["get", "put", "post", "delete", "patch", "head", "options"];
        Documented(
            paths
                .iter()
                .map(|(path, item)| {
                    let segments = path.split('/').map(str::to_owned).collect();
                    let methods: Vec<String> = METHODS
                        .iter()
                        .filter(|m| item.get(**m).is_some())
                        .map(|m| m.to_uppercase())
                        .collect();
                    (segments, methods)
                })
                .collect(),
        )
    }

    /// The methods the documented path matching `path` allows (`{…}` matches one non-empty segment; of
    /// several, the one with the fewest `{…}`, as routing prefers literal segments), or `None`.
    pub fn allowed(&self, path: &str) -> Option<Vec<String>> {
        let asked: Vec<&str> = path.split('/').collect();
        let param = |t: &String| t.starts_with('{') && t.ends_with('}');
        let matching: Vec<&(Vec<String>, Vec<String>)> = self
            .0
            .iter()
            .filter(|(template, _)| {
                template.len() == asked.len()
                    && template
                        .iter()
                        .zip(&asked)
                        .all(|(t, a)| t == a || (param(t) && !a.is_empty()))
            })
            .collect();
        let fewest = matching
            .iter()
            .map(|(t, _)| t.iter().filter(|s| param(s)).count())
            .min()?;
        let mut allowed: Vec<String> = matching
            .iter()
            .filter(|(t, _)| t.iter().filter(|s| param(s)).count() == fewest)
            .flat_map(|(_, methods)| methods.iter().cloned())
            .collect();
        allowed.sort();
        allowed.dedup();
        (!allowed.is_empty()).then_some(allowed)
    }
}

/// Routes of the management listener.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/health", web::get().to(health))
        .route("/ready", web::get().to(ready))
        .service(
            web::scope("/api/v1")
                .route("/openapi.json", web::get().to(openapi))
                .route("/participant", web::get().to(participant))
                .route("/catalogs", web::get().to(catalog_sources))
                .route("/catalogs", web::delete().to(remove_catalog_source))
                .route("/catalogs/request", web::post().to(catalog_request))
                .route("/catalogs/search", web::get().to(catalog_search))
                .route("/negotiations", web::get().to(negotiations))
                .route("/negotiations", web::post().to(start_negotiation))
                .route("/negotiations/{id}", web::get().to(negotiation))
                .route(
                    "/negotiations/{id}/{step}",
                    web::post().to(negotiation_step),
                )
                .route("/transfers", web::get().to(transfers))
                .route("/transfers", web::post().to(start_transfer))
                .route("/transfers/{id}", web::get().to(transfer))
                .route("/transfers/{id}/data", web::get().to(transfer_data))
                .route("/transfers/{id}/refresh", web::post().to(refresh_transfer))
                .route("/transfers/{id}/{step}", web::post().to(transfer_step))
                .route("/agreements", web::get().to(agreements))
                .route("/agreements", web::post().to(import_agreement))
                .route("/agreements/{id}", web::get().to(agreement))
                .route("/ledger", web::get().to(ledger))
                .configure(super::identity_api::routes)
                .configure(super::consent::routes)
                .configure(|c| documents(c, "/assets", DocKind::Asset))
                .configure(|c| documents(c, "/policies", DocKind::Policy))
                .configure(|c| documents(c, "/offers", DocKind::Offer)),
        );
}

fn documents(cfg: &mut web::ServiceConfig, path: &str, kind: DocKind) {
    cfg.service(
        web::resource(path)
            .route(web::get().to(move |a, q, c| list(a, q, c, kind)))
            .route(web::post().to(move |a, r, p, c| create(a, r, p, c, kind)))
            .default_service(web::to(super::api_not_found)),
    )
    .service(
        web::resource(format!("{path}/{{id}}"))
            .route(web::get().to(move |a, id, c| get(a, id, c, kind)))
            .route(web::put().to(move |a, r, id, p, c| replace(a, r, id, p, c, kind)))
            .route(web::delete().to(move |a, id, c| delete(a, id, c, kind)))
            .default_service(web::to(super::api_not_found)),
    );
}

async fn health() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "up"}))
}

async fn ready(status: web::Data<Status>) -> HttpResponse {
    match status.database_ready().await {
        Ok(()) => HttpResponse::Ok()
            .json(serde_json::json!({"status": "ready", "database": status.database()})),
        Err(e) => {
            tracing::warn!(error = %e, "not ready: database unreachable");
            HttpResponse::ServiceUnavailable()
                .json(serde_json::json!({"status": "not ready", "reason": "database unreachable"}))
        }
    }
}

async fn openapi() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(OPENAPI)
}

async fn participant(_: Admin, status: web::Data<Status>) -> HttpResponse {
    let id = &status.identity;
    HttpResponse::Ok().json(serde_json::json!({
        "participantId": id.participant_id,
        "name": id.name,
        "publicUrl": id.public_url,
        "dspBase": id.dsp_base,
        "versionUrl": format!("{}/.well-known/dspace-version", id.public_url),
        "database": status.database(),
    }))
}

fn with_version(status: StatusCode, doc: Versioned) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((header::ETAG, format!("\"{}\"", doc.version)))
        .json(doc.body)
}

fn if_match(req: &HttpRequest) -> Result<Option<i64>, ApiError> {
    let Some(v) = req.headers().get(header::IF_MATCH) else {
        return Ok(None);
    };
    v.to_str()
        .ok()
        .map(|s| s.trim().trim_start_matches("W/").trim_matches('"'))
        .and_then(|s| s.parse().ok())
        .map(Some)
        .ok_or_else(|| {
            ServiceError::BadRequest(
                "If-Match must be an ETag this API returned, e.g. \"3\"".into(),
                vec![],
            )
            .into()
        })
}

/// Paging parameters.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    cursor: Option<String>,
    limit: Option<u32>,
}

async fn list(
    _: Admin,
    req: HttpRequest,
    catalog: web::Data<CatalogService>,
    kind: DocKind,
) -> Result<HttpResponse, ApiError> {
    let q: ListQuery = query(&req)?;
    let page = catalog.list(kind, q.cursor.as_deref(), q.limit).await?;
    Ok(HttpResponse::Ok().json(page))
}

async fn create(
    _: Admin,
    req: HttpRequest,
    payload: web::Payload,
    catalog: web::Data<CatalogService>,
    kind: DocKind,
) -> Result<HttpResponse, ApiError> {
    let body = read_json_limited(&req, payload).await?;
    let doc = catalog.create(kind, body).await?;
    Ok(with_version(StatusCode::CREATED, doc))
}

async fn get(
    _: Admin,
    id: web::Path<String>,
    catalog: web::Data<CatalogService>,
    kind: DocKind,
) -> Result<HttpResponse, ApiError> {
    Ok(with_version(StatusCode::OK, catalog.get(kind, &id).await?))
}

async fn replace(
    _: Admin,
    req: HttpRequest,
    id: web::Path<String>,
    payload: web::Payload,
    catalog: web::Data<CatalogService>,
    kind: DocKind,
) -> Result<HttpResponse, ApiError> {
    let expected = if_match(&req)?;
    let body = read_json_limited(&req, payload).await?;
    let doc = catalog.replace(kind, &id, body, expected).await?;
    Ok(with_version(StatusCode::OK, doc))
}

async fn delete(
    _: Admin,
    id: web::Path<String>,
    catalog: web::Data<CatalogService>,
    kind: DocKind,
) -> Result<HttpResponse, ApiError> {
    catalog.delete(kind, &id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Body of `POST /api/v1/catalogs/request`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct FetchCatalog {
    counter_party_address: String,
}

async fn catalog_request(
    _: Admin,
    req: HttpRequest,
    payload: web::Payload,
    catalog: web::Data<CatalogService>,
) -> Result<HttpResponse, ApiError> {
    let body = read_json_limited(&req, payload).await?;
    let FetchCatalog {
        counter_party_address,
    } = crate::service::decode(&body)?;
    let fetched = catalog.fetch_catalog(&counter_party_address).await?;
    Ok(HttpResponse::Ok().json(fetched))
}

async fn catalog_sources(
    _: Admin,
    catalog: web::Data<CatalogService>,
) -> Result<HttpResponse, ApiError> {
    let sources = catalog.sources().await?;
    let directory = catalog.directory_status().await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({"items": sources, "directory": directory})))
}

/// Query of `DELETE /api/v1/catalogs`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SourceAddress {
    address: String,
}

async fn remove_catalog_source(
    _: Admin,
    req: HttpRequest,
    catalog: web::Data<CatalogService>,
) -> Result<HttpResponse, ApiError> {
    let q: SourceAddress = query(&req)?;
    catalog.remove_source(&q.address).await?;
    Ok(HttpResponse::NoContent().finish())
}

async fn catalog_search(
    _: Admin,
    req: HttpRequest,
    catalog: web::Data<CatalogService>,
) -> Result<HttpResponse, ApiError> {
    let q: FederatedQuery = query(&req)?;
    Ok(HttpResponse::Ok().json(catalog.search(&q).await?))
}

async fn negotiations(
    _: Admin,
    req: HttpRequest,
    negotiations: web::Data<Negotiations>,
) -> Result<HttpResponse, ApiError> {
    let q: ListQuery = query(&req)?;
    let page = negotiations
        .negotiation_page(q.cursor.as_deref(), q.limit)
        .await?;
    Ok(HttpResponse::Ok().json(page))
}

async fn start_negotiation(
    _: Admin,
    req: HttpRequest,
    payload: web::Payload,
    negotiations: web::Data<Negotiations>,
    catalog: web::Data<CatalogService>,
) -> Result<HttpResponse, ApiError> {
    let body = read_json_limited(&req, payload).await?;
    let n = negotiations.start_negotiation(&catalog, body).await?;
    Ok(HttpResponse::Created()
        .insert_header((
            actix_web::http::header::LOCATION,
            format!("/api/v1/negotiations/{}", n.id),
        ))
        .json(n))
}

async fn negotiation(
    _: Admin,
    id: web::Path<String>,
    negotiations: web::Data<Negotiations>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(negotiations.negotiation_view(&id).await?))
}

async fn negotiation_step(
    _: Admin,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    payload: web::Payload,
    negotiations: web::Data<Negotiations>,
) -> Result<HttpResponse, ApiError> {
    let (id, step) = path.into_inner();
    let Some(step) = crate::negotiation::actions::ManualStep::parse(&step) else {
        return Err(ServiceError::NotFound(format!(
            "no step `{step}`; the steps are {}",
            crate::negotiation::actions::ManualStep::NAMES
        ))
        .into());
    };
    let body = optional_json(&req, payload).await?;
    Ok(HttpResponse::Ok().json(negotiations.negotiation_step(&id, step, body).await?))
}

async fn agreements(
    _: Admin,
    req: HttpRequest,
    negotiations: web::Data<Negotiations>,
) -> Result<HttpResponse, ApiError> {
    let q: ListQuery = query(&req)?;
    Ok(HttpResponse::Ok().json(
        negotiations
            .agreement_page(q.cursor.as_deref(), q.limit)
            .await?,
    ))
}

async fn agreement(
    _: Admin,
    id: web::Path<String>,
    negotiations: web::Data<Negotiations>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(negotiations.agreement(&id).await?))
}

/// Paging of the ledger export.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LedgerQuery {
    /// Entries after this sequence number (0: from the start).
    #[serde(default)]
    after: u64,
    /// Most entries (default 1000, at most 10 000).
    limit: Option<u64>,
}

/// `GET /api/v1/ledger`: JSON lines, one entry each, oldest first; `Link: rel="next"` while there are more.
async fn ledger(
    _: Admin,
    req: HttpRequest,
    ledger: web::Data<Ledger>,
) -> Result<HttpResponse, ApiError> {
    let q: LedgerQuery = query(&req)?;
    let limit = q.limit.unwrap_or(1000);
    let (entries, more) = ledger.page(q.after, limit).await?;
    let mut out = String::new();
    let mut last = q.after;
    for e in &entries {
        out.push_str(&serde_json::to_string(e).unwrap_or_default());
        out.push('\n');
        last = e.seq;
    }
    let mut res = HttpResponse::Ok();
    res.insert_header((
        actix_web::http::header::CONTENT_TYPE,
        "application/x-ndjson",
    ));
    if more {
        res.insert_header((
            actix_web::http::header::LINK,
            format!("</api/v1/ledger?after={last}&limit={limit}>; rel=\"next\""),
        ));
    }
    Ok(res.body(out))
}

async fn transfers(
    _: Admin,
    req: HttpRequest,
    transfers: web::Data<Transfers>,
) -> Result<HttpResponse, ApiError> {
    let q: ListQuery = query(&req)?;
    Ok(HttpResponse::Ok().json(
        transfers
            .transfer_page(q.cursor.as_deref(), q.limit)
            .await?,
    ))
}

async fn start_transfer(
    _: Admin,
    req: HttpRequest,
    payload: web::Payload,
    transfers: web::Data<Transfers>,
) -> Result<HttpResponse, ApiError> {
    let body = read_json_limited(&req, payload).await?;
    let t = transfers.start_transfer(body).await?;
    Ok(HttpResponse::Created()
        .insert_header((
            actix_web::http::header::LOCATION,
            format!("/api/v1/transfers/{}", t.id),
        ))
        .json(t))
}

async fn transfer(
    _: Admin,
    id: web::Path<String>,
    transfers: web::Data<Transfers>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(transfers.transfer_view(&id).await?))
}

async fn transfer_step(
    _: Admin,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    payload: web::Payload,
    transfers: web::Data<Transfers>,
) -> Result<HttpResponse, ApiError> {
    let (id, step) = path.into_inner();
    let body = optional_json(&req, payload).await?;
    Ok(HttpResponse::Ok().json(transfers.transfer_step(&id, &step, body).await?))
}

async fn refresh_transfer(
    _: Admin,
    id: web::Path<String>,
    plane: web::Data<DataPlane>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(plane.refresh_transfer_token(&id).await?))
}

/// `GET /api/v1/transfers/{id}/data`: the data of a transfer this connector consumes, streamed.
async fn transfer_data(
    _: Admin,
    req: HttpRequest,
    id: web::Path<String>,
    plane: web::Data<DataPlane>,
) -> Result<HttpResponse, ApiError> {
    let last_event_id = req
        .headers()
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let opened = plane
        .transfer_data(&id, last_event_id.as_deref(), super::transfer::range(&req))
        .await?;
    Ok(super::transfer::streamed(opened))
}

async fn import_agreement(
    _: Admin,
    req: HttpRequest,
    payload: web::Payload,
    negotiations: web::Data<Negotiations>,
) -> Result<HttpResponse, ApiError> {
    let body = read_json_limited(&req, payload).await?;
    let a = negotiations.import_agreement(body).await?;
    Ok(HttpResponse::Created().json(a))
}

/// The JSON body of a request that may have none (a step taken by hand): read only when a content type says
/// there is one.
async fn optional_json(
    req: &HttpRequest,
    payload: web::Payload,
) -> Result<Option<serde_json::Value>, ApiError> {
    if !req
        .headers()
        .contains_key(actix_web::http::header::CONTENT_TYPE)
    {
        return Ok(None);
    }
    Ok(Some(read_json_limited(req, payload).await?))
}
