//! Identity endpoints on the DSP listener: our DID document (`did:web`), and the embedded DCP
//! credential service (`POST /dcp/presentations/query`; the storage API the trust anchor delivers
//! credentials to is `POST /dcp/credentials`).

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use caap_identity::dcp::{self, PresentationQueryMessage, Refusal, StoredCredential};
use chrono::Duration;
use serde_json::json;

use super::body::read_json;
use crate::dcp::{CREDENTIAL_SERVICE_PATH, TOKEN_LIFETIME_SECS};
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
pub fn dcp_error(status: StatusCode, code: &str, message: &str) -> HttpResponse {
    let mut res = HttpResponse::build(status);
    if status == StatusCode::UNAUTHORIZED {
        res.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
    }
    res.json(json!({"type": "Error", "code": code, "message": message}))
}

/// A refused token or request at a DCP endpoint: 401 (503 when a dependency is down), logged.
pub fn refused(endpoint: &str, r: &Refusal) -> HttpResponse {
    if r.is_unavailable() {
        tracing::warn!(%endpoint, code = r.code(), reason = %r, "DCP request could not be verified");
        return dcp_error(
            StatusCode::SERVICE_UNAVAILABLE,
            r.code(),
            "the request could not be verified right now; retry later",
        );
    }
    tracing::info!(%endpoint, code = r.code(), reason = %r, "DCP request refused");
    dcp_error(
        StatusCode::UNAUTHORIZED,
        r.code(),
        "the self-issued token or its access token was refused",
    )
}

fn authorization(req: &HttpRequest) -> Option<String> {
    req.headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// `POST /dcp/presentations/query`: a verifier asks for our credentials with its self-issued
/// token carrying the access token we gave it.
async fn presentation_query(
    req: HttpRequest,
    payload: web::Payload,
    connector: web::Data<Connector>,
) -> HttpResponse {
    let trust = &connector.trust;
    let now = connector.clock.now();
    let grant = match dcp::authorize_presentation_query(
        authorization(&req).as_deref(),
        &trust.document,
        now,
        trust.resolver.as_ref(),
        trust.replay.as_ref(),
    )
    .await
    {
        Ok(g) => g,
        Err(r) => return refused("presentations/query", &r),
    };
    let body = match read_json(&req, payload, connector.config.limits.max_body_bytes).await {
        Ok(b) => b,
        Err(e) => return dcp_error(e.status(), "bad_request", &e.to_string()),
    };
    let scopes = match serde_json::from_value::<PresentationQueryMessage>(body)
        .map_err(|e| dcp::QueryError::Malformed(e.to_string()))
        .and_then(|m| m.validate())
    {
        Ok(s) => s,
        Err(e) => {
            let status = StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
            return dcp_error(status, "invalid_query", &e.to_string());
        }
    };
    let held = match connector.store.held_credentials().await {
        Ok(h) => h,
        Err(e) => {
            tracing::error!(error = %e, "cannot read the held credentials");
            return dcp_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "internal error",
            );
        }
    };
    let stored: Vec<StoredCredential> = held
        .iter()
        .filter_map(|h| match StoredCredential::from_jwt(&h.jwt) {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::warn!(credential = %h.id, error = %e, "a held credential cannot be read; skipped");
                None
            }
        })
        .collect();
    let chosen = dcp::select_credentials(&scopes, &grant, &stored, now);
    tracing::debug!(verifier = %grant.bearer, presented = chosen.len(), "presentation query answered");
    match dcp::present_credentials(
        &trust.did,
        trust.key(),
        &grant.bearer,
        &chosen,
        now,
        Duration::seconds(TOKEN_LIFETIME_SECS),
    ) {
        Ok(response) => HttpResponse::Ok().json(response),
        Err(e) => {
            tracing::error!(error = %e, "cannot sign the presentation");
            dcp_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "internal error",
            )
        }
    }
}

/// `POST /dcp/credentials`: the storage API, where an issuer delivers credentials (a
/// CredentialMessage) with its self-issued token.
async fn store_credentials(
    req: HttpRequest,
    payload: web::Payload,
    connector: web::Data<Connector>,
) -> HttpResponse {
    let body = match read_json(&req, payload, connector.config.limits.max_body_bytes).await {
        Ok(b) => b,
        Err(e) => return dcp_error(e.status(), "bad_request", &e.to_string()),
    };
    let bytes = serde_json::to_vec(&body).unwrap_or_default();
    let message = match caap_identity::dcp::issuance::CredentialMessage::parse(&bytes) {
        Ok(m) => m,
        Err(e) => return dcp_error(StatusCode::BAD_REQUEST, "invalid_message", &e.to_string()),
    };
    match connector
        .store_delivery(authorization(&req).as_deref(), &message)
        .await
    {
        Ok(_) => HttpResponse::Ok().finish(),
        Err(r) => refused("credentials", &r),
    }
}
