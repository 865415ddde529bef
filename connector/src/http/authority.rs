//! The trust anchor's DCP issuer service on the DSP listener (only with `[authority] enabled`):
//! `GET /issuer/metadata`, `POST /issuer/credentials` (a CredentialRequestMessage → 201 with the
//! request's `Location`; the credentials are delivered to the holder's credential service),
//! `GET /issuer/requests/{id}` (CredentialStatus, to the requester only), and the revocation list
//! `GET /issuer/status/revocation`.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};

use super::auth::{authorization, dcp_bearer_shaped};
use super::body::{body_limit, read_json_bytes};
use super::errors::dcp_answer;
use crate::authority::Authority;
use crate::trust::{DcpError, ISSUER_PATH};

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

async fn metadata(authority: web::Data<Authority>) -> HttpResponse {
    dcp_answer(
        "issuer/metadata",
        authority
            .issuer_metadata()
            .map(|m| HttpResponse::Ok().json(m)),
    )
}

async fn request(
    req: HttpRequest,
    payload: web::Payload,
    authority: web::Data<Authority>,
) -> HttpResponse {
    let answer = async {
        // No body is read for a caller without a token.
        dcp_bearer_shaped(&req)?;
        let body = read_json_bytes(&req, payload, body_limit(&req))
            .await
            .map_err(|e| DcpError::bad("bad_request", e))?;
        let id = authority
            .receive_credential_request(authorization(&req), &body)
            .await?;
        Ok(HttpResponse::Created()
            .insert_header((header::LOCATION, format!("{ISSUER_PATH}/requests/{id}")))
            .finish())
    };
    dcp_answer("issuer/credentials", answer.await)
}

async fn status(
    req: HttpRequest,
    id: web::Path<String>,
    authority: web::Data<Authority>,
) -> HttpResponse {
    dcp_answer(
        "issuer/requests",
        authority
            .issuance_status(authorization(&req), &id)
            .await
            .map(|s| HttpResponse::Ok().json(s)),
    )
}

async fn status_list(authority: web::Data<Authority>) -> HttpResponse {
    let answer = match authority.issuer_metadata() {
        Err(e) => Err(e),
        Ok(_) => authority
            .status_list_jwt()
            .await
            .map_err(|e| DcpError::Internal(e.to_string())),
    };
    dcp_answer(
        "issuer/status",
        answer.map(|jwt| {
            HttpResponse::Ok()
                .insert_header((header::CACHE_CONTROL, "max-age=10"))
                .content_type("application/vc+jwt")
                .body(jwt)
        }),
    )
}
