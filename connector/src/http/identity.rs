//! Identity endpoints on the DSP listener: our DID document (`did:web`), and the embedded DCP
//! credential service (`POST /dcp/presentations/query`; the storage API the trust anchor delivers
//! credentials to is `POST /dcp/credentials`).

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::json;

use super::body::read_json_bytes;
use crate::dcp::{CREDENTIAL_SERVICE_PATH, DcpError};
use crate::service::Connector;

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
async fn did_document(connector: web::Data<Connector>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "max-age=300"))
        .content_type("application/did+json")
        .json(connector.trust.document.as_ref())
}

/// A DCP error body: a code and a message (the reason is in the log).
fn dcp_error(status: StatusCode, code: &str, message: &str) -> HttpResponse {
    let mut res = HttpResponse::build(status);
    if status == StatusCode::UNAUTHORIZED {
        res.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
    }
    res.json(json!({"type": "Error", "code": code, "message": message}))
}

/// The answer of a DCP endpoint: the response, or its error as a DCP error body. A refused token is
/// 401 (503 when a dependency is down) and its reason goes to the log only; a 500 carries no cause.
pub fn dcp_answer(endpoint: &str, answer: Result<HttpResponse, DcpError>) -> HttpResponse {
    match answer {
        Ok(res) => res,
        Err(DcpError::Refused(r)) if r.is_unavailable() => {
            tracing::warn!(%endpoint, code = r.code(), reason = %r, "DCP request could not be verified");
            dcp_error(
                StatusCode::SERVICE_UNAVAILABLE,
                r.code(),
                "the request could not be verified right now; retry later",
            )
        }
        Err(DcpError::Refused(r)) => {
            tracing::info!(%endpoint, code = r.code(), reason = %r, "DCP request refused");
            dcp_error(StatusCode::UNAUTHORIZED, r.code(), &r.public_message())
        }
        Err(DcpError::BadRequest {
            status,
            code,
            message,
        }) => dcp_error(
            StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
            code,
            &message,
        ),
        Err(DcpError::NotFound(message)) => dcp_error(StatusCode::NOT_FOUND, "not_found", &message),
        Err(DcpError::Internal(cause)) => {
            tracing::error!(%endpoint, %cause, "DCP request failed");
            dcp_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "internal error",
            )
        }
    }
}

/// The raw `Authorization` header, if any.
pub fn authorization(req: &HttpRequest) -> Option<String> {
    req.headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// `POST /dcp/presentations/query`: a verifier asks for our credentials (Resolution API).
async fn presentation_query(
    req: HttpRequest,
    payload: web::Payload,
    connector: web::Data<Connector>,
) -> HttpResponse {
    let answer = async {
        let body = read_json_bytes(&req, payload, connector.config.limits.max_body_bytes)
            .await
            .map_err(|e| DcpError::bad("bad_request", e))?;
        let response = connector
            .answer_presentation_query(authorization(&req).as_deref(), &body)
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
    connector: web::Data<Connector>,
) -> HttpResponse {
    let answer = async {
        let body = read_json_bytes(&req, payload, connector.config.limits.max_body_bytes)
            .await
            .map_err(|e| DcpError::bad("bad_request", e))?;
        connector
            .store_delivery(authorization(&req).as_deref(), &body)
            .await?;
        Ok(HttpResponse::Ok().finish())
    };
    dcp_answer("credentials", answer.await)
}
