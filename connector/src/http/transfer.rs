//! DSP 2025-1 transfer process endpoints (provider and consumer side), and the data plane: pull
//! (`GET /data/{tid}`), token refresh (`POST /data/{tid}/token`) and the consumer's push receiver
//! (`POST /push/{tid}`).

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use caap_contracts::transfer::message::TransferProcessAck;
use caap_contracts::transfer::state::TransferState;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::auth::{ProcessCaller, authorization};
use super::errors::{ApiError, DspNegotiationError};
use crate::service::Connector;
use crate::transfer::inbound::TInbound;

/// A DSP transfer error: the negotiation error machinery with a `TransferError` body.
#[derive(Debug)]
pub struct DspTransferError(DspNegotiationError);

impl std::fmt::Display for DspTransferError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl From<DspNegotiationError> for DspTransferError {
    fn from(e: DspNegotiationError) -> Self {
        DspTransferError(e.for_transfer(true))
    }
}

impl From<crate::negotiation::inbound::Rejected> for DspTransferError {
    fn from(r: crate::negotiation::inbound::Rejected) -> Self {
        DspNegotiationError::from(r).into()
    }
}

impl actix_web::ResponseError for DspTransferError {
    fn status_code(&self) -> StatusCode {
        self.0.status_code()
    }
    fn error_response(&self) -> HttpResponse {
        self.0.error_response()
    }
}

/// DSP routes under the DSP base.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/transfers/request", web::post().to(request))
        .route("/transfers/{pid}", web::get().to(get))
        .route("/transfers/{pid}/start", web::post().to(start))
        .route("/transfers/{pid}/completion", web::post().to(completion))
        .route("/transfers/{pid}/termination", web::post().to(termination))
        .route("/transfers/{pid}/suspension", web::post().to(suspension));
}

/// Data-plane routes under the DSP listener's root.
pub fn data_routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/data/{tid}", web::get().to(pull))
        .route("/data/{tid}/token", web::post().to(refresh))
        .route("/push/{tid}", web::post().to(receive_push))
        .route("/notify/{id}", web::post().to(notification));
}

async fn message<T: DeserializeOwned>(
    req: &HttpRequest,
    payload: web::Payload,
    connector: &Connector,
    pid: Option<&str>,
) -> Result<T, DspTransferError> {
    Ok(super::negotiation::message(req, payload, connector, pid).await?)
}

async fn receive(
    connector: &Connector,
    caller: &caap_identity::VerifiedCaller,
    pid: Option<&str>,
    inbound: TInbound,
) -> Result<HttpResponse, DspTransferError> {
    let ack = connector
        .receive_transfer_message(caller, pid, inbound)
        .await?;
    Ok(if ack.created {
        HttpResponse::Created().json(ack.ack)
    } else {
        HttpResponse::Ok().json(ack.ack)
    })
}

async fn request(
    req: HttpRequest,
    payload: web::Payload,
    ProcessCaller(caller): ProcessCaller,
    connector: web::Data<Connector>,
) -> Result<HttpResponse, DspTransferError> {
    let m = message(&req, payload, &connector, None).await?;
    receive(&connector, &caller, None, TInbound::Request(m)).await
}

async fn get(
    pid: web::Path<String>,
    ProcessCaller(caller): ProcessCaller,
    connector: web::Data<Connector>,
) -> Result<HttpResponse, DspTransferError> {
    let not_found = || -> DspTransferError {
        DspNegotiationError::new(
            StatusCode::NOT_FOUND,
            pid.as_str(),
            pid.as_str(),
            "no such transfer for this caller",
        )
        .into()
    };
    let t = connector
        .store
        .transfer(&pid)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "reading a transfer failed");
            not_found()
        })?
        .filter(|t| t.counterparty_id == caller.participant_id)
        .ok_or_else(not_found)?;
    let (p, c) = t.pids();
    Ok(HttpResponse::Ok().json(TransferProcessAck::new(
        p,
        c,
        t.state.unwrap_or(TransferState::Requested),
    )))
}

macro_rules! in_process {
    ($name:ident, $variant:ident) => {
        async fn $name(
            req: HttpRequest,
            pid: web::Path<String>,
            payload: web::Payload,
            ProcessCaller(caller): ProcessCaller,
            connector: web::Data<Connector>,
        ) -> Result<HttpResponse, DspTransferError> {
            let m = message(&req, payload, &connector, Some(&pid)).await?;
            receive(&connector, &caller, Some(&pid), TInbound::$variant(m)).await
        }
    };
}

in_process!(start, Start);
in_process!(completion, Completion);
in_process!(termination, Termination);
in_process!(suspension, Suspension);

/// `GET /data/{tid}`: the pull endpoint. Streams the source; checked on every access.
async fn pull(
    req: HttpRequest,
    tid: web::Path<String>,
    connector: web::Data<Connector>,
) -> Result<HttpResponse, ApiError> {
    let t = connector.authorize_pull(&tid, authorization(&req)).await?;
    let last_event_id = req
        .headers()
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    // Watch for a stop before opening the source, so a suspension racing with this access still ends it.
    let stop = connector.flows.watch(&t.id);
    let opened = connector
        .open_source(&t.body.dataset_id, last_event_id.as_deref())
        .await?;
    tracing::info!(transfer = %t.id, consumer = %t.counterparty_id, "pull access");
    let stream = crate::transfer::dataplane::flows::until_stopped(opened.stream, stop);
    let mut res = HttpResponse::Ok();
    if let Some(ct) = &opened.content_type {
        res.insert_header((header::CONTENT_TYPE, ct.as_str()));
    }
    match opened.length {
        Some(len) => Ok(res.no_chunking(len).streaming(stream)),
        None => Ok(res.streaming(stream)),
    }
}

/// `POST /data/{tid}/token`: a fresh pull token for the transfer's consumer (DSP-authenticated).
async fn refresh(
    tid: web::Path<String>,
    ProcessCaller(caller): ProcessCaller,
    connector: web::Data<Connector>,
) -> Result<HttpResponse, ApiError> {
    let address = connector
        .refresh_pull_address(&caller.participant_id, &tid)
        .await?;
    Ok(HttpResponse::Ok().json(address))
}

/// `POST /push/{tid}`: this connector's receiver for push transfers it consumes.
async fn receive_push(
    req: HttpRequest,
    tid: web::Path<String>,
    payload: web::Payload,
    connector: web::Data<Connector>,
) -> Result<HttpResponse, ApiError> {
    let bytes = connector
        .receive_push(&tid, authorization(&req), payload)
        .await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({"received": bytes})))
}

/// `POST /notify/{id}`: an NGSI-LD broker's notification for a subscription-fed stream this connector serves.
/// Waits while the stream's queue is full (back-pressure towards the broker).
async fn notification(
    id: web::Path<String>,
    body: web::Bytes,
    connector: web::Data<Connector>,
) -> Result<HttpResponse, ApiError> {
    let Some(tx) = connector.notifications.sender(&id) else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not-found",
            "no such subscription endpoint",
        ));
    };
    let value: Value = serde_json::from_slice(&body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad-request",
            format!("not JSON: {e}"),
        )
    })?;
    let mut line = serde_json::to_vec(&value).unwrap_or_default();
    line.push(b'\n');
    tx.send(web::Bytes::from(line))
        .await
        .map_err(|_| ApiError::new(StatusCode::GONE, "gone", "the stream has ended"))?;
    Ok(HttpResponse::NoContent().finish())
}
