//! The trust anchor's DCP issuer service on the DSP listener (only with `[authority] enabled`):
//! `GET /issuer/metadata`, `POST /issuer/credentials` (a CredentialRequestMessage → 201 with the
//! request's `Location`; the credentials are delivered to the holder's credential service),
//! `GET /issuer/requests/{id}` (CredentialStatus, to the requester only), and the revocation list
//! `GET /issuer/status/revocation`.

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use caap_identity::dcp::issuance;

use super::body::read_json;
use super::identity::{dcp_error, refused};
use crate::authority::{ISSUER_PATH, credentials_supported};
use crate::service::Connector;
use crate::store::identity::IssuanceRequest;

/// Routes under the DSP listener's root.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope(ISSUER_PATH)
            .route("/metadata", web::get().to(metadata))
            .route("/credentials", web::post().to(request))
            .route("/requests/{id}", web::get().to(status))
            .route("/status/revocation", web::get().to(status_list)),
    );
}

fn authorization(req: &HttpRequest) -> Option<String> {
    req.headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

fn not_an_authority() -> HttpResponse {
    dcp_error(
        StatusCode::NOT_FOUND,
        "not_found",
        "this connector is not a credential issuer",
    )
}

async fn metadata(connector: web::Data<Connector>) -> HttpResponse {
    if !connector.config.authority.enabled {
        return not_an_authority();
    }
    HttpResponse::Ok().json(issuance::IssuerMetadata::new(
        &connector.identity.participant_id,
        credentials_supported(),
    ))
}

async fn request(
    req: HttpRequest,
    payload: web::Payload,
    connector: web::Data<Connector>,
) -> HttpResponse {
    if !connector.config.authority.enabled {
        return not_an_authority();
    }
    let trust = &connector.trust;
    let now = connector.clock.now();
    let token = match issuance::authorize_issuance_request(
        authorization(&req).as_deref(),
        &trust.did,
        now,
        trust.resolver.as_ref(),
        trust.replay.as_ref(),
    )
    .await
    {
        Ok(t) => t,
        Err(r) => return refused("issuer/credentials", &r),
    };
    let body = match read_json(&req, payload, connector.config.limits.max_body_bytes).await {
        Ok(b) => b,
        Err(e) => return dcp_error(e.status(), "bad_request", &e.to_string()),
    };
    let message = match issuance::CredentialRequestMessage::parse(
        &serde_json::to_vec(&body).unwrap_or_default(),
    ) {
        Ok(m) => m,
        Err(e) => return dcp_error(StatusCode::BAD_REQUEST, "invalid_request", &e.to_string()),
    };
    let supported = credentials_supported();
    let mut wanted = Vec::new();
    for r in &message.credentials {
        match supported.iter().find(|o| o.id == r.id) {
            Some(o) => wanted.push(o.credential_type.clone().unwrap_or_else(|| o.id.clone())),
            None => {
                return dcp_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    &format!("`{}` is not in this issuer's credentialsSupported", r.id),
                );
            }
        }
    }
    let record = IssuanceRequest {
        id: format!("{}", uuid::Uuid::new_v4()),
        holder: token.issuer.clone(),
        holder_pid: message.holder_pid.clone(),
        status: "RECEIVED".into(),
        reason: None,
        created_at: now,
        updated_at: now,
    };
    if let Err(e) = connector.store.put_issuance_request(&record).await {
        tracing::error!(error = %e, "cannot record the issuance request");
        return dcp_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error",
        );
    }
    tracing::info!(holder = %record.holder, request = %record.id, wanted = ?wanted, "authority: credential request received");
    let location = format!("{ISSUER_PATH}/requests/{}", record.id);
    connector.spawn_issuance(record, wanted);
    HttpResponse::Created()
        .insert_header((header::LOCATION, location))
        .finish()
}

async fn status(
    req: HttpRequest,
    id: web::Path<String>,
    connector: web::Data<Connector>,
) -> HttpResponse {
    if !connector.config.authority.enabled {
        return not_an_authority();
    }
    let trust = &connector.trust;
    let token = match issuance::authorize_issuance_request(
        authorization(&req).as_deref(),
        &trust.did,
        connector.clock.now(),
        trust.resolver.as_ref(),
        trust.replay.as_ref(),
    )
    .await
    {
        Ok(t) => t,
        Err(r) => return refused("issuer/requests", &r),
    };
    match connector.store.issuance_request(&id).await {
        Ok(Some(r)) if r.holder == token.issuer => {
            let status = match r.status.as_str() {
                "ISSUED" => issuance::RequestStatus::Issued,
                "REJECTED" => issuance::RequestStatus::Rejected,
                _ => issuance::RequestStatus::Received,
            };
            HttpResponse::Ok().json(issuance::CredentialStatus::new(
                &r.id,
                &r.holder_pid,
                status,
            ))
        }
        Ok(_) => dcp_error(
            StatusCode::NOT_FOUND,
            "not_found",
            "no such request for this holder",
        ),
        Err(e) => {
            tracing::error!(error = %e, "cannot read the issuance request");
            dcp_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "internal error",
            )
        }
    }
}

async fn status_list(connector: web::Data<Connector>) -> HttpResponse {
    if !connector.config.authority.enabled {
        return not_an_authority();
    }
    match connector.status_list_jwt().await {
        Ok(jwt) => HttpResponse::Ok()
            .insert_header((header::CACHE_CONTROL, "max-age=10"))
            .content_type("application/vc+jwt")
            .body(jwt),
        Err(e) => {
            tracing::error!(error = %e, "cannot build the status list");
            dcp_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "internal error",
            )
        }
    }
}
