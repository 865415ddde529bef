//! The DSP process endpoints' handlers, written once for every process kind: read and decode the message
//! (a malformed one is a 400 with the protocol's error body), hand it to the kind's service, answer with its
//! acknowledgement. A handler takes only its [`ProcessService`], never the store.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::auth::ProcessCaller;
use super::body::read_json;
use super::errors::DspError;
use crate::process::ProcessService;

/// Reads and decodes a process message of `S`'s protocol.
async fn message<S: ProcessService, T: DeserializeOwned>(
    req: &HttpRequest,
    payload: web::Payload,
    service: &S,
    pid: Option<&str>,
) -> Result<T, DspError> {
    let body = read_json(req, payload, service.max_body_bytes())
        .await
        .map_err(|e| {
            let pid = pid.unwrap_or_default();
            DspError::of(S::KIND, e.status(), pid, pid, e.to_string())
        })?;
    let pick = |k: &str| {
        body.get(k)
            .and_then(Value::as_str)
            .or(pid)
            .unwrap_or_default()
            .to_owned()
    };
    let bad = |reason: String| {
        DspError::of(
            S::KIND,
            StatusCode::BAD_REQUEST,
            pick("providerPid"),
            pick("consumerPid"),
            reason,
        )
    };
    let message = crate::service::decode(&body).map_err(|e| bad(e.to_string()))?;
    // What caap's own messages meet on the wire, inbound too (schema rules, ODRL model, absolute IRIs).
    caap_contracts::wire::check_message(&body).map_err(|e| bad(e.to_string()))?;
    Ok(message)
}

async fn receive<S: ProcessService>(
    service: &S,
    caller: &caap_identity::VerifiedCaller,
    pid: Option<&str>,
    inbound: S::Inbound,
) -> Result<HttpResponse, DspError> {
    let ack = service
        .receive(caller, pid, inbound)
        .await
        .map_err(|r| DspError::rejected(S::KIND, r))?;
    Ok(if ack.created {
        HttpResponse::Created().json(ack.ack)
    } else {
        HttpResponse::Ok().json(ack.ack)
    })
}

/// `POST` of a message `M` that starts a process (`/negotiations/request`, `/transfers/request`, …).
pub async fn initial<S: ProcessService, M: DeserializeOwned + Into<S::Inbound>>(
    req: HttpRequest,
    payload: web::Payload,
    ProcessCaller(caller): ProcessCaller,
    service: web::Data<S>,
) -> Result<HttpResponse, DspError> {
    let m: M = message(&req, payload, service.get_ref(), None).await?;
    receive(service.get_ref(), &caller, None, m.into()).await
}

/// `POST` of a message `M` within the process `pid` (ours).
pub async fn in_process<S: ProcessService, M: DeserializeOwned + Into<S::Inbound>>(
    req: HttpRequest,
    pid: web::Path<String>,
    payload: web::Payload,
    ProcessCaller(caller): ProcessCaller,
    service: web::Data<S>,
) -> Result<HttpResponse, DspError> {
    let m: M = message(&req, payload, service.get_ref(), Some(&pid)).await?;
    receive(service.get_ref(), &caller, Some(&pid), m.into()).await
}

/// `GET <base>/…/:pid`: the process's state, for the counterparty only.
pub async fn get<S: ProcessService>(
    pid: web::Path<String>,
    ProcessCaller(caller): ProcessCaller,
    service: web::Data<S>,
) -> Result<HttpResponse, DspError> {
    let ack = service
        .ack(&caller, &pid)
        .await
        .map_err(|r| DspError::rejected(S::KIND, r))?;
    Ok(HttpResponse::Ok().json(ack))
}
