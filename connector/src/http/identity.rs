//! Identity endpoints on the DSP listener: our DID document (`did:web`), and the embedded DCP
//! credential service (`POST /dcp/presentations/query`; the storage API the trust anchor delivers
//! credentials to is `POST /dcp/credentials`). Each handler takes the [`Trust`] service only.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};

use super::auth::{authorization, dcp_bearer_shaped};
use super::body::{body_limit, read_json_bytes};
use super::errors::dcp_answer;
use crate::trust::{CREDENTIAL_SERVICE_PATH, DcpError, Trust};

/// Routes under the DSP listener's root.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/.well-known/did.json", web::get().to(did_document))
        .route("/did.json", web::get().to(did_document))
        .service(
            web::scope(CREDENTIAL_SERVICE_PATH)
                .route("/presentations/query", web::post().to(presentation_query))
                .route("/credentials", web::post().to(store_credentials)),
        );
}

/// `GET /.well-known/did.json`: the connector's DID document (did:web).
async fn did_document(trust: web::Data<Trust>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "max-age=300"))
        .content_type("application/did+json")
        .json(trust.document.as_ref())
}

/// `POST /dcp/presentations/query`: a verifier asks for our credentials (Resolution API).
async fn presentation_query(
    req: HttpRequest,
    payload: web::Payload,
    trust: web::Data<Trust>,
) -> HttpResponse {
    let answer = async {
        // No body is read for a caller without a token.
        dcp_bearer_shaped(&req)?;
        let body = read_json_bytes(&req, payload, body_limit(&req))
            .await
            .map_err(|e| DcpError::bad("bad_request", e))?;
        let response = trust
            .answer_presentation_query(authorization(&req), &body)
            .await?;
        Ok(HttpResponse::Ok().json(response))
    };
    dcp_answer("presentations/query", answer.await)
}

/// `POST /dcp/credentials`: the Storage API, where an issuer delivers credentials (a
/// CredentialMessage) with its self-issued token.
async fn store_credentials(
    req: HttpRequest,
    payload: web::Payload,
    trust: web::Data<Trust>,
) -> HttpResponse {
    let answer = async {
        // No body is read for a caller without a token.
        dcp_bearer_shaped(&req)?;
        let body = read_json_bytes(&req, payload, body_limit(&req))
            .await
            .map_err(|e| DcpError::bad("bad_request", e))?;
        trust.store_delivery(authorization(&req), &body).await?;
        Ok(HttpResponse::Ok().finish())
    };
    dcp_answer("credentials", answer.await)
}
