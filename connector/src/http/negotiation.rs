//! DSP 2025-1 contract negotiation endpoints, provider and consumer side. Both share the `/negotiations/:pid`
//! space: the pid is ours, and the negotiation it names knows our role.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use caap_contracts::negotiation::message::ContractNegotiationAck;
use caap_contracts::negotiation::state::NegotiationState;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::auth::ProcessCaller;
use super::body::read_json;
use super::errors::DspNegotiationError;
use crate::negotiation::inbound::Inbound;
use crate::service::Connector;

/// Routes under the DSP base.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/negotiations/request", web::post().to(initial_request))
        .route("/negotiations/offers", web::post().to(initial_offer))
        .route("/negotiations/{pid}", web::get().to(get))
        .route("/negotiations/{pid}/request", web::post().to(request))
        .route("/negotiations/{pid}/offers", web::post().to(offer))
        .route("/negotiations/{pid}/events", web::post().to(event))
        .route("/negotiations/{pid}/agreement", web::post().to(agreement))
        .route(
            "/negotiations/{pid}/agreement/verification",
            web::post().to(verification),
        )
        .route(
            "/negotiations/{pid}/termination",
            web::post().to(termination),
        );
}

/// Reads and decodes a DSP process message; a malformed one is a 400 with the protocol's error body
/// (`ContractNegotiationError`, or `TransferError` once converted with `.for_transfer(true)`).
pub(super) async fn message<T: DeserializeOwned>(
    req: &HttpRequest,
    payload: web::Payload,
    connector: &Connector,
    pid: Option<&str>,
) -> Result<T, DspNegotiationError> {
    let body = read_json(req, payload, connector.config.limits.max_body_bytes)
        .await
        .map_err(|e| {
            DspNegotiationError::new(
                e.status(),
                pid.unwrap_or_default(),
                pid.unwrap_or_default(),
                e.to_string(),
            )
        })?;
    let pick = |k: &str| {
        body.get(k)
            .and_then(Value::as_str)
            .or(pid)
            .unwrap_or_default()
            .to_owned()
    };
    let bad = |reason: String| {
        DspNegotiationError::new(
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

async fn receive(
    connector: &Connector,
    caller: &caap_identity::VerifiedCaller,
    pid: Option<&str>,
    inbound: Inbound,
) -> Result<HttpResponse, DspNegotiationError> {
    let ack = connector
        .receive_negotiation_message(caller, pid, inbound)
        .await?;
    Ok(if ack.created {
        HttpResponse::Created().json(ack.ack)
    } else {
        HttpResponse::Ok().json(ack.ack)
    })
}

async fn initial_request(
    req: HttpRequest,
    payload: web::Payload,
    ProcessCaller(caller): ProcessCaller,
    connector: web::Data<Connector>,
) -> Result<HttpResponse, DspNegotiationError> {
    let m = message(&req, payload, &connector, None).await?;
    receive(&connector, &caller, None, Inbound::Request(m)).await
}

async fn initial_offer(
    req: HttpRequest,
    payload: web::Payload,
    ProcessCaller(caller): ProcessCaller,
    connector: web::Data<Connector>,
) -> Result<HttpResponse, DspNegotiationError> {
    let m = message(&req, payload, &connector, None).await?;
    receive(&connector, &caller, None, Inbound::Offer(m)).await
}

/// `GET <base>/negotiations/:pid`: the state, for the counterparty only.
async fn get(
    pid: web::Path<String>,
    ProcessCaller(caller): ProcessCaller,
    connector: web::Data<Connector>,
) -> Result<HttpResponse, DspNegotiationError> {
    let not_found = || {
        DspNegotiationError::new(
            StatusCode::NOT_FOUND,
            pid.as_str(),
            pid.as_str(),
            "no such negotiation for this caller",
        )
    };
    let n = connector
        .store
        .negotiation(&pid)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "reading a negotiation failed");
            DspNegotiationError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                pid.as_str(),
                pid.as_str(),
                "internal error; the connector's log has the details",
            )
        })?
        .ok_or_else(not_found)?;
    if n.counterparty_id != caller.participant_id {
        return Err(not_found());
    }
    let (p, c) = n.pids();
    Ok(HttpResponse::Ok().json(ContractNegotiationAck::new(
        p,
        c,
        n.state.unwrap_or(NegotiationState::Requested),
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
        ) -> Result<HttpResponse, DspNegotiationError> {
            let m = message(&req, payload, &connector, Some(&pid)).await?;
            receive(&connector, &caller, Some(&pid), Inbound::$variant(m)).await
        }
    };
}

in_process!(request, Request);
in_process!(offer, Offer);
in_process!(event, Event);
in_process!(agreement, Agreement);
in_process!(verification, Verification);
in_process!(termination, Termination);
