//! DSP 2025-1 transfer process endpoints (provider and consumer side), and the data plane: pull
//! (`GET /data/{tid}`), token refresh (`POST /data/{tid}/token`) and the consumer's push receiver
//! (`POST /push/{tid}`). The process endpoints ([`super::process`]) take only the [`Transfers`] service.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use caap_contracts::transfer::message::{
    TransferCompletionMessage, TransferRequestMessage, TransferStartMessage,
    TransferSuspensionMessage, TransferTerminationMessage,
};
use serde_json::Value;

use super::auth::{ProcessCaller, authorization};
use super::body::read_json_limited;
use super::errors::{ApiError, StreamEnded};
use super::process::{get, in_process, initial};
use crate::error::ServiceError;
use crate::transfer::Transfers;
use crate::transfer::dataplane::DataPlane;

type T = Transfers;

/// DSP routes under the DSP base.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/transfers/request",
        web::post().to(initial::<T, TransferRequestMessage>),
    )
    .route("/transfers/{pid}", web::get().to(get::<T>))
    .route(
        "/transfers/{pid}/start",
        web::post().to(in_process::<T, TransferStartMessage>),
    )
    .route(
        "/transfers/{pid}/completion",
        web::post().to(in_process::<T, TransferCompletionMessage>),
    )
    .route(
        "/transfers/{pid}/termination",
        web::post().to(in_process::<T, TransferTerminationMessage>),
    )
    .route(
        "/transfers/{pid}/suspension",
        web::post().to(in_process::<T, TransferSuspensionMessage>),
    );
}

/// Data-plane routes under the DSP listener's root.
pub fn data_routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/data/{tid}", web::get().to(pull))
        .route("/data/{tid}/token", web::post().to(refresh))
        .route("/push/{tid}", web::post().to(receive_push))
        .route("/notify/{id}", web::post().to(notification));
}

/// `GET /data/{tid}`: the pull endpoint. Streams the source; checked on every access.
async fn pull(
    req: HttpRequest,
    tid: web::Path<String>,
    plane: web::Data<DataPlane>,
) -> Result<HttpResponse, ApiError> {
    let t = plane.authorize_pull(&tid, authorization(&req)).await?;
    let last_event_id = req
        .headers()
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    // Watch for a stop before opening the source, so a suspension racing with this access still ends it.
    let stop = plane.flows.watch(&t.id);
    let opened = plane
        .open_source(&t.body.dataset_id, last_event_id.as_deref(), range(&req))
        .await?;
    let mut opened = plane
        .release(&t.id, &t.agreement_id, &t.body.dataset_id, opened)
        .await?;
    tracing::info!(transfer = %t.id, consumer = %t.counterparty_id, "pull access");
    let stream = crate::metrics::counted(
        opened.stream,
        plane.metrics.clone(),
        crate::metrics::Direction::Out,
    );
    let stream = crate::transfer::dataplane::flows::until_stopped(stream, stop);
    opened.stream = plane.counted(&t.id, Box::pin(stream), "served");
    Ok(streamed(opened))
}

/// The one `Range` a request asks for, if any (see `dataplane::range`).
pub(super) fn range(req: &HttpRequest) -> Option<crate::transfer::dataplane::range::ByteRange> {
    req.headers()
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(crate::transfer::dataplane::range::ByteRange::parse)
}

/// A data flow as a response: 200 with the whole, or 206 with `Content-Range` when a range was served.
pub(super) fn streamed(opened: crate::transfer::dataplane::Opened) -> HttpResponse {
    let mut res = match &opened.range {
        Some(part) => {
            let mut res = HttpResponse::PartialContent();
            res.insert_header((header::CONTENT_RANGE, part.header()));
            res
        }
        None => HttpResponse::Ok(),
    };
    if let Some(ct) = &opened.content_type {
        res.insert_header((header::CONTENT_TYPE, ct.as_str()));
    }
    match opened.length {
        Some(len) => res.no_chunking(len).streaming(opened.stream),
        None => res.streaming(opened.stream),
    }
}

/// `POST /data/{tid}/token`: a fresh pull token for the transfer's consumer (DSP-authenticated).
async fn refresh(
    tid: web::Path<String>,
    ProcessCaller(caller): ProcessCaller,
    plane: web::Data<DataPlane>,
) -> Result<HttpResponse, ApiError> {
    let address = plane
        .refresh_pull_address(&caller.participant_id, &tid)
        .await?;
    Ok(HttpResponse::Ok().json(address))
}

/// `POST /push/{tid}`: this connector's receiver for push transfers it consumes.
async fn receive_push(
    req: HttpRequest,
    tid: web::Path<String>,
    payload: web::Payload,
    plane: web::Data<DataPlane>,
) -> Result<HttpResponse, ApiError> {
    let bytes = plane
        .receive_push(&tid, authorization(&req), payload)
        .await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({"received": bytes})))
}

/// `POST /notify/{id}`: an NGSI-LD broker's notification for a subscription-fed stream this connector serves.
/// The id is checked before the body is read (an unknown one costs nothing). Waits while the stream's queue
/// is full (back-pressure towards the broker).
async fn notification(
    req: HttpRequest,
    id: web::Path<String>,
    payload: web::Payload,
    plane: web::Data<DataPlane>,
) -> Result<HttpResponse, ApiError> {
    let Some(tx) = plane.notifications.sender(&id) else {
        return Err(ServiceError::NotFound("no such subscription endpoint".into()).into());
    };
    let value: Value = read_json_limited(&req, payload).await?;
    let mut line = serde_json::to_vec(&value).unwrap_or_default();
    line.push(b'\n');
    tx.send(web::Bytes::from(line))
        .await
        .map_err(|_| StreamEnded)?;
    Ok(HttpResponse::NoContent().finish())
}
