//! The trust anchor's DCP issuer service on the DSP listener (only with `[authority] enabled`):
//! `GET /issuer/metadata`, `POST /issuer/credentials` (a CredentialRequestMessage → 201 with the
//! request's `Location`; the credentials are delivered to the holder's credential service),
//! `GET /issuer/requests/{id}` (CredentialStatus, to the requester only), and the revocation list
//! `GET /issuer/status/revocation`.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};

use super::body::read_json_bytes;
use super::identity::{authorization, dcp_answer};
use crate::service::Connector;
use crate::trust::ISSUER_PATH;
use crate::trust::dcp::DcpError;

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

async fn metadata(connector: web::Data<Connector>) -> HttpResponse {
    dcp_answer(
        "issuer/metadata",
        connector
            .issuer_metadata()
            .map(|m| HttpResponse::Ok().json(m)),
    )
}

async fn request(
    req: HttpRequest,
    payload: web::Payload,
    connector: web::Data<Connector>,
) -> HttpResponse {
    let answer = async {
        let body = read_json_bytes(&req, payload, connector.config.limits.max_body_bytes)
            .await
            .map_err(|e| DcpError::bad("bad_request", e))?;
        let id = connector
            .receive_credential_request(authorization(&req).as_deref(), &body)
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
    connector: web::Data<Connector>,
) -> HttpResponse {
    dcp_answer(
        "issuer/requests",
        connector
            .issuance_status(authorization(&req).as_deref(), &id)
            .await
            .map(|s| HttpResponse::Ok().json(s)),
    )
}

async fn status_list(connector: web::Data<Connector>) -> HttpResponse {
    let answer = match connector.issuer_metadata() {
        Err(e) => Err(e),
        Ok(_) => connector
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
