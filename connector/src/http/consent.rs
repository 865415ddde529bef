//! Consent over HTTP (OASC MIM4).
//!
//! Management API (the city's staff and tools): consent records (list, JSON-LD export, verification),
//! consent requests, decisions recorded on a citizen's behalf (a signed paper form, a phone call: the
//! method is recorded), the withdrawal notices sent and received. DSP listener: the recipient side of
//! withdrawal notices (`<dsp>/consent/notices`, DSP-authenticated) and the MIM4 connector configuration
//! document (`/.well-known/mim4-configuration`).

use actix_web::{HttpRequest, HttpResponse, web};
use caap_policy::consent::ConsentStatus;
use serde::Deserialize;
use serde_json::json;

use super::auth::{Admin, ProcessCaller};
use super::body::{query, read_json_limited};
use super::errors::ApiError;
use crate::consent::Consents;
use crate::consent::notices::Courier;
use crate::error::decode;
use crate::service::ServiceError;
use crate::transfer::dataplane::DataPlane;

/// Management routes (under `/api/v1`).
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/consents", web::get().to(list))
        .route("/consents/requests", web::post().to(request))
        .route("/consents/verify", web::get().to(verify))
        .route("/consents/import", web::post().to(import))
        .route("/consents/{id}", web::get().to(export))
        .route("/consents/{id}/decision", web::post().to(decision))
        .route("/consents/{id}/deliveries", web::get().to(deliveries))
        .route(
            "/agreements/{id}/consent-requests",
            web::post().to(agreement_requests),
        )
        .route("/consent-notices", web::get().to(notices))
        .route("/consent-notices/received", web::get().to(received));
}

/// DSP-listener routes under the DSP path.
pub fn dsp_routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/consent/notices", web::post().to(receive_notice))
        .route("/consent/notices/{id}", web::get().to(notice_status));
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    dataset: Option<String>,
}

async fn list(
    _: Admin,
    req: HttpRequest,
    consents: web::Data<Consents>,
) -> Result<HttpResponse, ApiError> {
    let q: ListQuery = query(&req)?;
    let items = consents
        .list(q.dataset.as_deref())
        .await
        .map_err(ServiceError::from)?;
    Ok(HttpResponse::Ok().json(json!({"items": items})))
}

/// A consent request: which citizen (their identifier, hashed at once and not kept), which data, why, who.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RequestBody {
    subject: String,
    dataset: String,
    purpose: String,
    recipient: String,
}

async fn request(
    _: Admin,
    req: HttpRequest,
    payload: web::Payload,
    consents: web::Data<Consents>,
) -> Result<HttpResponse, ApiError> {
    let body: RequestBody = decode(&read_json_limited(&req, payload).await?)?;
    if body.subject.trim().is_empty() {
        return Err(ServiceError::field("/subject", "name the citizen").into());
    }
    let subject = consents.pseudonym(body.subject.trim());
    let id = consents
        .request(subject, &body.dataset, &body.purpose, &body.recipient)
        .await
        .map_err(ServiceError::from)?;
    Ok(HttpResponse::Created().json(json!({"id": id})))
}

/// A decision recorded on the citizen's behalf.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct DecisionBody {
    subject: String,
    decision: String,
    /// How the citizen indicated it ("paper form 2026-12-01", …); default "management-api".
    #[serde(default)]
    method: Option<String>,
    /// How long a grant lasts (ISO 8601 duration).
    #[serde(default)]
    duration: Option<String>,
}

async fn decision(
    _: Admin,
    req: HttpRequest,
    id: web::Path<String>,
    payload: web::Payload,
    consents: web::Data<Consents>,
) -> Result<HttpResponse, ApiError> {
    let body: DecisionBody = decode(&read_json_limited(&req, payload).await?)?;
    let status = match body.decision.as_str() {
        "grant" => ConsentStatus::Given,
        "refuse" => ConsentStatus::Refused,
        "withdraw" => ConsentStatus::Withdrawn,
        "renew" => ConsentStatus::Renewed,
        _ => {
            return Err(
                ServiceError::field("/decision", "one of grant, refuse, withdraw, renew").into(),
            );
        }
    };
    let subject = consents.pseudonym(body.subject.trim());
    let method = body.method.unwrap_or_else(|| "management-api".into());
    let record = consents
        .record_event(&subject, &id, status, &method, body.duration)
        .await
        .map_err(ServiceError::from)?;
    let seq = record.revisions().last().map_or(0, |r| r.seq);
    let receipt = record
        .signed_receipt(seq, &consents.signer())
        .map_err(|e| ServiceError::Internal(e.to_string()))?;
    Ok(HttpResponse::Ok()
        .json(json!({"id": record.terms().id, "state": record.state(), "receipt": receipt})))
}

async fn export(
    _: Admin,
    id: web::Path<String>,
    consents: web::Data<Consents>,
) -> Result<HttpResponse, ApiError> {
    let doc = consents.export(&id).await.map_err(ServiceError::from)?;
    Ok(HttpResponse::Ok()
        .content_type("application/ld+json")
        .json(doc))
}

/// `POST /api/v1/consents/import`: a MyData-style consent record signed by a trusted consent operator.
async fn import(
    _: Admin,
    req: HttpRequest,
    payload: web::Payload,
    consents: web::Data<Consents>,
) -> Result<HttpResponse, ApiError> {
    let body = read_json_limited(&req, payload).await?;
    let jws = body["record"].as_str().ok_or_else(|| {
        ServiceError::field("/record", "the signed consent record (a compact JWS)")
    })?;
    let record = consents.import(jws).await.map_err(ServiceError::from)?;
    Ok(HttpResponse::Ok().json(json!({"id": record.terms().id, "state": record.state()})))
}

/// `POST /api/v1/agreements/{id}/consent-requests`: asks every citizen the agreement's dataset holds (made
/// automatically when an agreement is finalized; this makes them again).
async fn agreement_requests(
    _: Admin,
    id: web::Path<String>,
    plane: web::Data<DataPlane>,
) -> Result<HttpResponse, ApiError> {
    let n = plane.request_consents_for(&id).await?;
    Ok(HttpResponse::Ok().json(json!({"citizens": n})))
}

async fn deliveries(
    _: Admin,
    id: web::Path<String>,
    consents: web::Data<Consents>,
) -> Result<HttpResponse, ApiError> {
    let items = consents
        .deliveries_of_record(&id)
        .await
        .map_err(ServiceError::from)?;
    Ok(HttpResponse::Ok().json(json!({"items": items})))
}

async fn verify(_: Admin, consents: web::Data<Consents>) -> Result<HttpResponse, ApiError> {
    let report = consents.verify().await.map_err(ServiceError::from)?;
    Ok(HttpResponse::Ok().json(report))
}

async fn notices(_: Admin, consents: web::Data<Consents>) -> Result<HttpResponse, ApiError> {
    let items = consents.sent_notices().await.map_err(ServiceError::from)?;
    Ok(HttpResponse::Ok().json(json!({"items": items})))
}

async fn received(_: Admin, consents: web::Data<Consents>) -> Result<HttpResponse, ApiError> {
    let items = consents
        .received_notices()
        .await
        .map_err(ServiceError::from)?;
    Ok(HttpResponse::Ok().json(json!({"items": items})))
}

/// `POST <dsp>/consent/notices`: a withdrawal notice from a provider this connector received data from.
async fn receive_notice(
    req: HttpRequest,
    ProcessCaller(caller): ProcessCaller,
    payload: web::Payload,
    courier: web::Data<Courier>,
) -> Result<HttpResponse, ApiError> {
    let body = read_json_limited(&req, payload).await?;
    let notice = body["notice"]
        .as_str()
        .ok_or_else(|| ServiceError::field("/notice", "the signed notice (a compact JWS)"))?;
    match crate::consent::notices::receive(&courier, &caller.participant_id, notice).await {
        Ok(ack) => Ok(HttpResponse::Ok().json(json!({"acknowledgement": ack}))),
        Err(crate::consent::notices::NoticeRefused::Invalid(m)) => {
            Err(ServiceError::BadRequest(m, vec![]).into())
        }
        Err(crate::consent::notices::NoticeRefused::Internal(m)) => {
            Err(ServiceError::Internal(m).into())
        }
    }
}

/// `GET <dsp>/consent/notices/{id}`: where a notice from the caller stands (with the signed deletion
/// confirmation once the records are deleted).
async fn notice_status(
    ProcessCaller(caller): ProcessCaller,
    id: web::Path<String>,
    courier: web::Data<Courier>,
) -> Result<HttpResponse, ApiError> {
    match crate::consent::notices::status(&courier, &caller.participant_id, &id).await {
        Ok(Some(v)) => Ok(HttpResponse::Ok().json(v)),
        Ok(None) => Err(ServiceError::NotFound("no such notice from you".into()).into()),
        Err(e) => Err(ServiceError::Internal(e).into()),
    }
}

/// `GET /.well-known/mim4-configuration`: how this connector takes part in MIM4 (personal data
/// management): its consent endpoints and what it supports.
pub async fn mim4_configuration(consents: web::Data<Consents>) -> HttpResponse {
    HttpResponse::Ok().json(consents.mim4_configuration())
}
