//! Management API for identity: the credentials this connector holds and how to obtain them
//! (`/api/v1/credentials…`), and, on a trust anchor, its member register, issued credentials and
//! revocations (`/api/v1/authority/…`).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use super::auth::Admin;
use super::body::{query, read_json_limited};
use super::errors::ApiError;
use crate::authority::{Authority, MemberProfile};
use crate::error::decode;
use crate::trust::Trust;

/// Routes under `/api/v1`.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/identity", web::get().to(identity))
        .route("/credentials", web::get().to(held))
        .route("/credentials/requests", web::post().to(request_credentials))
        .route("/credentials/{id}", web::delete().to(forget))
        .route("/authority/members", web::get().to(members))
        .route("/authority/members", web::post().to(put_member))
        .route("/authority/members/{did}", web::delete().to(remove_member))
        .route("/authority/credentials", web::get().to(issued))
        .route("/authority/revocations", web::post().to(revoke));
}

/// `GET /api/v1/identity`: our DID, DID document and credential service.
async fn identity(_: Admin, t: web::Data<Trust>) -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({
        "did": t.did,
        "keyId": t.key().key_id(),
        "credentialService": t.credential_service,
        "authMode": t.auth_mode.as_str(),
        "requiredCredentials": t.required,
        "didDocument": t.document.as_ref(),
    }))
}

/// `GET /api/v1/credentials`: the credentials we hold (without their JWTs).
async fn held(_: Admin, trust: web::Data<Trust>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(trust.held_credentials().await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CredentialRequest {
    /// The authority's root URL (its did:web) or DID.
    authority: String,
    /// Credential types to ask for (default: everything it offers).
    #[serde(default)]
    types: Vec<String>,
    /// How long to wait for the delivery, in seconds (default 30).
    #[serde(default)]
    wait_secs: Option<u64>,
}

/// `POST /api/v1/credentials/requests`: ask an authority for credentials (DCP issuance) and wait
/// until they are delivered (or refused).
async fn request_credentials(
    _: Admin,
    req: HttpRequest,
    payload: web::Payload,
    trust: web::Data<Trust>,
) -> Result<HttpResponse, ApiError> {
    let body = read_json_limited(&req, payload).await?;
    let r: CredentialRequest = decode(&body)?;
    let outcome = trust
        .request_credentials(
            &r.authority,
            &r.types,
            std::time::Duration::from_secs(r.wait_secs.unwrap_or(30).min(300)),
        )
        .await?;
    let status = if outcome.status == "ISSUED" {
        StatusCode::CREATED
    } else {
        StatusCode::ACCEPTED
    };
    Ok(HttpResponse::build(status).json(outcome))
}

/// `DELETE /api/v1/credentials/{id}`.
async fn forget(
    _: Admin,
    id: web::Path<String>,
    trust: web::Data<Trust>,
) -> Result<HttpResponse, ApiError> {
    trust.forget_credential(&id).await?;
    Ok(HttpResponse::NoContent().finish())
}

async fn members(_: Admin, authority: web::Data<Authority>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(authority.members().await?))
}

async fn put_member(
    _: Admin,
    req: HttpRequest,
    payload: web::Payload,
    authority: web::Data<Authority>,
) -> Result<HttpResponse, ApiError> {
    let body = read_json_limited(&req, payload).await?;
    let member: MemberProfile = decode(&body)?;
    Ok(HttpResponse::Created().json(authority.put_member(member).await?))
}

async fn remove_member(
    _: Admin,
    did: web::Path<String>,
    authority: web::Data<Authority>,
) -> Result<HttpResponse, ApiError> {
    authority.remove_member(&did).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct IssuedQuery {
    holder: Option<String>,
}

async fn issued(
    _: Admin,
    req: HttpRequest,
    authority: web::Data<Authority>,
) -> Result<HttpResponse, ApiError> {
    let q: IssuedQuery = query(&req)?;
    Ok(HttpResponse::Ok().json(authority.issued(q.holder.as_deref()).await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Revocation {
    /// A credential id, or a holder DID (all its credentials).
    subject: String,
    /// Why (kept with the credential).
    reason: String,
}

async fn revoke(
    _: Admin,
    req: HttpRequest,
    payload: web::Payload,
    authority: web::Data<Authority>,
) -> Result<HttpResponse, ApiError> {
    let body = read_json_limited(&req, payload).await?;
    let r: Revocation = decode(&body)?;
    let revoked = authority.revoke(&r.subject, &r.reason).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({"revoked": revoked})))
}
