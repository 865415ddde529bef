//! Open data on the DSP listener, for anyone and without credentials: public datasets' downloads
//! (`GET /open/v1/datasets/{id}/data`) and the DCAT-AP feed (`GET /open/v1/catalog?page=N`, Turtle, JSON-LD or
//! RDF/XML by `Accept`). Both are rate-limited per client address. The management API's download counts
//! (`GET /api/v1/open/downloads?days=N`) are in [`api_routes`].

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use serde::Deserialize;

use super::auth::Admin;
use super::errors::ApiError;
use crate::open::OpenData;
use crate::open::OpenError;
use crate::open::feed::Syntax;

/// Routes on the DSP listener's root.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/open/v1/catalog", web::get().to(feed))
        .route("/open/v1/datasets/{id}/data", web::get().to(download));
}

/// Routes on the management API.
pub fn api_routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/v1/open/downloads", web::get().to(downloads));
}

/// The client's address (the TCP peer: a proxy in front of caap limits by its own address).
fn client(req: &HttpRequest) -> std::net::IpAddr {
    req.peer_addr()
        .map_or(std::net::IpAddr::from([0, 0, 0, 0]), |a| a.ip())
}

/// An error answer; a rate-limited one says when to come back (`Retry-After`).
fn refused(e: OpenError) -> HttpResponse {
    let retry = match &e {
        OpenError::RateLimited(wait) => Some(wait.as_secs().max(1)),
        _ => None,
    };
    let mut res = ApiError::from(e).error_response();
    if let Some(secs) = retry
        && let Ok(v) = header::HeaderValue::from_str(&secs.to_string())
    {
        res.headers_mut().insert(header::RETRY_AFTER, v);
    }
    res
}

/// `GET /open/v1/datasets/{id}/data`: streams a public dataset's data.
async fn download(
    req: HttpRequest,
    id: web::Path<String>,
    open: web::Data<OpenData>,
) -> HttpResponse {
    let last_event_id = req
        .headers()
        .get("last-event-id")
        .and_then(|v| v.to_str().ok());
    let opened = match open.download(&id, client(&req), last_event_id).await {
        Ok(o) => o,
        Err(e) => return refused(e),
    };
    let mut res = HttpResponse::Ok();
    res.insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"));
    if let Some(ct) = &opened.content_type {
        res.insert_header((header::CONTENT_TYPE, ct.as_str()));
    }
    match opened.length {
        Some(len) => res.no_chunking(len).streaming(opened.stream),
        None => res.streaming(opened.stream),
    }
}

/// The feed's query.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FeedQuery {
    page: Option<u64>,
}

/// `GET /open/v1/catalog?page=N`: the DCAT-AP 3.0 feed.
async fn feed(req: HttpRequest, open: web::Data<OpenData>) -> HttpResponse {
    if let Err(e) = open.admit(client(&req)) {
        return refused(e);
    }
    let query: FeedQuery = match super::body::query(&req) {
        Ok(q) => q,
        Err(e) => return e.error_response(),
    };
    let accept = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok());
    let syntax = Syntax::negotiate(accept);
    match open.feed(query.page.unwrap_or(1), syntax).await {
        Ok(doc) => HttpResponse::Ok()
            .insert_header((
                header::CONTENT_TYPE,
                format!("{}; charset=utf-8", doc.syntax.media_type()),
            ))
            .insert_header((header::VARY, "Accept"))
            .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"))
            .body(doc.body),
        Err(e) => refused(e),
    }
}

/// The download-count query.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DownloadsQuery {
    days: Option<u32>,
}

/// `GET /api/v1/open/downloads?days=N`: anonymous download counts per public dataset and day.
async fn downloads(
    _: Admin,
    req: HttpRequest,
    open: web::Data<OpenData>,
) -> Result<HttpResponse, ApiError> {
    let query: DownloadsQuery = super::body::query(&req)?;
    let counts = open.downloads(query.days.unwrap_or(30)).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "downloads": counts })))
}
