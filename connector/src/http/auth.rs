//! Authentication extractors: the permission a handler needs is visible in its signature.
//!
//! * [`Admin`]: the management API's bearer admin token, or an OIDC access token (see [`super::oidc`]).
//! * [`CatalogCaller`]: a DSP caller verified by the configured [`caap_identity::DspAuthenticator`];
//!   refusals answer with a `CatalogError`.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::{StatusCode, header};
use actix_web::{FromRequest, HttpRequest, web};
use caap_identity::{AuthFailure, Secret, VerifiedCaller};

use super::errors::{ApiError, DspCatalogError};
use crate::service::Connector;
use crate::trust::oidc::OidcRefusal;

fn connector(req: &HttpRequest) -> Option<&Connector> {
    req.app_data::<web::Data<Connector>>().map(|d| d.get_ref())
}

/// Proof that the caller may use the management API: it holds the admin token, or (with
/// `[api.oidc]`) a valid access token from the OIDC provider with the required scope and role.
#[derive(Debug)]
pub struct Admin;

impl FromRequest for Admin {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Admin, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let connector = connector(req).cloned();
        let token = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(|t| Secret::new(t.trim()));
        let path = req.path().to_owned();
        Box::pin(async move {
            let (Some(connector), Some(token)) = (connector, token) else {
                tracing::info!(%path, "management request refused: no bearer token");
                return Err(ApiError::unauthorized());
            };
            if connector.config.api.admin_token.matches(token.expose()) {
                return Ok(Admin);
            }
            let Some(oidc) = &connector.oidc else {
                tracing::info!(%path, "management request refused: bad admin token");
                return Err(ApiError::unauthorized());
            };
            match oidc.verify(token.expose()).await {
                Ok(p) => {
                    tracing::debug!(
                        %path,
                        sub = %p.subject,
                        client_id = p.client_id.as_deref().unwrap_or("-"),
                        "management request by OIDC access token"
                    );
                    Ok(Admin)
                }
                Err(e) => match e.refusal() {
                    OidcRefusal::InvalidToken => {
                        tracing::info!(%path, reason = %e, "management request refused: invalid token");
                        Err(ApiError::invalid_token())
                    }
                    OidcRefusal::InsufficientScope => {
                        tracing::info!(%path, reason = %e, "management request refused: insufficient scope");
                        Err(ApiError::insufficient_scope())
                    }
                    OidcRefusal::Unavailable => {
                        tracing::warn!(%path, reason = %e, "management request refused: OIDC provider unavailable");
                        Err(ApiError::oidc_unavailable())
                    }
                },
            }
        })
    }
}

/// A verified DSP caller of the catalog protocol.
#[derive(Debug)]
pub struct CatalogCaller(pub VerifiedCaller);

impl FromRequest for CatalogCaller {
    type Error = DspCatalogError;
    type Future = Pin<Box<dyn Future<Output = Result<CatalogCaller, DspCatalogError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let connector = connector(req).cloned();
        let header = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        Box::pin(async move {
            let Some(connector) = connector else {
                return Err(DspCatalogError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "not configured",
                ));
            };
            match connector
                .authenticator
                .authenticate(header.as_deref())
                .await
            {
                Ok(caller) => Ok(CatalogCaller(caller)),
                Err(failure) => {
                    tracing::info!(reason = %failure, "DSP catalog request refused");
                    Err(match failure {
                        AuthFailure::Unavailable(_) => DspCatalogError::new(
                            StatusCode::SERVICE_UNAVAILABLE,
                            "the caller could not be verified right now; retry later",
                        ),
                        _ => DspCatalogError::new(
                            StatusCode::UNAUTHORIZED,
                            "the request is not authorized; present a valid Authorization header",
                        ),
                    })
                }
            }
        })
    }
}

/// A verified DSP caller of the negotiation or transfer protocols. A refusal answers 404 (DSP: an
/// unauthorized caller must not learn whether a process exists), logged with its reason.
#[derive(Debug)]
pub struct ProcessCaller(pub VerifiedCaller);

impl FromRequest for ProcessCaller {
    type Error = super::errors::DspNegotiationError;
    type Future = Pin<Box<dyn Future<Output = Result<ProcessCaller, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let connector = connector(req).cloned();
        let header = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let pid = req
            .match_info()
            .get("pid")
            .or_else(|| req.match_info().get("tid"))
            .unwrap_or_default()
            .to_owned();
        let path = req.path().to_owned();
        Box::pin(async move {
            let transfer = path.contains("/transfers/") || path.contains("/data/");
            let refuse = |status, reason: &str| {
                super::errors::DspNegotiationError::new(status, pid.clone(), pid.clone(), reason)
                    .for_transfer(transfer)
            };
            let Some(connector) = connector else {
                return Err(refuse(StatusCode::INTERNAL_SERVER_ERROR, "not configured"));
            };
            match connector
                .authenticator
                .authenticate(header.as_deref())
                .await
            {
                Ok(caller) => Ok(ProcessCaller(caller)),
                Err(AuthFailure::Unavailable(reason)) => {
                    tracing::warn!(%path, %reason, "DSP caller could not be verified");
                    Err(refuse(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "the caller could not be verified right now; retry later",
                    ))
                }
                Err(failure) => {
                    tracing::info!(%path, reason = %failure, "DSP process request refused (answered 404)");
                    Err(refuse(
                        StatusCode::NOT_FOUND,
                        "no such process for this caller",
                    ))
                }
            }
        })
    }
}
